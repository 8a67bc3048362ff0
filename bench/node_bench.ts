/**
 * Node benchmark: a 3-node group in one process, `apply()` from C concurrent clients, each
 * waiting for its entry to be applied on the leader before sending the next (braft's benchmark
 * method: no artificial batching). Each case runs on a MemoryNetwork (every message goes through
 * the wire codec, no socket) and, for the cases marked `http`, again over real sockets: every
 * node gets its own Hono app with `mountTransport` + `serve` on 127.0.0.1 port 0 and an
 * `HttpTransport` as its `transport`. Prints ops/s, MB/s and p50/p99 latency per case and
 * network, and the process's CPU time (all threads) per write, which a shared machine's load
 * moves less than the rates. Never asserts on time.
 *
 *   npx deno run -A bench/node_bench.ts [seconds-per-case] [--net=memory|http|both]
 *   npx bun bench/node_bench.ts [seconds-per-case] [--net=memory|http|both]
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { Hono } from "hono";
import { type Iterator, MemoryNetwork, Node, StateMachine, Status } from "../mod.ts";
import { flags } from "../src/util/flags.ts";
import type { Transport } from "../transports/transport.ts";
import { HttpTransport, mountTransport, serve, type ServeHandle } from "../transports/http/mod.ts";

class NullFsm extends StateMachine {
  applied = 0;
  onApply(iter: Iterator): void {
    for (; iter.valid(); iter.next()) {
      this.applied++;
      iter.done()?.run(Status.OK());
    }
  }
}

interface Case {
  storage: "memory" | "local";
  sync: boolean;
  size: number;
  clients: number;
  /** Also run it over HttpTransport. */
  http: boolean;
}

type Net = "memory" | "http";

const args = (globalThis as { Deno?: { args: string[] } }).Deno?.args ??
  (globalThis as { process?: { argv: string[] } }).process?.argv.slice(2) ?? [];
const seconds = Number(args.find((a) => !a.startsWith("--")) ?? 2);
const netArg = args.find((a) => a.startsWith("--net="))?.slice("--net=".length) ?? "both";
if (!["memory", "http", "both"].includes(netArg)) {
  throw new Error(`Unknown --net=${netArg}: expected memory, http or both`);
}
const nets: Net[] = netArg === "both" ? ["memory", "http"] : [netArg as Net];

/** Three endpoints and a way to stop them. */
interface Network {
  endpoints: string[];
  transports: Transport[];
  /** Frames per socket message and frames dropped, summed over the endpoints ("" if none). */
  detail(): string;
  close(): Promise<void>;
}

function memoryNetwork(): Network {
  const net = new MemoryNetwork();
  const endpoints = [0, 1, 2].map((i) => `127.0.0.1:${9300 + i}`);
  return {
    endpoints,
    transports: endpoints.map((e) => net.transport(e)),
    detail: () => "",
    close: () => net.close(),
  };
}

/** One Hono app, server and HttpTransport per node, on 127.0.0.1 port 0. */
async function httpNetwork(): Promise<Network> {
  const servers: ServeHandle[] = [];
  const transports: HttpTransport[] = [];
  for (let i = 0; i < 3; i++) {
    const app = new Hono();
    const holder: { t?: HttpTransport } = {};
    mountTransport(app, () => holder.t);
    const server = await serve(app, { hostname: "127.0.0.1", port: 0 });
    servers.push(server);
    transports.push(holder.t = new HttpTransport(`127.0.0.1:${server.port}`));
  }
  return {
    endpoints: transports.map((t) => t.endpoint),
    transports,
    detail() {
      let frames = 0, messages = 0, dropped = 0;
      for (const t of transports) {
        frames += t.stats.framesSent;
        messages += t.stats.messagesSent;
        dropped += t.stats.framesDropped;
      }
      return `${(frames / Math.max(1, messages)).toFixed(1)} frames/msg, ${dropped} dropped`;
    },
    async close() {
      for (const t of transports) await t.close();
      for (const s of servers) await s.shutdown();
    },
  };
}

