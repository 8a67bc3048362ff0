// Pipelined snapshot copy: several GetFile calls in flight, consumed in file order; a failed
// or lost call is retried at its own offset and answered from the leader's memory (the file is
// read once); a short answer is followed by a call for the rest of its range.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { decode, encode } from "cbor-x";
import { Configuration } from "../../src/conf/configuration.ts";
import { RaftError, RaftException } from "../../src/errors/status.ts";
import {
  copySnapshot,
  type FileRequest,
  FileService,
  MAX_IN_FLIGHT_BYTES,
} from "../../src/node/file_service.ts";
import { ThroughputSnapshotThrottle } from "../../src/node/snapshot_throttle.ts";
import { MemoryFileSystem } from "../../storage/fs/memory.ts";
import { LocalSnapshotStorage } from "../../storage/snapshot/local_snapshot_storage.ts";
import type { SnapshotReader } from "../../storage/snapshot/snapshot.ts";
import type { CallOptions } from "../../transports/transport.ts";

const CHUNK = 4096;

function pattern(size: number, seed = 7): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** A leader's snapshot of one file `data`, served by a FileService; counts file opens. */
async function leader(data: Uint8Array, throttle?: ThroughputSnapshotThrottle) {
  const storage = new LocalSnapshotStorage(new MemoryFileSystem(), "/leader");
  await storage.init();
  const w = await storage.create();
  await w.writeFile("data", data);
  w.saveMeta({
    lastIncludedIndex: 3,
    lastIncludedTerm: 1,
    peers: Configuration.parse("127.0.0.1:1:0"),
    oldPeers: new Configuration(),
  });
  await storage.close(w);
  const reader: SnapshotReader = (await storage.open())!;
  const opened = { count: 0 };
  const openFile = reader.openFile.bind(reader);
  reader.openFile = (name) => {
    opened.count++;
    return openFile(name);
  };
  const service = new FileService();
  const readerId = service.register(reader, () => storage.close(reader), throttle);
  return { service, readerId, opened };
}

async function follower() {
  const fs = new MemoryFileSystem();
  const storage = new LocalSnapshotStorage(fs, "/follower");
  await storage.init();
  const writer = await storage.create();
  return { fs, writer, read: () => fs.readFile(`${writer.path}/data`) };
}

/** Wraps `handle` in a call that records offsets and how many get_file calls run at once. */
function instrumented(
  handle: (req: FileRequest) => Promise<Uint8Array>,
  fault: (req: FileRequest, n: number) => "fail" | "lose" | "short" | null = () => null,
) {
  const offsets: number[] = [];
  let running = 0;
  const seen = { maxRunning: 0 };
  const call = async (req: FileRequest, _opts?: CallOptions): Promise<Uint8Array> => {
    if (req.t !== "get_file") return await handle(req);
    offsets.push(req.offset);
    const what = fault(req, offsets.length);
    running++;
    seen.maxRunning = Math.max(seen.maxRunning, running);
    try {
      // Answers come back in another turn, as over a socket.
      await new Promise((resolve) => setTimeout(resolve, 0));
      if (what === "fail") throw RaftException.of(RaftError.EHOSTUNREACH, "injected: not sent");
      const response = await handle(req);
      if (what === "lose") throw RaftException.of(RaftError.EHOSTUNREACH, "injected: lost");
      if (what === "short") {
        const r = decode(response) as { offset: number; data: Uint8Array; eof: boolean };
        const half = Math.floor(r.data.byteLength / 2);
        return encode({ offset: r.offset, data: r.data.subarray(0, half), eof: false });
      }
      return response;
    } finally {
      running--;
    }
  };
  return { call, offsets, seen };
}

