// Storage benchmark: log appends (entries/s, MB/s) for 256 B and 4 KiB entries with fsync on
// and off, single-entry and batched appends, next to this disk's raw write+fdatasync rate
// measured in the same run. Prints figures; never asserts on time. Each case runs ~1 s.
//
//   npx deno run -A bench/storage_bench.ts
//   npx bun bench/storage_bench.ts
//   node --experimental-strip-types bench/storage_bench.ts   (Node ≥ 22.6)
//
// BENCH_SECONDS (default 1) sets the time per case; BENCH_DIR the directory (default: OS temp).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { ChunkChain } from "../src/bytes/chunk_chain.ts";
import { EntryType, type LogEntry } from "../src/core/entry.ts";
import { detectRuntime, localFileSystem } from "../storage/fs/detect.ts";
import { SegmentLogStorage } from "../storage/log/segment_log_storage.ts";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 1);
const root = await mkdtemp(join(process.env.BENCH_DIR ?? tmpdir(), "webraft-bench-"));
const fs = await localFileSystem();

interface Row {
  case: string;
  ops: number;
  entries: number;
  bytes: number;
  seconds: number;
}
const rows: Row[] = [];

function report(row: Row, note = ""): void {
  rows.push(row);
  const eps = row.entries / row.seconds;
  const mbps = row.bytes / row.seconds / 1e6;
  const ops = row.ops / row.seconds;
  console.log(
    `${row.case.padEnd(36)} ${eps.toFixed(0).padStart(10)} entries/s ${
      mbps.toFixed(1).padStart(8)
    } MB/s ${ops.toFixed(0).padStart(8)} writes/s ${note}`,
  );
}

/** The physical limit: a loop of write + fdatasync on one file. */
async function rawFsync(size: number, secs = SECONDS): Promise<Row> {
  const file = await fs.open(join(root, `raw_${size}`), {
    create: true,
    truncate: true,
    write: true,
  });
  const buf = new Uint8Array(size).fill(7);
  let ops = 0;
  let pos = 0;
  const start = performance.now();
  const deadline = start + secs * 1000;
  while (performance.now() < deadline) {
    await file.write(buf, pos);
    await file.datasync();
    pos += size;
    ops++;
  }
  const seconds = (performance.now() - start) / 1000;
  await file.close();
  return { case: `raw write+fdatasync ${size} B`, ops, entries: ops, bytes: ops * size, seconds };
}

async function logAppend(size: number, batch: number, sync: boolean): Promise<Row> {
  const dir = join(root, `log_${size}_${batch}_${sync}`);
  const log = new SegmentLogStorage(fs, dir, { sync });
  await log.init();
  const payload = new Uint8Array(size).map((_, i) => i & 0xff);
  let index = 1;
  let ops = 0;
  const start = performance.now();
  const deadline = start + SECONDS * 1000;
  while (performance.now() < deadline) {
    const entries: LogEntry[] = [];
    for (let k = 0; k < batch; k++) {
      entries.push({
        index: index++,
        term: 1,
        type: EntryType.DATA,
        data: ChunkChain.from(payload),
      });
    }
    await log.appendEntries(entries);
    ops++;
  }
  const seconds = (performance.now() - start) / 1000;
  await log.close();
  await rm(dir, { recursive: true, force: true });
  const n = index - 1;
  return {
    case: `append ${size === 256 ? "256 B" : "4 KiB"} x${batch} fsync ${sync ? "on" : "off"}`,
    ops,
    entries: n,
    bytes: n * size,
    seconds,
  };
}

console.log(`webraft storage bench — ${detectRuntime()}, ${SECONDS} s per case, dir ${root}`);
console.log(
  "(each fsync-on case is preceded by a raw write+fdatasync loop of the same write size, " +
    "so the ratio compares against the disk's rate at that moment)",
);
try {
  report(await rawFsync(256));
  report(await rawFsync(4096));
  for (const size of [256, 4096]) {
    for (const sync of [true, false]) {
      for (const batch of [1, 64]) {
        let note = "";
        if (sync) {
          const raw = await rawFsync((size + 32) * batch, SECONDS / 2);
          const rawRate = raw.ops / raw.seconds;
          const row = await logAppend(size, batch, sync);
          note = `(raw ${rawRate.toFixed(0)} write+fdatasync/s of ${(size + 32) * batch} B: ${
            ((row.ops / row.seconds) / rawRate * 100).toFixed(0)
          }%)`;
          report(row, note);
        } else {
          report(await logAppend(size, batch, sync));
        }
      }
    }
  }
} finally {
  await rm(root, { recursive: true, force: true });
}
