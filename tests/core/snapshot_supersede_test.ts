/**
 * A newer InstallSnapshot supersedes a pending one (issue 9 item 7): the core replaces its
 * pending snapshot, withdraws every ack that claims the older one, and `advance()` of the Ready
 * that carried the older snapshot marks neither the newer snapshot nor any entry stable — so a
 * driver may skip installing the older snapshot and writing the entries that followed it.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ChunkChain } from "../../src/bytes/chunk_chain.ts";
import { Configuration } from "../../src/conf/configuration.ts";
import { EntryType, type LogEntry } from "../../src/core/entry.ts";
import { MemoryCoreStorage, RaftCore } from "../../src/core/mod.ts";
import type { Message, Ready, SnapshotMeta } from "../../src/core/types.ts";
import { Prng } from "../../src/util/prng.ts";
import { key, logOf } from "./manual_net.ts";

const five = { peers: new Configuration([1, 2, 3, 4, 5].map(key)) };
const L2 = key(2); // leader of term 3, source of S1
const L4 = key(4); // leader of term 4, source of S2
const L5 = key(5); // leader of term 5
const F = key(3); // the follower under test

/** A follower with entries 1–7 of term 1, 1–5 committed, in a five-node group. */
function follower(): { core: RaftCore; storage: MemoryCoreStorage } {
  const storage = new MemoryCoreStorage();
  storage.append(logOf([1, 1, 1, 1, 1, 1, 1], five));
  storage.setHardState({ term: 1, vote: "", commit: 5 });
  const core = new RaftCore({ id: F, storage, prng: new Prng(5) });
  return { core, storage };
}

function entry(index: number, term: number): LogEntry {
  return { index, term, type: EntryType.DATA, data: ChunkChain.from(`${index}@${term}`) };
}

const snapshot = (index: number, term: number): SnapshotMeta => ({ index, term, conf: five });
const install = (from: string, term: number, meta: SnapshotMeta): Message => ({
  type: "InstallSnapshot",
  from,
  to: F,
  term,
  meta,
});
const append = (
  from: string,
  term: number,
  prev: number,
  prevTerm: number,
  entries: LogEntry[],
): Message => ({
  type: "AppendEntries",
  from,
  to: F,
  term,
  prevLogIndex: prev,
  prevLogTerm: prevTerm,
  entries,
  commit: 0,
  heartbeat: false,
  sentTick: 1,
  readSeq: 0,
});

/** The success acknowledgements in `msgs` as `to@index`. */
function acks(msgs: readonly Message[]): string[] {
  const out: string[] = [];
  for (const m of msgs) {
    if ((m.type === "AppendEntriesResp" || m.type === "InstallSnapshotResp") && m.success) {
      out.push(`${m.to}@${m.index}`);
    }
  }
  return out;
}

/** Persists a Ready as a driver does, skipping a superseded snapshot and its entries. */
function persist(storage: MemoryCoreStorage, core: RaftCore, rd: Ready): void {
  if (!core.superseded(rd)) {
    if (rd.snapshot !== undefined) storage.applySnapshot(rd.snapshot);
    storage.append(rd.entries);
  }
  if (rd.hardState !== undefined) storage.setHardState(rd.hardState);
  core.advance(rd);
}

const ids = (es: readonly LogEntry[]): string[] => es.map((e) => `${e.index}@${e.term}`);

