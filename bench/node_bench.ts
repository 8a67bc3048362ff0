/**
 * Node benchmark: a 3-node group in one process on a MemoryNetwork (every message goes through
 * the wire codec), `apply()` from C concurrent clients, each waiting for its entry to be applied
 * on the leader before sending the next (braft's benchmark method: no artificial batching).
 * Prints ops/s, MB/s and p50/p99 latency per case. Never asserts on time.
 *
 *   npx deno run -A bench/node_bench.ts [seconds-per-case]
 *   npx bun bench/node_bench.ts [seconds-per-case]
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Iterator, MemoryNetwork, Node, StateMachine, Status } from "../mod.ts";
import { flags } from "../src/util/flags.ts";

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
}

const seconds = Number(
  (globalThis as { Deno?: { args: string[] } }).Deno?.args[0] ??
    (globalThis as { process?: { argv: string[] } }).process?.argv[2] ?? 2,
);

async function runCase(c: Case, run: number): Promise<string> {
  flags.raft_sync = c.sync;
  const net = new MemoryNetwork();
  const dir = c.storage === "local" ? mkdtempSync(join(tmpdir(), "webraft-bench-")) : "";
  const peers = [0, 1, 2].map((i) => `127.0.0.1:${9300 + i}:0`);
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
      transport: net.transport(`127.0.0.1:${9300 + i}`),
      electionTimeoutMs: 1000,
      snapshotIntervalS: 0,
    });
    nodes.push(node);
  }
  const leader = await Promise.race(nodes.map((n) => n.waitLeader().then(() => n)));
  const payload = new Uint8Array(c.size).fill(7);
  const latencies: number[] = [];
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
  for (const n of nodes) await n.shutdown();
  await net.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  latencies.sort((a, b) => a - b);
  const pct = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
  const name = `${c.storage}${
    c.storage === "local" ? (c.sync ? " fsync" : " nosync") : ""
  }, ${c.size} B, ${c.clients} clients`;
  return `| ${name.padEnd(34)} | ${
    Math.round(ops / elapsed).toLocaleString("en-US").padStart(9)
  } | ${(ops * c.size / elapsed / 1e6).toFixed(1).padStart(6)} | ${
    pct(0.5).toFixed(2).padStart(7)
  } | ${pct(0.99).toFixed(2).padStart(7)} |`;
}

const cases: Case[] = [
  { storage: "memory", sync: false, size: 256, clients: 1 },
  { storage: "memory", sync: false, size: 256, clients: 64 },
  { storage: "memory", sync: false, size: 4096, clients: 64 },
  { storage: "local", sync: true, size: 256, clients: 64 },
  { storage: "local", sync: true, size: 4096, clients: 64 },
  { storage: "local", sync: false, size: 256, clients: 64 },
];

const runtime = "Deno" in globalThis ? "Deno" : "Bun" in globalThis ? "Bun" : "Node";
console.log(
  `webraft node benchmark (${runtime}), 3 nodes on MemoryNetwork, ${seconds} s per case\n`,
);
console.log(`| ${"Case".padEnd(34)} |     ops/s |   MB/s | p50 ms  | p99 ms  |`);
console.log(`| ${"-".repeat(34)} | --------: | -----: | ------: | ------: |`);
for (const [i, c] of cases.entries()) console.log(await runCase(c, i));
flags.raft_sync = true;
