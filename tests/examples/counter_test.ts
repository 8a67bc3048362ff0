/**
 * The counter example (examples/counter) as real processes, Deno and Bun mixed: fetch_add from
 * concurrent clients returns consistent previous values, GET is served by the leader only,
 * followers redirect, bad input is refused, the group survives a SIGKILLed leader, a restarted
 * node catches up, a restart loads the snapshot; with `--follower_reads` followers serve GET
 * (and the client reads from every node); `npm start`'s script runs and cleans up.
 */

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { cli } from "../../mod.ts";
import {
  type AddOutcome,
  bin,
  checkHistory,
  CounterCluster,
  fetchAdd,
  get,
  GROUP,
  post,
  raftStat,
  rawGet,
  ROOT,
  statNumber,
  until,
} from "./_counter_cluster.ts";

const SECRET = "counter-test-secret";

/** `count` adds of random deltas (1..100) from `workers` concurrent clients. */
async function addMany(
  endpoints: () => string[],
  count: number,
  workers: number,
  during?: (acked: number) => void,
): Promise<AddOutcome[]> {
  const out: AddOutcome[] = [];
  const hint = { leader: null as string | null };
  let started = 0;
  let acked = 0;
  await Promise.all(Array.from({ length: workers }, async () => {
    while (started < count) {
      started++;
      const o = await fetchAdd(endpoints, 1 + Math.floor(Math.random() * 100), hint);
      out.push(o);
      if (o.kind === "ok") during?.(++acked);
    }
  }));
  return out;
}

async function valueOf(cluster: CounterCluster): Promise<number> {
  const leader = await cluster.leader();
  return (await get(leader.endpoint)).body.value as number;
}

test("checkHistory catches overlapping previous values, lost adds and phantom adds", () => {
  const ok = (delta: number, old: number): AddOutcome => ({ kind: "ok", delta, old });
  assert.equal(checkHistory([ok(2, 0), ok(3, 2)], 5), null);
  assert.match(checkHistory([ok(2, 0), ok(3, 1)], 5)!, /overlaps/); // two adds saw overlapping values
  assert.match(checkHistory([ok(2, 0), ok(3, 2)], 4)!, /below/); // an acknowledged add was lost
  assert.match(checkHistory([ok(2, 0), ok(3, 2)], 6)!, /gaps/); // an add nobody made
  assert.equal(checkHistory([ok(2, 0), { kind: "unknown", delta: 1, why: "" }, ok(3, 3)], 6), null);
});

