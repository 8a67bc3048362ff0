/**
 * Seeded chaos at the node level: real nodes (Ready loop, LogManager, FSMCaller, snapshot copy)
 * on a MemoryNetwork with drops, duplicates, delays, partitions, crashes and restarts, while
 * clients write. After healing, every replica must hold the same log, every acknowledged write
 * exactly once, and nothing that was never written.
 *
 * The schedule of faults comes from the seed (timing does not: real timers run the nodes), so a
 * failure prints the seed; rerun with NODE_CHAOS_SEED=<seed>.
 */

import { it } from "node:test";
import assert from "node:assert/strict";
import { Prng } from "../../src/util/prng.ts";
import { applyStatus, Cluster, DEADLINE_MS, peerIds } from "./cluster.ts";

const env =
  (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env ?? {};
const fixed = env.NODE_CHAOS_SEED;
const seeds = fixed !== undefined ? [Number(fixed)] : [101, 202];

for (const seed of seeds) {
  it(`node chaos, seed ${seed} (replay: NODE_CHAOS_SEED=${seed})`, async () => {
    const rng = new Prng(seed);
    const peers = peerIds(5, 5400);
    const c = new Cluster(`chaos-${seed}`, peers, { electionTimeoutMs: 300 });
    const acked = new Set<string>();
    const attempted = new Set<string>();
    try {
      for (const p of peers) await c.start(p);
      await c.waitLeader();
      c.net.setDropRate(0.05);
      c.net.setDuplicateRate(0.05);
      c.net.setDelay(0, 5);
      let stop = false;
      let n = 0;
      const writers = [0, 1, 2].map(async (w) => {
        while (!stop) {
          const leader = [...c.nodes.values()].find((node) => node.isLeader());
          if (leader === undefined) {
            await new Promise((r) => setTimeout(r, 20));
            continue;
          }
          const value = `w${w}-${n++}`;
          attempted.add(value);
          if ((await applyStatus(leader, value)).ok()) acked.add(value);
        }
      });
      const down = new Set<string>();
      for (let round = 0; round < 12; round++) {
        const action = rng.int(4);
        const p = rng.pick(peers);
        if (action === 0 && !down.has(p.key()) && down.size < 2) {
          await c.stop(p);
          down.add(p.key());
        } else if (action === 1 && down.size > 0) {
          const back = rng.pick([...down]);
          down.delete(back);
          await c.start(back);
        } else if (action === 2) {
          const side = peers.filter(() => rng.chance(0.4)).map((x) => x.endpoint);
          c.net.partition(side, peers.map((x) => x.endpoint).filter((e) => !side.includes(e)));
        } else {
          c.net.heal();
          const leader = [...c.nodes.values()].find((node) => node.isLeader());
          if (leader !== undefined && rng.chance(0.5)) await leader.snapshot().catch(() => {});
        }
        await new Promise((r) => setTimeout(r, 150 + rng.int(250)));
      }
      stop = true;
      await Promise.all(writers);
      // Liveness: heal everything, restart everyone, and converge.
      c.net.heal();
      c.net.setDropRate(0);
      c.net.setDuplicateRate(0);
      c.net.setDelay(0, 0);
      for (const key of down) await c.start(key);
      const leader = await c.waitLeader(DEADLINE_MS);
      assert.ok((await applyStatus(leader, "final")).ok(), `seed ${seed}: final write`);
      acked.add("final");
      attempted.add("final");
      await c.ensureSame();
      const log = c.fsm(leader.nodeId()).logs;
      const seen = new Set<string>();
      for (const v of log) {
        assert.ok(!seen.has(v), `seed ${seed}: ${v} applied twice`);
        seen.add(v);
        assert.ok(attempted.has(v), `seed ${seed}: ${v} was never written`);
      }
      for (const v of acked) assert.ok(seen.has(v), `seed ${seed}: acknowledged ${v} was lost`);
      assert.ok(acked.size > 10, `seed ${seed}: only ${acked.size} writes succeeded`);
    } finally {
      await c.stopAll();
    }
  });
}
