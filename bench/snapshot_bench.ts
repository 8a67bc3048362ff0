/**
 * Snapshot install benchmark (issue 13): a follower behind by one large snapshot.
 *
 * Three nodes in this process, each with its own Hono app, `serve` on 127.0.0.1 port 0 and
 * `HttpTransport` (real loopback sockets), `local://` storage in a temporary directory with
 * `raft_sync` on. Two nodes start and elect a leader; the leader's state machine snapshot is
 * one file of `--mib` MiB (default 256) plus a few entries, compacted away. Then the third
 * node starts empty: the leader sends it InstallSnapshot, it copies the file in
 * `raft_max_byte_count_per_rpc` chunks and loads it.
 *
 * Timestamps (epoch ms, `performance.timeOrigin + performance.now()`):
 * - `sent`: the leader's transport sends the first InstallSnapshot frame to the new node;
 * - `copy start / end`: the new node's first file call and the end of its last one;
 * - `applied`: the new node's `onSnapshotLoad` returned.
 *
 * Prints copy MB/s (file bytes / copy time) and install MB/s (file bytes / sent→applied),
 * the calls made, the CPU time of the process, as a table and a JSON line. Never asserts on
 * time.
 *
 *   npx deno run -A bench/snapshot_bench.ts [--mib=256] [--runs=1] [--chunk_kib=N] [--load]
 *     [--processes]
 *   npx bun bench/snapshot_bench.ts [--mib=256] [--runs=1] [--chunk_kib=N] [--load] [--processes]
 *
 * `--processes` runs each node in its own process of the same runtime (this file with
 * `--member=i`, driven over a small HTTP control route), so the leader's reads and the
 * follower's writes do not share one thread; CPU is then given per process (leader /
 * follower, the follower's including its start-up).
 *
 * `--chunk_kib` sets `raft_max_byte_count_per_rpc`; `--load` makes `onSnapshotLoad` read the
 * whole file back (checksum verified) instead of only its metadata.
 */

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { Hono } from "hono";
import {
  type Closure,
  type Iterator,
  Node,
  type SnapshotReader,
  type SnapshotWriter,
  StateMachine,
  Status,
} from "../mod.ts";
import { decodeMessage } from "../src/codec/message_codec.ts";
import { flags } from "../src/util/flags.ts";
import type { CallOptions, Transport, TransportHandler } from "../transports/transport.ts";
import { HttpTransport, mountTransport, serve, type ServeHandle } from "../transports/http/mod.ts";

const args = (globalThis as { Deno?: { args: string[] } }).Deno?.args ?? process.argv.slice(2);
function opt(name: string, fallback: number): number {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  if (a === undefined) return fallback;
  const v = Number(a.slice(name.length + 3));
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
  return v;
}
const MIB = opt("mib", 256);
const RUNS = opt("runs", 1);
const CHUNK_KIB = opt("chunk_kib", flags.raft_max_byte_count_per_rpc / 1024);
const LOAD = args.includes("--load");
const PROCESSES = args.includes("--processes");
const MEMBER = args.find((x) => x.startsWith("--member="))?.slice("--member=".length);
const FILE_BYTES = Math.round(MIB * 1024 * 1024);
const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";

/** Epoch milliseconds with sub-millisecond resolution (comparable between processes). */
const now = (): number => performance.timeOrigin + performance.now();

/** A state machine whose snapshot is one big file (`blob`) made of a repeated pattern. */
class BlobFsm extends StateMachine {
  applied = 0;
  loadedAt = 0;
  loadedBytes = 0;
  loaded = Promise.withResolvers<void>();

  onApply(iter: Iterator): void {
    for (; iter.valid(); iter.next()) {
      this.applied++;
      iter.done()?.run(Status.OK());
    }
  }

