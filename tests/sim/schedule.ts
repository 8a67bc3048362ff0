/**
 * One randomized schedule: a chaos phase (crashes, partitions, one-way links, drops,
 * duplicates, reordering, stale and shortened AppendEntries, late InstallSnapshots,
 * snapshots, membership changes, transfers, reads) or a directed Figure 8 phase (a leader
 * replicates to a minority and crashes, another leader takes over in a higher term, …),
 * then a liveness phase that must commit a new entry within a bounded simulated time, and a
 * steady-state phase in which a follower leaves and rejoins without raising any term.
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
  /** Which phase drove the schedule. */
  mode: "chaos" | "figure8";
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
  const mode = pick.chance(0.35) ? "figure8" : "chaos";
  // Ready loop shape: like src/node/node.ts, the core keeps stepping messages and ticks
  // while a Ready is being persisted; a lagging loop takes Readies rarely
  // lease-focused schedules: leases on, frequent transfers whose TimeoutNow often comes late
  const leaseFocus = mode === "chaos" && pick.chance(0.25);
  const opts = {
    seed,
    voters,
    spares,
    readyLag: pick.pick([0, 0.3, 0.6, 0.85]), // in the chaos and Figure 8 phases
    interleave: pick.pick([0, 0.3, 1]),
    delay: pick.pick<[number, number]>([[1, 6], [1, 6], [1, 3], [1, 14]]),
    persistDelay: pick.pick<[number, number]>([[0, 3], [0, 3], [0, 8], [2, 12]]),
    // from its own stream, so that the schedules of synchronous seeds stay as they were
    asyncApply: new Prng(seed * 7919 + 17).chance(0.5),
    core: {
      leaseEnabled: leaseFocus || pick.chance(0.3),
      checkQuorum: pick.chance(0.8),
      catchupMargin: pick.range(1, 20),
      maxEntriesPerMsg: pick.pick([1, 2, 3, 8, 8]),
      maxInflightMsgs: pick.pick([1, 2, 4, 8]),
    },
  };
  const c = new Cluster(opts);
  const rng = c.prng;
  const adversarial = rng.pick([0, 0.01, 0.03, 0.08]);
  c.holdRate = rng.pick([0, 0.5, 1, 1]);
  c.shortenRate = rng.pick([0, 0.02, 0.1]);
  c.lateTimeoutNow = leaseFocus ? 0.5 : rng.pick([0, 0.2]);
  // transfers (often when lease-focused) and elections started by hand (braft vote())
  const transferRate = leaseFocus ? 0.03 : 0.002;
  const stats = { confChanges: 0, snapshots: 0 };
  try {
    if (mode === "chaos") chaos(c, adversarial, transferRate, stats);
    else figure8(c, adversarial, stats);
    liveness(c);
    steadyState(c);
    c.checkAcked();
  } catch (e) {
    const msg = e instanceof Error ? e.stack ?? e.message : String(e);
    throw new Error(
      `Simulation failed for seed ${seed}\nReplay: ${replayCommand(seed)}\n${msg}\n` +
        `mode ${mode}, adversarial ${adversarial}, hold ${c.holdRate}, ` +
        `shorten ${c.shortenRate}, late TimeoutNow ${c.lateTimeoutNow}, ` +
        `options ${JSON.stringify(opts)}`,
    );
  }
  return {
    voters,
    acked: c.acked.size,
    units: c.now,
    confChanges: stats.confChanges,
    snapshots: stats.snapshots,
    events: c.stats,
    mode,
  };
}

/** Random faults of one unit, shared by the chaos and Figure 8 phases. */
function noise(c: Cluster, adversarial: number, stats: { snapshots: number }): void {
  const rng = c.prng;
  if (rng.chance(0.02)) c.read(rng.chance(0.5), rng.chance(0.3));
  if (rng.chance(adversarial)) c.replay("stale");
  if (rng.chance(adversarial)) c.replay("shorten");
  if (rng.chance(adversarial)) c.replay("snapshot");
  if (rng.chance(0.01)) {
    c.snapshot(rng.pick(c.ids), rng.int(4));
    stats.snapshots++;
  }
  if (rng.chance(0.01)) {
    const id = rng.pick(c.ids);
    c.setCold(id, !c.node(id).storage.cold);
  }
}

