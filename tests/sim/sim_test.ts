/**
 * Randomized simulation: `SIM_SEEDS` schedules (default 10,000, about 2–2.5 minutes per
 * runtime on an idle 2-core machine) over 3, 5 and 7 nodes with crashes, partitions that
 * drop or hold messages, one-way links, drops, duplicates, reordering, stale and shortened
 * AppendEntries, late InstallSnapshots, pipelined Readies, directed Figure 8 rounds,
 * snapshots, membership changes, transfers and reads (see schedule.ts and cluster.ts for
 * the invariants). `SIM_SEED=n` replays one seed; `SIM_SEED_BASE` shifts the range. A
 * failure prints the seed and the command that replays it. `tests/sim/hunt.ts` runs seeds
 * outside the test runner and reports the first failing one.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { runSchedule } from "./schedule.ts";

function envNumber(name: string): number | undefined {
  const g = globalThis as {
    Deno?: { env: { get(k: string): string | undefined } };
    process?: { env: Record<string, string | undefined> };
  };
  let v: string | undefined;
  try {
    v = g.Deno?.env.get(name) ?? g.process?.env[name];
  } catch {
    v = undefined; // no env permission
  }
  return v === undefined || v === "" ? undefined : Number(v);
}

const single = envNumber("SIM_SEED");
const count = envNumber("SIM_SEEDS") ?? 10_000;
const base = envNumber("SIM_SEED_BASE") ?? 1;
// Seeds per it(): a chunk takes ~0.1 s on average, ~1 s at worst on a loaded machine, well
// within plain `bun test`'s 5 s per-test timeout (scripts/test.mjs raises it anyway)
const CHUNK = 10;

describe("simulation", () => {
  if (single !== undefined) {
    it(`replays seed ${single}`, () => {
      const st = runSchedule(single);
      console.log(`seed ${single}: ${JSON.stringify(st)}`);
    });
    return;
  }
  for (let lo = base; lo < base + count; lo += CHUNK) {
    const hi = Math.min(base + count, lo + CHUNK);
    it(`seeds ${lo}..${hi - 1} keep every safety property and recover after healing`, () => {
      let acked = 0;
      for (let seed = lo; seed < hi; seed++) acked += runSchedule(seed).acked;
      assert.ok(acked > 0);
    });
  }
});