async function runCase(c: Case, netKind: Net, run: number): Promise<string> {
  flags.raft_sync = c.sync;
  const net = netKind === "http" ? await httpNetwork() : memoryNetwork();
  const dir = c.storage === "local" ? mkdtempSync(join(tmpdir(), "webraft-bench-")) : "";
  const peers = net.endpoints.map((e) => `${e}:0`);
  const nodes: Node[] = [];
  for (const [i, peer] of peers.entries()) {
    const node = new Node(`bench${run}`, peer);
    const uri = (kind: string) =>
      c.storage === "local"
        ? `local://${join(dir, String(i), kind)}`
        : `memory://bench${run}/${i}/${kind}`;
    await node.init({
      fsm: new NullFsm(),
      initialConf: peers.join(","),
      logUri: uri("log"),
      raftMetaUri: uri("meta"),
      transport: net.transports[i]!,
      electionTimeoutMs: 1000,
      snapshotIntervalS: 0,
    });
    nodes.push(node);
  }
  const leader = await Promise.race(nodes.map((n) => n.waitLeader().then(() => n)));
  const payload = new Uint8Array(c.size).fill(7);
  const latencies: number[] = [];
  const cpu0 = process.cpuUsage();
  const end = performance.now() + seconds * 1000;
  let ops = 0;
  await Promise.all(Array.from({ length: c.clients }, async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      await leader.applyAsync(payload);
      latencies.push(performance.now() - t0);
      ops++;
    }
  }));
  const elapsed = seconds + (performance.now() - end) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuPerOp = (cpu.user + cpu.system) / Math.max(1, ops);
  const detail = net.detail();
  for (const n of nodes) await n.shutdown();
  await net.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  latencies.sort((a, b) => a - b);
  const pct = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
  const name = `${c.storage}${
    c.storage === "local" ? (c.sync ? " fsync" : " nosync") : ""
  }, ${c.size} B, ${c.clients} clients`;
  return `| ${name.padEnd(34)} | ${netKind.padEnd(6)} | ${
    Math.round(ops / elapsed).toLocaleString("en-US").padStart(9)
  } | ${(ops * c.size / elapsed / 1e6).toFixed(1).padStart(6)} | ${
    pct(0.5).toFixed(2).padStart(7)
  } | ${pct(0.99).toFixed(2).padStart(7)} | ${cpuPerOp.toFixed(1).padStart(10)} | ${
    detail.padEnd(32)
  } |`;
}

const cases: Case[] = [
  { storage: "memory", sync: false, size: 256, clients: 1, http: true },
  { storage: "memory", sync: false, size: 256, clients: 64, http: true },
  { storage: "memory", sync: false, size: 4096, clients: 64, http: true },
  { storage: "local", sync: true, size: 256, clients: 64, http: true },
  { storage: "local", sync: true, size: 4096, clients: 64, http: false },
  { storage: "local", sync: false, size: 256, clients: 64, http: false },
];

const runtime = "Deno" in globalThis ? "Deno" : "Bun" in globalThis ? "Bun" : "Node";
console.log(
  `webraft node benchmark (${runtime}), 3 nodes in one process on ${
    nets.map((n) => n === "http" ? "HttpTransport (127.0.0.1)" : "MemoryNetwork").join(" / ")
  }, ${seconds} s per case\n`,
);
console.log(
  `| ${"Case".padEnd(34)} | Net    |     ops/s |   MB/s | p50 ms  | p99 ms  | CPU µs/op  | ${
    "Sockets".padEnd(32)
  } |`,
);
console.log(
  `| ${"-".repeat(34)} | ------ | --------: | -----: | ------: | ------: | ---------: | ${
    "-".repeat(32)
  } |`,
);
let run = 0;
for (const c of cases) {
  for (const n of nets) if (n === "memory" || c.http) console.log(await runCase(c, n, run++));
}
flags.raft_sync = true;
