/**
 * `bench/bench_server.ts` as `bench/groups_bench.mjs` drives it: a child process (this runtime)
 * hosting 3 single-peer groups, read through its bench-only endpoints (`/bench/leaders`,
 * `/bench/stats`, `/bench/gc`), then stopped with SIGTERM.
 */

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const DEADLINE_MS = 60_000;

/** A port free a moment ago (the server needs its port before it listens: it names its peer). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function until<T>(what: string, f: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    const v = await f().catch(() => null);
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("bench_server bench endpoints", () => {
  it("reports every group's leader, the process's memory and the transport's counters", async () => {
    const dir = await mkdtemp(join(tmpdir(), "webraft-bench-server-"));
    const port = await freePort();
    const server = join(root, "bench", "bench_server.ts");
    const args = [
      `--port=${port}`,
      `--conf=127.0.0.1:${port}:0`,
      `--data_path=${dir}`,
      "--election_timeout_ms=300",
      "--groups=3",
      "--init_concurrency=2",
    ];
    const child = spawn(
      process.execPath,
      "Deno" in globalThis ? ["run", "-A", server, ...args] : [server, ...args],
      { cwd: root, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, NO_COLOR: "1" } },
    );
    let stderr = "";
    child.stderr!.on("data", (d) => stderr += d);
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    const base = `http://127.0.0.1:${port}`;
    try {
      const leaders = await until("every group to elect itself", async () => {
        const text = await (await fetch(`${base}/bench/leaders`)).text();
        return text === "LLL" ? text : null;
      });
      assert.equal(leaders, "LLL");
      const stats = await until("init to finish", async () => {
        const s = await (await fetch(`${base}/bench/stats`)).json();
        return s.initMs === null ? null : s;
      });
      assert.equal(stats.groups, 3);
      assert.equal(stats.initialized, 3);
      assert.equal(stats.leaders, 3);
      assert.equal(stats.pid, child.pid);
      assert.ok(stats.memoryUsage.heapUsed > 0 && stats.memoryUsage.rss > 0);
      assert.ok(stats.cpuUsage.user >= 0);
      // Single-peer groups send nothing, but the counters are there for the bench to read.
      assert.equal(stats.transport.framesSent, 0);
      assert.equal(typeof stats.transport.messagesSent, "number");
      assert.deepEqual(stats.manager, {
        malformed: 0,
        unknownTarget: 0,
        heartbeatFramesOut: 0,
        heartbeatTuplesOut: 0,
        heartbeatFramesIn: 0,
        heartbeatTuplesIn: 0,
      });
      assert.equal(stats.quiesced, 0);
      const gc = await (await fetch(`${base}/bench/gc`, { method: "POST" })).json();
      assert.equal(typeof gc.gc, "boolean");
      assert.equal(gc.groups, 3);
    } catch (e) {
      throw new Error(`${(e as Error).message}; server stderr: ${stderr}`);
    } finally {
      // process.kill, not child.kill: Deno's child_process reports a child it signalled as
      // killed by the signal even when the child handled it and exited 0.
      process.kill(child.pid!, "SIGTERM");
      const code = await Promise.race([
        exited,
        new Promise<"hung">((r) => setTimeout(() => r("hung"), DEADLINE_MS)),
      ]);
      if (code === "hung") child.kill("SIGKILL");
      await rm(dir, { recursive: true, force: true });
      assert.equal(code, 0, `bench_server exited with ${code}: ${stderr}`);
    }
  });
});
