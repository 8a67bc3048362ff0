/**
 * Real processes on different runtimes form one group over HttpTransport: one member each under
 * Deno, Bun and Node (from `_member.ts`), on 127.0.0.1, whichever runtime runs this test. They elect a leader and replicate;
 * the leader is SIGKILLed; the survivors elect a new leader, take more writes, and agree on
 * every acknowledged entry, in the same order.
 */

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..", "..");
const MEMBER = join(here, "_member.ts");
const DEADLINE_MS = 60_000;
const GROUP = "mixed";

type Runtime = "deno" | "bun" | "node";

interface Member {
  runtime: Runtime;
  child: ChildProcess;
  port: number;
  peer: string;
  exited: Promise<void>;
}

interface MemberState {
  state: string;
  term: number;
  leader: string | null;
  values: string[];
}

function startMember(runtime: Runtime, secret: string): Promise<Member> {
  const bin = join(root, "node_modules", ".bin", runtime);
  const args = runtime === "deno" ? ["run", "-A", MEMBER] : [MEMBER];
  const child = spawn(bin, args, {
    cwd: root,
    env: { ...process.env, WEBRAFT_TEST_SECRET: secret, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let stderr = "";
  child.stderr!.on("data", (d) => stderr += d);
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(
      () => reject(new Error(`${runtime} member did not print its port: ${stderr}`)),
      DEADLINE_MS,
    );
    child.stdout!.on("data", (d) => {
      out += d;
      const m = /PORT (\d+)/.exec(out);
      if (m === null) return;
      clearTimeout(timer);
      const port = Number(m[1]);
      resolve({ runtime, child, port, peer: `127.0.0.1:${port}:0`, exited });
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${runtime} member exited with ${code} before serving: ${stderr}`));
    });
  });
}

async function post(m: Member, path: string, body: unknown): Promise<Response> {
  return await fetch(`http://127.0.0.1:${m.port}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

async function state(m: Member): Promise<MemberState> {
  const res = await fetch(`http://127.0.0.1:${m.port}/test/state`);
  return await res.json() as MemberState;
}

/** Polls the members (the only events a test can see across processes) until `ok` holds. */
async function until<T>(what: string, probe: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    const got = await probe().catch(() => null);
    if (got !== null) return got;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function leaderOf(members: Member[]): Promise<Member> {
  return await until("a leader", async () => {
    for (const m of members) {
      const s = await state(m);
      if (s.state === "LEADER") return m;
    }
    return null;
  });
}

/** Writes `values` through whoever leads, retrying on leader changes; returns the acknowledged. */
async function write(members: Member[], values: string[]): Promise<string[]> {
  const acked: string[] = [];
  let next = 0;
  let leader: Member | null = null;
  const worker = async (): Promise<void> => {
    while (next < values.length) {
      const value = values[next++]!;
      leader ??= await leaderOf(members);
      const res = await post(leader, "/test/apply", { value });
      await res.body?.cancel();
      if (res.status === 200) acked.push(value);
      else leader = null; // not (or no longer) the leader: look again
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return acked;
}

test("Deno, Bun and Node members form one group, survive SIGKILL of the leader, agree on every ack", async () => {
  const dir = mkdtempSync(join(tmpdir(), "webraft-mixed-"));
  const members: Member[] = [];
  try {
    for (const runtime of ["deno", "bun", "node"] as const) {
      members.push(await startMember(runtime, "mixed-runtime-secret"));
    }
    const conf = members.map((m) => m.peer).join(",");
    await Promise.all(members.map(async (m, i) => {
      const res = await post(m, "/test/init", {
        group: GROUP,
        peer: m.peer,
        conf,
        dir: join(dir, `n${i}`),
      });
      assert.equal(res.status, 200, await res.text());
    }));

    const first = await write(members, Array.from({ length: 300 }, (_, i) => `a${i}`));
    assert.ok(first.length > 0, "no write was acknowledged");
    const oldLeader = await leaderOf(members);
    oldLeader.child.kill("SIGKILL");
    await oldLeader.exited;
    const survivors = members.filter((m) => m !== oldLeader);

    const newLeader = await leaderOf(survivors);
    assert.notEqual(newLeader.peer, oldLeader.peer);
    const second = await write(survivors, Array.from({ length: 200 }, (_, i) => `b${i}`));
    assert.ok(second.length > 0, "no write was acknowledged after the failover");
    const acked = [...first, ...second];

    const logs = await until("survivors to apply every acknowledged entry", async () => {
      const states = await Promise.all(survivors.map(state));
      const done = states.every((s) => acked.every((v) => s.values.includes(v)));
      return done ? states.map((s) => s.values) : null;
    });
    // State machine safety: one log prefix, the same order on both survivors.
    const n = Math.min(logs[0]!.length, logs[1]!.length);
    assert.deepEqual(logs[0]!.slice(0, n), logs[1]!.slice(0, n));
    assert.deepEqual(members.map((m) => m.runtime), ["deno", "bun", "node"]);
  } finally {
    for (const m of members) {
      if (m.child.exitCode === null && m.child.signalCode === null) m.child.kill("SIGTERM");
    }
    await Promise.all(members.map((m) =>
      Promise.race([
        m.exited,
        new Promise<void>((r) => {
          const t = setTimeout(() => {
            m.child.kill("SIGKILL");
            r();
          }, 15_000);
          m.exited.then(() => clearTimeout(t));
        }),
      ])
    ));
    rmSync(dir, { recursive: true, force: true });
  }
});
