/**
 * An acknowledgement never claims more than the log holds when it is released: when a step
 * truncates the log or installs a snapshot, queued success acks for the replaced entries are
 * withdrawn, also from a Ready that is handed out and not yet advanced.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ChunkChain } from "../../src/bytes/chunk_chain.ts";
import { Configuration } from "../../src/conf/configuration.ts";
import { EntryType, type LogEntry } from "../../src/core/entry.ts";
import { MemoryCoreStorage, RaftCore } from "../../src/core/mod.ts";
import type { AppendEntriesMessage, Message, Ready, SnapshotMeta } from "../../src/core/types.ts";
import { Prng } from "../../src/util/prng.ts";
import { key, logOf } from "./manual_net.ts";

const five = { peers: new Configuration([1, 2, 3, 4, 5].map(key)) };
const L = key(1); // leader of term 2
const L2 = key(2); // leader of term 3
const F = key(3); // the follower under test

/** A follower with entries 1–7 of term 1, 1–5 committed, in a five-node group. */
function follower(): {
  core: RaftCore;
  storage: MemoryCoreStorage;
} {
  const storage = new MemoryCoreStorage();
  storage.append(logOf([1, 1, 1, 1, 1, 1, 1], five));
  storage.setHardState({ term: 1, vote: "", commit: 5 });
  const core = new RaftCore({ id: F, storage, prng: new Prng(5) });
  return { core, storage };
}

function entry(index: number, term: number): LogEntry {
  return { index, term, type: EntryType.DATA, data: ChunkChain.from(`${index}@${term}`) };
}

function append(
  from: string,
  term: number,
  prev: number,
  prevTerm: number,
  entries: LogEntry[],
): AppendEntriesMessage {
  return {
    type: "AppendEntries",
    from,
    to: F,
    term,
    prevLogIndex: prev,
    prevLogTerm: prevTerm,
    entries,
    commit: 5,
    heartbeat: false,
    sentTick: 1,
    readSeq: 0,
  };
}

/** AE(term 2, entries 8–10) from L, then AE(term 3, entry 8') from L2 conflicting at 8. */
const first = (): AppendEntriesMessage =>
  append(L, 2, 7, 1, [entry(8, 2), entry(9, 2), entry(10, 2)]);
const conflicting = (): AppendEntriesMessage => append(L2, 3, 7, 1, [entry(8, 3)]);

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

function persist(storage: MemoryCoreStorage, core: RaftCore, rd: Ready): void {
  if (rd.snapshot !== undefined) storage.applySnapshot(rd.snapshot);
  storage.append(rd.entries);
  if (rd.hardState !== undefined) storage.setHardState(rd.hardState);
  core.advance(rd);
}

describe("an acknowledgement never claims more than the log holds when it is released", () => {
  it("both AppendEntries stepped before ready(): the ack for 8–10 is withdrawn", () => {
    const { core, storage } = follower();
    core.step(first());
    core.step(conflicting());
    const rd = core.ready();
    assert.deepEqual(rd.entries.map((e) => `${e.index}@${e.term}`), ["8@3"]);
    assert.deepEqual(acks(rd.messagesAfterPersist), [`${L2}@8`], "no ack of 8–10 to L");
    persist(storage, core, rd);
    assert.equal(storage.term(8), 3);
    assert.equal(storage.lastIndex(), 8);
  });

  it("the first Ready is handed out and not yet advanced: its ack is withdrawn in place", () => {
    const { core, storage } = follower();
    core.step(first());
    const rd1 = core.ready();
    assert.deepEqual(acks(rd1.messagesAfterPersist), [`${L}@10`]);
    core.step(conflicting()); // the driver keeps stepping while rd1 is being persisted
    assert.deepEqual(acks(rd1.messagesAfterPersist), [], "withdrawn from the outstanding Ready");
    persist(storage, core, rd1); // 8–10 reach the disk, but no ack for them leaves
    const rd2 = core.ready();
    assert.deepEqual(rd2.entries.map((e) => `${e.index}@${e.term}`), ["8@3"]);
    assert.deepEqual(acks(rd2.messagesAfterPersist), [`${L2}@8`]);
    persist(storage, core, rd2);
    assert.equal(storage.term(8), 3);
    assert.equal(storage.lastIndex(), 8);
  });

  it("acks below the truncation point stay", () => {
    const { core } = follower();
    core.step(append(L, 2, 7, 1, [entry(8, 2)]));
    core.step(append(L, 2, 8, 2, [entry(9, 2), entry(10, 2)]));
    core.step(append(L2, 3, 8, 2, [entry(9, 3)])); // conflicts at 9
    const rd = core.ready();
    assert.deepEqual(acks(rd.messagesAfterPersist), [`${L}@8`, `${L2}@9`]);
  });

  const snapshot = (index: number): SnapshotMeta => ({ index, term: 3, conf: five });
  const install = (meta: SnapshotMeta): Message => ({
    type: "InstallSnapshot",
    from: L2,
    to: F,
    term: 3,
    meta,
  });

  it("an installed snapshot replaces the log: acks above the old commit are withdrawn", () => {
    const { core, storage } = follower();
    core.step(first());
    core.step(install(snapshot(9)));
    const rd = core.ready();
    assert.equal(rd.snapshot?.index, 9);
    assert.deepEqual(acks(rd.messagesAfterPersist), [`${L2}@9`]);
    persist(storage, core, rd);
    assert.equal(storage.lastIndex(), 9);
  });

  it("an installed snapshot withdraws the acks of the outstanding Ready too", () => {
    const { core, storage } = follower();
    core.step(append(L, 2, 5, 1, [])); // a probe: acks index 5 (committed), stays
    core.step(first());
    const rd1 = core.ready();
    assert.deepEqual(acks(rd1.messagesAfterPersist), [`${L}@5`, `${L}@10`]);
    core.step(install(snapshot(9)));
    assert.deepEqual(acks(rd1.messagesAfterPersist), [`${L}@5`]);
    persist(storage, core, rd1);
    const rd2 = core.ready();
    assert.deepEqual(acks(rd2.messagesAfterPersist), [`${L2}@9`]);
  });

  it("five nodes: the leader of term 2 never counts the follower for the overwritten index", () => {
    // L replicates 8 to F only; L2 (term 3) overwrites 8 on F before F's ack leaves.
    const { core } = follower();
    core.step(append(L, 2, 7, 1, [entry(8, 2)]));
    core.step(append(L2, 3, 7, 1, [entry(8, 3)]));
    const rd = core.ready();
    const toL = rd.messagesAfterPersist.filter((m) => m.to === L);
    assert.ok(
      toL.every((m) => !(m.type === "AppendEntriesResp" && m.success && m.index >= 8)),
      "an ack of 8@2 would let L commit it with two more votes while F holds 8@3",
    );
  });
});
