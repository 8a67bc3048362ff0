// Do concurrent fdatasyncs on different files share the disk's flushes? N files, each written
// (256 B appended) and fdatasync'ed in a loop, all at once; then the same with at most K syncs in
// flight (what a per-disk fsync queue would do). Prints syncs/s; never asserts on time. This is
// the measurement behind "storage stays per group" in the README (many groups in one process).
//
//   npx deno run -A bench/fsync_concurrency_bench.ts [--files=1,4,16,64,256] [--caps=8,32,64]
//                                                    [--seconds=3] [--dir=<dir on the disk>]
//   npx bun bench/fsync_concurrency_bench.ts ...
import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

const arg = (name: string, def: string): string =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? def;
const FILES = arg("files", "1,4,16,64,256").split(",").map(Number);
const CAPS = arg("caps", "8,32,64").split(",").map(Number);
const SECONDS = Number(arg("seconds", "3"));
const dir = await mkdtemp(join(arg("dir", tmpdir()), "webraft-fsync-"));

/** A counting semaphore: at most `cap` holders. */
function limiter(cap: number): { acquire(): Promise<void>; release(): void } {
  let held = 0;
  const waiting: (() => void)[] = [];
  return {
    acquire: () => held < cap ? (held++, Promise.resolve()) : new Promise((r) => waiting.push(r)),
    release: () => {
      const next = waiting.shift();
      if (next !== undefined) next();
      else held--;
    },
  };
}

async function run(files: number, cap: number): Promise<number> {
  const handles = await Promise.all(
    Array.from({ length: files }, (_, i) => open(join(dir, `f${files}-${cap}-${i}`), "a")),
  );
  const gate = limiter(cap);
  const block = new Uint8Array(256);
  let syncs = 0;
  const end = performance.now() + SECONDS * 1000;
  await Promise.all(handles.map(async (h) => {
    while (performance.now() < end) {
      await h.write(block);
      await gate.acquire();
      try {
        await h.datasync();
      } finally {
        gate.release();
      }
      syncs++;
    }
  }));
  await Promise.all(handles.map((h) => h.close()));
  return syncs / SECONDS;
}

const rows: { files: number; cap: number | null; syncsPerSecond: number }[] = [];
try {
  for (const files of FILES) {
    const rate = await run(files, Infinity);
    rows.push({ files, cap: null, syncsPerSecond: Math.round(rate) });
    console.log(
      `${String(files).padStart(4)} files, no cap:     ${rate.toFixed(0).padStart(7)} syncs/s`,
    );
  }
  const most = Math.max(...FILES);
  for (const cap of CAPS) {
    const rate = await run(most, cap);
    rows.push({ files: most, cap, syncsPerSecond: Math.round(rate) });
    console.log(
      `${String(most).padStart(4)} files, ≤${String(cap).padStart(3)} in flight: ${
        rate.toFixed(0).padStart(7)
      } syncs/s`,
    );
  }
  console.log(JSON.stringify({ runtime: typeof Deno !== "undefined" ? "deno" : "bun", rows }));
} finally {
  await rm(dir, { recursive: true, force: true });
}
