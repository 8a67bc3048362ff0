// What a fresh group's storage costs before it has anything to keep: the `local://` log writes
// no log_meta (and syncs nothing) until its first index moves, and the snapshot storage makes
// no directory until the first snapshot. Many groups per process start thousands of these.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ChunkChain } from "../../src/bytes/chunk_chain.ts";
import { Configuration } from "../../src/conf/configuration.ts";
import { EntryType } from "../../src/core/entry.ts";
import type { FileHandle, FileSystem, OpenOptions } from "../../storage/fs/file_system.ts";
import { MemoryFileSystem } from "../../storage/fs/memory.ts";
import { SegmentLogStorage } from "../../storage/log/segment_log_storage.ts";
import { LocalSnapshotStorage } from "../../storage/snapshot/local_snapshot_storage.ts";
import { dataEntry } from "./_helpers.ts";

/** A file system that counts the fsyncs (of files and directories) made through it. */
class CountingFs implements FileSystem {
  readonly kind = "counting";
  syncs = 0;
  readonly inner: MemoryFileSystem;

  constructor(inner: MemoryFileSystem) {
    this.inner = inner;
  }

  async open(path: string, options?: OpenOptions): Promise<FileHandle> {
    const h = await this.inner.open(path, options);
    return {
      path: h.path,
      write: (d, p) => h.write(d, p),
      read: (t, p) => h.read(t, p),
      sync: () => (this.syncs++, h.sync()),
      datasync: () => (this.syncs++, h.datasync()),
      truncate: (n) => h.truncate(n),
      size: () => h.size(),
      close: () => h.close(),
    };
  }
  readFile(path: string) {
    return this.inner.readFile(path);
  }
  rename(from: string, to: string) {
    return this.inner.rename(from, to);
  }
  remove(path: string, options?: { recursive?: boolean }) {
    return this.inner.remove(path, options);
  }
  mkdir(path: string, options?: { recursive?: boolean }) {
    return this.inner.mkdir(path, options);
  }
  readDir(path: string) {
    return this.inner.readDir(path);
  }
  stat(path: string) {
    return this.inner.stat(path);
  }
  syncDir(path: string) {
    this.syncs++;
    return this.inner.syncDir(path);
  }
  truncate(path: string, size: number) {
    return this.inner.truncate(path, size);
  }
}

describe("a fresh group's storage", () => {
  it("a new local log writes no log_meta until its first index moves past 1", async () => {
    const mem = new MemoryFileSystem();
    await mem.mkdir("/g", { recursive: true });
    const fs = new CountingFs(mem);
    const log = new SegmentLogStorage(fs, "/g/log", { sync: true });
    await log.init();
    assert.deepEqual(await mem.readDir("/g/log"), []);
    // Only the new directory's entry was made durable (its parent, /g).
    assert.equal(fs.syncs, 1);
    await log.close();

    const again = new SegmentLogStorage(fs, "/g/log", { sync: true });
    await again.init();
    assert.equal(again.firstLogIndex(), 1);
    assert.equal(again.lastLogIndex(), 0);
    for (let i = 1; i <= 100; i++) await again.appendEntries([dataEntry(i, 1)]); // offsets grow
    await again.truncatePrefix(40);
    assert.ok((await mem.readDir("/g/log")).includes("log_meta"));
    await again.close();

    const third = new SegmentLogStorage(fs, "/g/log", { sync: true });
    await third.init();
    assert.equal(third.firstLogIndex(), 40);
    assert.equal(third.lastLogIndex(), 100);
    const entries = await third.getEntries(40, 100);
    assert.deepEqual(entries.map((e) => e.index), Array.from({ length: 61 }, (_, k) => 40 + k));
    assert.ok(entries[60]!.data.equals(dataEntry(100, 1).data));
    await third.close();
  });

  it("a missing snapshot directory is made by the first snapshot, not by init", async () => {
    const mem = new MemoryFileSystem();
    await mem.mkdir("/g", { recursive: true });
    const fs = new CountingFs(mem);
    const storage = new LocalSnapshotStorage(fs, "/g/snapshot", { sync: true });
    await storage.init();
    assert.equal(await mem.stat("/g/snapshot"), null);
    assert.equal(fs.syncs, 0);
    assert.equal(await storage.open(), null);

    const writer = await storage.create();
    await writer.writeFile("data", new TextEncoder().encode("state"));
    writer.saveMeta({
      lastIncludedIndex: 7,
      lastIncludedTerm: 2,
      peers: Configuration.parse("127.0.0.1:8100"),
      oldPeers: new Configuration(),
    });
    await storage.close(writer);
    assert.ok((await mem.stat("/g/snapshot"))?.isDirectory);

    const reopened = new LocalSnapshotStorage(fs, "/g/snapshot", { sync: true });
    await reopened.init();
    assert.equal(reopened.lastSnapshotIndex, 7);
    const reader = await reopened.open();
    assert.equal(new TextDecoder().decode(await reader!.readFile("data")), "state");
    await reopened.close(reader!);
  });

  it("a fresh log's first append opens one segment (no other file)", async () => {
    const mem = new MemoryFileSystem();
    const log = new SegmentLogStorage(mem, "/g/log", { sync: true });
    await log.init();
    await log.appendEntries([
      { index: 1, term: 1, type: EntryType.NO_OP, data: new ChunkChain() },
    ]);
    assert.deepEqual(await mem.readDir("/g/log"), ["log_inprogress_00000000000000000001"]);
    await log.close();
  });
});
