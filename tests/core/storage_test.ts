/**
 * The core over a storage whose old entries are not synchronously available (an async log):
 * `entries()` answers null, the core waits, and `notifyStorageReady()` resumes it.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ChunkChain } from "../../src/bytes/chunk_chain.ts";
import { Configuration } from "../../src/conf/configuration.ts";
import type { LogEntry } from "../../src/core/entry.ts";
import {
  type ConfigurationRecord,
  type CoreStorage,
  type HardState,
  MemoryCoreStorage,
  type Message,
  RaftCore,
  type SnapshotMeta,
} from "../../src/core/mod.ts";
import { Prng } from "../../src/util/prng.ts";

class SlowStorage implements CoreStorage {
  readonly inner: MemoryCoreStorage = new MemoryCoreStorage();
  cold = false;
  hardState(): HardState {
    return this.inner.hardState();
  }
  snapshotMeta(): SnapshotMeta {
    return this.inner.snapshotMeta();
  }
  firstIndex(): number {
    return this.inner.firstIndex();
  }
  lastIndex(): number {
    return this.inner.lastIndex();
  }
  term(i: number): number | undefined {
    return this.inner.term(i);
  }
  entries(lo: number, hi: number, maxBytes: number): LogEntry[] | null {
    return this.cold ? null : this.inner.entries(lo, hi, maxBytes);
  }
  configurations(): ConfigurationRecord[] {
    return this.inner.configurations();
  }
}

describe("asynchronous storage reads", () => {
  it("waits for notifyStorageReady() before replicating or applying cold entries", () => {
    const ids = ["a:1:0", "b:1:0", "c:1:0"];
    const slow = new SlowStorage();
    const storages = new Map<string, MemoryCoreStorage>([
      ["b:1:0", new MemoryCoreStorage()],
      ["c:1:0", new MemoryCoreStorage()],
    ]);
    const mk = (id: string, s: CoreStorage, i: number): RaftCore =>
      new RaftCore({
        id,
        storage: s,
        prng: new Prng(i),
        initialConf: { peers: new Configuration(ids) },
      });
    const cores = new Map<string, RaftCore>([
      ["a:1:0", mk("a:1:0", slow, 1)],
      ["b:1:0", mk("b:1:0", storages.get("b:1:0")!, 2)],
      ["c:1:0", mk("c:1:0", storages.get("c:1:0")!, 3)],
    ]);
    let queue: Message[] = [];
    const sent: Message[] = [];
    const pump = (down: string[] = []): void => {
      for (let round = 0; round < 100; round++) {
        let busy = false;
        for (const [id, core] of cores) {
          while (core.hasReady()) {
            busy = true;
            const rd = core.ready();
            const s = id === "a:1:0" ? slow.inner : storages.get(id)!;
            queue.push(...rd.messages);
            s.append(rd.entries);
            if (rd.hardState) s.setHardState(rd.hardState);
            queue.push(...rd.messagesAfterPersist);
            core.advance(rd);
          }
        }
        const q = queue.filter((m) => !down.includes(m.to) && !down.includes(m.from));
        queue = [];
        for (const m of q) {
          sent.push(m);
          cores.get(m.to)!.step(m);
          busy = true;
        }
        if (!busy) return;
      }
    };
    const a = cores.get("a:1:0")!;
    a.campaign();
    pump();
    assert.ok(a.isLeader());
    for (let i = 0; i < 10; i++) a.propose(ChunkChain.from(`e${i}`));
    pump(["c:1:0"]);
    const last = a.lastIndex();
    assert.equal(a.commitIndex(), last);
    // c is behind; the leader's log is now only on "disk"
    slow.cold = true;
    sent.length = 0;
    for (let i = 0; i < 3; i++) {
      a.tick();
      pump();
    }
    assert.ok(
      !sent.some((m) => m.type === "AppendEntries" && m.entries.length > 0 && m.to === "c:1:0"),
    );
    assert.ok(cores.get("c:1:0")!.lastIndex() < last);
    slow.cold = false;
    a.notifyStorageReady();
    pump();
    assert.equal(cores.get("c:1:0")!.lastIndex(), last);
  });
});
