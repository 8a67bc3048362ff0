/**
 * One randomized schedule: a chaos phase (crashes, partitions, one-way links, drops,
 * duplicates, reordering, snapshots, membership changes, transfers, reads) followed by a
 * liveness phase that must commit a new entry within a bounded simulated time.
 *
 * @module
 */

import { Configuration } from "../../src/conf/configuration.ts";
import { Cluster } from "./cluster.ts";
import { Prng } from "../../src/util/prng.ts";

/** What one schedule did (for reporting). */
export interface ScheduleStats {
  /** Nodes in the initial configuration. */
  voters: number;
  /** Entries acknowledged to clients. */
  acked: number;
  /** Simulated time units. */
  units: number;
  /** Membership changes completed. */
  confChanges: number;
  /** Snapshots taken. */
  snapshots: number;
  /** Event counters from the cluster. */
  events: Record<string, number>;
}

/** The command that replays one seed. */
export function replayCommand(seed: number): string {
  return `SIM_SEED=${seed} npx deno test -A tests/sim/sim_test.ts   (or: SIM_SEED=${seed} npx bun test tests/sim/sim_test.ts)`;
}

/**
 * Runs one schedule derived from `seed`; throws (with the seed and replay command) on any
 * safety or liveness failure.
 *
 * @param seed The seed.
 * @returns Statistics.
 */
export function runSchedule(seed: number): ScheduleStats {
  const pick = new Cluster({ seed, voters: 1 }).prng; // derive the shape from the seed
  const voters = pick.pick([3, 3, 5, 5, 7]);
  const spares = pick.int(3);
  const c = new Cluster({
    seed,
    voters,
    spares,
    // from its own stream, so that the schedules of synchronous seeds stay as they were
    asyncApply: new Prng(seed * 7919 + 17).chance(0.5),
    core: {
      leaseEnabled: pick.chance(0.3),
      checkQuorum: pick.chance(0.8),
      catchupMargin: pick.range(1, 20),
    },
  });
  const rng = c.prng;
  let confChanges = 0;
  let snapshots = 0;
  try {
    const chaos = 1500;
    for (let i = 0; i < chaos; i++) {
      if (rng.chance(0.15)) c.propose();
      if (rng.chance(0.01)) c.read();
      if (rng.chance(0.004)) c.crash(rng.pick(c.ids));
      if (rng.chance(0.012)) {
        const down = c.ids.filter((id) => c.node(id).core === null);
        if (down.length > 0) c.restart(rng.pick(down));
      }
      if (rng.chance(0.003)) {
        c.partition(rng.shuffle([...c.ids]).slice(0, rng.range(1, c.ids.length >> 1)));
      }
      if (rng.chance(0.003)) c.isolate(rng.pick(c.ids));
      if (rng.chance(0.004)) c.heal();
      if (rng.chance(0.002)) {
        const a = rng.pick(c.ids);
        const b = rng.pick(c.ids);
        if (a !== b) {
          c.blocked.add(`${a}>${b}`);
          c.trace.push(`${c.now} block ${a}>${b}`);
        }
      }
      if (rng.chance(0.003)) c.dropRate = rng.chance(0.5) ? 0 : rng.next() * 0.3;
      if (rng.chance(0.003)) c.dupRate = rng.chance(0.5) ? 0 : rng.next() * 0.2;
      if (rng.chance(0.006)) {
        c.snapshot(rng.pick(c.ids), rng.int(4));
        snapshots++;
      }
      if (rng.chance(0.01)) {
        const id = rng.pick(c.ids);
        c.setCold(id, !c.node(id).storage.cold);
      }
      if (rng.chance(0.004)) {
        const l = c.leader();
        if (l !== null) {
          const size = rng.range(Math.min(3, c.ids.length), Math.min(7, c.ids.length));
          const shuffled = rng.shuffle([...c.ids]);
          const peers = new Configuration(shuffled.slice(0, size));
          const learners = new Configuration(shuffled.slice(size).filter(() => rng.chance(0.5)));
          const st = c.node(l).core!.proposeConfChange({ peers, learners });
          c.trace.push(`${c.now} change_peers ${peers} on ${l}: ${st}`);
          if (st.ok()) confChanges++;
        }
      }
      if (rng.chance(0.002)) {
        const l = c.leader();
        if (l !== null) {
          const target = rng.chance(0.3) ? "" : rng.pick(c.ids);
          const st = c.node(l).core!.transferLeader(target);
          c.trace.push(`${c.now} transfer ${l} -> ${target || "ANY"}: ${st}`);
        }
      }
      c.step();
    }
    // liveness: heal everything, restart everyone, a new write must commit
    c.heal();
    for (const id of c.ids) c.restart(id);
    for (const id of c.ids) c.setCold(id, false);
    const before = c.acked.size;
    const ok = c.runUntil(() => {
      if (c.acked.size > before) return true;
      if (c.now % 40 === 0) c.propose();
      return false;
    }, 4000);
    if (!ok) c.fail("liveness: no new entry committed within 4000 units after healing");
    c.run(100);
    c.checkAcked();
  } catch (e) {
    const msg = e instanceof Error ? e.stack ?? e.message : String(e);
    throw new Error(`Simulation failed for seed ${seed}\nReplay: ${replayCommand(seed)}\n${msg}`);
  }
  return { voters, acked: c.acked.size, units: c.now, confChanges, snapshots, events: c.stats };
}
