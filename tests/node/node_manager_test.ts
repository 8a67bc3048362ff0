// NodeManager routing (many groups and peer indexes per endpoint) and LogManager group commit.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { encode } from "cbor-x";
import { encodeMessage } from "../../src/codec/message_codec.ts";
import { Node } from "../../src/node/node.ts";
import { NodeManager } from "../../src/node/node_manager.ts";
import { MemoryNetwork } from "../../transports/memory/memory_network.ts";
import { createLogStorage, registerLogStorage } from "../../storage/uri.ts";
import type { LogStorage } from "../../storage/log/log_storage.ts";
import type { LogEntry } from "../../src/core/entry.ts";
import { MockFsm, waitFor, withDeadline } from "./cluster.ts";
import { SettleTracker } from "./_settle.ts";

/** Every closure given to `apply()` runs once and every Promise settles (checked last). */
const settle = new SettleTracker();

async function startGroup(
  net: MemoryNetwork,
  group: string,
  peers: string[],
  logScheme = "memory",
): Promise<{ nodes: Node[]; fsms: MockFsm[] }> {
  const nodes: Node[] = [];
  const fsms: MockFsm[] = [];
  for (const peer of peers) {
    const fsm = new MockFsm();
    const node = new Node(group, peer);
    settle.instrument(node);
    const endpoint = peer.split(":").slice(0, 2).join(":");
    await node.init({
      fsm,
      initialConf: peers.join(","),
      logUri: `${logScheme}://${group}-${peer}/log`,
      raftMetaUri: `memory://${group}-${peer}/meta`,
      transport: net.transport(endpoint),
      electionTimeoutMs: 300,
    });
    nodes.push(node);
    fsms.push(fsm);
  }
  return { nodes, fsms };
}

async function leaderOf(nodes: Node[]): Promise<Node> {
  return await waitFor(() => nodes.find((n) => n.isLeader()), 30_000, "a leader");
}

describe("NodeManager", () => {
  it("routes many groups and many peer indexes on the same endpoints", async () => {
    const net = new MemoryNetwork();
    try {
      // Group A: three replicas on one endpoint (idx 0..2). Group B: three endpoints, shared with A.
      const a = await startGroup(net, "A", [
        "127.0.0.1:7500:0",
        "127.0.0.1:7500:1",
        "127.0.0.1:7500:2",
      ]);
      const b = await startGroup(net, "B", [
        "127.0.0.1:7500:3",
        "127.0.0.1:7501:0",
        "127.0.0.1:7502:0",
      ]);
      const la = await leaderOf(a.nodes);
      const lb = await leaderOf(b.nodes);
      await Promise.all([0, 1, 2].map((i) => la.applyAsync(new TextEncoder().encode(`a${i}`))));
      await Promise.all([0, 1].map((i) => lb.applyAsync(new TextEncoder().encode(`b${i}`))));
      for (const n of a.nodes) {
        await withDeadline(n.waitApplied(la.appliedIndex()), 30_000, "A applies");
      }
      for (const n of b.nodes) {
        await withDeadline(n.waitApplied(lb.appliedIndex()), 30_000, "B applies");
      }
      for (const f of a.fsms) assert.deepEqual(f.logs, ["a0", "a1", "a2"]);
      for (const f of b.fsms) assert.deepEqual(f.logs, ["b0", "b1"]);
      for (const n of [...a.nodes, ...b.nodes]) await n.shutdown();
    } finally {
      await net.close();
    }
  });

  it("drops frames for unknown groups or peers and malformed frames without crashing", async () => {
    const net = new MemoryNetwork();
    try {
      const g = await startGroup(net, "C", ["127.0.0.1:7510:0"]);
      const leader = await leaderOf(g.nodes);
      const manager = NodeManager.for(net.transport("127.0.0.1:7510"));
      const attacker = net.transport("127.0.0.1:7599");
      attacker.send("127.0.0.1:7510", new Uint8Array([1, 2, 3]));
      attacker.send("127.0.0.1:7510", new Uint8Array(100).fill(0xff));
      const frame = (group: string, to: string) => {
        const h = encode({
          g: group,
          m: { type: "TimeoutNow", from: "x:1:0", to, term: 99 },
        }) as Uint8Array;
        const f = new Uint8Array(5 + h.length);
        f[0] = 1;
        new DataView(f.buffer).setUint32(1, h.length);
        f.set(h, 5);
        return f;
      };
      attacker.send("127.0.0.1:7510", frame("no-such-group", "127.0.0.1:7510:0"));
      attacker.send("127.0.0.1:7510", frame("C", "127.0.0.1:7510:9"));
      await net.idle();
      assert.equal(manager.stats.malformed, 2);
      assert.equal(manager.stats.unknownTarget, 2);
      await assert.rejects(
        attacker.call("127.0.0.1:7510", new Uint8Array([0xff])),
        /EINVAL|decode/,
      );
      await assert.rejects(
        attacker.call(
          "127.0.0.1:7510",
          encode({ t: "get_file", readerId: 1, name: "x", offset: 0, count: 1 }) as Uint8Array,
        ),
        /ENOENT|does not exist/,
      );
      await leader.applyAsync(new Uint8Array([1]));
      assert.ok(leader.isLeader(), "still serving");
      await leader.shutdown();
    } finally {
      await net.close();
    }
  });
});

