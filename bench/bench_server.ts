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
 * lines, from which the failover trials split detection, election and the first write.
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
      "Idle groups hosted besides the first (<group>1 ... <group>N-1), for the many-groups bench",
  },
} satisfies Record<string, FlagSpec>;

const MAX_BODY = 1 << 20;

/** Applies nothing; only runs each entry's closure. */
class NullFsm extends StateMachine {
  leaderTerm = -1;

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
    log(`event leader_start ${Date.now()} term ${term}`); // read by the failover trials
  }

  override onStopFollowing(_ctx: LeaderChangeContext): void {
    log(`event stop_following ${Date.now()}`);
  }

  override onLeaderStop(_status: Status): void {
    this.leaderTerm = -1;
  }
}

const opts = parseFlags(process.argv.slice(2), FLAGS);
const peerId = `${opts.ip}:${opts.port}:0`;
const log = (line: string): void =>
  console.error(`${new Date().toISOString()} [${peerId}] ${line}`);
const fsm = new NullFsm();
let node: Node | null = null;
const idle: Node[] = [];

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

const server = await serve(app, { hostname: opts.ip, port: opts.port });

let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  await node?.shutdown().catch(() => {});
  await Promise.all(idle.map((n) => n.shutdown().catch(() => {})));
  await service.close();
  await server.shutdown();
  process.exit(0);
};
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());

node = new Node(opts.group, peerId);
await node.init({
  fsm,
  initialConf: opts.conf,
  logUri: `local://${opts.data_path}/log`,
  raftMetaUri: `local://${opts.data_path}/raft_meta`,
  snapshotUri: `local://${opts.data_path}/snapshot`,
  electionTimeoutMs: opts.election_timeout_ms,
  snapshotIntervalS: opts.snapshot_interval,
});
// Extra idle groups (bench/groups_bench.mjs): same peers, own data directories and state machines.
for (let g = 1; g < opts.groups; g++) {
  const n = new Node(`${opts.group}${g}`, peerId);
  const dir = `${opts.data_path}/g${g}`;
  await n.init({
    fsm: new NullFsm(),
    initialConf: opts.conf,
    logUri: `local://${dir}/log`,
    raftMetaUri: `local://${dir}/raft_meta`,
    snapshotUri: `local://${dir}/snapshot`,
    electionTimeoutMs: opts.election_timeout_ms,
    snapshotIntervalS: opts.snapshot_interval,
  });
  idle.push(n);
}
log(`serving http://${opts.ip}:${server.port}`);
