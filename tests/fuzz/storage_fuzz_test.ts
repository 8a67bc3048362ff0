/**
 * Fuzzing what storage reads back from disk, through the `MemoryFileSystem`: segment files and
 * the log meta (`SegmentLogStorage`), the raft meta file (`LocalRaftMetaStorage`) and snapshot
 * meta files (`LocalSnapshotStorage`). Garbage, truncated, bit-flipped, renamed or forged files
 * must make `init()` either succeed with exactly the data that was written (a torn tail cut
 * off) or fail with a RaftException EIO; never another error, a hang or corrupt data.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { ChunkChain } from "../../src/bytes/chunk_chain.ts";
import { crc32cUpdate } from "../../src/bytes/crc32c.ts";
import { Configuration } from "../../src/conf/configuration.ts";
import { PeerId } from "../../src/conf/peer_id.ts";
import { EntryType, type LogEntry } from "../../src/core/entry.ts";
import { encodeRecord } from "../../src/codec/record_file.ts";
import { RaftError } from "../../src/errors/status.ts";
import { unsafeSnapshotFileName } from "../../src/node/snapshot_file_name.ts";
import { MemoryFileSystem } from "../../storage/fs/memory.ts";
import { dirName, type FileSystem, joinPath } from "../../storage/fs/file_system.ts";
import { SegmentLogStorage } from "../../storage/log/segment_log_storage.ts";
import { LocalRaftMetaStorage } from "../../storage/meta/meta_storage.ts";
import {
  LocalSnapshotStorage,
  SNAPSHOT_META_FILE,
} from "../../storage/snapshot/local_snapshot_storage.ts";
import type { FileMeta } from "../../storage/snapshot/snapshot.ts";
import { checkAsync, expectOnlyAsync, raftError } from "./_fuzz.ts";
import {
  applyMutations,
  type Mutation,
  mutation,
  nastyValue,
  oddString,
  rawCbor,
  spliceCbor,
} from "./_arbitraries.ts";

const EIO = raftError(RaftError.EIO);

type Files = Map<string, Uint8Array>;

async function listFiles(fs: FileSystem, dir: string, out: Files = new Map()): Promise<Files> {
  for (const name of await fs.readDir(dir)) {
    const path = joinPath(dir, name);
    const info = await fs.stat(path);
    if (info?.isDirectory) await listFiles(fs, path, out);
    else out.set(path, await fs.readFile(path));
  }
  return out;
}

async function fsWith(files: Files): Promise<MemoryFileSystem> {
  const fs = new MemoryFileSystem();
  for (const [path, bytes] of files) {
    await fs.mkdir(dirName(path), { recursive: true });
    const h = await fs.open(path, { create: true, truncate: true, write: true });
    await h.write(bytes, 0);
    await h.close();
  }
  return fs;
}

/** A record file with a right checksum around any body. */
function sealed(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + body.length);
  out.set([0x57, 0x52, 0x46, 0x31]);
  const view = new DataView(out.buffer);
  view.setUint32(4, body.length);
  view.setUint32(8, crc32cUpdate(0, body));
  out.set(body, 12);
  return out;
}

/** What to do to a set of files. */
type Damage =
  | { kind: "bytes"; file: number; mutations: Mutation[] }
  | { kind: "remove"; file: number }
  | { kind: "rename"; file: number; name: string }
  | { kind: "add"; name: string; bytes: Uint8Array }
  | { kind: "record"; file: number; body: Uint8Array };

const damage: fc.Arbitrary<Damage> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant("bytes" as const),
      file: fc.nat(),
      mutations: fc.array(mutation, { minLength: 1, maxLength: 3 }),
    }),
    weight: 6,
  },
  { arbitrary: fc.record({ kind: fc.constant("remove" as const), file: fc.nat() }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant("rename" as const),
      file: fc.nat(),
      name: fc.oneof(
        fc.tuple(fc.nat({ max: 40 }), fc.nat({ max: 40 })).map(([a, b]) =>
          `log_${String(a).padStart(20, "0")}_${String(b).padStart(20, "0")}`
        ),
        fc.nat({ max: 40 }).map((a) => `log_inprogress_${String(a).padStart(20, "0")}`),
        fc.constant("log_99999999999999999999_99999999999999999999"),
        oddString.filter((s) => s.length > 0 && !s.includes("/") && s !== "." && s !== ".."),
      ),
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("add" as const),
      name: fc.oneof(
        fc.nat({ max: 40 }).map((a) => `log_inprogress_${String(a).padStart(20, "0")}`),
        fc.constant("log_meta.tmp"),
      ),
      bytes: fc.uint8Array({ maxLength: 64 }),
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("record" as const),
      file: fc.nat(),
      body: fc.oneof(
        rawCbor,
        fc.oneof(fc.constant({ firstLogIndex: 1 }), nastyValue).chain((v) =>
          fc.tuple(fc.constantFrom("firstLogIndex", "resetPending", "x"), rawCbor).map((
            [k, raw],
          ) =>
            typeof v === "object" && v !== null && !Array.isArray(v) ? spliceCbor(v, [k], raw) : raw
          )
        ),
      ),
    }),
    weight: 2,
  },
);

