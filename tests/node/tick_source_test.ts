// The shared tick source, the endpoint liveness tracker, PING frames at the NodeManager and the
// `quiesce` flag of the message codec.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { decodeMessage, encodeMessage } from "../../src/codec/message_codec.ts";
import type { Message } from "../../src/core/types.ts";
import {
  EndpointLiveness,
  isControlFrame,
  isPingFrame,
  PING_FRAME,
  type QuiescedNode,
} from "../../src/node/endpoint_liveness.ts";
import { NodeManager } from "../../src/node/node_manager.ts";
import { TickSource } from "../../src/node/tick_source.ts";
import { ManualClock } from "../../src/util/clock.ts";
import { MemoryNetwork } from "../../transports/memory/memory_network.ts";
import { Cluster, peerIds } from "./cluster.ts";

describe("TickSource", () => {
  it("is one timer per (clock, period), armed only while subscribed", () => {
    const clock = new ManualClock();
    const a = TickSource.for(clock, 10);
    assert.equal(TickSource.for(clock, 10), a);
    assert.notEqual(TickSource.for(clock, 20), a);
    assert.notEqual(TickSource.for(new ManualClock(), 10), a);
    assert.equal(a.running, false);
    const order: string[] = [];
    const f1 = () => order.push("1");
    const f2 = () => order.push("2");
    a.subscribe(f1);
    a.subscribe(f2);
    a.subscribe(f1); // once per tick however often subscribed
    assert.equal(a.running, true);
    clock.advance(10);
    assert.deepEqual(order, ["1", "2"]);
    a.unsubscribe(f1);
    a.unsubscribe(f2);
    assert.equal(a.running, false);
    clock.advance(100);
    assert.deepEqual(order, ["1", "2"]);
  });

  it("keeps ticks to their schedule when timers fire late (no drift)", () => {
    // A clock whose timers always fire `late` ms after they are due, as on a busy event loop.
    const late = 10;
    let now = 0;
    const timers = new Map<number, { at: number; fn: () => void }>();
    let nextId = 1;
    const clock = {
      now: () => now,
      setTimer: (fn: () => void, ms: number) => {
        timers.set(nextId, { at: now + ms, fn });
        return nextId++;
      },
      clearTimer: (h: unknown) => void timers.delete(h as number),
    };
    const fireNext = (): void => {
      const [id, t] = [...timers.entries()].sort((a, b) => a[1].at - b[1].at)[0]!;
      timers.delete(id);
      now = Math.max(now, t.at + late);
      t.fn();
    };
    const s = TickSource.for(clock, 50);
    const at: number[] = [];
    const fn = () => at.push(now);
    s.subscribe(fn);
    for (let i = 0; i < 20; i++) fireNext();
    s.unsubscribe(fn);
    // tick k is due at 50k and runs 10 ms late; a chained timer would run it at 60k
    assert.deepEqual(at, Array.from({ length: 20 }, (_, k) => 50 * (k + 1) + late));
  });

  it("runs every subscriber even when one throws, and allows (un)subscribing from a tick", () => {
    const clock = new ManualClock();
    const s = TickSource.for(clock, 5);
    const got: string[] = [];
    const late = () => got.push("late");
    const bad = () => {
      throw new Error("boom");
    };
    const second = () => {
      got.push("second");
      s.unsubscribe(second);
      s.subscribe(late); // from the next tick on
    };
    s.subscribe(bad);
    s.subscribe(second);
    clock.advance(5);
    assert.deepEqual(got, ["second"]);
    assert.equal(s.errors, 1);
    clock.advance(5);
    assert.deepEqual(got, ["second", "late"]);
    assert.equal(s.errors, 2);
    s.unsubscribe(bad);
    s.unsubscribe(late);
    assert.equal(s.running, false);
  });

  it("nodes share it, and resetElectionTimeoutMs moves a node to another period", async () => {
    const clock = new ManualClock();
    const peers = peerIds(3, 7200);
    const c = new Cluster("ticksrc", peers, { electionTimeoutMs: 1000 });
    try {
      for (const [i, p] of peers.entries()) await c.start(p, { extra: { clock, seed: i + 1 } });
      const at50 = TickSource.for(clock, 50);
      assert.equal(at50.size, 3);
      const node = c.nodes.get(peers[0]!.key())!;
      assert.ok(node.resetElectionTimeoutMs(600).ok());
      assert.equal(at50.size, 2);
      assert.equal(TickSource.for(clock, 30).size, 1);
    } finally {
      await c.stopAll();
    }
    assert.equal(TickSource.for(clock, 50).running, false, "shut down nodes unsubscribe");
    assert.equal(TickSource.for(clock, 30).running, false);
  });
});

