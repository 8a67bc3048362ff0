/**
 * Core benchmark: committed entries per second for 3 in-memory `RaftCore`s with no I/O.
 * Messages are delivered synchronously, storage is `MemoryCoreStorage`, payloads are 16 B.
 *
 * Run: `npx deno run -A bench/core_bench.ts` or `npx bun bench/core_bench.ts`
 * (optional args: total entries, batch size).
 *
 * @module
 */

import { ChunkChain } from "../src/bytes/chunk_chain.ts";
import { Configuration } from "../src/conf/configuration.ts";
import { MemoryCoreStorage, type Message, RaftCore } from "../src/core/mod.ts";
import { Prng } from "../src/util/prng.ts";

const args = (globalThis as { Deno?: { args: string[] } }).Deno?.args ??
  (globalThis as { process?: { argv: string[] } }).process?.argv.slice(2) ?? [];
const TOTAL = Number(args[0] ?? 2_000_000);
const BATCH = Number(args[1] ?? 4096);

const ids = ["a:1:0", "b:1:0", "c:1:0"];
const storages = new Map<string, MemoryCoreStorage>();
const cores = new Map<string, RaftCore>();
for (const [i, id] of ids.entries()) {
  const storage = new MemoryCoreStorage();
  storages.set(id, storage);
  cores.set(
    id,
    new RaftCore({
      id,
      storage,
      prng: new Prng(i + 1),
      initialConf: { peers: new Configuration(ids) },
    }),
  );
}

let queue: Message[] = [];
let applied = 0;

function pump(): void {
  let busy = true;
  while (busy) {
    busy = false;
    for (const [id, core] of cores) {
      while (core.hasReady()) {
        busy = true;
        const rd = core.ready();
        for (const m of rd.messages) queue.push(m);
        const s = storages.get(id)!;
        if (rd.entries.length > 0) s.append(rd.entries);
        if (rd.hardState !== undefined) s.setHardState(rd.hardState);
        for (const m of rd.messagesAfterPersist) queue.push(m);
        if (id === ids[0]) applied += rd.committedEntries.length;
        core.advance(rd);
      }
    }
    if (queue.length > 0) {
      busy = true;
      const q = queue;
      queue = [];
      for (const m of q) cores.get(m.to)!.step(m);
    }
  }
}

const leader = cores.get(ids[0]!)!;
leader.campaign();
pump();
if (!leader.isLeader()) throw new Error("Cannot run benchmark: no leader elected");
const payload = ChunkChain.from("0123456789abcdef");

function run(total: number): number {
  const start = applied;
  const t0 = performance.now();
  let proposed = 0;
  while (proposed < total) {
    for (let i = 0; i < BATCH; i++) leader.propose(payload);
    proposed += BATCH;
    pump();
    // keep memory flat: compact applied entries on every node
    for (const [id, core] of cores) {
      const idx = core.appliedIndex();
      if (idx - storages.get(id)!.snapshotMeta().index > 100_000) {
        storages.get(id)!.compact(core.snapshotMetaAt(idx));
      }
    }
  }
  const ms = performance.now() - t0;
  return ((applied - start) / ms) * 1000;
}

run(Math.min(200_000, TOTAL)); // warm-up
const rate = run(TOTAL);
const runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";
console.log(
  `core_bench (${runtime}): 3 in-memory cores, ${TOTAL} entries of 16 B, batch ${BATCH}: ` +
    `${Math.round(rate).toLocaleString("en-US")} committed entries/s`,
);
