/**
 * Asynchronous applying (`maxApplyingBytes` + `appliedTo`): the core hands committed entries
 * to the driver in bounded chunks and holds the rest back until the state machine reports
 * progress; "applied" (state machine finished) is separate from "applying" (handed out).
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ChunkChain } from "../../src/bytes/chunk_chain.ts";
import { Configuration } from "../../src/conf/configuration.ts";
import { ENTRY_OVERHEAD_BYTES, type LogEntry } from "../../src/core/entry.ts";
import { MemoryCoreStorage, RaftCore, type RaftCoreOptions } from "../../src/core/mod.ts";
import { Prng } from "../../src/util/prng.ts";
import { key, ManualNet } from "./manual_net.ts";

/** One entry of `size` payload bytes costs this much against `maxApplyingBytes`. */
const cost = (size: number): number => size + ENTRY_OVERHEAD_BYTES;

/** A single-voter core whose Readies are persisted at once; committed entries are recorded. */
class Solo {
  readonly storage = new MemoryCoreStorage();
  readonly core: RaftCore;
  readonly handed: LogEntry[] = [];
  readies = 0;

  constructor(opts: Partial<RaftCoreOptions> = {}, storage?: MemoryCoreStorage) {
    if (storage !== undefined) this.storage = storage;
    this.core = new RaftCore({
      id: "a:1:0",
      storage: this.storage,
      prng: new Prng(3),
      initialConf: { peers: Configuration.parse("a:1:0") },
      ...opts,
    });
  }

  drive(): void {
    for (let guard = 0; this.core.hasReady(); guard++) {
      assert.ok(guard < 10_000, "hasReady() never turns false");
      const rd = this.core.ready();
      this.readies++;
      if (rd.entries.length > 0) this.storage.append(rd.entries);
      if (rd.hardState) this.storage.setHardState(rd.hardState);
      this.handed.push(...rd.committedEntries);
      this.core.advance(rd);
    }
  }

  /** Elects itself and hands out its first (configuration) entry. */
  lead(): void {
    this.core.campaign();
    this.drive();
    assert.ok(this.core.isLeader());
  }

  propose(n: number, size: number): void {
    for (let i = 0; i < n; i++) {
      const r = this.core.propose(ChunkChain.from(new Uint8Array(size)));
      assert.ok(r.status.ok(), r.status.message);
    }
  }

  lastHanded(): number {
    return this.handed[this.handed.length - 1]?.index ?? 0;
  }
}

