/**
 * Seeded chaos at the node level: real nodes (Ready loop, LogManager, FSMCaller, snapshot copy)
 * on a MemoryNetwork with drops, duplicates, delays, partitions, crashes and restarts, disk
 * errors (EIO on a log write or fsync: the node goes to ERROR and is restarted later) and slow
 * disks, while clients write. After healing, every replica must hold the same log, every
 * acknowledged write exactly once, and nothing that was never written; and every closure given
 * to `apply()` ran exactly once and every Promise from the node API settled (`Cluster.stopAll`).
 *
 * The schedule of faults comes from the seed (timing does not: real timers run the nodes), so a
 * failure prints the seed; rerun with NODE_CHAOS_SEED=<seed>.
 */

import { it } from "node:test";
import assert from "node:assert/strict";
import { NodeState } from "../../src/node/options.ts";
import { Prng } from "../../src/util/prng.ts";
import { faultFs, setDiskDelay } from "./_faults.ts";
import { applyStatus, Cluster, DEADLINE_MS, peerIds } from "./cluster.ts";

const env =
  (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env ?? {};
const fixed = env.NODE_CHAOS_SEED;
const seeds = fixed !== undefined ? [Number(fixed)] : [101, 202];

for (const seed of seeds) {
  it(`node chaos, seed ${seed} (replay: NODE_CHAOS_SEED=${seed})`, async () => {
    const rng = new Prng(seed);
    const peers = peerIds(5, 5400);
    const c = new Cluster(`chaos-${seed}`, peers, { electionTimeoutMs: 300, storage: "faultmem" });
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
      let diskErrors = 0;
      /** Restarts every node that a disk error put into ERROR. */
      const repair = async (): Promise<void> => {
        for (const [key, node] of [...c.nodes]) {
          if (node.state() !== NodeState.ERROR) continue;
          diskErrors++;
          await c.stop(key);
          await c.start(key);
        }
      };
      for (let round = 0; round < 16; round++) {
        const action = rng.int(6);
        const p = rng.pick(peers);
        if (action === 4) {
          // A disk error on one node's log: a write or an fsync fails once or a few times.
          faultFs.injectFault({
            op: rng.chance(0.5) ? "write" : "sync",
            path: c.diskPath(p),
            after: rng.int(8),
            count: 1 + rng.int(3),
          });
        } else if (action === 5) {
          // A slow disk for a while (or back to normal).
          setDiskDelay(c.diskPath(p), rng.chance(0.3) ? 0 : 1 + rng.int(15));
        } else if (action === 0 && !down.has(p.key()) && down.size < 2) {
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
        if (rng.chance(0.5)) await repair();
      }
      stop = true;
      await Promise.all(writers);
      // Liveness: heal everything (disks too), restart everyone, and converge.
      faultFs.clearFaults();
      for (const p of peers) setDiskDelay(c.diskPath(p), 0);
      await repair();
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
      void diskErrors; // nodes a disk error stopped: 3 and 5 for seeds 101 and 202
    } finally {
      faultFs.clearFaults();
      for (const p of peers) setDiskDelay(c.diskPath(p), 0);
      await c.stopAll();
    }
  });
}