function applyDamage(files: Files, damages: readonly Damage[]): Files {
  const out = new Map(files);
  for (const d of damages) {
    const paths = [...out.keys()].sort();
    if (d.kind === "add") {
      out.set(joinPath(LOG_DIR, d.name), d.bytes);
      continue;
    }
    if (paths.length === 0) continue;
    const path = paths[d.file % paths.length]!;
    const bytes = out.get(path)!;
    if (d.kind === "bytes") out.set(path, applyMutations(bytes, d.mutations));
    else if (d.kind === "remove") out.delete(path);
    else if (d.kind === "rename") {
      out.delete(path);
      out.set(joinPath(dirName(path), d.name), bytes);
    } else out.set(path, sealed(d.body));
  }
  return out;
}

const LOG_DIR = "/raft/log";

/** A valid log of 40 entries in several segments, with configurations, from index 1. */
async function validLog(): Promise<{ files: Files; entries: Map<number, LogEntry> }> {
  const fs = new MemoryFileSystem();
  const log = new SegmentLogStorage(fs, LOG_DIR, { maxSegmentSize: 300 });
  await log.init();
  const entries = new Map<number, LogEntry>();
  for (let i = 1; i <= 40; i++) {
    const term = 1 + Math.floor(i / 7);
    const entry: LogEntry = i % 9 === 1
      ? {
        index: i,
        term,
        type: EntryType.CONFIGURATION,
        data: new ChunkChain(),
        conf: { peers: Configuration.parse(`10.0.0.1:1:0,10.0.0.${i}:1:0`) },
      }
      : {
        index: i,
        term,
        type: i % 5 === 0 ? EntryType.NO_OP : EntryType.DATA,
        data: ChunkChain.from(i % 5 === 0 ? new Uint8Array(0) : `entry ${i} `.repeat(i % 4 + 1)),
      };
    entries.set(i, entry);
    await log.appendEntries([entry]);
  }
  await log.close();
  return { files: await listFiles(fs, LOG_DIR), entries };
}

function sameEntry(got: LogEntry, want: LogEntry): void {
  assert.equal(got.index, want.index);
  assert.equal(got.term, want.term, `term of ${want.index}`);
  assert.equal(got.type, want.type, `type of ${want.index}`);
  if (want.type === EntryType.CONFIGURATION) {
    assert.equal(String(got.conf?.peers), String(want.conf?.peers), `conf of ${want.index}`);
  } else {
    assert.deepEqual(got.data.toUint8Array(), want.data.toUint8Array(), `data of ${want.index}`);
  }
}