  override async onSnapshotSave(writer: SnapshotWriter, done: Closure): Promise<void> {
    const block = new Uint8Array(1024 * 1024);
    for (let i = 0; i < block.length; i++) block[i] = (i * 31 + (i >> 10)) & 0xff;
    let left = FILE_BYTES;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (left === 0) return controller.close();
        const n = Math.min(left, block.length);
        left -= n;
        controller.enqueue(block.slice(0, n));
      },
    });
    await writer.writeFile("blob", stream);
    done.run(Status.OK());
  }

  override async onSnapshotLoad(reader: SnapshotReader): Promise<void> {
    let bytes = reader.getFileMeta("blob")?.size ?? 0;
    if (LOAD) {
      bytes = 0;
      const r = reader.openFile("blob").getReader();
      for (;;) {
        const { done, value } = await r.read();
        if (done) break;
        bytes += value.byteLength;
      }
    }
    this.loadedBytes = bytes;
    this.loadedAt = now();
    this.loaded.resolve();
  }
}

/** Timestamps taken by the wrapped transports. */
interface Marks {
  sent: number;
  copyStart: number;
  copyEnd: number;
  calls: number;
  callBytes: number;
}

/**
 * `inner`, with the first InstallSnapshot frame to `watch` and every call timestamped.
 */
function watched(inner: Transport, marks: Marks, watch: () => string | undefined): Transport {
  return {
    get endpoint() {
      return inner.endpoint;
    },
    listen: (handler: TransportHandler) => inner.listen(handler),
    send(to: string, frame: Uint8Array): void {
      if (marks.sent === 0 && to === watch()) {
        try {
          if (decodeMessage(frame).message.type === "InstallSnapshot") {
            marks.sent = now();
          }
        } catch { /* not ours to judge */ }
      }
      inner.send(to, frame);
    },
    async call(to: string, request: Uint8Array, options?: CallOptions): Promise<Uint8Array> {
      if (marks.copyStart === 0) marks.copyStart = now();
      marks.calls++;
      const response = await inner.call(to, request, options);
      marks.callBytes += response.byteLength;
      marks.copyEnd = now();
      return response;
    },
    close: () => inner.close(),
  };
}

interface Result {
  runtime: string;
  mib: number;
  chunkKiB: number;
  load: boolean;
  saveMs: number;
  copyMs: number;
  installMs: number;
  copyMBps: number;
  installMBps: number;
  calls: number;
  /** CPU seconds of the process during the install (with --processes: "leader / follower"). */
  cpuS: number | string;
  loadavg: number;
}

