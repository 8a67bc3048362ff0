// LogManager: the synchronous CoreStorage view over asynchronous storage.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ChunkChain } from "../../src/bytes/chunk_chain.ts";
import { Configuration } from "../../src/conf/configuration.ts";
import { ENTRY_OVERHEAD_BYTES, EntryType, type LogEntry } from "../../src/core/entry.ts";
import { LogManager } from "../../src/node/log_manager.ts";
import { createLogStorage, createMetaStorage } from "../../storage/uri.ts";

let seq = 0;
async function open(cacheBytes?: number): Promise<{ lm: LogManager; loaded: () => Promise<void> }> {
  const name = `lm-${seq++}-${Math.random()}`;
  const log = await createLogStorage(`memory://${name}/log`);
  await log.init();
  const meta = await createMetaStorage(`memory://${name}/meta`);
  await meta.init();
  let wake: () => void = () => {};
  const lm = new LogManager(log, meta, {
    ...(cacheBytes !== undefined ? { cacheBytes } : {}),
    onEntriesLoaded: () => wake(),
  });
  return { lm, loaded: () => new Promise<void>((r) => (wake = r)) };
}

const entry = (index: number, term: number, text = `e${index}`): LogEntry => ({
  index,
  term,
  type: EntryType.DATA,
  data: ChunkChain.from(text),
});

