/**
 * The Ready's durability promise (`RaftLog.nextCommitted`: "committed, durable entries"): a
 * Ready's `committedEntries` are already durable locally; the core never hands out for
 * applying an entry that the same Ready still asks the driver to write.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Configuration } from "../../src/conf/configuration.ts";
import { MemoryCoreStorage, RaftCore } from "../../src/core/mod.ts";
import type { AppendEntriesMessage } from "../../src/core/types.ts";
import { Prng } from "../../src/util/prng.ts";
import { key, logOf } from "./manual_net.ts";

describe("Ready: committed entries are durable before they are handed out", () => {
  it("a follower that learns entries and their commit in one message applies them only after persisting them", () => {
    const conf = { peers: new Configuration([key(1), key(2), key(3)]) };
    const storage = new MemoryCoreStorage();
    const log = logOf([1, 1, 1], conf);
    storage.append(log.slice(0, 1));
    storage.setHardState({ term: 1, vote: "", commit: 1 });
    const f = new RaftCore({ id: key(2), storage, prng: new Prng(5) });
    f.step(
      {
        type: "AppendEntries",
        from: key(1),
        to: key(2),
        term: 1,
        prevLogIndex: 1,
        prevLogTerm: 1,
        entries: log.slice(1),
        commit: 3,
        heartbeat: false,
        sentTick: 1,
        readSeq: 0,
      } satisfies AppendEntriesMessage,
    );
    assert.equal(f.commitIndex(), 3);
    const first = f.ready();
    assert.deepEqual(first.entries.map((e) => e.index), [2, 3]);
    const written = new Set(first.entries.map((e) => e.index));
    for (const e of first.committedEntries) {
      assert.ok(!written.has(e.index), `entry ${e.index} handed out before it is durable`);
    }
    storage.append(first.entries);
    if (first.hardState) storage.setHardState(first.hardState);
    f.advance(first);
    const applied = [...first.committedEntries];
    while (f.hasReady()) {
      const rd = f.ready();
      assert.deepEqual(rd.entries, []);
      applied.push(...rd.committedEntries);
      if (rd.hardState) storage.setHardState(rd.hardState);
      f.advance(rd);
    }
    assert.deepEqual(applied.map((e) => e.index), [1, 2, 3]);
  });
});
