/**
 * Randomized check of the lease safety invariant: while a leader's lease is valid, no leader
 * of a higher term exists. Schedules mix leadership transfers (whose TimeoutNow may arrive
 * late), delayed and dropped messages, partitions and ticks; every node ticks at the same rate.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ChunkChain } from "../../src/bytes/chunk_chain.ts";
import { Configuration } from "../../src/conf/configuration.ts";
import { PeerId } from "../../src/conf/peer_id.ts";
import type { Message } from "../../src/core/types.ts";
import { Prng } from "../../src/util/prng.ts";
import { ManualNet } from "./manual_net.ts";

const SEEDS = Number(globalThis.process?.env?.LEASE_SEEDS ?? "") || 1200;
const STEPS = 400;

/** Totals over all seeds, to check that the schedules exercise what they should. */
const seen = { leases: 0, leaderChanges: 0, restarts: 0, confChanges: 0 };

function run(seed: number): void {
  const rnd = new Prng(seed);
  const n = rnd.chance(0.5) ? 3 : 5;
  const net = new ManualNet(n, { leaseEnabled: true, electionTick: 10 }, undefined, seed);
  const ids = net.ids;
  let held: Message[] = [];
  let cut: string[] = [];
  const trace: string[] = [];
  for (let step = 0; step < STEPS; step++) {
    const r = rnd.next();
    if (r < 0.05) {
      const leader = ids.find((id) => net.core(id).isLeader());
      if (leader !== undefined) {
        const target = ids[rnd.int(n)]!;
        const st = net.core(leader).transferLeader(target);
        trace.push(`${step} transfer ${leader} -> ${target}: ${st}`);
      }
    } else if (r < 0.08) {
      cut = rnd.chance(0.5) ? [] : [ids[rnd.int(n)]!];
      trace.push(`${step} cut ${cut}`);
    } else if (r < 0.09) {
      const id = ids[rnd.int(n)]!;
      net.restart(id);
      held = held.filter((m) => m.to !== id && m.from !== id);
      seen.restarts++;
      trace.push(`${step} restart ${id}`);
    } else if (r < 0.095) {
      const id = ids[rnd.int(n)]!;
      net.core(id).campaign();
      trace.push(`${step} campaign ${id}`);
    } else if (r < 0.1) {
      const leader = ids.find((id) => net.core(id).isLeader());
      if (leader !== undefined && rnd.chance(0.2)) {
        // remove a voter (maybe the leader itself) or bring everyone back
        const core = net.core(leader);
        const voters = ids.filter((id) => core.configuration().peers.contains(PeerId.parse(id)));
        const peers = voters.length === n ? voters.filter((id) => id !== ids[rnd.int(n)]) : ids;
        const st = core.proposeConfChange({ peers: new Configuration(peers) });
        trace.push(`${step} conf ${peers}: ${st}`);
        if (st.ok()) seen.confChanges++;
      } else if (leader !== undefined) {
        net.core(leader).propose(ChunkChain.from(`w${step}`));
      }
    } else if (r < 0.5) {
      for (const id of ids) net.core(id).tick();
      net.drain();
    }
    // hold back some messages (TimeoutNow more often), release held ones later
    const now = net.queue;
    net.queue = [];
    for (const m of now) {
      if (cut.includes(m.from) || cut.includes(m.to) || rnd.chance(0.05)) continue;
      if (rnd.chance(m.type === "TimeoutNow" ? 0.5 : 0.1)) held.push(m);
      else net.queue.push(m);
    }
    if (held.length > 0 && rnd.chance(0.1)) {
      net.queue.push(...held);
      trace.push(`${step} release ${held.map((m) => m.type).join(",")}`);
      held = [];
    }
    const before = ids.find((id) => net.core(id).isLeader());
    net.deliver();
    const after = ids.find((id) => net.core(id).isLeader());
    if (after !== undefined && after !== before) seen.leaderChanges++;
    for (const a of ids) {
      const la = net.core(a);
      if (!la.isLeader() || !la.isLeaderLeaseValid()) continue;
      seen.leases++;
      for (const b of ids) {
        const lb = net.core(b);
        if (lb.isLeader() && lb.term() > la.term()) {
          assert.fail(
            `seed ${seed} step ${step}: ${a} holds a lease in term ${la.term()} while ${b} ` +
              `leads term ${lb.term()}\n${trace.slice(-15).join("\n")}`,
          );
        }
      }
    }
  }
}

describe("lease safety (randomized)", () => {
  it(`no leader of a higher term exists while a lease is valid (${SEEDS} seeds)`, () => {
    for (let seed = 1; seed <= SEEDS; seed++) run(seed);
    assert.ok(seen.leases > SEEDS * 10, `leases held: ${seen.leases}`);
    assert.ok(seen.leaderChanges > SEEDS * 2, `leader changes: ${seen.leaderChanges}`);
    assert.ok(seen.restarts > 0 && seen.confChanges > 0, JSON.stringify(seen));
  });
});
