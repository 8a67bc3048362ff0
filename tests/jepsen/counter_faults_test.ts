/**
 * Process-level Jepsen-style test of the counter example (issue 12): three real servers, Deno
 * and Bun mixed, `local://` storage, loopback sockets through a partitioning proxy; six clients
 * do `fetch_add(1)` and linearizable GETs while a seeded nemesis kills, pauses and partitions
 * nodes (see `_nemesis.ts`). At the end everything is healed, a final GET goes through the
 * leader, and the whole history must be linearizable (`checkCounter`), which also proves every
 * acknowledged increment survived.
 *
 * `FAULT_SEED=<n>` replays a schedule; `FAULT_SECONDS=<n>` injects faults for longer (default
 * 45 s per runtime); `FAULT_KINDS=pause-leader,kill-all` restricts the faults to those kinds
 * (names in `_nemesis.ts`). On failure the seed, the saved history's path and the servers' stderr
 * tails are printed, and the history and data directories are kept.
 * Under Bun, scripts/test.mjs runs tests with a 600 s timeout: for FAULT_SECONDS above ~500
 * run `bun test --timeout <ms> tests/jepsen/counter_faults_test.ts` directly.
 *
 * Timer skew: one node (chosen by the seed) runs its clock and timers at a rate between 0.6
 * and 1.6 of real time for the whole run (`--clock_rate`, through the node's `Clock` port),
 * inside the (0.5, 2) range the lease's drift margin covers at the default
 * `maxClockDriftMs` (see `Node#leaseConfirmedByClock`). Reads use the leader lease
 * (`--enable_leader_lease`) in the Bun run and ReadIndex with a quorum round trip in the Deno
 * run, so CI covers both; `FAULT_LEASE=1|0` forces either; `FAULT_CLOCK_RATE=r` sets the rate
 * (below 0.5 with the lease, stale reads are expected: the test then shows it can fail). (Wall-clock jumps are not tested:
 * the library reads only the monotonic `performance.now()`.)
 *
 * Follower reads: with `FAULT_FOLLOWER_READS=1` the servers run with `--follower_reads` and every
 * GET goes to a random node, so followers serve most reads (asking the leader for the read index,
 * then waiting for their own apply); the same checkers judge the history. A second, shorter
 * case does this in CI on Deno only (`FAULT_FOLLOWER_SECONDS`, default 20 s of faults).
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { Runtime } from "../examples/_counter_cluster.ts";
import { checkCounter, type CounterInput } from "./counter_checker.ts";
import { History } from "./history.ts";
import { FaultCluster } from "./_fault_cluster.ts";
import { runClients } from "./_counter_clients.ts";
import { type Fault, FAULTS, prng, runNemesis } from "./_nemesis.ts";
import { rawRequest } from "./_raw_http.ts";

const ELECTION_TIMEOUT_MS = 1000;
const CLIENTS = 6;

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be an integer >= 0`);
  return n;
}

test("counter under faults (kill, pause, kill-all, partitions): the history is linearizable", async () => {
  await runFaultTest({
    seconds: envNumber("FAULT_SECONDS", 45),
    followerReads: envNumber("FAULT_FOLLOWER_READS", 0) !== 0,
  });
});

test(
  "counter under faults with follower reads (GETs served by any node): the history is linearizable",
  // one runtime is enough for CI: the servers are mixed either way
  { skip: "Deno" in globalThis ? false : "runs on Deno only" },
  async () => {
    await runFaultTest({
      seconds: envNumber("FAULT_FOLLOWER_SECONDS", 20),
      followerReads: true,
    });
  },
);

async function runFaultTest(
  options: { seconds: number; followerReads: boolean },
): Promise<void> {
  const { seconds, followerReads } = options;
  const seed = envNumber("FAULT_SEED", Math.floor(Math.random() * 2 ** 31));
  const kinds = (process.env.FAULT_KINDS ?? "").split(",").filter((k) => k !== "") as Fault[];
  for (const k of kinds) {
    if (!FAULTS.includes(k)) throw new Error(`FAULT_KINDS: unknown "${k}" (${FAULTS.join(", ")})`);
  }
  const onDeno = "Deno" in globalThis;
  const runtimes: Runtime[] = onDeno ? ["deno", "bun", "deno"] : ["bun", "deno", "bun"];
  const tag = `counter faults [${onDeno ? "deno" : "bun"}${
    followerReads ? ", follower reads" : ""
  }]`;
  const lease = envNumber("FAULT_LEASE", onDeno ? 0 : 1) !== 0;
  const setup = prng(seed ^ 0x9e3779b9);
  const skewed = Math.floor(setup() * runtimes.length);
  const seededRate = Math.round((0.6 + setup() * 1.0) * 100) / 100;
  const rate = Number(process.env.FAULT_CLOCK_RATE || seededRate);
  console.log(
    `${tag}: FAULT_SEED=${seed} FAULT_SECONDS=${seconds}${
      kinds.length > 0 ? ` FAULT_KINDS=${kinds.join(",")}` : ""
    } servers ${runtimes.join(",")}; reads by ${lease ? "leader lease" : "ReadIndex"}${
      followerReads ? " (FAULT_FOLLOWER_READS=1: GETs to any node)" : ""
    }; ` +
      `node ${skewed}'s clock at rate ${rate}`,
  );

  const keep = mkdtempSync(join(tmpdir(), "webraft-jepsen-"));
  const dir = join(keep, "data");
  const history = new History<CounterInput, number>();
  let cluster: FaultCluster;
  try {
    cluster = await FaultCluster.start({
      runtimes,
      dir,
      electionTimeoutMs: ELECTION_TIMEOUT_MS,
      followerReads,
      nodeArgs: (i) => [
        ...(lease ? ["--enable_leader_lease"] : []),
        ...(i === skewed ? [`--clock_rate=${rate}`] : []),
      ],
    });
  } catch (e) {
    rmSync(keep, { recursive: true, force: true });
    throw e;
  }
  let passed = false;
  try {
    await cluster.leader();
    const stop = new AbortController();
    const random = prng(seed);
    const clientRandom = prng(seed ^ 0x5bd1e995);
    const clients = runClients(cluster, history, {
      clients: CLIENTS,
      signal: stop.signal,
      random: clientRandom,
      followerReads,
    });
    clients.catch(() => {}); // awaited below; a client's error must not surface as unhandled first
    let faults;
    try {
      faults = await runNemesis(cluster, {
        durationMs: seconds * 1000,
        electionTimeoutMs: ELECTION_TIMEOUT_MS,
        random,
        ...(kinds.length > 0 ? { kinds } : {}),
        log: (line) => console.log(`${tag}: ${line}`),
      });
      // A quiet moment after the last fault, then the clients stop.
      await cluster.leader();
      await new Promise((r) => setTimeout(r, 1000));
    } finally {
      stop.abort();
    }
    const stats = await clients;

    // The final read, after every other operation returned.
    const finalProcess = 1_000_000;
    let final: number | null = null;
    for (let attempt = 0; final === null; attempt++) {
      assert.ok(attempt < 100, "the final GET kept failing");
      const leader = cluster.nodes[await cluster.leader()]!;
      const op = history.invoke(finalProcess, { f: "get" });
      const r = await rawRequest(leader.privatePort, "GET", "/counter", null, 10_000);
      if (r.kind === "answer" && r.status === 200 && typeof r.body.value === "number") {
        op.ok(r.body.value);
        final = r.body.value;
      } else {
        op.fail();
      }
    }

    const ops = history.operations();
    const t0 = performance.now();
    const verdict = checkCounter(ops);
    const checkMs = performance.now() - t0;
    const faultList = Object.entries(faults!).map(([k, v]) => `${k} ${v}`).join(", ");
    console.log(
      `${tag}: ${ops.length} operations; add ok ${stats.add.ok} fail ${stats.add.fail} ` +
        `info ${stats.add.info}; get ok ${stats.get.ok} fail ${stats.get.fail} ` +
        `info ${stats.get.info}; final value ${final}; proxy resets ${cluster.proxy.resets}; ` +
        `faults: ${faultList}; checker ${verdict.method} ${checkMs.toFixed(1)} ms`,
    );
    assert.equal(verdict.ok, true, "message" in verdict ? verdict.message : "");
    assert.ok(
      final >= stats.add.ok && final <= stats.add.ok + stats.add.info,
      `final value ${final} outside [ok adds ${stats.add.ok}, ok + info adds ${
        stats.add.ok + stats.add.info
      }]`,
    );
    assert.ok(stats.add.ok > 0 && stats.get.ok > 0, "the clients made no progress");
    passed = true;
  } finally {
    if (!passed) {
      const path = join(keep, "history.json");
      await history.save(path).catch(() => {});
      console.log(
        `${tag}: FAILED with FAULT_SEED=${seed}; history ${path}; data ${dir}\n` +
          cluster.stderrTails(),
      );
    }
    await cluster.stop();
    if (passed) rmSync(keep, { recursive: true, force: true });
  }
}