function chaos(
  c: Cluster,
  adversarial: number,
  transferRate: number,
  stats: { confChanges: number; snapshots: number },
): void {
  const rng = c.prng;
  for (let i = 0; i < 1500; i++) {
    if (rng.chance(0.15)) c.propose();
    noise(c, adversarial, stats);
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
    if (rng.chance(0.003)) c.dupRate = rng.chance(0.5) ? 0 : rng.next() * 0.3;
    if (rng.chance(0.004)) {
      const l = c.leader();
      if (l !== null) {
        const size = rng.range(Math.min(3, c.ids.length), Math.min(7, c.ids.length));
        const shuffled = rng.shuffle([...c.ids]);
        const peers = new Configuration(shuffled.slice(0, size));
        const learners = new Configuration(shuffled.slice(size).filter(() => rng.chance(0.5)));
        const st = c.node(l).core!.proposeConfChange({ peers, learners });
        c.trace.push(`${c.now} change_peers ${peers} on ${l}: ${st}`);
        if (st.ok()) stats.confChanges++;
      }
    }
    if (rng.chance(transferRate / 4)) {
      const id = rng.pick(c.ids);
      c.node(id).core?.campaign();
      c.trace.push(`${c.now} campaign ${id}`);
    }
    if (rng.chance(transferRate)) {
      const l = rng.chance(0.3) ? c.anyLeader() : c.leader();
      if (l !== null) {
        const target = rng.chance(0.3) ? "" : rng.pick(c.ids);
        const st = c.node(l).core!.transferLeader(target);
        c.trace.push(`${c.now} transfer ${l} -> ${target || "ANY"}: ${st}`);
      }
    }
    c.step();
  }
}

/**
 * Directed Figure 8 rounds (Raft paper §5.4.2): a leader replicates to a minority only,
 * then crashes or is cut off; the rest elect a leader in a higher term, which may write
 * and crash in turn; old leaders come back and re-replicate their old-term entries.
 */
function figure8(c: Cluster, adversarial: number, stats: { snapshots: number }): void {
  const rng = c.prng;
  const rounds = rng.range(4, 10);
  const run = (units: number): void => {
    for (let i = 0; i < units; i++) {
      noise(c, adversarial, stats);
      c.step();
    }
  };
  c.dupRate = rng.pick([0, 0, 0.1, 0.3]);
  for (let r = 0; r < rounds && c.now < 3000; r++) {
    for (let i = 0; i < 400 && c.leader() === null; i++) run(1);
    const l = c.leader();
    if (l === null) continue;
    const conf = c.node(l).core!.configuration();
    const members = [...conf.peers].map((p) => p.key()).filter((id) => id !== l);
    const quorum = (members.length + 1 >> 1) + 1;
    const how = rng.pick(["crash", "cut off", "keeps leading", "keeps leading"]);
    // the leader and at most quorum - 2 followers: a minority (one follower at least when
    // the old leader keeps leading it, so that follower hears both leaders)
    const max = quorum - 2;
    const size = how === "keeps leading" && max > 0 ? rng.range(1, max) : rng.int(max + 1);
    const minority = rng.shuffle(members).slice(0, size);
    c.partition([l, ...minority]);
    for (let k = rng.range(1, 3); k > 0; k--) c.propose();
    run(rng.range(1, 16));
    if (how === "crash") c.crash(l);
    if (how !== "keeps leading") {
      c.heal();
      if (how === "cut off") c.isolate(l);
      if (rng.chance(0.5)) { for (const m of minority) c.isolate(m); }
    }
    for (let i = 0; i < 400; i++) {
      const nl = c.leader();
      if (nl !== null && nl !== l) break;
      // the old leader keeps writing to its minority, which has not heard of the new term
      if (how === "keeps leading" && rng.chance(0.2)) c.propose(undefined, l);
      run(1);
    }
    if (how === "keeps leading") {
      // heal while both leaders' AppendEntries are in flight to the minority, whose slow
      // disks keep Readies in flight, so both reach a core between two ready() calls
      for (const m of minority) if (rng.chance(0.7)) c.node(m).slowDisk = [1, 6];
      for (let i = rng.range(0, 10); i > 0; i--) {
        if (rng.chance(0.8)) c.propose(undefined, l);
        run(1);
      }
      c.heal();
      for (let i = rng.range(0, 10); i > 0; i--) {
        if (rng.chance(0.8)) c.propose(undefined, l);
        run(1);
      }
      for (const m of minority) c.node(m).slowDisk = null;
    }
    const nl = c.leader();
    if (nl !== null && nl !== l && rng.chance(0.5)) {
      // the new leader writes and dies before (most of) it is replicated
      for (let k = rng.range(1, 2); k > 0; k--) c.propose();
      run(rng.range(0, 4));
      c.crash(nl);
    }
    if (rng.chance(0.7)) c.restart(l);
    c.heal();
    for (const m of minority) if (rng.chance(0.3)) c.isolate(m);
    run(rng.range(5, 80));
    for (const id of c.ids) if (c.node(id).core === null && rng.chance(0.5)) c.restart(id);
    if (rng.chance(0.3)) c.heal();
  }
}