describe("hostile peers", () => {
  it("a well-formed message that breaks a protocol invariant is dropped, not fatal", async () => {
    const net = new MemoryNetwork();
    try {
      const g = await startGroup(net, "H", ["127.0.0.1:7530:0"]);
      const leader = await leaderOf(g.nodes);
      const attacker = net.transport("127.0.0.1:7531");
      // A second "leader" in the same term (Raft says impossible; a faulty peer can send it).
      attacker.send(
        "127.0.0.1:7530",
        encodeMessage("H", {
          type: "AppendEntries",
          from: "127.0.0.1:7531:0",
          to: "127.0.0.1:7530:0",
          term: leader.term(),
          prevLogIndex: 0,
          prevLogTerm: 0,
          entries: [],
          commit: 0,
          heartbeat: false,
          sentTick: 0,
          readSeq: 0,
        }),
      );
      await net.idle();
      assert.equal(leader.rejectedMessages, 1);
      await leader.applyAsync(new Uint8Array([1]));
      assert.ok(leader.isLeader());
      await leader.shutdown();
    } finally {
      await net.close();
    }
  });
});

describe("LogManager group commit", () => {
  it("many concurrent applies become few appendEntries calls (one write + one fsync each)", async () => {
    const calls: number[] = [];
    registerLogStorage("counting", async (path) => {
      const inner = await createLogStorage(`memory://${path}`);
      return new Proxy(inner, {
        get(target, prop, receiver) {
          if (prop === "appendEntries") {
            return (entries: readonly LogEntry[]) => {
              calls.push(entries.length);
              return target.appendEntries(entries);
            };
          }
          const v = Reflect.get(target, prop, receiver);
          return typeof v === "function" ? v.bind(target) : v;
        },
      }) as LogStorage;
    });
    const net = new MemoryNetwork();
    try {
      const g = await startGroup(net, "GC", ["127.0.0.1:7520:0"], "counting");
      const leader = await leaderOf(g.nodes);
      calls.length = 0;
      await Promise.all(
        Array.from({ length: 200 }, (_, i) => leader.applyAsync(new Uint8Array([i & 0xff]))),
      );
      const total = calls.reduce((a, b) => a + b, 0);
      assert.ok(total >= 200, `all entries written (${total})`);
      assert.ok(calls.length <= 20, `200 applies took ${calls.length} appendEntries calls`);
      assert.ok(Math.max(...calls) >= 10, `batches: ${calls.join(",")}`);
      await leader.shutdown();
    } finally {
      await net.close();
    }
  });
});

it("every closure given to apply() ran exactly once and every node Promise settled", async () => {
  assert.ok(settle.counts.promises > 0, "the check had work");
  await settle.check(30_000);
});