describe("a newer InstallSnapshot supersedes a pending one", () => {
  it("the core replaces the pending snapshot and withdraws every ack claiming the older one", () => {
    const { core } = follower();
    core.step(install(L2, 3, snapshot(9, 3)));
    core.step(append(L2, 3, 9, 3, [entry(10, 3), entry(11, 3)]));
    const rd1 = core.ready();
    assert.equal(rd1.snapshot?.index, 9);
    assert.deepEqual(ids(rd1.entries), ["10@3", "11@3"]);
    assert.deepEqual(acks(rd1.messagesAfterPersist), [`${L2}@9`, `${L2}@11`]);
    assert.equal(core.superseded(rd1), false);

    core.step(install(L4, 4, snapshot(14, 4))); // while rd1 is being installed
    assert.deepEqual(core.pendingSnapshot(), snapshot(14, 4));
    assert.equal(core.superseded(rd1), true);
    assert.deepEqual(acks(rd1.messagesAfterPersist), [], "S1 was never durable: no ack of 9");
    assert.equal(core.commitIndex(), 14);
  });

  it("advance() of the older Ready does not mark the newer snapshot installed", () => {
    const { core, storage } = follower();
    core.step(install(L2, 3, snapshot(9, 3)));
    const rd1 = core.ready();
    core.step(install(L4, 4, snapshot(14, 4)));
    persist(storage, core, rd1); // S1 skipped
    assert.deepEqual(core.pendingSnapshot(), snapshot(14, 4), "S2 still waits to be installed");
    assert.equal(core.firstIndex(), 15);
    const rd2 = core.ready();
    assert.deepEqual(rd2.snapshot, snapshot(14, 4));
    assert.deepEqual(acks(rd2.messagesAfterPersist), [`${L4}@14`]);
    persist(storage, core, rd2);
    assert.equal(core.pendingSnapshot(), undefined);
    assert.equal(storage.snapshotMeta().index, 14);
    assert.equal(core.appliedIndex(), 14);
  });

  it("advance() of the older Ready does not mark entries the newer log holds again stable", () => {
    // rd1 carries S1 (9) and 10–11 of term 3. A term-4 leader overwrites 10; a term-5 leader
    // (which has the term-3 entries) sends S2 = 10@3, then 11@3 again. rd1's copy of 11 was
    // skipped with S1, so 11 must be written by the next Ready.
    const { core, storage } = follower();
    core.step(install(L2, 3, snapshot(9, 3)));
    core.step(append(L2, 3, 9, 3, [entry(10, 3), entry(11, 3)]));
    const rd1 = core.ready();
    core.step(append(L4, 4, 9, 3, [entry(10, 4)]));
    core.step(install(L5, 5, snapshot(10, 3)));
    core.step(append(L5, 5, 10, 3, [entry(11, 3)]));
    assert.equal(core.superseded(rd1), true);
    persist(storage, core, rd1);
    const rd2 = core.ready();
    assert.equal(rd2.snapshot?.index, 10);
    assert.deepEqual(ids(rd2.entries), ["11@3"], "11 is still to be written");
    assert.deepEqual(acks(rd2.messagesAfterPersist), [`${L5}@10`, `${L5}@11`]);
    persist(storage, core, rd2);
    assert.equal(storage.lastIndex(), 11);
    assert.equal(storage.term(11), 3);
    assert.equal(core.lastIndex(), 11);
  });

  it("a driver that did install the older snapshot stays consistent", () => {
    const { core, storage } = follower();
    core.step(install(L2, 3, snapshot(9, 3)));
    core.step(append(L2, 3, 9, 3, [entry(10, 3)]));
    const rd1 = core.ready();
    core.step(install(L4, 4, snapshot(14, 4)));
    storage.applySnapshot(rd1.snapshot!); // installed before the driver noticed
    storage.append(rd1.entries);
    core.advance(rd1);
    const rd2 = core.ready();
    assert.deepEqual(rd2.snapshot, snapshot(14, 4));
    persist(storage, core, rd2);
    assert.equal(storage.snapshotMeta().index, 14);
    assert.equal(core.lastIndex(), 14);
  });

  it("an older or equal InstallSnapshot does not replace the pending one", () => {
    const { core } = follower();
    core.step(install(L4, 4, snapshot(14, 4)));
    const rd = core.ready();
    core.step(install(L4, 4, snapshot(9, 3)));
    core.step(install(L4, 4, snapshot(14, 4)));
    assert.equal(core.superseded(rd), false);
    assert.deepEqual(core.pendingSnapshot(), snapshot(14, 4));
  });
});
