/**
 * What one idle group costs in the JS heap, in one process: N groups of 3 nodes (three
 * endpoints on a `MemoryNetwork`, so no sockets), each with its own `local://` (or `memory://`)
 * storage, elected and then idle for two election timeouts; the live heap after a full GC,
 * minus the same with no group, divided by 3N, is the cost per node. `--parts` also measures
 * the storages alone (log + meta + snapshot, initialised and holding one entry) the same way.
 * Not a library module.
 *
 * ```sh
 * npx deno run -A --v8-flags=--expose-gc bench/group_cost.ts --groups=300 [--storage=memory] [--parts]
 * npx bun bench/group_cost.ts --groups=300
 * # more logs than the open-file budget (flags.raft_max_open_log_files; 0 = no limit):
 * npx deno run -A --v8-flags=--expose-gc bench/group_cost.ts --groups=600 --max_open_log_files=1024
 * # what each node retains, by the field holding it:
 * npx deno run -A --v8-flags=--expose-gc bench/group_cost.ts --groups=300 --heap_snapshot=/tmp/gc
 * node bench/heap_summary.mjs /tmp/gc-base.heapsnapshot /tmp/gc-idle.heapsnapshot --per=900 --by=owner
 * ```
 *
 * @module
 */

import process from "node:process";
import { writeHeapSnapshot } from "node:v8";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChunkChain } from "../src/bytes/chunk_chain.ts";
import { PeerId } from "../src/conf/peer_id.ts";
import { EntryType } from "../src/core/entry.ts";
import {
  type Closure,
  type Iterator,
  Node,
  type SnapshotReader,
  type SnapshotWriter,
  StateMachine,
  Status,
} from "../mod.ts";
import { createLogStorage, createMetaStorage, createSnapshotStorage } from "../storage/mod.ts";
import { MemoryNetwork } from "../transports/memory/memory_network.ts";
import { flags } from "../src/util/flags.ts";

const arg = (name: string, def: string): string =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? def;
const GROUPS = Number(arg("groups", "300"));
const STORAGE = arg("storage", "local");
const ELECTION_MS = Number(arg("election_timeout_ms", "1000"));
const PARTS = process.argv.includes("--parts");
/** With `--heap_snapshot=<prefix>`: `<prefix>-base.heapsnapshot` and `<prefix>-idle.heapsnapshot`. */
const HEAP_SNAPSHOT = arg("heap_snapshot", "");
/** `--max_open_log_files=N` sets `flags.raft_max_open_log_files` (default: the flag's). */
const MAX_OPEN = arg("max_open_log_files", "");
if (MAX_OPEN !== "") flags.raft_max_open_log_files = Number(MAX_OPEN);

class NullFsm extends StateMachine {
  override onApply(iter: Iterator): void {
    for (; iter.valid(); iter.next()) iter.done()?.run(Status.OK());
  }
  override async onSnapshotSave(writer: SnapshotWriter, done: Closure): Promise<void> {
    await writer.writeFile("data", new Uint8Array(0));
    done.run(Status.OK());
  }
  override async onSnapshotLoad(_reader: SnapshotReader): Promise<void> {}
}

const gc = (globalThis as { gc?: () => void }).gc ??
  (globalThis as { Bun?: { gc(full: boolean): void } }).Bun?.gc.bind(null, true);
if (gc === undefined) throw new Error("no gc: run Deno with --v8-flags=--expose-gc");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function heapUsed(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc!();
    await sleep(50);
  }
  return process.memoryUsage().heapUsed;
}

const dir = mkdtempSync(join(tmpdir(), "webraft-group-cost-"));
const uri = (g: number, p: number, what: string): string =>
  STORAGE === "memory" ? `memory://cost-${g}-${p}-${what}` : `local://${dir}/g${g}/p${p}/${what}`;
const result: Record<string, unknown> = {
  runtime: "Deno" in globalThis ? "deno" : "bun",
  groups: GROUPS,
  storage: STORAGE,
};

if (PARTS) {
  const base = await heapUsed();
  const keep: unknown[] = [];
  const peer = PeerId.parse("127.0.0.1:1:0");
  for (let g = 0; g < GROUPS; g++) {
    const log = await createLogStorage(uri(g, 9, "log"));
    await log.init();
    await log.appendEntries([{ index: 1, term: 2, type: EntryType.NO_OP, data: new ChunkChain() }]);
    const meta = await createMetaStorage(uri(g, 9, "meta"));
    await meta.init();
    await meta.setTermAndVotedFor(2, peer);
    const snap = await createSnapshotStorage(uri(g, 9, "snapshot"));
    await snap.init();
    keep.push(log, meta, snap);
  }
  result.storageBytesPerGroup = Math.round((await heapUsed() - base) / GROUPS);
  for (let i = 0; i < keep.length; i += 3) await (keep[i] as { close(): Promise<void> }).close();
}

const net = new MemoryNetwork({ seed: 1 });
const peers = [0, 1, 2].map((i) => `127.0.0.1:${9000 + i}:0`);
for (const p of peers) net.transport(PeerId.parse(p).endpoint);
const base = await heapUsed();
if (HEAP_SNAPSHOT !== "") writeHeapSnapshot(`${HEAP_SNAPSHOT}-base.heapsnapshot`);
const nodes: Node[] = [];
const t0 = performance.now();
let next = 0;
await Promise.all(Array.from({ length: 32 }, async () => {
  while (next < GROUPS) {
    const g = next++;
    for (let p = 0; p < 3; p++) {
      const id = PeerId.parse(peers[p]!);
      const node = new Node(`g${g}`, id);
      await node.init({
        fsm: new NullFsm(),
        initialConf: peers.join(","),
        logUri: uri(g, p, "log"),
        raftMetaUri: uri(g, p, "meta"),
        snapshotUri: uri(g, p, "snapshot"),
        electionTimeoutMs: ELECTION_MS,
        snapshotIntervalS: 3600,
        transport: net.transport(id.endpoint),
      });
      nodes.push(node);
    }
  }
}));
result.initS = (performance.now() - t0) / 1000;
for (;;) {
  const led = new Set(nodes.filter((n) => n.isLeader()).map((n) => n.groupId)).size;
  if (led === GROUPS) break;
  await sleep(100);
}
result.allLedS = (performance.now() - t0) / 1000;
await sleep(2 * ELECTION_MS);
const used = await heapUsed();
result.heapBytesPerNode = Math.round((used - base) / nodes.length);
result.memoryUsage = process.memoryUsage();
if (HEAP_SNAPSHOT !== "") writeHeapSnapshot(`${HEAP_SNAPSHOT}-idle.heapsnapshot`);
console.log(JSON.stringify(result));
await Promise.all(nodes.map((n) => n.shutdown()));
await net.close();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