async function run(n: number): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), "webraft-snapbench-"));
  const servers: ServeHandle[] = [];
  const transports: HttpTransport[] = [];
  const nodes: Node[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const app = new Hono();
      const holder: { t?: HttpTransport } = {};
      mountTransport(app, () => holder.t);
      const server = await serve(app, { hostname: "127.0.0.1", port: 0 });
      servers.push(server);
      transports.push(holder.t = new HttpTransport(`127.0.0.1:${server.port}`));
    }
    const peers = transports.map((t) => `${t.endpoint}:0`);
    const marks: Marks = { sent: 0, copyStart: 0, copyEnd: 0, calls: 0, callBytes: 0 };
    const fsms = [new BlobFsm(), new BlobFsm(), new BlobFsm()];
    const start = async (i: number): Promise<Node> => {
      const node = new Node(`snapbench${n}`, peers[i]!);
      const uri = (kind: string) => `local://${join(dir, String(i), kind)}`;
      await node.init({
        fsm: fsms[i]!,
        initialConf: peers.join(","),
        logUri: uri("log"),
        raftMetaUri: uri("meta"),
        snapshotUri: uri("snapshot"),
        transport: watched(transports[i]!, marks, () => transports[2]!.endpoint),
        electionTimeoutMs: 1000,
        snapshotIntervalS: 0,
      });
      nodes.push(node);
      return node;
    };
    const a = await start(0);
    const b = await start(1);
    const leader = await Promise.race([a, b].map((x) => x.waitLeader().then(() => x)));
    for (let i = 0; i < 10; i++) await leader.applyAsync(new Uint8Array(16));
    const s0 = now();
    await leader.snapshot();
    const saveMs = now() - s0;

    const cpu0 = process.cpuUsage();
    const c = await start(2);
    await fsms[2]!.loaded.promise;
    const cpu = process.cpuUsage(cpu0);
    await c.waitApplied(leader.appliedIndex());
    if (fsms[2]!.loadedBytes !== FILE_BYTES) {
      throw new Error(`loaded ${fsms[2]!.loadedBytes} bytes, expected ${FILE_BYTES}`);
    }
    const copyMs = marks.copyEnd - marks.copyStart;
    const installMs = fsms[2]!.loadedAt - marks.sent;
    return {
      runtime,
      mib: MIB,
      chunkKiB: flags.raft_max_byte_count_per_rpc / 1024,
      load: LOAD,
      saveMs: Math.round(saveMs),
      copyMs: Math.round(copyMs),
      installMs: Math.round(installMs),
      copyMBps: Math.round(FILE_BYTES / copyMs / 1e3),
      installMBps: Math.round(FILE_BYTES / installMs / 1e3),
      calls: marks.calls,
      cpuS: Math.round((cpu.user + cpu.system) / 1e4) / 100,
      loadavg: Math.round(loadavg()[0]! * 10) / 10,
    };
  } finally {
    for (const node of nodes) await node.shutdown();
    for (const t of transports) await t.close();
    for (const s of servers) await s.shutdown();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------ --processes

function opt_(name: string): string {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  if (a === undefined) throw new Error(`--${name} is required with --member`);
  return a.slice(name.length + 3);
}

/** One node in this process, driven by the parent over `/ctl/*` (this is `--member=i`). */
async function member(i: number): Promise<void> {
  const peers = opt_("peers").split(",");
  const dir = opt_("dir");
  const endpoint = peers[i]!.split(":").slice(0, 2).join(":");
  const app = new Hono();
  const holder: { t?: HttpTransport } = {};
  mountTransport(app, () => holder.t);
  const marks: Marks = { sent: 0, copyStart: 0, copyEnd: 0, calls: 0, callBytes: 0 };
  const fsm = new BlobFsm();
  const node = new Node("snapbench", peers[i]!);
  app.get("/ctl/state", (c) => c.json({ leader: node.isLeader() }));
  app.post("/ctl/prepare", async (c) => {
    for (let k = 0; k < 10; k++) await node.applyAsync(new Uint8Array(16));
    const s0 = now();
    await node.snapshot();
    return c.json({ saveMs: now() - s0 });
  });
  app.get("/ctl/marks", (c) => {
    const cpu = process.cpuUsage();
    return c.json({
      ...marks,
      loadedAt: fsm.loadedAt,
      loadedBytes: fsm.loadedBytes,
      cpuS: (cpu.user + cpu.system) / 1e6,
    });
  });
  app.post("/ctl/exit", (c) => {
    // (after the answer: stop the node, then exit, which writes a CPU profile if asked)
    setTimeout(async () => {
      await node.shutdown().catch(() => {});
      process.exit(0);
    }, 10);
    return c.json({});
  });
  await serve(app, { hostname: "127.0.0.1", port: Number(endpoint.split(":")[1]) });
  holder.t = new HttpTransport(endpoint);
  const uri = (kind: string) => `local://${join(dir, String(i), kind)}`;
  await node.init({
    fsm,
    initialConf: peers.join(","),
    logUri: uri("log"),
    raftMetaUri: uri("meta"),
    snapshotUri: uri("snapshot"),
    transport: watched(holder.t, marks, () => peers[2]!.split(":").slice(0, 2).join(":")),
    electionTimeoutMs: 1000,
    snapshotIntervalS: 0,
  });
  console.log("ready");
}

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

async function ctl<T>(port: number, path: string, method = "GET"): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${port}/ctl/${path}`, { method });
  if (!res.ok) throw new Error(`/ctl/${path} on ${port}: ${res.status}`);
  return await res.json() as T;
}

async function until<T>(what: string, probe: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const v = await probe().catch(() => null);
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The same measurement with each node in its own process. */
async function runProcesses(): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), "webraft-snapbench-"));
  const ports = [await freePort(), await freePort(), await freePort()];
  const peers = ports.map((p) => `127.0.0.1:${p}:0`).join(",");
  const self = new URL(import.meta.url).pathname;
  const children: ReturnType<typeof spawn>[] = [];
  const start = (i: number) => {
    const extra = [
      `--member=${i}`,
      `--peers=${peers}`,
      `--dir=${dir}`,
      `--mib=${MIB}`,
      `--chunk_kib=${CHUNK_KIB}`,
      ...(LOAD ? ["--load"] : []),
    ];
    // SNAPBENCH_CPU_PROF=<dir>: a CPU profile of every member (--cpu-prof of Deno and Bun)
    const profDir = process.env.SNAPBENCH_CPU_PROF;
    const prof = profDir ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`] : [];
    const argv = runtime === "deno"
      ? ["run", "-A", ...prof, self, ...extra]
      : [...prof, self, ...extra];
    const child = spawn(process.execPath, argv, { stdio: ["ignore", "pipe", "inherit"] });
    children.push(child);
    return new Promise<void>((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (d) => {
        out += String(d);
        if (out.includes("ready")) resolve();
      });
      child.once("exit", (code) => reject(new Error(`member ${i} exited with ${code}`)));
    });
  };
  try {
    await Promise.all([start(0), start(1)]);
    const li = await until("a leader", async () => {
      for (const i of [0, 1]) {
        if ((await ctl<{ leader: boolean }>(ports[i]!, "state")).leader) return i;
      }
      return null;
    });
    const { saveMs } = await ctl<{ saveMs: number }>(ports[li]!, "prepare", "POST");
    type M = Marks & { loadedAt: number; loadedBytes: number; cpuS: number };
    const leaderCpu0 = (await ctl<M>(ports[li]!, "marks")).cpuS;
    await start(2);
    const c = await until("the snapshot loaded", async () => {
      const m = await ctl<M>(ports[2]!, "marks");
      return m.loadedAt > 0 ? m : null;
    });
    const l = await ctl<M>(ports[li]!, "marks");
    if (c.loadedBytes !== FILE_BYTES) {
      throw new Error(`loaded ${c.loadedBytes} bytes, expected ${FILE_BYTES}`);
    }
    const copyMs = c.copyEnd - c.copyStart;
    const installMs = c.loadedAt - l.sent;
    return {
      runtime,
      mib: MIB,
      chunkKiB: CHUNK_KIB,
      load: LOAD,
      saveMs: Math.round(saveMs),
      copyMs: Math.round(copyMs),
      installMs: Math.round(installMs),
      copyMBps: Math.round(FILE_BYTES / copyMs / 1e3),
      installMBps: Math.round(FILE_BYTES / installMs / 1e3),
      calls: c.calls,
      cpuS: `${(l.cpuS - leaderCpu0).toFixed(2)} / ${c.cpuS.toFixed(2)}`,
      loadavg: Math.round(loadavg()[0]! * 10) / 10,
    };
  } finally {
    for (const [i, child] of children.entries()) {
      if (child.exitCode !== null) continue;
      const exited = new Promise((r) => child.once("exit", r));
      await ctl(ports[i]!, "exit", "POST").catch(() => {});
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

flags.raft_sync = true;
flags.raft_max_byte_count_per_rpc = Math.round(CHUNK_KIB * 1024);
if (MEMBER !== undefined) {
  await member(Number(MEMBER));
} else {
  await main();
}

async function main(): Promise<void> {
  const results: Result[] = [];
  console.log(
    `webraft snapshot install (${runtime}), ${MIB} MiB file, chunk ${CHUNK_KIB} KiB, HttpTransport on 127.0.0.1, local:// with fsync, ${
      PROCESSES ? "one process per node" : "3 nodes in one process"
    }\n`,
  );
  console.log(
    "| run | save ms | copy ms | copy MB/s | install ms | install MB/s | calls | CPU s | load |",
  );
  console.log(
    "| --: | ------: | ------: | --------: | ---------: | -----------: | ----: | ----: | ---: |",
  );
  for (let i = 0; i < RUNS; i++) {
    const r = PROCESSES ? await runProcesses() : await run(i);
    results.push(r);
    console.log(
      `| ${
        i + 1
      } | ${r.saveMs} | ${r.copyMs} | ${r.copyMBps} | ${r.installMs} | ${r.installMBps} | ${r.calls} | ${r.cpuS} | ${r.loadavg} |`,
    );
  }
  console.log(JSON.stringify({
    bench: "snapshot_install",
    at: new Date().toISOString(),
    processes: PROCESSES,
    results,
  }));
}