describe("EndpointLiveness", () => {
  it("pings each endpoint once per interval and wakes a node whose quorum went silent", () => {
    const clock = new ManualClock();
    const pinged: string[] = [];
    const live = new EndpointLiveness(clock, (to) => pinged.push(to));
    const woken: string[] = [];
    const mk = (name: string, watch: string[], needed: number): QuiescedNode => {
      const n: QuiescedNode = {
        ping: watch,
        watch,
        needed,
        timeoutMs: 100,
        heartbeatMs: 10,
        wake: () => {
          woken.push(name);
          live.unregister(n);
        },
      };
      return n;
    };
    live.register(mk("leader", ["b", "c"], 1)); // 3 voters: itself + one more
    live.register(mk("follower", ["b"], 1));
    clock.advance(10);
    assert.deepEqual(pinged.sort(), ["b", "c"], "one PING per endpoint, not per node");
    // c stays silent, b talks: nothing wakes
    for (let t = 0; t < 30; t++) {
      live.heard("b");
      clock.advance(10);
    }
    assert.deepEqual(woken, []);
    // b goes silent too: both wake after the timeout
    clock.advance(90);
    assert.deepEqual(woken, []);
    clock.advance(20);
    assert.deepEqual(woken.sort(), ["follower", "leader"]);
    assert.equal(live.running, false, "no timer once nobody is quiesced");
  });

  it("the manager drops malformed control frames and counts them", async () => {
    const net = new MemoryNetwork();
    const a = net.transport("127.0.0.1:1");
    const b = net.transport("127.0.0.1:2");
    const manager = NodeManager.for(a);
    try {
      assert.ok(isControlFrame(PING_FRAME) && isPingFrame(PING_FRAME));
      b.send(a.endpoint, PING_FRAME);
      b.send(a.endpoint, new Uint8Array([0xa1, 0x61, 0x74, 0x64, 0x70, 0x6f, 0x6e, 0x67]));
      b.send(a.endpoint, new Uint8Array([0xbf]));
      b.send(a.endpoint, new Uint8Array([]));
      await net.idle();
      assert.equal(manager.stats.malformed, 3);
    } finally {
      await net.close();
    }
  });
});

describe("the quiesce flag on the wire", () => {
  const hb: Message = {
    type: "AppendEntries",
    from: "a:1:0",
    to: "b:1:0",
    term: 2,
    prevLogIndex: 5,
    prevLogTerm: 2,
    entries: [],
    commit: 5,
    heartbeat: true,
    sentTick: 9,
    readSeq: 0,
  };

  it("round-trips, costs 3 bytes (`q: true`), and is absent from ordinary frames", () => {
    const plain = encodeMessage("g", hb);
    const flagged = encodeMessage("g", hb, undefined, true);
    assert.equal(flagged.byteLength - plain.byteLength, 3);
    assert.equal(decodeMessage(flagged).quiesce, true);
    assert.equal(decodeMessage(plain).quiesce, undefined);
    assert.equal("quiesce" in decodeMessage(plain), false);
    assert.equal(isControlFrame(plain), false);
  });
});
