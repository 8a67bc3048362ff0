// SnapshotWriter details: files written directly under `path`, removeFile, keepDataOnError.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Configuration } from "../../src/conf/configuration.ts";
import { RaftError } from "../../src/errors/status.ts";
import { localFileSystem } from "../../storage/fs/detect.ts";
import { MemoryFileSystem } from "../../storage/fs/memory.ts";
import { LocalSnapshotStorage } from "../../storage/snapshot/local_snapshot_storage.ts";
import type { SnapshotMeta } from "../../storage/snapshot/snapshot.ts";
import { rejectsWith, withTempDir } from "./_helpers.ts";

const meta = (index: number): SnapshotMeta => ({
  lastIncludedIndex: index,
  lastIncludedTerm: 2,
  peers: Configuration.parse("127.0.0.1:8100"),
  oldPeers: Configuration.parse("127.0.0.1:8100,127.0.0.1:8101"),
});

describe("LocalSnapshotStorage writer", () => {
  it("checksums files the user wrote directly under path (real FS)", () =>
    withTempDir(async (dir) => {
      const storage = new LocalSnapshotStorage(await localFileSystem(), join(dir, "snap"));
      await storage.init();
      const w = await storage.create();
      await mkdir(join(w.path, "sub"), { recursive: true });
      await writeFile(join(w.path, "sub", "direct.bin"), new Uint8Array([9, 8, 7]));
      await writeFile(join(w.path, "unlisted"), "ignored");
      w.addFile("sub/direct.bin", { userMeta: new Uint8Array([1]) });
      w.addFile("gone");
      w.removeFile("gone");
      assert.deepEqual(w.listFiles(), ["sub/direct.bin"]);
      assert.deepEqual(w.getFileMeta("sub/direct.bin"), { userMeta: new Uint8Array([1]) });
      assert.equal(w.getFileMeta("gone"), null);
      w.saveMeta(meta(7));
      await storage.close(w);
      const r = (await storage.open())!;
      assert.deepEqual(r.listFiles(), ["sub/direct.bin"]);
      const fm = r.getFileMeta("sub/direct.bin")!;
      assert.equal(fm.size, 3);
      assert.match(fm.checksum!, /^[0-9a-f]{8}$/);
      assert.deepEqual(await r.readFile("sub/direct.bin"), new Uint8Array([9, 8, 7]));
      assert.ok(r.loadMeta().oldPeers.equals("127.0.0.1:8100,127.0.0.1:8101"));
      assert.match(r.path, /snapshot_0{19}7$/);
      await storage.close(r);
    }));

  it("fails to close when an added file is missing; keepDataOnError keeps temp", async () => {
    const fs = new MemoryFileSystem();
    const storage = new LocalSnapshotStorage(fs, "/snap");
    await storage.init();
    let w = await storage.create();
    w.addFile("never-written");
    w.saveMeta(meta(3));
    await rejectsWith(storage.close(w, true), RaftError.EIO);
    assert.ok(await fs.stat("/snap/temp"), "temp kept");
    await rejectsWith(storage.close(w), RaftError.EINVAL); // already closed
    w = await storage.create();
    assert.deepEqual(await fs.readDir("/snap/temp"), [], "create clears temp");
    await rejectsWith(storage.create(), RaftError.EBUSY);
    w.saveMeta(meta(3));
    await storage.close(w);
    assert.equal((await storage.open())?.loadMeta().lastIncludedIndex, 3);
  });

  it("init drops a stale temp directory and all but the newest snapshot", async () => {
    const fs = new MemoryFileSystem();
    const storage = new LocalSnapshotStorage(fs, "/snap");
    await storage.init();
    for (const index of [5, 9]) {
      const w = await storage.create();
      await w.writeFile("f", new Uint8Array([index]));
      w.saveMeta(meta(index));
      await storage.close(w);
    }
    // Simulate an old snapshot left by a crash between rename and removal, and a stale temp.
    await fs.mkdir("/snap/snapshot_00000000000000000001");
    await fs.mkdir("/snap/temp");
    const again = new LocalSnapshotStorage(fs, "/snap");
    await again.init();
    assert.deepEqual((await fs.readDir("/snap")).sort(), ["snapshot_00000000000000000009"]);
    assert.equal(again.lastSnapshotIndex, 9);
  });

  it("refuses a second writer while a snapshot is being published", async () => {
    const fs = new MemoryFileSystem();
    const storage = new LocalSnapshotStorage(fs, "/snap");
    await storage.init();
    const first = await storage.create();
    await first.writeFile("data", new Uint8Array([1]));
    first.saveMeta(meta(4));
    await storage.close(first);
    const w = await storage.create();
    await rejectsWith(storage.create(), RaftError.EBUSY); // a writer is open
    await w.writeFile("data", new Uint8Array([1, 2, 3]));
    w.saveMeta(meta(8));
    const publishing = storage.close(w);
    // The publish is in progress: a new writer would wipe the files being published.
    await rejectsWith(storage.create(), RaftError.EBUSY);
    await publishing;
    const r = (await storage.open())!;
    assert.equal(r.loadMeta().lastIncludedIndex, 8);
    assert.deepEqual(await r.readFile("data"), new Uint8Array([1, 2, 3]));
    await storage.close(r);
    // Once published, a new writer may start.
    const next = await storage.create();
    await rejectsWith(storage.close(next), RaftError.EINVAL); // no meta: dropped
    await storage.create();
  });

  it("closing a reader twice does not release another reader's snapshot", async () => {
    const fs = new MemoryFileSystem();
    const storage = new LocalSnapshotStorage(fs, "/snap");
    await storage.init();
    const publish = async (index: number): Promise<void> => {
      const w = await storage.create();
      await w.writeFile("data", new Uint8Array([index]));
      w.saveMeta(meta(index));
      await storage.close(w);
    };
    await publish(3);
    const a = (await storage.open())!;
    const b = (await storage.open())!;
    await storage.close(a);
    await storage.close(a); // a bug in the caller: must not count as b's close
    await publish(5); // snapshot 3 is still read by b: kept
    assert.deepEqual(await b.readFile("data"), new Uint8Array([3]));
    await storage.close(b);
    assert.deepEqual((await fs.readDir("/snap")).sort(), ["snapshot_00000000000000000005"]);
  });
});