describe("fuzz: what storage reads back from disk", () => {
  it("segment log: damaged segments and log meta give the written entries or EIO", async () => {
    const { files, entries } = await validLog();
    const arb = fc.array(damage, { minLength: 1, maxLength: 3 });
    await checkAsync("SegmentLogStorage.init", arb, 1500, async (damages) => {
      const fs = await fsWith(applyDamage(files, damages));
      const log = new SegmentLogStorage(fs, LOG_DIR, { maxSegmentSize: 300 });
      const opened = await expectOnlyAsync(() => log.init(), EIO, "SegmentLogStorage.init");
      if (!opened.ok) {
        await log.close();
        return;
      }
      const first = log.firstLogIndex();
      const last = log.lastLogIndex();
      const recovery = log.recoveryInfo();
      if (recovery.truncatedBytes > 0) {
        // a cut tail is reported with where and why
        assert.ok(
          recovery.file !== undefined && recovery.offset !== undefined,
          "cut without a place",
        );
        assert.equal(typeof recovery.reason, "string");
      }
      assert.ok(Number.isSafeInteger(first) && first >= 1, `first ${first}`);
      assert.ok(Number.isSafeInteger(last) && last >= first - 1, `last ${last}`);
      const read = await expectOnlyAsync(
        () => log.getEntries(first, last),
        EIO,
        "SegmentLogStorage.getEntries",
      );
      if (read.ok) {
        let prevTerm = 0;
        for (const e of read.value) {
          const want = entries.get(e.index);
          assert.ok(want !== undefined, `entry ${e.index} was never written`);
          sameEntry(e, want);
          assert.equal(log.getTerm(e.index), e.term);
          assert.ok(e.term >= prevTerm);
          prevTerm = e.term;
        }
        for (const c of log.configurationEntries()) sameEntry(c, entries.get(c.index)!);
        // What survived is usable: append after it, reopen, find it.
        const next: LogEntry = {
          index: last + 1,
          term: Math.max(prevTerm, log.getTerm(last), 1) + 1,
          type: EntryType.DATA,
          data: ChunkChain.from("after recovery"),
        };
        await log.appendEntries([next]);
        await log.close();
        const again = new SegmentLogStorage(fs, LOG_DIR, { maxSegmentSize: 300 });
        await again.init();
        assert.equal(again.lastLogIndex(), last + 1);
        sameEntry((await again.getEntry(last + 1))!, next);
        await again.close();
      } else {
        await log.close();
      }
    });
  });

  it("raft meta: a damaged or forged raft_meta gives a valid term and vote, or EIO", async () => {
    const dir = "/raft/meta";
    const path = joinPath(dir, "raft_meta");
    const valid = encodeRecord({ term: 7, votedFor: "10.0.0.1:8100:0" });
    const arb = fc.oneof(
      fc.array(mutation, { minLength: 1, maxLength: 3 }).map((ms) => applyMutations(valid, ms)),
      fc.oneof(rawCbor, fc.uint8Array({ maxLength: 40 })).map(sealed),
      fc.tuple(fc.constantFrom("term", "votedFor", "x"), rawCbor).map(([k, raw]) =>
        sealed(spliceCbor({ term: 7, votedFor: "10.0.0.1:8100:0" }, [k], raw))
      ),
    );
    await checkAsync("LocalRaftMetaStorage.init", arb, 4000, async (bytes) => {
      const fs = await fsWith(new Map([[path, bytes]]));
      const meta = new LocalRaftMetaStorage(fs, dir);
      const opened = await expectOnlyAsync(() => meta.init(), EIO, "LocalRaftMetaStorage.init");
      if (!opened.ok) return;
      const { term, votedFor } = meta.getTermAndVotedFor();
      assert.ok(Number.isSafeInteger(term) && term >= 0, `term ${term}`);
      assert.ok(votedFor === null || votedFor instanceof PeerId, `votedFor ${votedFor}`);
      await meta.close();
    });
  });

  it("snapshot meta: a damaged or forged meta file gives a valid snapshot, or EIO", async () => {
    const dir = "/raft/snapshot";
    const fs0 = new MemoryFileSystem();
    const storage0 = new LocalSnapshotStorage(fs0, dir);
    await storage0.init();
    const writer = await storage0.create();
    await writer.writeFile("data", new TextEncoder().encode("the state"));
    await writer.writeFile("sub/part-1", new Uint8Array([1, 2, 3]), {
      userMeta: new Uint8Array([9]),
    });
    writer.saveMeta({
      lastIncludedIndex: 12,
      lastIncludedTerm: 3,
      peers: Configuration.parse("10.0.0.1:1:0,10.0.0.2:1:0"),
      oldPeers: new Configuration(),
    });
    await storage0.close(writer);
    const files = await listFiles(fs0, dir);
    const metaPath = [...files.keys()].find((p) => p.endsWith(SNAPSHOT_META_FILE))!;
    const plain = {
      meta: {
        lastIncludedIndex: 12,
        lastIncludedTerm: 3,
        peers: ["10.0.0.1:1:0", "10.0.0.2:1:0"],
      },
      files: [{ name: "data", meta: { checksum: "00000000", size: 9 } }, {
        name: "sub/part-1",
        meta: { size: 3 },
      }],
    };
    const fields = [
      ["meta"],
      ["meta", "lastIncludedIndex"],
      ["meta", "lastIncludedTerm"],
      ["meta", "peers"],
      ["meta", "oldPeers"],
      ["meta", "learners"],
      ["files"],
      ["files", 0],
      ["files", 0, "name"],
      ["files", 0, "meta"],
      ["files", 1, "meta", "size"],
      ["files", 1, "meta", "checksum"],
      ["files", 1, "meta", "userMeta"],
    ];
    const arb = fc.oneof(
      fc.array(mutation, { minLength: 1, maxLength: 3 }).map((ms) =>
        applyMutations(files.get(metaPath)!, ms)
      ),
      fc.oneof(rawCbor, fc.uint8Array({ maxLength: 40 })).map(sealed),
      fc.tuple(fc.constantFrom(...fields), rawCbor).map(([path, raw]) =>
        sealed(spliceCbor(plain, path, raw))
      ),
      fc.tuple(fc.constantFrom(...fields), fc.oneof(nastyValue, oddString)).map(([path, v]) =>
        sealed(spliceCbor(plain, path, encodeRecord(v).subarray(12)))
      ),
    );
    await checkAsync("LocalSnapshotStorage.init", arb, 3000, async (bytes) => {
      const damaged = new Map(files);
      damaged.set(metaPath, bytes);
      const fs = await fsWith(damaged);
      const storage = new LocalSnapshotStorage(fs, dir);
      const opened = await expectOnlyAsync(() => storage.init(), EIO, "LocalSnapshotStorage.init");
      if (!opened.ok) return;
      const reader = await storage.open();
      assert.ok(reader !== null);
      const meta = reader.loadMeta();
      assert.ok(Number.isSafeInteger(meta.lastIncludedIndex) && meta.lastIncludedIndex >= 0);
      assert.ok(Number.isSafeInteger(meta.lastIncludedTerm) && meta.lastIncludedTerm >= 0);
      assert.ok(meta.peers instanceof Configuration && meta.oldPeers instanceof Configuration);
      for (const name of reader.listFiles()) {
        assert.equal(unsafeSnapshotFileName(name), null, `listed file ${JSON.stringify(name)}`);
        const fm: FileMeta = reader.getFileMeta(name)!;
        if (fm.size !== undefined) assert.ok(Number.isSafeInteger(fm.size) && fm.size >= 0);
        if (fm.checksum !== undefined) assert.equal(typeof fm.checksum, "string");
        if (fm.userMeta !== undefined) assert.ok(fm.userMeta instanceof Uint8Array);
        await expectOnlyAsync(
          () => reader.readFile(name),
          raftError(RaftError.EIO, RaftError.ENOENT),
          "SnapshotReader.readFile",
        );
      }
      await storage.close(reader);
    });
  });
});