describe("LogManager", () => {
  it("serves bounds, terms and cached entries synchronously", async () => {
    const { lm } = await open();
    assert.equal(lm.firstIndex(), 1);
    assert.equal(lm.lastIndex(), 0);
    assert.equal(lm.term(0), 0);
    await lm.append([1, 2, 3].map((i) => entry(i, 1)));
    assert.equal(lm.lastIndex(), 3);
    assert.equal(lm.term(2), 1);
    assert.equal(lm.term(4), undefined);
    assert.deepEqual(lm.entries(1, 4, 1 << 20)!.map((e) => e.data.text()), ["e1", "e2", "e3"]);
    assert.equal(lm.diskIndex, 3);
  });

  it("an append that starts inside the log replaces the conflicting suffix", async () => {
    const { lm } = await open();
    await lm.append([1, 2, 3, 4].map((i) => entry(i, 1)));
    await lm.append([entry(3, 2, "new3")]);
    assert.equal(lm.lastIndex(), 3);
    assert.equal(lm.term(3), 2);
    assert.deepEqual(lm.entries(1, 4, 1 << 20)!.map((e) => e.data.text()), ["e1", "e2", "new3"]);
    assert.equal(lm.logStorage.lastLogIndex(), 3);
  });

  it("entries evicted from the cache are loaded in the background", async () => {
    const { lm, loaded } = await open(10); // tiny cache: only the newest entries stay
    await lm.append(Array.from({ length: 20 }, (_, i) => entry(i + 1, 1, "0123456789")));
    const done = loaded();
    assert.equal(lm.entries(1, 5, 1 << 20), null, "not in memory");
    await done;
    const got = lm.entries(1, 5, 1 << 20);
    assert.ok(got !== null && got.length >= 1);
    assert.equal(got![0]!.index, 1);
    assert.equal(got![0]!.data.text(), "0123456789");
  });

  it("persists term and vote only when they change", async () => {
    const { lm } = await open();
    await lm.setHardState({ term: 3, vote: "127.0.0.1:1:0", commit: 0 });
    assert.equal(lm.hardState().term, 3);
    assert.equal(lm.hardState().vote, "127.0.0.1:1:0");
    await lm.setHardState({ term: 3, vote: "127.0.0.1:1:0", commit: 5 });
    assert.equal(lm.hardState().commit, 5);
  });

  it("compact keeps one extra interval on disk; installSnapshot resets or keeps the tail", async () => {
    const { lm } = await open();
    await lm.append(Array.from({ length: 10 }, (_, i) => entry(i + 1, 1)));
    const conf = { peers: Configuration.parse("127.0.0.1:1:0") };
    await lm.compact({ index: 6, term: 1, conf }, 3);
    assert.equal(lm.firstIndex(), 7, "the core sees the log after the snapshot");
    assert.equal(
      lm.logStorage.firstLogIndex(),
      3,
      "disk keeps entries since the previous snapshot",
    );
    assert.equal(lm.term(6), 1);
    // A snapshot that matches the log keeps the entries after it.
    await lm.installSnapshot({ index: 8, term: 1, conf });
    assert.equal(lm.lastIndex(), 10);
    assert.equal(lm.term(9), 1);
    // One from a different history drops everything.
    await lm.installSnapshot({ index: 20, term: 4, conf });
    assert.equal(lm.firstIndex(), 21);
    assert.equal(lm.lastIndex(), 20);
    assert.equal(lm.term(20), 4);
    await lm.append([entry(21, 4)]);
    assert.deepEqual(lm.entries(21, 22, 1 << 20)!.map((e) => e.index), [21]);
  });

  it("a snapshot install that resets the log forgets entries loaded from disk", async () => {
    const { lm, loaded } = await open(10); // tiny cache: older entries come from disk
    await lm.append(Array.from({ length: 12 }, (_, i) => entry(i + 1, 1, `old${i + 1}`)));
    const done = loaded();
    assert.equal(lm.entries(6, 12, 1 << 20), null);
    await done;
    assert.equal(lm.entries(9, 10, 1 << 20)?.[0]?.data.text(), "old9", "loaded from disk");
    const conf = { peers: Configuration.parse("127.0.0.1:1:0") };
    await lm.installSnapshot({ index: 5, term: 2, conf });
    await lm.append(Array.from({ length: 7 }, (_, i) => entry(i + 6, 2, `new${i + 6}`)));
    assert.equal(lm.term(9), 2);
    const got = lm.entries(9, 10, 1 << 20);
    if (got !== null) {
      assert.equal(got[0]!.term, 2, "an entry agrees with term()");
      assert.equal(got[0]!.data.text(), "new9");
    }
    const again = loaded();
    if (got === null) {
      await again;
      const e = lm.entries(9, 10, 1 << 20)![0]!;
      assert.deepEqual([e.term, e.data.text()], [2, "new9"]);
    }
  });

  for (const change of ["truncation", "reset"] as const) {
    it(`a background load that finishes after a ${change} is discarded`, async () => {
      const { lm, loaded } = await open(10);
      const log = lm.logStorage;
      const real = log.getEntries.bind(log);
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let reads = 0;
      log.getEntries = async (lo, hi, max) => {
        const out = await real(lo, hi, max);
        if (reads++ === 0) await gate; // hold the first load until the log has changed
        return out;
      };
      await lm.append(Array.from({ length: 12 }, (_, i) => entry(i + 1, 1, `old${i + 1}`)));
      let done = loaded();
      assert.equal(lm.entries(3, 12, 1 << 20), null, "load starts");
      if (change === "truncation") {
        await lm.append(Array.from({ length: 10 }, (_, i) => entry(i + 3, 2, `new${i + 3}`)));
      } else {
        const conf = { peers: Configuration.parse("127.0.0.1:1:0") };
        await lm.installSnapshot({ index: 2, term: 2, conf });
        await lm.append(Array.from({ length: 10 }, (_, i) => entry(i + 3, 2, `new${i + 3}`)));
      }
      release();
      await done;
      for (let tries = 0; tries < 5; tries++) {
        const got = lm.entries(3, 4, 1 << 20);
        if (got !== null) {
          assert.deepEqual([got[0]!.term, got[0]!.data.text()], [2, "new3"]);
          return;
        }
        done = loaded();
        await done;
      }
      assert.fail("entry 3 was never served");
    });
  }

  it("at startup a log that conflicts with the snapshot is reset to it", async () => {
    const conf = { peers: Configuration.parse("127.0.0.1:1:0") };
    // Crash after publishing snapshot (5, term 2) but before the log was reset.
    const { lm } = await open();
    await lm.append(Array.from({ length: 10 }, (_, i) => entry(i + 1, 1)));
    await lm.setInitialSnapshot({ index: 5, term: 2, conf });
    assert.equal(lm.lastIndex(), 5);
    assert.equal(lm.term(5), 2);
    assert.equal(lm.term(6), undefined, "the old term-1 suffix is gone");
    assert.equal(lm.logStorage.lastLogIndex(), 5);
    assert.equal(lm.logStorage.firstLogIndex(), 6);
    await lm.append([entry(6, 2, "new6")]);
    assert.equal(lm.entries(6, 7, 1 << 20)![0]!.data.text(), "new6");
    // A log that agrees with the snapshot is kept.
    const other = await open();
    await other.lm.append(Array.from({ length: 10 }, (_, i) => entry(i + 1, 1)));
    await other.lm.setInitialSnapshot({ index: 5, term: 1, conf });
    assert.equal(other.lm.lastIndex(), 10);
    assert.equal(other.lm.logStorage.firstLogIndex(), 1);
    // A log that does not reach the snapshot is reset too.
    const short = await open();
    await short.lm.append([entry(1, 1)]);
    await short.lm.setInitialSnapshot({ index: 5, term: 1, conf });
    assert.equal(short.lm.logStorage.firstLogIndex(), 6);
    assert.equal(short.lm.lastIndex(), 5);
  });

  it("the cache limit counts a per-entry overhead: many tiny entries stay bounded", async () => {
    const limit = 100 * ENTRY_OVERHEAD_BYTES;
    const { lm, loaded } = await open(limit);
    for (let i = 0; i < 100; i++) {
      await lm.append(
        Array.from({ length: 100 }, (_, k) => entry(i * 100 + k + 1, 1, "")), // empty payloads
      );
    }
    const stats = lm.cacheStats();
    assert.ok(stats.entries <= 100, `cache holds ${stats.entries} tiny entries`);
    assert.ok(stats.bytes <= limit, `cache counts ${stats.bytes} bytes`);
    assert.equal(lm.entries(1, 2, 1 << 20), null, "the oldest tiny entry was evicted");
    assert.equal(lm.entries(10_000, 10_001, 1 << 20)!.length, 1, "the newest is cached");
    // Loading evicted entries back is bounded by the same limit.
    for (let lo = 1; lo < 10_000; lo += 500) {
      const done = loaded();
      if (lm.entries(lo, lo + 500, 1 << 20) === null) await done;
      assert.ok(lm.entries(lo, lo + 1, 1 << 20) !== null, `entry ${lo} loaded`);
      const now = lm.cacheStats();
      assert.ok(now.bytes <= 2 * limit + 500 * ENTRY_OVERHEAD_BYTES, `${now.bytes} bytes cached`);
    }
  });
});
