// The process-wide budget of open log files (`flags.raft_max_open_log_files`): many local://
// logs in one process keep at most that many logs' files open, the others reopen theirs on
// their next append or read, and nothing written is lost or misplaced on the way.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import type { LogEntry } from "../../src/core/entry.ts";
import { flags } from "../../src/util/flags.ts";
import { Prng } from "../../src/util/prng.ts";
import { localFileSystem } from "../../storage/fs/detect.ts";
import { OpenFileBudget, openLogFiles } from "../../storage/log/open_file_budget.ts";
import { SegmentLogStorage } from "../../storage/log/segment_log_storage.ts";
import { dataEntry, sameEntry, withTempDir } from "./_helpers.ts";

/** Descriptors of this process open on files under `dir` (Linux `/proc`), else null. */
function openFilesUnder(dir: string): number | null {
  if (process.platform !== "linux") return null;
  let n = 0;
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir)) n++;
    } catch { /* closed meanwhile */ }
  }
  return n;
}

const entry = (index: number, term: number): LogEntry => dataEntry(index, term);

describe("OpenFileBudget", () => {
  it("releases the least recently used holders beyond its limit, never the one touching", () => {
    let limit = 2;
    const budget = new OpenFileBudget(() => limit);
    const released: string[] = [];
    const holder = (name: string) => ({ releaseIdleFiles: () => released.push(name) });
    const [a, b, c, d] = ["a", "b", "c", "d"].map(holder);
    budget.touch(a!);
    budget.touch(b!);
    budget.touch(a!);
    budget.touch(c!);
    assert.deepEqual(released, ["b"]);
    budget.touch(d!);
    assert.deepEqual(released, ["b", "a"]);
    assert.equal(budget.size, 2);
    budget.forget(c!);
    assert.equal(budget.size, 1);
    limit = 0; // no limit
    for (const h of [a, b, c]) budget.touch(h!);
    assert.equal(budget.size, 4);
    assert.deepEqual(released, ["b", "a"]);
    assert.equal(budget.releases, 2);
  });
});

describe("segment logs under the open-file budget", () => {
  it("100 logs keep at most the limit's files open, and every entry reads back, also after a restart", async () => {
    const saved = flags.raft_max_open_log_files;
    flags.raft_max_open_log_files = 8;
    try {
      await withTempDir(async (dir) => {
        const fs = await localFileSystem();
        const LOGS = 100;
        const open = async (i: number) => {
          const log = new SegmentLogStorage(fs, join(dir, `g${i}`), { maxSegmentSize: 2048 });
          await log.init();
          return log;
        };
        let logs = await Promise.all(Array.from({ length: LOGS }, (_, i) => open(i)));
        const written: LogEntry[][] = logs.map(() => []);
        const rng = new Prng(42);
        const releasesBefore = openLogFiles.releases;
        let most: number | null = null; // (null: no /proc to count with)
        for (let round = 0; round < 6; round++) {
          // appends to every log, some of them concurrently with reads of others
          await Promise.all(logs.map(async (log, i) => {
            const mine = written[i]!;
            const n = 1 + rng.int(12);
            const batch = Array.from({ length: n }, (_, k) => entry(mine.length + 1 + k, 1));
            await log.appendEntries(batch);
            mine.push(...batch);
            const j = rng.int(LOGS);
            const other = written[j]!;
            if (other.length > 0) {
              const index = 1 + rng.int(other.length);
              const got = await logs[j]!.getEntry(index);
              if (got !== null) {
                assert.ok(sameEntry(got, other[index - 1]!), `g${j} entry ${index}`);
              }
            }
          }));
          // a truncation, which reopens a closed segment for writing
          const t = rng.int(LOGS);
          const keep = Math.max(1, written[t]!.length - 5);
          await logs[t]!.truncateSuffix(keep);
          written[t]!.length = keep;
          const files = openFilesUnder(dir);
          if (files !== null) most = Math.max(most ?? 0, files);
        }
        assert.ok(openLogFiles.releases > releasesBefore, "no log was asked to close its files");
        // 8 logs may hold files: each its open segment, plus a closed one it was reading
        if (most !== null) assert.ok(most <= 8 * 2, `${most} files open under a limit of 8 logs`);
        for (let i = 0; i < LOGS; i++) {
          const all = await logs[i]!.getEntries(1, written[i]!.length);
          assert.equal(all.length, written[i]!.length, `g${i} length`);
          all.forEach((e, k) => assert.ok(sameEntry(e, written[i]![k]!), `g${i} entry ${k + 1}`));
        }
        for (const log of logs) await log.close();
        assert.equal(openFilesUnder(dir) ?? 0, 0, "close() leaves no file open");
        // a restart sees exactly what was written, and appends go on after it
        logs = await Promise.all(Array.from({ length: LOGS }, (_, i) => open(i)));
        for (let i = 0; i < LOGS; i++) {
          const mine = written[i]!;
          assert.equal(logs[i]!.lastLogIndex(), mine.length, `g${i} after restart`);
          await logs[i]!.appendEntries([entry(mine.length + 1, 2)]);
          mine.push(entry(mine.length + 1, 2));
          const all = await logs[i]!.getEntries(1, mine.length);
          all.forEach((e, k) => assert.ok(sameEntry(e, mine[k]!), `g${i} entry ${k + 1}`));
        }
        for (const log of logs) await log.close();
      });
    } finally {
      flags.raft_max_open_log_files = saved;
    }
  });

  it("with no limit (0) every log keeps its open segment's file", async () => {
    const saved = flags.raft_max_open_log_files;
    flags.raft_max_open_log_files = 0;
    try {
      await withTempDir(async (dir) => {
        const fs = await localFileSystem();
        const logs: SegmentLogStorage[] = [];
        for (let i = 0; i < 20; i++) {
          const log = new SegmentLogStorage(fs, join(dir, `g${i}`));
          await log.init();
          await log.appendEntries([entry(1, 1)]);
          logs.push(log);
        }
        const files = openFilesUnder(dir);
        if (files !== null) assert.equal(files, 20);
        for (const log of logs) await log.close();
      });
    } finally {
      flags.raft_max_open_log_files = saved;
    }
  });
});
