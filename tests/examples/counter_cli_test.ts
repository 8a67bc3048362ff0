/**
 * Operating the counter example with the real `webraft` tool, as an operator would: real
 * server processes (Deno and Bun) with a secret, every membership verb through
 * `node bin/webraft.mjs`, and the counter's value checked after each step.
 *
 * add_peer of a 4th node that catches up by snapshot, transfer_leader to it, snapshot on a
 * follower, remove_peer, change_peers (joint: one out, a 5th in), and reset_peer on the last
 * survivor after SIGKILLing the other two.
 */

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  type AddOutcome,
  checkHistory,
  CounterCluster,
  CounterServer,
  fetchAdd,
  freePorts,
  get,
  raftStat,
  ROOT,
  type Runtime,
  statNumber,
  until,
} from "./_counter_cluster.ts";

const SECRET = "counter-cli-secret";
const GROUP = "Counter";

/** Runs the real tool; resolves with its exit code and output. */
function webraft(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const child = spawn(process.execPath, [join(ROOT, "bin", "webraft.mjs"), ...args], {
    cwd: ROOT,
    env: { ...process.env, WEBRAFT_SECRET: SECRET, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d) => out += d);
  child.stderr!.on("data", (d) => err += d);
  return new Promise((resolve) =>
    child.once("close", (code) => resolve({ code: code ?? -1, out: out.trim(), err: err.trim() }))
  );
}

async function ok(args: string[]): Promise<string> {
  const r = await webraft(args);
  assert.equal(r.code, 0, `webraft ${args.join(" ")} failed: ${r.err}`);
  return r.out;
}

const peerOf = (s: CounterServer) => `127.0.0.1:${s.port}:0`;

/** Starts one more counter server that waits to be added (empty --conf). */
async function startSpare(runtime: Runtime, dir: string): Promise<CounterServer> {
  const [port] = await freePorts(1);
  const s = new CounterServer(runtime, port!, [
    `--port=${port}`,
    "--conf=",
    `--data_path=${join(dir, String(port))}`,
    "--election_timeout_ms=1000",
    "--snapshot_interval=1",
  ], { WEBRAFT_SECRET: SECRET });
  await s.ready();
  return s;
}

test("counter operated with the webraft tool: add, transfer, snapshot, remove, change, reset", async () => {
  const dir = mkdtempSync(join(tmpdir(), "webraft-counter-cli-"));
  const cluster = await CounterCluster.start({
    runtimes: ["deno", "bun", "deno"],
    dir,
    secret: SECRET,
    extraArgs: ["--snapshot_interval=1"],
  });
  const extra: CounterServer[] = [];
  const outcomes: AddOutcome[] = [];
  const members = new Set<CounterServer>(cluster.servers);
  const live = () => [...members].filter((s) => s.alive()).map((s) => s.endpoint);
  const hint = { leader: null as string | null };
  const add = async (n: number) => {
    for (let i = 0; i < n; i++) outcomes.push(await fetchAdd(live, 1, hint));
  };
  const confOf = () => [...members].map(peerOf).join(",");
  /** The value through the leader, checked against every acknowledged add. */
  const checkValue = async (what: string) => {
    const leader = await until(`a leader (${what})`, async () => {
      for (const e of live()) {
        const r = await get(e).catch(() => null);
        if (r?.status === 200) return r;
      }
      return null;
    });
    const value = leader.body.value as number;
    assert.equal(checkHistory(outcomes, value), null, `${what}: value ${value}`);
    return value;
  };
  try {
    await add(30);
    // Two snapshot intervals with writes in between: the log before the first is dropped.
    const first = cluster.servers[0]!;
    await until("the log to be compacted", async () => {
      await add(2);
      const stat = await raftStat(first.endpoint);
      return statNumber(stat, "lastSnapshotIndex") > 0 &&
          (stat.storage as { first_index: number }).first_index > 1
        ? true
        : null;
    });
    await checkValue("before add_peer");

    // add_peer: a 4th node (Bun) joins and catches up by snapshot.
    const fourth = await startSpare("bun", dir);
    extra.push(fourth);
    const added = await ok([
      "add_peer",
      "--group",
      GROUP,
      "--peer",
      peerOf(fourth),
      "--conf",
      confOf(),
    ]);
    assert.match(added, /changed from .* to .*/);
    members.add(fourth);
    await add(5);
    await until("the 4th node to load a snapshot and catch up", async () => {
      const leaderStat = await raftStat(
        (await until("a leader", async () => {
          for (const s of members) {
            if ((await raftStat(s.endpoint).catch(() => null))?.state === "LEADER") return s;
          }
          return null;
        })).endpoint,
      );
      const mine = await raftStat(fourth.endpoint);
      return /loaded snapshot/.test(fourth.stderr) &&
          statNumber(mine, "knownAppliedIndex") >= statNumber(leaderStat, "lastCommittedIndex")
        ? true
        : null;
    });

    // transfer_leader to the 4th node; it then serves the value.
    const moved = await ok([
      "transfer_leader",
      "--group",
      GROUP,
      "--peer",
      peerOf(fourth),
      "--conf",
      confOf(),
    ]);
    assert.match(moved, /transferred|already the leader/);
    await until(
      "the 4th node to lead",
      async () => (await get(fourth.endpoint)).status === 200 || null,
    ).catch((e) => {
      throw new Error(
        `${e}\n4th: ${fourth.stderr}\n${cluster.servers.map((s) => s.stderr).join("\n")}`,
      );
    });
    hint.leader = fourth.endpoint;
    await add(5);
    assert.equal(
      (await get(fourth.endpoint)).body.value,
      await checkValue("after transfer_leader"),
    );

    // snapshot on a follower.
    const follower = cluster.servers[1]!;
    // The periodic snapshot (--snapshot_interval 1) may be saving: EBUSY, try again.
    await until("a snapshot on the follower", async () => {
      const r = await webraft(["snapshot", "--group", GROUP, "--peer", peerOf(follower)]);
      if (r.code === 0) return true;
      assert.match(r.err, /EBUSY/, r.err);
      return null;
    });
    assert.ok(statNumber(await raftStat(follower.endpoint), "lastSnapshotIndex") > 0);

    // remove_peer: the 3rd original node leaves, then stops.
    const leaving = cluster.servers[2]!;
    await ok(["remove_peer", "--group", GROUP, "--peer", peerOf(leaving), "--conf", confOf()]);
    members.delete(leaving);
    await leaving.stop();
    await add(5);
    await checkValue("after remove_peer");

    // change_peers: {A, B, D} -> {A, D, E}, one out and one in (joint consensus).
    const fifth = await startSpare("deno", dir);
    extra.push(fifth);
    const out = cluster.servers[1]!;
    const next = [cluster.servers[0]!, fourth, fifth];
    const changed = await ok([
      "change_peers",
      "--group",
      GROUP,
      "--conf",
      confOf(),
      "--new_peers",
      next.map(peerOf).join(","),
    ]);
    assert.match(changed, /changed from .* to .*/);
    members.delete(out);
    members.add(fifth);
    await out.stop();
    await add(5);
    const settled = await checkValue("after change_peers");

    // reset_peer: once every member applied the same index, SIGKILL two; the survivor is
    // forced into a one-node configuration and serves every acknowledged add.
    await until("every member to apply the last write", async () => {
      const stats = await Promise.all(next.map((s) => raftStat(s.endpoint)));
      const applied = stats.map((s) => statNumber(s, "knownAppliedIndex"));
      return applied.every((a) => a === applied[0]) ? true : null;
    });
    const [survivor, ...doomed] = next;
    for (const s of doomed) {
      await s.kill();
      members.delete(s);
    }
    await ok([
      "reset_peer",
      "--group",
      GROUP,
      "--peer",
      peerOf(survivor!),
      "--new_peers",
      peerOf(survivor!),
    ]);
    hint.leader = survivor!.endpoint;
    assert.equal(await checkValue("after reset_peer"), settled);
    await add(3);
    await checkValue("writes after reset_peer");
  } finally {
    await Promise.all([...cluster.servers, ...extra].map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
});