describe("snapshot copy: pipelined GetFile calls", () => {
  it("keeps `pipeline` calls in flight, asks each offset once and nothing past the end", async () => {
    const data = pattern(40 * CHUNK + 123);
    const l = await leader(data);
    const f = await follower();
    const t = instrumented((req) => l.service.handle(req));
    const stats = await copySnapshot(t.call, l.readerId, f.writer, {
      chunkBytes: CHUNK,
      pipeline: 4,
      retryIntervalMs: 1,
    });
    assert.deepEqual(await f.read(), data);
    assert.equal(t.seen.maxRunning, 4, "four calls in flight at most, and at some point four");
    assert.deepEqual(t.offsets, Array.from({ length: 41 }, (_, i) => i * CHUNK));
    assert.equal(stats.bytes, data.byteLength);
    assert.equal(l.opened.count, 1);
    await l.service.close();
  });

  it("without `pipeline`, one call at a time (braft)", async () => {
    const data = pattern(10 * CHUNK);
    const l = await leader(data);
    const f = await follower();
    const t = instrumented((req) => l.service.handle(req));
    await copySnapshot(t.call, l.readerId, f.writer, { chunkBytes: CHUNK, retryIntervalMs: 1 });
    assert.deepEqual(await f.read(), data);
    assert.equal(t.seen.maxRunning, 1);
    await l.service.close();
  });

  it("never asks more than MAX_IN_FLIGHT_BYTES at once", async () => {
    const chunk = MAX_IN_FLIGHT_BYTES / 2;
    const data = pattern(3 * chunk);
    const l = await leader(data);
    const f = await follower();
    const t = instrumented((req) => l.service.handle(req));
    await copySnapshot(t.call, l.readerId, f.writer, { chunkBytes: chunk, pipeline: 8 });
    assert.deepEqual(await f.read(), data);
    assert.equal(t.seen.maxRunning, 2);
    await l.service.close();
  });

  it("a failed and a lost call are retried at their offsets; the leader reads the file once", async () => {
    const data = pattern(64 * CHUNK + 5);
    const l = await leader(data);
    const f = await follower();
    const t = instrumented(
      (req) => l.service.handle(req),
      (_req, n) => (n === 10 ? "fail" : n === 30 ? "lose" : null),
    );
    const stats = await copySnapshot(t.call, l.readerId, f.writer, {
      chunkBytes: CHUNK,
      pipeline: 8,
      retryIntervalMs: 1,
    });
    assert.deepEqual(await f.read(), data);
    assert.equal(stats.retries, 2);
    assert.equal(t.offsets.length, 65 + 2, "each failure cost one call");
    const failed = [t.offsets[9]!, t.offsets[29]!];
    for (const o of failed) {
      assert.equal(t.offsets.filter((x) => x === o).length, 2, `offset ${o} asked twice`);
    }
    assert.equal(l.opened.count, 1, "the retries were answered from the leader's memory");
    await l.service.close();
  });

  it("a short answer is followed by a call for the rest of its range", async () => {
    const data = pattern(20 * CHUNK);
    const l = await leader(data);
    const f = await follower();
    const t = instrumented(
      (req) => l.service.handle(req),
      (req, n) => (n === 5 && req.t === "get_file" ? "short" : null),
    );
    const stats = await copySnapshot(t.call, l.readerId, f.writer, {
      chunkBytes: CHUNK,
      pipeline: 4,
      retryIntervalMs: 1,
    });
    assert.deepEqual(await f.read(), data);
    const shortAt = t.offsets[4]!;
    assert.ok(t.offsets.includes(shortAt + CHUNK / 2), "asked the rest of the short chunk");
    assert.equal(t.offsets.length, 21);
    assert.equal(stats.bytes, data.byteLength);
    assert.equal(l.opened.count, 1);
    await l.service.close();
  });

  it("throttled on both sides: short answers and smaller asks, the file complete and read once", async () => {
    const data = pattern(48 * CHUNK + 1);
    // 40 KiB per 100 ms cycle on the leader, 24 KiB on the follower: most calls get less
    const l = await leader(data, new ThroughputSnapshotThrottle(400 * 1024, 10));
    const f = await follower();
    const t = instrumented((req) => l.service.handle(req));
    const stats = await copySnapshot(t.call, l.readerId, f.writer, {
      chunkBytes: 4 * CHUNK,
      pipeline: 4,
      retryIntervalMs: 1,
      throttle: new ThroughputSnapshotThrottle(240 * 1024, 10),
    });
    assert.deepEqual(await f.read(), data);
    assert.equal(stats.bytes, data.byteLength);
    assert.ok(t.offsets.length > 12, `more calls than chunks (${t.offsets.length})`);
    assert.equal(l.opened.count, 1);
    await l.service.close();
  });

  it("a chunk that keeps failing fails the copy with its error, without hanging", async () => {
    const data = pattern(30 * CHUNK);
    const l = await leader(data);
    const f = await follower();
    const t = instrumented(
      (req) => l.service.handle(req),
      (req) => (req.t === "get_file" && req.offset === 7 * CHUNK ? "fail" : null),
    );
    await assert.rejects(
      copySnapshot(t.call, l.readerId, f.writer, {
        chunkBytes: CHUNK,
        pipeline: 4,
        retryIntervalMs: 1,
        maxRetry: 2,
      }),
      (e: unknown) => e instanceof RaftException && e.code === RaftError.EHOSTUNREACH,
    );
    assert.equal(t.offsets.filter((o) => o === 7 * CHUNK).length, 3);
    await l.service.close();
  });
});