describe("storage regressions found by fuzzing", () => {
  async function rejectsEio(p: Promise<unknown>): Promise<void> {
    await assert.rejects(p, (e) => EIO(e));
  }

  it("a log_meta whose body is not a map, or whose firstLogIndex is not a safe integer, is EIO", async () => {
    for (const body of [null, 7, { firstLogIndex: 1.5 }, { firstLogIndex: 2 ** 60 }]) {
      const fs = await fsWith(new Map([[joinPath(LOG_DIR, "log_meta"), encodeRecord(body)]]));
      await rejectsEio(new SegmentLogStorage(fs, LOG_DIR).init());
    }
  });

  it("a raft_meta with a term that is not a non-negative integer, or a bad votedFor, is EIO", async () => {
    for (
      const body of [
        null,
        { term: NaN, votedFor: "" },
        { term: -1, votedFor: "" },
        { term: 1.5, votedFor: "" },
        { term: 3, votedFor: "not a peer" },
      ]
    ) {
      const fs = await fsWith(new Map([["/m/raft_meta", encodeRecord(body)]]));
      await rejectsEio(new LocalRaftMetaStorage(fs, "/m").init());
    }
  });

  it("a snapshot meta with a bad index, a bad file entry or an unsafe name is EIO", async () => {
    const meta = { lastIncludedIndex: 5, lastIncludedTerm: 1, peers: ["10.0.0.1:1:0"] };
    for (
      const body of [
        null,
        { meta: { ...meta, lastIncludedIndex: NaN }, files: [] },
        { meta: { ...meta, lastIncludedTerm: -1 }, files: [] },
        { meta, files: [false] },
        { meta, files: [{ name: 3 }] },
        { meta, files: [{ name: "../escape" }] },
        { meta, files: [{ name: "a\\b" }] },
        { meta, files: [{ name: "c:x" }] },
        { meta, files: [{ name: "x", meta: { size: -1 } }] },
        { meta, files: [{ name: "x", meta: { checksum: 5 } }] },
      ]
    ) {
      const path = `/s/snapshot_${"5".padStart(20, "0")}/${SNAPSHOT_META_FILE}`;
      const fs = await fsWith(new Map([[path, encodeRecord(body)]]));
      await rejectsEio(new LocalSnapshotStorage(fs, "/s").init());
    }
  });
});
