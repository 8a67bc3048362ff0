// Snapshot file copy robustness (braft FileService / RemoteFileCopier): a failed GetFile is
// retried from the last good offset, cancellation is immediate, the server answers any offset
// with the right bytes, unsafe names from a leader are refused before anything is written.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { decode, encode } from "cbor-x";
import { Configuration } from "../../src/conf/configuration.ts";
import { PeerId } from "../../src/conf/peer_id.ts";
import { RaftError, RaftException } from "../../src/errors/status.ts";
import {
  COPY_DEFAULTS,
  copySnapshot,
  type CopySnapshotOptions,
  type FileRequest,
  FileService,
} from "../../src/node/file_service.ts";
import { flags } from "../../src/util/flags.ts";
import { MemoryFileSystem } from "../../storage/fs/memory.ts";
import { LocalSnapshotStorage } from "../../storage/snapshot/local_snapshot_storage.ts";
import type { SnapshotWriter } from "../../storage/snapshot/snapshot.ts";
import type { CallOptions, Transport, TransportHandler } from "../../transports/transport.ts";
import { Cluster, DEADLINE_MS, peerIds, rejectsWith, withDeadline } from "./cluster.ts";

type Call = (req: FileRequest, opts?: CallOptions) => Promise<Uint8Array>;

const CHUNK = 1024;

