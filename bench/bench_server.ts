/**
 * The benchmark's replicated server: one webraft node whose state machine does no work, with
 * `raft_sync` on (the default), behind `POST /put`. Started three times by
 * `bench/cluster_bench.mjs`; not a library module.
 *
 * - `POST /put` with a body of any bytes (≤ 1 MiB) → the body is one log entry; 200 `ok` once
 *   the leader has applied it;
 * - on a node that is not the leader: 503 with the leader's `host:port` (or nothing) as text;
 * - a failed apply: 500 with the status text.
 *
 * stderr gets `event leader_start <epoch ms> term <t>` and `event stop_following <epoch ms>`
 * lines (of the first group only), from which the failover trials split detection, election
 * and the first write.
 *
 * With `--groups=N` the process hosts N−1 more idle groups (`<group>1` … `<group>N-1`) of the
 * same peers, initialised `--init_concurrency` at a time, for `bench/groups_bench.mjs`, which
 * reads these bench-only endpoints:
 *
 * - `GET /bench/stats` → JSON: `memoryUsage` (`process.memoryUsage()`), `cpuUsage` (µs),
 *   `groups`, `initialized`, `initMs` (from process start until every group's `init` returned,
 *   or null), `leaders` (groups led here), `quiesced` (groups quiesced here), `transport` (`HttpTransport.stats`), `manager`
 *   (`NodeManager` stats);
 * - `GET /bench/leaders` → text, one character per group (group 0 first): `L` led by this
 *   node, `0`–`9` the index in `--conf` of the leader this node knows, `?` a leader not in
 *   `--conf`, `-` no known leader, `.` not initialised yet;
 * - `POST /bench/gc` → runs a full garbage collection if the runtime exposes one (Deno needs
 *   `--v8-flags=--expose-gc`), then answers like `/bench/stats`;
 * - `POST /bench/heap_snapshot?path=<file>` → writes a V8-format heap snapshot (`node:v8`).
 *
 * ```sh
 * npx deno run -A bench/bench_server.ts --port 8100 \
 *   --conf 127.0.0.1:8100:0,127.0.0.1:8101:0,127.0.0.1:8102:0 --data_path /tmp/b/8100
 * ```
 *
 * SIGTERM or SIGINT shuts the node down and exits 0.
 *
 * @module
 */

import process from "node:process";
import { writeHeapSnapshot } from "node:v8";
import { Hono } from "hono";
import {
  addService,
  type Closure,
  type Iterator,
  type LeaderChangeContext,
  Node,
  serve,
  type SnapshotReader,
  type SnapshotWriter,
  StateMachine,
  Status,
} from "../mod.ts";
import { type FlagSpec, parseFlags } from "../examples/counter/args.ts";
import { NodeManager } from "../src/node/node_manager.ts";

const FLAGS = {
  port: { type: "int", default: 8100, help: "Listen port" },
  ip: { type: "string", default: "127.0.0.1", help: "IP of this peer" },
  conf: { type: "string", default: "", help: "Initial configuration (peer,peer,...)" },
  group: { type: "string", default: "Bench", help: "Id of the group" },
  data_path: { type: "string", default: "", help: "Data directory" },
  election_timeout_ms: { type: "int", default: 1000, help: "Election timeout, ms" },
  snapshot_interval: { type: "int", default: 30, help: "Seconds between snapshots" },
  groups: {
    type: "int",
    default: 1,
    help:
      "Groups hosted: the first plus N-1 idle ones (<group>1 ... <group>N-1), for the many-groups bench",
  },
  init_concurrency: { type: "int", default: 64, help: "Groups initialised at a time" },
  quiesce: {
    type: "bool",
    default: false,
    help: "The idle groups (all but the first) quiesce when idle (NodeOptions.quiesce)",
  },
} satisfies Record<string, FlagSpec>;

const MAX_BODY = 1 << 20;

/** Applies nothing; only runs each entry's closure. */
class NullFsm extends StateMachine {
  leaderTerm = -1;
  readonly events: boolean;

  /** @param events Log leader events to stderr (the first group only). */
  constructor(events: boolean) {
    super();
    this.events = events;
  }

  override onApply(iter: Iterator): void {
    for (; iter.valid(); iter.next()) iter.done()?.run(Status.OK());
  }

  override async onSnapshotSave(writer: SnapshotWriter, done: Closure): Promise<void> {
    await writer.writeFile("data", new Uint8Array(0));
    done.run(Status.OK());
  }

  override async onSnapshotLoad(_reader: SnapshotReader): Promise<void> {}

  override onLeaderStart(term: number): void {
    this.leaderTerm = term;
    if (this.events) log(`event leader_start ${Date.now()} term ${term}`); // read by the failover trials
  }

  override onStopFollowing(_ctx: LeaderChangeContext): void {
    if (this.events) log(`event stop_following ${Date.now()}`);
  }

