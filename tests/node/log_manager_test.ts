// LogManager: the synchronous CoreStorage view over asynchronous storage.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ChunkChain } from "../../src/bytes/chunk_chain.ts";
import { Configuration } from "../../src/conf/configuration.ts";
import { EntryType, type LogEntry } from "../../src/core/entry.ts";
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
});