/** Deterministic bytes that differ at every offset of a chunk (so a shifted chunk shows). */
function pattern(size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** A leader's published snapshot with `files`, served by a FileService. */
async function leader(files: Record<string, Uint8Array>) {
  const storage = new LocalSnapshotStorage(new MemoryFileSystem(), "/leader");
  await storage.init();
  const w = await storage.create();
  for (const [name, data] of Object.entries(files)) await w.writeFile(name, data);
  w.saveMeta({
    lastIncludedIndex: 7,
    lastIncludedTerm: 1,
    peers: Configuration.parse("127.0.0.1:1:0"),
    oldPeers: new Configuration(),
  });
  await storage.close(w);
  const reader = (await storage.open())!;
  const service = new FileService();
  const readerId = service.register(reader, () => storage.close(reader));
  /** Every request that reached the server. */
  const served: FileRequest[] = [];
  const call: Call = (req) => {
    served.push(req);
    return service.handle(req);
  };
  return { service, readerId, reader, call, served };
}

/** A follower's snapshot writer on its own memory file system. */
async function follower() {
  const fs = new MemoryFileSystem();
  const storage = new LocalSnapshotStorage(fs, "/follower");
  await storage.init();
  const writer = await storage.create();
  return { fs, storage, writer };
}

async function contents(writer: SnapshotWriter, fs: MemoryFileSystem, name: string) {
  return await fs.readFile(`${writer.path}/${name}`);
}

const fast: CopySnapshotOptions = { chunkBytes: CHUNK, retryIntervalMs: 1 };

/** A decoded byte string as a plain Uint8Array (cbor-x may give a Buffer). */
function u8(x: Uint8Array): Uint8Array {
  return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
}

function offsetsOf(requests: FileRequest[], name = "data"): number[] {
  return requests.flatMap((r) => (r.t === "get_file" && r.name === name ? [r.offset] : []));
}

describe("snapshot copy: retries resume from the last good offset", () => {
  it("uses braft's GetFile defaults: 10 s per call, 3 retries, 1 s apart", () => {
    assert.deepEqual({ ...COPY_DEFAULTS }, {
      timeoutMs: 10_000,
      maxRetry: 3,
      retryIntervalMs: 1000,
    });
  });

  it("a failed third chunk is asked again at its offset, not from 0", async () => {
    const data = pattern(10 * CHUNK + 17);
    const l = await leader({ data });
    const f = await follower();
    const attempts: FileRequest[] = [];
    let chunks = 0;
    const stats = await copySnapshot(
      async (req, opts) => {
        attempts.push(req);
        if (req.t === "get_file" && ++chunks === 3) {
          throw RaftException.of(RaftError.EHOSTUNREACH, "injected: link down");
        }
        return await l.call(req, opts);
      },
      l.readerId,
      f.writer,
      fast,
    );
    assert.deepEqual(await contents(f.writer, f.fs, "data"), data);
    const expected = Array.from({ length: 11 }, (_, i) => i * CHUNK);
    assert.deepEqual(offsetsOf(l.served), expected, "the server saw each offset once");
    assert.deepEqual(
      offsetsOf(attempts),
      [0, CHUNK, 2 * CHUNK, ...expected.slice(2)],
      "the failed chunk was retried at its own offset",
    );
    assert.equal(stats.retries, 1);
    assert.equal(stats.bytes, data.byteLength);
  });

  it("a chunk failing 4 times (3 retries) fails the copy with that error", async () => {
    const l = await leader({ data: pattern(5 * CHUNK) });
    const f = await follower();
    const attempts: FileRequest[] = [];
    const copy = copySnapshot(
      async (req, opts) => {
        attempts.push(req);
        if (req.t === "get_file" && req.offset === 2 * CHUNK) {
          throw RaftException.of(RaftError.ETIMEDOUT, "injected: chunk 2 timed out");
        }
        return await l.call(req, opts);
      },
      l.readerId,
      f.writer,
      fast,
    );
    const e = await rejectsWith(copy, RaftError.ETIMEDOUT);
    assert.match(e.message, /injected: chunk 2/);
    assert.deepEqual(offsetsOf(attempts), [0, CHUNK, ...Array(4).fill(2 * CHUNK)]);
  });

  it("the file list call is retried too, and a call that succeeds resets the count", async () => {
    const data = pattern(6 * CHUNK);
    const l = await leader({ data });
    const f = await follower();
    let calls = 0;
    // Three failures before each success: 4 attempts per call, never more.
    const stats = await copySnapshot(
      async (req, opts) => {
        if (++calls % 4 !== 0) throw RaftException.of(RaftError.EIO, "injected: flaky link");
        return await l.call(req, opts);
      },
      l.readerId,
      f.writer,
      fast,
    );
    assert.deepEqual(await contents(f.writer, f.fs, "data"), data);
    assert.equal(stats.calls, 4 * (1 + 6));
    assert.equal(stats.retries, 3 * (1 + 6));
  });

  it("a server error that retrying cannot cure fails at once (unknown reader: ENOENT)", async () => {
    const l = await leader({ data: pattern(CHUNK) });
    const f = await follower();
    let calls = 0;
    await rejectsWith(
      copySnapshot(
        (req, opts) => {
          calls++;
          return l.call(req, opts);
        },
        l.readerId + 1,
        f.writer,
        fast,
      ),
      RaftError.ENOENT,
    );
    assert.equal(calls, 1);
  });

  it("a lost response after the server advanced is asked again and gets the right bytes", async () => {
    const data = pattern(8 * CHUNK + 5);
    const l = await leader({ data });
    const f = await follower();
    let chunks = 0;
    const stats = await copySnapshot(
      async (req, opts) => {
        const response = await l.call(req, opts); // the server serves (and moves on) ...
        if (req.t === "get_file" && [3, 4, 7].includes(++chunks)) {
          // ... but the response never arrives (twice in a row for chunk 3)
          throw RaftException.of(RaftError.EHOSTUNREACH, "injected: response lost");
        }
        return response;
      },
      l.readerId,
      f.writer,
      fast,
    );
    assert.deepEqual(await contents(f.writer, f.fs, "data"), data);
    assert.equal(stats.retries, 3);
    assert.deepEqual(
      offsetsOf(l.served),
      [0, CHUNK, 2 * CHUNK, 2 * CHUNK, 2 * CHUNK, 3 * CHUNK, 4 * CHUNK, 4 * CHUNK, 5 * CHUNK]
        .concat(
          [6, 7, 8].map((i) => i * CHUNK),
        ),
    );
  });

  it("a wrong or misplaced chunk is not written: the copy asks again", async () => {
    const data = pattern(4 * CHUNK);
    const l = await leader({ data });
    const f = await follower();
    let chunks = 0;
    await copySnapshot(
      async (req, opts) => {
        if (req.t === "get_file" && ++chunks === 2) {
          // An answer for another offset (a duplicated or reordered response).
          return await l.call({ ...req, offset: 0 }, opts);
        }
        if (req.t === "get_file" && chunks === 4) return new Uint8Array([0xff, 0xff]); // not CBOR
        return await l.call(req, opts);
      },
      l.readerId,
      f.writer,
      fast,
    );
    assert.deepEqual(await contents(f.writer, f.fs, "data"), data);
  });
});

describe("snapshot copy: calls that never answer", () => {
  it("a call the transport never times out fails with ETIMEDOUT and is retried", async () => {
    const data = pattern(3 * CHUNK);
    const l = await leader({ data });
    const f = await follower();
    let chunks = 0;
    const stats = await copySnapshot(
      (req, opts) => {
        // The second chunk's first two calls are never answered (the transport ignores
        // its timeout).
        if (req.t === "get_file" && ++chunks >= 2 && chunks <= 3) return new Promise(() => {});
        return l.call(req, opts);
      },
      l.readerId,
      f.writer,
      { ...fast, timeoutMs: 20 },
    );
    assert.deepEqual(await contents(f.writer, f.fs, "data"), data);
    assert.equal(stats.retries, 2);
  });

  it("a chunk longer than asked is refused and asked again", async () => {
    const data = pattern(3 * CHUNK);
    const l = await leader({ data });
    const f = await follower();
    let chunks = 0;
    const stats = await copySnapshot(
      async (req, opts) => {
        if (req.t === "get_file" && ++chunks === 2) {
          return await l.call({ ...req, count: req.count * 2 }, opts);
        }
        return await l.call(req, opts);
      },
      l.readerId,
      f.writer,
      fast,
    );
    assert.deepEqual(await contents(f.writer, f.fs, "data"), data);
    assert.equal(stats.retries, 1);
  });
});

describe("snapshot copy: cancellation", () => {
  it("an abort during a call that never answers ends the copy at once with ECANCELED", async () => {
    const l = await leader({ data: pattern(6 * CHUNK) });
    const f = await follower();
    const abort = new AbortController();
    let calls = 0;
    let hanging!: () => void;
    const hung = new Promise<void>((r) => (hanging = r));
    const copy = copySnapshot(
      (req, opts) => {
        calls++;
        if (req.t === "get_file" && req.offset === 3 * CHUNK) {
          hanging();
          return new Promise<Uint8Array>(() => {}); // ignores its signal
        }
        return l.call(req, opts);
      },
      l.readerId,
      f.writer,
      { ...fast, timeoutMs: 600_000, retryIntervalMs: 600_000, signal: abort.signal },
    );
    await hung;
    const before = calls;
    abort.abort();
    await withDeadline(rejectsWith(copy, RaftError.ECANCELED), DEADLINE_MS, "the copy to end");
    assert.equal(calls, before, "no call after the abort");
  });

  it("an abort while waiting to retry ends the copy at once with ECANCELED", async () => {
    const l = await leader({ data: pattern(6 * CHUNK) });
    const f = await follower();
    const abort = new AbortController();
    let failed!: () => void;
    const waiting = new Promise<void>((r) => (failed = r));
    let calls = 0;
    const copy = copySnapshot(
      (req, opts) => {
        calls++;
        if (req.t === "get_file" && req.offset === 2 * CHUNK) {
          setTimeout(failed, 0);
          return Promise.reject(RaftException.of(RaftError.EHOSTUNREACH, "injected"));
        }
        return l.call(req, opts);
      },
      l.readerId,
      f.writer,
      { ...fast, retryIntervalMs: 600_000, signal: abort.signal },
    );
    await waiting;
    abort.abort();
    await withDeadline(rejectsWith(copy, RaftError.ECANCELED), DEADLINE_MS, "the copy to end");
    assert.equal(calls, 4, "list, 2 chunks, 1 failed chunk: no retry");
  });

  it("a transport's ECANCELED is not retried", async () => {
    const l = await leader({ data: pattern(CHUNK) });
    const f = await follower();
    let calls = 0;
    await rejectsWith(
      copySnapshot(
        (req, opts) => {
          calls++;
          if (req.t === "get_file") {
            return Promise.reject(RaftException.of(RaftError.ECANCELED, "call aborted"));
          }
          return l.call(req, opts);
        },
        l.readerId,
        f.writer,
        fast,
      ),
      RaftError.ECANCELED,
    );
    assert.equal(calls, 2);
  });
});

describe("FileService: any request gets the right bytes", () => {
  it("duplicate, backward and forward offsets, and retries of the last chunk", async () => {
    const data = pattern(20 * CHUNK + 3);
    const l = await leader({ data });
    const read = async (offset: number, count = CHUNK) => {
      const r = decode(
        await l.service.handle({
          t: "get_file",
          readerId: l.readerId,
          name: "data",
          offset,
          count,
        }),
      ) as { offset: number; data: Uint8Array; eof: boolean };
      assert.equal(r.offset, offset);
      const want = data.subarray(offset, offset + count);
      assert.deepEqual(u8(r.data), want, `bytes at ${offset}`);
      assert.equal(r.eof, offset + count >= data.byteLength, `eof at ${offset}`);
    };
    for (
      const o of [0, 0, 1, CHUNK, 5, 3 * CHUNK, 3 * CHUNK, 2 * CHUNK, 19 * CHUNK, 20 * CHUNK, 7]
    ) {
      await read(o);
    }
    await read(20 * CHUNK, CHUNK); // the last chunk again (lost response)
    await read(data.byteLength, CHUNK); // at the end: empty, eof
    await read(100, 5 * CHUNK);
  });

  it("a chunk that ends the file says eof, also when the file ends on a chunk boundary", async () => {
    const l = await leader({ data: pattern(2 * CHUNK), empty: new Uint8Array(0) });
    const get = async (name: string, offset: number) =>
      decode(
        await l.service.handle({ t: "get_file", readerId: l.readerId, name, offset, count: CHUNK }),
      ) as { data: Uint8Array; eof: boolean };
    assert.equal((await get("data", 0)).eof, false);
    const last = await get("data", CHUNK);
    assert.equal(last.eof, true);
    assert.equal(last.data.byteLength, CHUNK);
    const empty = await get("empty", 0);
    assert.equal(empty.eof, true);
    assert.equal(empty.data.byteLength, 0);
  });

  it("concurrent requests (two followers, a retry racing its original) never mix bytes", async () => {
    const data = pattern(64 * CHUNK);
    const l = await leader({ data });
    const offsets = Array.from({ length: 64 }, (_, i) => i * CHUNK);
    // Two followers walking the file at once, plus retries of random earlier offsets.
    const order = offsets.flatMap((o, i) => [o, offsets[(i * 7) % 64]!, o]);
    const replies = await Promise.all(
      order.map((offset) =>
        l.service.handle({
          t: "get_file",
          readerId: l.readerId,
          name: "data",
          offset,
          count: CHUNK,
        })
      ),
    );
    replies.forEach((bytes, i) => {
      const r = decode(bytes) as { offset: number; data: Uint8Array };
      assert.equal(r.offset, order[i]);
      assert.deepEqual(u8(r.data), data.subarray(order[i]!, order[i]! + CHUNK), `request ${i}`);
    });
  });

  it("an offset past the end is EINVAL; internal and traversal names are never served", async () => {
    const l = await leader({ data: pattern(CHUNK), "dir/part": pattern(10) });
    const get = (name: string, offset = 0) =>
      l.service.handle({ t: "get_file", readerId: l.readerId, name, offset, count: CHUNK });
    await rejectsWith(get("data", CHUNK + 1), RaftError.EINVAL);
    await rejectsWith(get("__raft_snapshot_meta"), RaftError.EPERM);
    await rejectsWith(get("../leader/snapshot_00000000000000000007/data"), RaftError.EPERM);
    await rejectsWith(get("dir/../data"), RaftError.EPERM);
    await rejectsWith(get("/leader/data"), RaftError.EPERM);
    await rejectsWith(get("dir"), RaftError.ENOENT);
    await rejectsWith(get("other"), RaftError.ENOENT);
    assert.deepEqual(u8(decode(await get("dir/part")).data), pattern(10));
  });
});

describe("snapshot copy: file names from the leader", () => {
  /** A leader that lists `files` (with their `meta`) and serves `data` for any name. */
  function listing(names: unknown[]) {
    const calls: FileRequest[] = [];
    const call: Call = (req) => {
      calls.push(req);
      if (req.t === "snapshot_files") {
        return Promise.resolve(
          encode({ files: names.map((name) => ({ name, meta: {} })) }) as Uint8Array,
        );
      }
      return Promise.resolve(
        encode({ offset: req.offset, data: new Uint8Array([1]), eof: true }) as Uint8Array,
      );
    };
    return { calls, call };
  }

  const unsafe: [string, unknown[]][] = [
    ["absolute", ["ok", "/etc/passwd"]],
    ["drive letter", ["C:evil"]],
    ["parent", ["ok", "../escape"]],
    ["inner parent", ["a/../../escape"]],
    ["dot segment", ["a/./b"]],
    ["backslash", ["..\\escape"]],
    ["NUL", ["a\0b"]],
    ["empty", [""]],
    ["empty segment", ["a//b"]],
    ["trailing slash", ["a/"]],
    ["not a string", [7]],
    ["duplicate", ["ok", "ok"]],
    ["file and directory", ["a/b", "a"]],
    ["internal meta", ["__raft_snapshot_meta"]],
    ["too long", ["x".repeat(5000)]],
  ];
  for (const [what, names] of unsafe) {
    it(`refuses a list with an unsafe name (${what}) with EINVAL, writing nothing`, async () => {
      const l = listing(names);
      const f = await follower();
      await rejectsWith(copySnapshot(l.call, 1, f.writer, fast), RaftError.EINVAL);
      assert.deepEqual(f.writer.listFiles(), []);
      assert.deepEqual(await f.fs.readDir(f.writer.path), []);
      assert.deepEqual(l.calls.map((c) => c.t), ["snapshot_files"], "no file asked for");
    });
  }

  it("accepts nested names and copies them", async () => {
    const l = await leader({ "a/b/c": pattern(3 * CHUNK), "a/d": pattern(7) });
    const f = await follower();
    await copySnapshot(l.call, l.readerId, f.writer, fast);
    assert.deepEqual(await contents(f.writer, f.fs, "a/b/c"), pattern(3 * CHUNK));
    assert.deepEqual(f.writer.listFiles().sort(), ["a/b/c", "a/d"]);
  });
});

describe("snapshot copy: checksums and the local filter", () => {
  it("a file whose bytes do not match the leader's checksum fails with EIO", async () => {
    const l = await leader({ data: pattern(2 * CHUNK) });
    const f = await follower();
    const call: Call = async (req, opts) => {
      const response = await l.call(req, opts);
      if (req.t !== "snapshot_files") return response;
      const listed = decode(response) as { files: { name: string; meta: { checksum: string } }[] };
      listed.files[0]!.meta.checksum = "00000000";
      return encode(listed) as Uint8Array;
    };
    const e = await rejectsWith(copySnapshot(call, l.readerId, f.writer, fast), RaftError.EIO);
    assert.match(e.message, /checksum/);
  });

  it("filterBeforeCopyRemote: a file with the same checksum is copied locally", async () => {
    const same = pattern(3 * CHUNK, 5);
    const l = await leader({ same, changed: pattern(2 * CHUNK, 6) });
    // The follower's own previous snapshot shares `same`.
    const f = await follower();
    await f.writer.writeFile("same", same);
    await f.writer.writeFile("changed", pattern(2 * CHUNK, 7));
    f.writer.saveMeta({
      lastIncludedIndex: 3,
      lastIncludedTerm: 1,
      peers: Configuration.parse("127.0.0.1:1:0"),
      oldPeers: new Configuration(),
    });
    await f.storage.close(f.writer);
    const local = (await f.storage.open())!;
    const writer = await f.storage.create();
    const stats = await copySnapshot(l.call, l.readerId, writer, { ...fast, local });
    await f.storage.close(local);
    assert.equal(stats.localFiles, 1);
    assert.deepEqual(offsetsOf(l.served, "same"), [], "same was not downloaded");
    assert.equal(offsetsOf(l.served, "changed").length, 2);
    assert.deepEqual(await contents(writer, f.fs, "same"), same);
    assert.deepEqual(await contents(writer, f.fs, "changed"), pattern(2 * CHUNK, 6));
  });
});

/** A transport whose snapshot file calls can be made to fail (the rest passes through). */
class FlakyFileCalls implements Transport {
  readonly #inner: Transport;
  /** get_file requests sent, by file and offset, in order. */
  readonly getFile: { name: string; offset: number }[] = [];
  /** get_file calls (1-based) to fail before sending, and to lose the response of. */
  readonly failBefore = new Set<number>();
  readonly loseResponse = new Set<number>();
  injected = 0;

  constructor(inner: Transport) {
    this.#inner = inner;
  }
  get endpoint(): string {
    return this.#inner.endpoint;
  }
  listen(handler: TransportHandler): void {
    this.#inner.listen(handler);
  }
  send(to: string, frame: Uint8Array): void {
    this.#inner.send(to, frame);
  }
  async call(to: string, request: Uint8Array, options?: CallOptions): Promise<Uint8Array> {
    const body = decode(request) as { t?: string; name?: string; offset?: number };
    if (body.t !== "get_file") return await this.#inner.call(to, request, options);
    this.getFile.push({ name: body.name!, offset: body.offset! });
    const n = this.getFile.length;
    if (this.failBefore.has(n)) {
      this.injected++;
      throw RaftException.of(RaftError.EHOSTUNREACH, `injected: call ${n} lost`);
    }
    const response = await this.#inner.call(to, request, options);
    if (this.loseResponse.has(n)) {
      this.injected++;
      throw RaftException.of(RaftError.EHOSTUNREACH, `injected: response ${n} lost`);
    }
    return response;
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
}

describe("node: a follower's snapshot copy survives a flaky network", () => {
  it("the copy of a multi-MiB snapshot resumes after failed calls and the follower catches up", async () => {
    const savedChunk = flags.raft_max_byte_count_per_rpc;
    flags.raft_max_byte_count_per_rpc = 16 * 1024;
    const peers = peerIds(3, 5880);
    const c = new Cluster("copyresume", peers);
    try {
      for (const p of peers) await c.start(p);
      const leader = await c.waitLeader();
      await c.apply(leader, 5, "a");
      const lagger = c.followers()[0]!.nodeId();
      await c.stop(lagger);
      // ~3 MiB of state: 48 entries of 64 KiB.
      const big = "x".repeat(64 * 1024);
      for (let i = 0; i < 4; i++) await c.apply(leader, 12, `b${i}-${big}`);
      await leader.snapshot();
      await c.apply(leader, 5, "c");
      await leader.snapshot(); // drops the log before the first snapshot
      assert.ok(leader.describe().firstIndex > 10, "log compacted");
      await c.apply(leader, 5, "d");

      const flaky = new FlakyFileCalls(c.net.transport(PeerId.from(lagger).endpoint));
      // In the middle of the copy: one chunk fails twice then loses its response (3 retries),
      // a later one loses its response once.
      for (const n of [40, 41]) flaky.failBefore.add(n);
      for (const n of [42, 80]) flaky.loseResponse.add(n);
      await c.start(lagger, { extra: { transport: flaky } });
      await c.ensureSame();

      const fsm = c.fsm(lagger);
      assert.equal(fsm.snapshotsLoaded, 1, "installed the snapshot");
      assert.equal(fsm.logs.length, 5 + 48 + 5 + 5);
      assert.equal(flaky.injected, 4, "every injected failure happened");
      const data = flaky.getFile.filter((r) => r.name === "data");
      const chunks = Math.ceil(
        data.reduce((max, r) => Math.max(max, r.offset), 0) / (16 * 1024),
      ) + 1;
      assert.ok(chunks > 150, `many chunks (${chunks})`);
      assert.equal(data.filter((r) => r.offset === 0).length, 1, "never restarted the file");
      assert.equal(data.length, chunks + 4, "each failure cost one call");
    } finally {
      flags.raft_max_byte_count_per_rpc = savedChunk;
      await c.stopAll();
    }
  });
});
