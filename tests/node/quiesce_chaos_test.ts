/**
 * Seeded chaos with quiescence on: real nodes on a MemoryNetwork, idle periods long enough for
 * groups to quiesce, write bursts, crashes and restarts, partitions (the leader's endpoint
 * too), drops and duplicates. Checks: at most one leader per term (sampled all along), and
 * after healing every acknowledged write applied exactly once and identically everywhere.
 *
 * The schedule comes from the seed (timing does not: real timers run the nodes); a failure
 * prints the seed, rerun with QUIESCE_CHAOS_SEED=<seed>.
 */

import { it } from "node:test";
import assert from "node:assert/strict";
import { Prng } from "../../src/util/prng.ts";
import { applyStatus, Cluster, DEADLINE_MS, peerIds } from "./cluster.ts";

const env =
  (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env ?? {};
const fixed = env.QUIESCE_CHAOS_SEED;
const seeds = fixed !== undefined ? [Number(fixed)] : [31, 62];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const seed of seeds) {
  it(`quiescence chaos, seed ${seed} (replay: QUIESCE_CHAOS_SEED=${seed})`, async () => {
    const rng = new Prng(seed);
    const peers = peerIds(5, 7300);
    const c = new Cluster(`qchaos-${seed}`, peers, { electionTimeoutMs: 300 });
    const extra = (i: number) => ({ quiesce: true, seed: seed * 10 + i });
    const start = (key: string) =>
      c.start(key, { extra: extra(peers.findIndex((p) => p.key() === key)) });
    const acked = new Set<string>();
    const attempted = new Set<string>();
    const leaders = new Map<number, string>();
    let twoLeaders = "";
    let quiescedSeen = 0;
    let stop = false;
    let paused = false;
    const sampler = (async () => {
      while (!stop) {
        for (const [key, n] of c.nodes) {
          if (n.isLeader()) {
            const prev = leaders.get(n.term());
            if (prev !== undefined && prev !== key) {
              twoLeaders ||= `term ${n.term()}: ${prev} and ${key}`;
            }
            leaders.set(n.term(), key);
          }
          if (n.quiesced) quiescedSeen++;
        }
        await sleep(2);
      }
    })();
    try {
      for (const [i, p] of peers.entries()) await c.start(p, { extra: extra(i) });
      await c.waitLeader();
      let n = 0;
      const writers = [0, 1].map(async (w) => {
        while (!stop) {
          const leader = [...c.nodes.values()].find((node) => node.isLeader());
          if (paused || leader === undefined) {
            await sleep(20);
            continue;
          }
          const value = `w${w}-${n++}`;
          attempted.add(value);
          if ((await applyStatus(leader, value)).ok()) acked.add(value);
          if (rng.chance(0.2)) await sleep(rng.int(30));
        }
      });
      const down = new Set<string>();
      for (let round = 0; round < 14; round++) {
        const action = round % 4 === 1 ? 0 : rng.int(6); // an idle period every 4 rounds
        const p = rng.pick(peers);
        if (action === 0) {
          // idle with everything up and healed: the group quiesces
          c.net.heal();
          c.net.setDropRate(0);
          c.net.setDuplicateRate(0);
          for (const key of [...down]) await start(key);
          down.clear();
          paused = true;
          await sleep(900 + rng.int(600));
          if (rng.chance(0.5)) {
            // cut the (quiesced) leader off while idle
            const leader = [...c.nodes.values()].find((node) => node.isLeader());
            if (leader !== undefined) {
              const me = leader.nodeId().endpoint;
              c.net.partition([me], peers.map((x) => x.endpoint).filter((e) => e !== me));
            }
            await sleep(400 + rng.int(600));
          }
          paused = false;
        } else if (action === 1 && !down.has(p.key()) && down.size < 2) {
          await c.stop(p);
          down.add(p.key());
        } else if (action === 2 && down.size > 0) {
          const back = rng.pick([...down]);
          down.delete(back);
          await start(back);
        } else if (action === 3) {
          const side = peers.filter(() => rng.chance(0.4)).map((x) => x.endpoint);
          c.net.partition(side, peers.map((x) => x.endpoint).filter((e) => !side.includes(e)));
        } else if (action === 4) {
          c.net.setDropRate(rng.chance(0.5) ? 0.05 : 0);
          c.net.setDuplicateRate(rng.chance(0.5) ? 0.05 : 0);
        } else {
          c.net.heal();
        }
        await sleep(150 + rng.int(250));
      }
      stop = true;
      await Promise.all(writers);
      c.net.heal();
      c.net.setDropRate(0);
      c.net.setDuplicateRate(0);
      for (const key of down) await start(key);
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
      assert.equal(twoLeaders, "", `seed ${seed}: two leaders in one term`);
      assert.ok(quiescedSeen > 0, `seed ${seed}: no node ever quiesced`);
    } finally {
      stop = true;
      await sampler;
      await c.stopAll();
    }
  });
}