test("counter: fetch_add, linearizable GET, redirects, bad input, leader SIGKILL, restart and catch-up", async () => {
  const dir = mkdtempSync(join(tmpdir(), "webraft-counter-"));
  const cluster = await CounterCluster.start({
    runtimes: ["deno", "bun", "deno"],
    dir,
    secret: SECRET,
  });
  try {
    const all = () => cluster.servers.filter((s) => s.alive()).map((s) => s.endpoint);
    const leader = await cluster.leader();
    assert.deepEqual((await get(leader.endpoint)).body, { success: true, value: 0 });

    // Bad input: 400 with a reason, nothing applied.
    for (
      const body of [
        "{",
        "null",
        "[]",
        '{"delta":1.5}',
        '{"delta":"1"}',
        '{"x":1}',
        `{"delta":${2 ** 53}}`,
        `{"delta":1,"pad":"${"x".repeat(10_000)}"}`, // over the 4 KiB body limit
      ]
    ) {
      const r = await post(leader.endpoint, body);
      assert.equal(r.status, 400, body);
      assert.equal(r.body.success, false);
      assert.equal(typeof r.body.error, "string");
    }

    // Followers answer 503 and point at the leader, for reads and writes.
    const followers = cluster.servers.filter((s) => s !== leader);
    for (const f of followers) {
      const g = await until("the follower to know the leader", async () => {
        const r = await get(f.endpoint);
        return r.body.redirect === null ? null : r;
      });
      assert.deepEqual(g, { status: 503, body: { success: false, redirect: leader.endpoint } });
      const p = await post(f.endpoint, '{"delta":1}');
      assert.deepEqual(p, { status: 503, body: { success: false, redirect: leader.endpoint } });
    }
    assert.equal(await valueOf(cluster), 0, "bad input or a follower changed the value");

    // Concurrent clients: previous values are a permutation of the prefix sums.
    const first = await addMany(all, 120, 6);
    assert.ok(first.every((o) => o.kind === "ok"), "an add failed with a stable leader");
    const v1 = await valueOf(cluster);
    assert.equal(checkHistory(first, v1), null);
    assert.equal(v1, first.reduce((s, o) => s + o.delta, 0));

    // SIGKILL the leader while clients keep adding; the survivors continue.
    const victim = await cluster.leader();
    const victimIndex = cluster.servers.indexOf(victim);
    let killed: Promise<void> | null = null;
    const second = await addMany(all, 150, 6, (acked) => {
      if (acked === 30) killed = victim.kill();
    });
    await killed;
    assert.equal(victim.alive(), false);
    const newLeader = await cluster.leader();
    assert.notEqual(newLeader, victim);
    const outcomes = [...first, ...second];
    assert.ok(
      second.filter((o) => o.kind === "ok").length >= 100,
      `too few adds after the kill: ${JSON.stringify(second.filter((o) => o.kind !== "ok"))}`,
    );
    const v2 = await valueOf(cluster);
    assert.equal(checkHistory(outcomes, v2), null, `history ${JSON.stringify(outcomes)}`);

    // Restart the killed node from its data: it catches up with the leader.
    const back = await cluster.restart(victimIndex);
    await addMany(all, 20, 2).then((o) => outcomes.push(...o));
    const v3 = await valueOf(cluster);
    assert.equal(checkHistory(outcomes, v3), null);
    const committed = statNumber(await raftStat(newLeader.endpoint), "lastCommittedIndex");
    await until("the restarted node to apply everything committed", async () => {
      const applied = statNumber(await raftStat(back.endpoint), "knownAppliedIndex");
      return applied >= committed ? true : null;
    });
    // Its state machine is right: make it the leader and read through it.
    await cli.transferLeader(GROUP, cluster.conf, `${back.endpoint}:0`, {
      secret: SECRET,
      timeoutMs: 10_000,
    });
    const readBack = await until("the restarted node to lead", async () => {
      const r = await get(back.endpoint).catch(() => null);
      return r?.status === 200 ? r : null;
    });
    assert.equal(readBack.body.value, v3);
  } finally {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("counter: snapshots (--snapshot_interval 1) are loaded on restart and keep the value", async () => {
  const dir = mkdtempSync(join(tmpdir(), "webraft-counter-snap-"));
  const cluster = await CounterCluster.start({
    runtimes: ["bun", "deno", "deno"],
    dir,
    extraArgs: ["--snapshot_interval=1"],
  });
  try {
    const all = () => cluster.servers.filter((s) => s.alive()).map((s) => s.endpoint);
    const outcomes = await addMany(all, 60, 4);
    const value = await valueOf(cluster);
    assert.equal(checkHistory(outcomes, value), null);
    assert.equal(value, outcomes.reduce((s, o) => s + o.delta, 0));
    // Every node snapshots what it applied within a couple of intervals.
    const committed = statNumber(
      await raftStat((await cluster.leader()).endpoint),
      "lastCommittedIndex",
    );
    await until("every node to snapshot the last write", async () => {
      for (const s of cluster.servers) {
        if (statNumber(await raftStat(s.endpoint), "lastSnapshotIndex") < committed) return null;
      }
      return true;
    });
    for (const s of cluster.servers) {
      // Deno's child_process reports a child it signalled as killed even when it exited 0:
      // the server's last line says it stopped cleanly.
      assert.ok([0, "SIGTERM"].includes(await s.stop()), s.stderr);
      assert.match(s.stderr, /\] stopped\n$/);
    }
    for (let i = 0; i < cluster.servers.length; i++) await cluster.restart(i);
    for (const s of cluster.servers) {
      const m = /loaded snapshot at index (\d+) term \d+: value (-?\d+)/.exec(s.stderr);
      assert.ok(m !== null, `no snapshot loaded by ${s.endpoint}: ${s.stderr}`);
      assert.ok(Number(m[1]) >= committed);
    }
    assert.equal(await valueOf(cluster), value);
    const more = await addMany(all, 10, 2);
    assert.equal(checkHistory([...outcomes, ...more], await valueOf(cluster)), null);
  } finally {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("counter: a deposed leader (SIGSTOP, then SIGCONT) never serves a stale GET", async () => {
  const dir = mkdtempSync(join(tmpdir(), "webraft-counter-stale-"));
  const cluster = await CounterCluster.start({ runtimes: ["deno", "deno", "bun"], dir });
  try {
    const all = () => cluster.servers.filter((s) => s.alive()).map((s) => s.endpoint);
    const old = await cluster.leader();
    const before = await addMany(all, 20, 2);
    const v1 = await valueOf(cluster);
    assert.equal(checkHistory(before, v1), null);

    const signal = (sig: NodeJS.Signals) => process.kill(old.child.pid!, sig); // not child.kill: Deno's sends nothing after the first
    signal("SIGSTOP"); // frozen: it still believes it leads
    const others = cluster.servers.filter((s) => s !== old);
    const fresh = await cluster.leader(others);
    const after = await addMany(() => others.map((s) => s.endpoint), 20, 2);
    const v2 = (await get(fresh.endpoint)).body.value as number;
    assert.ok(v2 > v1);

    // Reads queued on the frozen node while it still thinks it leads; then it wakes up.
    const reads = Array.from({ length: 20 }, () => rawGet(old.port).catch((e) => e as Error));
    await new Promise((r) => setTimeout(r, 200)); // let the requests reach its socket
    signal("SIGCONT");
    for (const r of await Promise.all(reads)) {
      if (r instanceof Error) throw r;
      if (r.status === 200) assert.equal(r.body.value, v2, "a stale read");
      else assert.equal(r.status, 503);
    }
    assert.equal(checkHistory([...before, ...after], await valueOf(cluster)), null);
  } finally {
    for (const s of cluster.servers) if (s.alive()) process.kill(s.child.pid!, "SIGCONT");
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("counter --follower_reads: followers serve GET with every acknowledged add", async () => {
  const dir = mkdtempSync(join(tmpdir(), "webraft-counter-freads-"));
  const cluster = await CounterCluster.start({
    runtimes: ["deno", "bun", "deno"],
    dir,
    extraArgs: ["--follower_reads"],
  });
  try {
    const all = () => cluster.servers.map((s) => s.endpoint);
    const adds = await addMany(all, 30, 3);
    assert.ok(adds.every((o) => o.kind === "ok"), "an add failed with a stable leader");
    const value = adds.reduce((s, o) => s + o.delta, 0);
    const followers: string[] = [];
    for (const s of cluster.servers) {
      // Every add was acknowledged before this read began: a 200 must include all of them.
      const r = await until(`${s.endpoint} to serve a GET`, async () => {
        const a = await get(s.endpoint);
        return a.status === 200 ? a : null;
      });
      assert.deepEqual(r.body, { success: true, value }, `a stale read from ${s.endpoint}`);
      if ((await raftStat(s.endpoint)).state === "FOLLOWER") followers.push(s.endpoint);
    }
    assert.equal(followers.length, 2, "both followers served the read");

    // The client's --follower_reads sends GETs to every node in turn.
    const client = spawn(bin("deno"), [
      "run",
      "-A",
      join(ROOT, "examples", "counter", "client.ts"),
      `--conf=${cluster.conf}`,
      "--threads=2",
      "--duration=2",
      "--add_percentage=50",
      "--follower_reads",
    ], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
    let out = "";
    client.stdout!.on("data", (d) => out += d);
    client.stderr!.on("data", (d) => out += d);
    const code = await new Promise<number | string>((resolve) =>
      client.once("exit", (c, sig) => resolve(c ?? sig ?? -1))
    );
    assert.equal(code, 0, out);
    assert.match(out, /Summary: [1-9]\d* ok/);
  } finally {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A base port with three free ports after it (random in 20000–60000). */
async function freePortBase(): Promise<number> {
  const probe = (port: number) =>
    new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once("error", () => resolve(false));
      srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
    });
  for (;;) {
    const base = 20000 + Math.floor(Math.random() * 40000);
    if ((await probe(base)) && (await probe(base + 1)) && (await probe(base + 2))) return base;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test("npm start's script runs a cluster and the client for --duration, then stops everything", async () => {
  const dir = mkdtempSync(join(tmpdir(), "webraft-start-"));
  const base = await freePortBase();
  const child = spawn("node", [
    join(ROOT, "scripts", "start.mjs"),
    "--duration=5",
    `--port_base=${base}`,
    `--data_dir=${dir}`,
  ], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
  let out = "";
  child.stdout!.on("data", (d) => out += d);
  child.stderr!.on("data", (d) => out += d);
  const code = await new Promise<number | string>((resolve) =>
    child.once("exit", (c, s) => resolve(c ?? s ?? -1))
  );
  try {
    assert.equal(code, 0, out);
    for (let i = 0; i < 3; i++) {
      assert.ok(out.includes(`http://127.0.0.1:${base + i}/raft_stat`), out);
    }
    assert.match(out, /ops\/s\s+p50 [\d.]+ ms\s+p99 [\d.]+ ms\s+leader 127\.0\.0\.1:\d+/);
    assert.match(out, /Summary: [1-9]\d* ok/);
    const pids = [...new Set([...out.matchAll(/pid (\d+)/g)].map((m) => Number(m[1])))];
    assert.equal(pids.length, 4, `3 nodes and the client: ${out}`);
    assert.deepEqual(pids.filter(pidAlive), [], "a child outlived npm start");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