/** Heal everything, restart everyone: a new write must commit. */
function liveness(c: Cluster): void {
  c.heal();
  // a healthy network: round trips well within the election timeout (Raft's timing rule)
  c.delay = [1, 6];
  c.persistDelay = [0, 3];
  c.readyLag = Math.min(c.readyLag, 0.3);
  c.holdRate = 0; // a cut link loses messages: none from the chaos phase arrive much later
  c.lateTimeoutNow = 0;
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
}

/**
 * Once a leader is stable and every member caught up, terms do not grow: not while a
 * follower is cut off (pre-vote keeps its term) and not when it rejoins (it does not raise
 * the leader's term). Reads issued meanwhile (lease or ReadIndex) see every acknowledged
 * write.
 */
function steadyState(c: Cluster): void {
  const rng = c.prng;
  let leader = "";
  const stable = c.runUntil(() => {
    const l = c.leader();
    if (l === null) return false;
    const core = c.node(l).core!;
    if (core.isChangingConf() || core.transferee() !== "" || core.commitIndex() === 0) {
      return false;
    }
    if (core.termAt(core.commitIndex()) !== core.term()) return false;
    // voters caught up (a learner fed one entry per round trip may take long)
    for (const id of [...core.configuration().peers].map((p) => p.key())) {
      const f = c.node(id)?.core;
      if (f === null || f === undefined) return false;
      if (f.lastIndex() !== core.lastIndex() || f.commitIndex() !== core.commitIndex()) {
        return false;
      }
    }
    leader = l;
    return true;
  }, 5000);
  if (!stable) c.fail("liveness: no stable leader with caught-up voters within 5000 units");
  const lc = c.node(leader).core!;
  const members = [...lc.configuration().peers].map((p) => p.key()).filter((id) => id !== leader);
  const terms = new Map<string, number>();
  for (const id of c.ids) terms.set(id, c.node(id).core!.term());
  const away = rng.pick(members);
  c.isolate(away);
  const units = rng.range(150, 300);
  for (let i = 0; i < units + 300; i++) {
    if (i === units) c.connect(away);
    if (rng.chance(0.05)) c.propose();
    if (rng.chance(0.03)) c.read(rng.chance(0.5));
    c.step();
    if (c.leader() !== leader) {
      c.fail(`steady state: leader ${leader} lost leadership (${away} away until +${units})`);
    }
    for (const id of c.ids) {
      // a node may catch up to the leader's term (a removed one, say), never pass it
      const t = c.node(id).core!.term();
      if (t > Math.max(terms.get(id)!, lc.term())) {
        c.fail(
          `steady state: ${id}'s term grew ${terms.get(id)} -> ${t} ` +
            `(leader ${leader}; ${away} cut off for ${units} units${
              i >= units ? ", rejoined" : ""
            })`,
        );
      }
    }
  }
}
