// Child process of crash_test.ts: appends batches to a local:// log with raft_sync on and
// prints "ack <lastIndex>" after each append resolves and, now and then, "first <index>" after
// a truncatePrefix resolves, until it is killed.
// Usage: <runtime> _crash_child.ts <dir> <term> <seed>
import process from "node:process";
import { Prng } from "../../src/util/prng.ts";
import { createLogStorage } from "../../storage/uri.ts";
import { dataEntry } from "./_helpers.ts";
import type { LogEntry } from "../../src/core/entry.ts";

const [dir, termArg, seedArg] = process.argv.slice(-3);
const term = Number(termArg);
const prng = new Prng(Number(seedArg));
const log = await createLogStorage(`local://${dir}`, { sync: true, maxSegmentSize: 32 * 1024 });
await log.init();
let next = log.lastLogIndex() + 1;
process.stdout.write(`ready ${next - 1}\n`);
for (;;) {
  const n = prng.range(1, 16);
  const batch: LogEntry[] = [];
  for (let i = 0; i < n; i++) batch.push(dataEntry(next + i, term));
  await log.appendEntries(batch);
  next += n;
  process.stdout.write(`ack ${next - 1}\n`);
  if (next > 1000 && prng.chance(0.05)) {
    const kept = next - prng.range(400, 800); // leaves closed segments (32 KiB ≈ 180 entries)
    await log.truncatePrefix(kept);
    process.stdout.write(`first ${log.firstLogIndex()}\n`);
  }
}