  override onLeaderStop(_status: Status): void {
    this.leaderTerm = -1;
  }
}

const opts = parseFlags(process.argv.slice(2), FLAGS);
const peerId = `${opts.ip}:${opts.port}:0`;
const log = (line: string): void =>
  console.error(`${new Date().toISOString()} [${peerId}] ${line}`);
const fsm = new NullFsm(true);
let node: Node | null = null;
/** Every group's node once its init returned (index = group number). */
const nodes: (Node | undefined)[] = new Array(Math.max(1, opts.groups));
let initialized = 0;
let initMs: number | null = null;
const confPeers = opts.conf.split(",").map((p) => p.trim()).filter((p) => p !== "");
const confEndpoints = confPeers.map((p) => p.split(":").slice(0, 2).join(":"));

const app = new Hono();
const service = addService(app, `${opts.ip}:${opts.port}`, {});
const TEXT = { "content-type": "text/plain" };

app.post("/put", async (c) => {
  const data = new Uint8Array(await c.req.raw.arrayBuffer());
  if (data.byteLength > MAX_BODY) return new Response("body too large", { status: 413 });
  const term = fsm.leaderTerm;
  if (node === null || term <= 0) {
    return new Response(node?.leaderId()?.endpoint ?? "", { status: 503, headers: TEXT });
  }
  const st = await new Promise<Status>((resolve) =>
    node!.apply({ data, done: { run: resolve }, expectedTerm: term })
  );
  if (st.ok()) return new Response("ok", { headers: TEXT });
  return new Response(st.toString(), { status: 500, headers: TEXT });
});

app.get("/bench/stats", () => Response.json(benchStats()));
app.post("/bench/gc", () => {
  const gc = (globalThis as { gc?: () => void }).gc ??
    (globalThis as { Bun?: { gc(full: boolean): void } }).Bun?.gc.bind(null, true);
  gc?.();
  return Response.json({ ...benchStats(), gc: gc !== undefined });
});
app.post("/bench/heap_snapshot", (c) => {
  const path = c.req.query("path");
  if (path === undefined || path === "") return new Response("path missing", { status: 400 });
  return new Response(writeHeapSnapshot(path), { headers: TEXT });
});
app.get("/bench/leaders", () => {
  const out = new Array<string>(nodes.length);
  for (let g = 0; g < nodes.length; g++) {
    const n = nodes[g];
    if (n === undefined) out[g] = ".";
    else if (n.isLeader()) out[g] = "L";
    else {
      const leader = n.leaderId();
      if (leader === null) out[g] = "-";
      else {
        const k = confEndpoints.indexOf(leader.endpoint);
        out[g] = k >= 0 && k < 10 ? String(k) : "?";
      }
    }
  }
  return new Response(out.join(""), { headers: TEXT });
});

function benchStats(): Record<string, unknown> {
  const transport = service.transport;
  let leaders = 0;
  let quiesced = 0;
  for (const n of nodes) {
    if (n?.isLeader()) leaders++;
    if (n?.quiesced) quiesced++;
  }
  return {
    pid: process.pid,
    groups: nodes.length,
    initialized,
    initMs,
    leaders,
    quiesced,
    memoryUsage: process.memoryUsage(),
    cpuUsage: process.cpuUsage(),
    transport: transport?.stats ?? null,
    manager: transport === null ? null : NodeManager.existing(transport)?.stats ?? null,
  };
}

const server = await serve(app, { hostname: opts.ip, port: opts.port });

let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  await Promise.all(nodes.map((n) => n?.shutdown().catch(() => {})));
  await service.close();
  await server.shutdown();
  process.exit(0);
};
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());

async function startGroup(g: number): Promise<void> {
  const n = new Node(g === 0 ? opts.group : `${opts.group}${g}`, peerId);
  const dir = g === 0 ? opts.data_path : `${opts.data_path}/g${g}`;
  await n.init({
    fsm: g === 0 ? fsm : new NullFsm(false),
    initialConf: opts.conf,
    logUri: `local://${dir}/log`,
    raftMetaUri: `local://${dir}/raft_meta`,
    snapshotUri: `local://${dir}/snapshot`,
    electionTimeoutMs: opts.election_timeout_ms,
    snapshotIntervalS: opts.snapshot_interval,
    quiesce: g > 0 && opts.quiesce,
  });
  if (g === 0) node = n;
  nodes[g] = n;
  initialized++;
}

// Groups start init_concurrency at a time (the groups already started run meanwhile).
let nextGroup = 0;
const worker = async (): Promise<void> => {
  while (!stopping && nextGroup < nodes.length) await startGroup(nextGroup++);
};
await Promise.all(
  Array.from({ length: Math.max(1, Math.min(opts.init_concurrency, nodes.length)) }, worker),
);
initMs = Math.round(performance.now());
log(`serving http://${opts.ip}:${server.port}; ${nodes.length} groups initialised in ${initMs} ms`);
