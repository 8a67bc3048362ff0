/**
 * The seeded nemesis of the process-level fault tests: until its time is up, it waits for the
 * group to serve linearizable reads again, lets the clients work a little, then injects one
 * fault chosen by the seed, holds it, and heals it.
 *
 * Faults: SIGKILL + restart of the leader or of a follower; SIGSTOP/SIGCONT of the leader or a
 * follower for 2.5–4 election timeouts (a paused leader is deposed meanwhile and must not serve
 * stale reads when it wakes); SIGKILL of every node at once, then restart; partitions through
 * the proxy: the leader cut from both followers, a follower cut from both, or the leader cut
 * from one follower only (the other still sees both).
 *
 * The schedule depends on the seed and on who leads when, so a seed replays the same choices,
 * not the same interleaving.
 *
 * @module
 */

import type { FaultCluster } from "./_fault_cluster.ts";

/** The kinds of faults. */
export const FAULTS = [
  "kill-leader",
  "kill-follower",
  "pause-leader",
  "pause-follower",
  "kill-all",
  "partition-leader",
  "partition-follower",
  "partition-leader-one",
] as const;

/** A kind of fault. */
export type Fault = typeof FAULTS[number];

/** Small seeded PRNG (mulberry32): uniform numbers in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Options of {@link runNemesis}. */
export interface NemesisOptions {
  /** Inject faults for about this long (the last one is healed after). */
  durationMs: number;
  electionTimeoutMs: number;
  random: () => number;
  /** The kinds to choose from. Default: all of {@link FAULTS}. */
  kinds?: readonly Fault[];
  /** One line per fault, for the test's output. */
  log: (line: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs the nemesis; leaves the cluster healed (every node running, no cut, none paused).
 *
 * @param cluster The group.
 * @param options Duration, election timeout, randomness, log.
 * @returns How many faults of each kind were injected.
 */
export async function runNemesis(
  cluster: FaultCluster,
  options: NemesisOptions,
): Promise<Record<Fault, number>> {
  const counts = Object.fromEntries(FAULTS.map((f) => [f, 0])) as Record<Fault, number>;
  const rnd = options.random;
  const between = (lo: number, hi: number) => Math.round(lo + rnd() * (hi - lo));
  const et = options.electionTimeoutMs;
  const started = Date.now();
  const elapsed = () => ((Date.now() - started) / 1000).toFixed(1);
  try {
    while (Date.now() - started < options.durationMs) {
      const leader = await cluster.leader();
      await sleep(between(300, 1500));
      const kinds = options.kinds ?? FAULTS;
      const fault = kinds[Math.floor(rnd() * kinds.length)]!;
      const others = cluster.nodes.map((n) => n.index).filter((i) => i !== leader);
      const follower = others[Math.floor(rnd() * others.length)]!;
      const hold = between(2.5 * et, 4 * et);
      counts[fault]++;
      options.log(
        `[${elapsed()} s] ${fault} (leader ${leader}, follower ${follower}, hold ${hold} ms)`,
      );
      switch (fault) {
        case "kill-leader":
        case "kill-follower": {
          const i = fault === "kill-leader" ? leader : follower;
          await cluster.kill(i);
          await sleep(between(200, hold));
          await cluster.restart(i);
          break;
        }
        case "pause-leader":
        case "pause-follower": {
          const i = fault === "pause-leader" ? leader : follower;
          cluster.pause(i);
          await sleep(hold);
          cluster.resume(i);
          break;
        }
        case "kill-all":
          await Promise.all(cluster.nodes.map((n) => cluster.kill(n.index)));
          await sleep(between(100, 1000));
          await Promise.all(cluster.nodes.map((n) => cluster.restart(n.index)));
          break;
        case "partition-leader":
        case "partition-follower": {
          const i = fault === "partition-leader" ? leader : follower;
          for (const n of cluster.nodes) {
            if (n.index !== i) cluster.proxy.cut(cluster.nodes[i]!.publicPort, n.publicPort);
          }
          await sleep(hold);
          cluster.proxy.heal();
          break;
        }
        case "partition-leader-one":
          cluster.proxy.cut(
            cluster.nodes[leader]!.publicPort,
            cluster.nodes[follower]!.publicPort,
          );
          await sleep(hold);
          cluster.proxy.heal();
          break;
      }
    }
  } finally {
    await cluster.healAll();
  }
  return counts;
}