describe("core: asynchronous applying", () => {
  it("hands committed entries out in chunks bounded by maxApplyingBytes until appliedTo", () => {
    const limit = cost(100) * 4; // four 100-byte entries
    const s = new Solo({ maxApplyingBytes: limit });
    s.lead();
    s.core.appliedTo(s.lastHanded());
    const base = s.lastHanded();
    s.propose(50, 100);
    s.drive();
    assert.equal(s.core.commitIndex(), base + 50);
    // only what fits in the budget was handed out; nothing more however often we drive
    assert.equal(s.lastHanded(), base + 4);
    assert.ok(s.core.applyingBytes() <= limit);
    assert.equal(s.core.hasReady(), false, "blocked applying must not spin the Ready loop");
    assert.equal(s.core.applyingIndex(), base + 4);
    assert.equal(s.core.appliedIndex(), base);
    // the state machine finishes two entries: room for two more
    s.core.appliedTo(base + 2);
    s.drive();
    assert.equal(s.lastHanded(), base + 6);
    assert.ok(s.core.applyingBytes() <= limit);
    // finish everything in steps; every entry is handed out exactly once, in order
    while (s.core.appliedIndex() < base + 50) {
      s.core.appliedTo(s.core.applyingIndex());
      s.drive();
      assert.ok(s.core.applyingBytes() <= limit);
    }
    assert.deepEqual(
      s.handed.map((e) => e.index),
      Array.from({ length: base + 50 }, (_, i) => i + 1),
    );
    assert.equal(s.core.applyingBytes(), 0);
  });

  it("always hands out at least one entry, even one larger than the budget", () => {
    const s = new Solo({ maxApplyingBytes: 10 });
    s.lead();
    s.core.appliedTo(s.lastHanded());
    const base = s.lastHanded();
    s.propose(3, 1000);
    s.drive();
    assert.equal(s.lastHanded(), base + 1);
    s.core.appliedTo(base + 1);
    s.drive();
    assert.equal(s.lastHanded(), base + 2);
  });

  it("counts a per-entry overhead, so tiny entries are bounded in number", () => {
    const s = new Solo({ maxApplyingBytes: 10 * ENTRY_OVERHEAD_BYTES });
    s.lead();
    s.core.appliedTo(s.lastHanded());
    const base = s.lastHanded();
    s.propose(1000, 0);
    s.drive();
    assert.equal(s.lastHanded() - base, 10);
  });

  it("never offers a snapshot of entries handed out but not applied", () => {
    const s = new Solo({ maxApplyingBytes: 1 << 20 });
    s.lead();
    s.propose(5, 10);
    s.drive();
    const last = s.core.commitIndex();
    assert.equal(s.lastHanded(), last);
    assert.equal(s.core.appliedIndex(), 0);
    assert.throws(() => s.core.snapshotMetaAt(last), RangeError);
    s.core.appliedTo(last - 2);
    assert.equal(s.core.snapshotMetaAt(last - 2).index, last - 2);
    assert.throws(() => s.core.snapshotMetaAt(last - 1), RangeError);
  });

  it("caps appliedTo at what was handed out, and ignores going backwards", () => {
    const s = new Solo({ maxApplyingBytes: cost(10) * 2 });
    s.lead();
    s.core.appliedTo(s.lastHanded());
    const base = s.lastHanded();
    s.propose(5, 10);
    s.drive();
    s.core.appliedTo(base + 100);
    assert.equal(s.core.appliedIndex(), base + 2);
    s.core.appliedTo(base);
    assert.equal(s.core.appliedIndex(), base + 2);
    s.drive();
    assert.equal(s.lastHanded(), base + 4);
  });

  it("without maxApplyingBytes, advance() counts handed-out entries as applied (unbounded)", () => {
    const s = new Solo();
    s.lead();
    s.propose(200, 1000);
    s.drive();
    assert.equal(s.lastHanded(), s.core.commitIndex());
    assert.equal(s.core.appliedIndex(), s.core.commitIndex());
    assert.equal(s.core.applyingBytes(), 0);
  });

  it("a restarted core resumes handing out after the applied index it is given", () => {
    const s = new Solo({ maxApplyingBytes: cost(10) * 3 });
    s.lead();
    s.propose(9, 10);
    s.drive();
    s.core.appliedTo(4);
    const r = new Solo({ maxApplyingBytes: cost(10) * 3, applied: 4 }, s.storage);
    r.lead();
    // restart: commit is recovered from the log as the leader commits its new term
    assert.equal(r.handed[0]!.index, 5);
    assert.ok(r.core.applyingBytes() <= cost(10) * 3 + ENTRY_OVERHEAD_BYTES);
  });

  it("followers too hold committed entries back until their state machine catches up", () => {
    const limit = cost(8) * 3;
    const net = new ManualNet(3, { maxApplyingBytes: limit });
    const leader = key(1);
    net.elect(leader);
    for (const id of net.ids) net.core(id).appliedTo(net.core(id).applyingIndex());
    const before = new Map(net.ids.map((id) => [id, net.applied.get(id)!.length]));
    for (let i = 0; i < 30; i++) {
      assert.ok(net.core(leader).propose(ChunkChain.from(`e${i}`.padEnd(8, "-"))).status.ok());
    }
    net.stabilize();
    const commit = net.core(leader).commitIndex();
    for (const id of net.ids) {
      const c = net.core(id);
      assert.equal(c.commitIndex(), commit, `${id} knows the commit index`);
      assert.equal(net.applied.get(id)!.length - before.get(id)!, 3, `${id} handed out 3`);
      assert.ok(c.applyingBytes() <= limit);
    }
    // each state machine catches up at its own pace; all end with the same entries
    for (let round = 0; round < 100; round++) {
      let busy = false;
      for (const id of net.ids) {
        const c = net.core(id);
        if (c.appliedIndex() < commit) {
          busy = true;
          c.appliedTo(Math.min(c.applyingIndex(), c.appliedIndex() + 1 + (round % 3)));
        }
      }
      net.drain();
      if (!busy) break;
    }
    const ref = net.applied.get(leader)!.map((e) => `${e.index}@${e.term}`);
    assert.equal(ref.length, commit);
    for (const id of net.ids) {
      assert.deepEqual(net.applied.get(id)!.map((e) => `${e.index}@${e.term}`), ref);
      assert.equal(net.core(id).appliedIndex(), commit);
    }
  });
});
