/**
 * Seed hunter: runs schedules until the first failure (or a budget) and prints the failing
 * seed, how many seeds it took and the first line of the failure. For measuring how fast
 * the simulator finds a (planted) bug; not part of the test suite.
 *
 *     npx deno run -A tests/sim/hunt.ts [count=5000] [base=1] [--all]
 *
 * @module
 */

import { runSchedule } from "./schedule.ts";

const args = Deno.args.filter((a) => !a.startsWith("--"));
const all = Deno.args.includes("--all");
const count = Number(args[0] ?? 5000);
const base = Number(args[1] ?? 1);
const started = performance.now();
let failures = 0;
for (let seed = base; seed < base + count; seed++) {
  try {
    runSchedule(seed);
  } catch (e) {
    failures++;
    const lines = String(e instanceof Error ? e.message : e).split("\n");
    console.log(`seed ${seed} failed after ${seed - base + 1} seeds: ${lines[2]}`);
    if (!all) break;
  }
}
const ms = performance.now() - started;
console.log(`${failures} failure(s); ${(ms / 1000).toFixed(1)} s`);
