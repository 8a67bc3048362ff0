/**
 * braft's `example/counter` server on webraft: a replicated 64-bit counter.
 *
 * ```sh
 * npx deno run -A examples/counter/server.ts --port 8100 \
 *   --conf 127.0.0.1:8100:0,127.0.0.1:8101:0,127.0.0.1:8102:0 --data_path ./data/8100
 * npx bun examples/counter/server.ts --port 8101 --conf ... --data_path ./data/8101
 * ```
 *
 * One port serves raft (through `addService`: peers, CLI, `/raft_stat`, `/flags`) and the
 * counter's HTTP API:
 *
 * - `POST /counter/fetch_add` `{"delta": n}` → `{"success": true, "value": <value before>}`;
 * - `GET /counter` → `{"success": true, "value": n}`, a linearizable read (ReadIndex); with
 *   `--follower_reads` a follower serves it too (it asks the leader for the read index and waits
 *   for its own state machine to apply that far);
 * - on a node that is not the leader: 503 `{"success": false, "redirect": "host:port" | null}`;
 * - bad input: 400 `{"success": false, "error": "..."}`; a failed apply or read: 503 with
 *   `error`, `code` and `redirect`.
 *
 * SIGTERM or SIGINT shuts the node down, then the server, and exits 0.
 *
 * @module
 */

import process from "node:process";
import { resolve } from "node:path";
import { Hono } from "hono";
import {
  addService,
  type Clock,
  type Closure,
  type Iterator,
  type LeaderChangeContext,
  Node,
  RaftError,
  RaftException,
  serve,
  type ServeHandle,
  type SnapshotReader,
  type SnapshotWriter,
  StateMachine,
  Status,
} from "../../mod.ts";
import { type FlagSpec, parseFlags, usage, UsageError } from "./args.ts";

const FLAGS = {
  port: { type: "int", default: 8100, help: "Listen port of this peer" },
  ip: { type: "string", default: "127.0.0.1", help: "IP of this peer (its PeerId is ip:port:0)" },
  listen_port: {
    type: "int",
    default: 0,
    help: "Port to bind if not --port (a proxy owns --port, as in the fault tests); 0: --port",
  },
  conf: { type: "string", default: "", help: "Initial configuration of the group (peer,peer,...)" },
  group: { type: "string", default: "Counter", help: "Id of the replication group" },
  data_path: {
    type: "string",
    default: "",
    help: "Path of data stored on (default ./data/<port>)",
  },
  election_timeout_ms: {
    type: "int",
    default: 5000,
    help: "Start an election after this many ms without hearing from the leader",
  },
  enable_leader_lease: {
    type: "bool",
    default: false,
    help: "Serve GET /counter from the leader lease when valid (no quorum round trip)",
  },
  follower_reads: {
    type: "bool",
    default: false,
    help: "Serve GET /counter on followers too (read index asked of the leader), not a redirect",
  },
  clock_rate: {
    type: "number",
    default: 1,
    help: "Speed of this node's clock and timers against real time (skew for fault tests)",
  },
  snapshot_interval: { type: "int", default: 30, help: "Interval between snapshots, seconds" },
  disable_cli: { type: "bool", default: false, help: "Don't allow raft_cli to access this node" },
  check_term: { type: "bool", default: true, help: "Check the leader's term before applying" },
  secret: {
    type: "string",
    default: "",
    help: "Shared secret of the cluster (or env WEBRAFT_SECRET)",
  },
} satisfies Record<string, FlagSpec>;

const MAX_BODY_BYTES = 4096;

const COMMAND = "deno run -A examples/counter/server.ts | bun examples/counter/server.ts";

/**
 * The caller's own closure (braft's `FetchAddClosure`): the state machine writes the value
 * before the add into it through `iter.done()`, then runs it.
 */
class FetchAddClosure implements Closure {
  /** The value before this add, filled in by the state machine. */
  old = 0n;
  readonly #settle: (status: Status, old: bigint) => void;

  constructor(settle: (status: Status, old: bigint) => void) {
    this.#settle = settle;
  }

  run(status: Status): void {
    this.#settle(status, this.old);
  }
}

/** braft's `Counter` state machine: the value and the leader's term. */
class Counter extends StateMachine {
  value = 0n;
  /** The term this node leads in, set by `onLeaderStart`; -1 when not leading. */
  leaderTerm = -1;
  readonly #log: (line: string) => void;

  constructor(log: (line: string) => void) {
    super();
    this.#log = log;
  }

  /** Leading and started (braft's counter: `_leader_term > 0`). */
  isLeader(): boolean {
    return this.leaderTerm > 0;
  }

  override onApply(iter: Iterator): void {
    for (; iter.valid(); iter.next()) {
      const delta = decodeDelta(iter.data().toUint8Array());
      const done = iter.done();
      if (done instanceof FetchAddClosure) done.old = this.value;
      this.value = BigInt.asIntN(64, this.value + delta); // int64 wraps, as braft's
      done?.run(Status.OK());
    }
  }

  override async onSnapshotSave(writer: SnapshotWriter, done: Closure): Promise<void> {
    const value = this.value; // the state at the snapshot's index
    try {
      await writer.writeFile("data", new TextEncoder().encode(`${value}\n`));
      done.run(Status.OK());
    } catch (e) {
      this.#log(`snapshot save failed: ${errorText(e)}`);
      done.run(new Status(RaftError.EIO, `Cannot save the counter snapshot: ${errorText(e)}`));
    }
  }

  override async onSnapshotLoad(reader: SnapshotReader): Promise<void> {
    if (this.isLeader()) throw new Error("A leader is not supposed to load a snapshot");
    const text = new TextDecoder().decode(await reader.readFile("data")).trim();
    if (!/^-?\d{1,20}$/.test(text)) {
      throw new Error(`Snapshot file "data" does not hold a counter value: "${text.slice(0, 40)}"`);
    }
    this.value = BigInt.asIntN(64, BigInt(text));
    const meta = reader.loadMeta();
    this.#log(
      `loaded snapshot at index ${meta.lastIncludedIndex} term ${meta.lastIncludedTerm}: value ${this.value}`,
    );
  }

  override onLeaderStart(term: number): void {
    this.leaderTerm = term;
    this.#log(`became leader in term ${term} (value ${this.value})`);
  }

  override onLeaderStop(status: Status): void {
    this.leaderTerm = -1;
    this.#log(`stopped leading: ${status}`);
  }

  override onStartFollowing(ctx: LeaderChangeContext): void {
    this.#log(`following ${ctx.leaderId} in term ${ctx.term}`);
  }

  override onStopFollowing(ctx: LeaderChangeContext): void {
    this.#log(`stopped following ${ctx.leaderId}: ${ctx.status}`);
  }

  override onError(error: RaftException): void {
    this.#log(`ERROR: ${error.message}`);
  }

  override onShutdown(): void {
    this.#log("state machine shut down");
  }
}

/** A task's payload: the delta as a big-endian int64. */
function encodeDelta(delta: bigint): Uint8Array {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigInt64(0, delta);
  return bytes;
}

function decodeDelta(bytes: Uint8Array): bigint {
  if (bytes.byteLength !== 8) return 0n; // not ours: leave the value alone
  return new DataView(bytes.buffer, bytes.byteOffset, 8).getBigInt64(0);
}

/** A request body of at most `MAX_BODY_BYTES`, as text (a larger one is a RangeError). */
async function readSmallBody(req: Request): Promise<string> {
  const reader = req.body?.getReader();
  if (reader === undefined) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel();
      throw new RangeError(`Body larger than ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return new TextDecoder().decode(all);
}

/** A clock running `rate` times as fast as real time: `now()` and timers scaled alike. */
function skewedClock(rate: number): Clock {
  const origin = performance.now();
  return {
    now: () => origin + (performance.now() - origin) * rate,
    setTimer: (fn, ms) => setTimeout(fn, ms / rate),
    clearTimer: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
  };
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A JSON body whose `value` is an exact int64 (JSON numbers have no size limit). */
function valueResponse(value: bigint): Response {
  return new Response(`{"success":true,"value":${value}}`, {
    headers: { "content-type": "application/json" },
  });
}

async function main(): Promise<void> {
  if (process.argv.slice(2).some((a) => a === "--help" || a === "-h")) {
    console.log(usage(COMMAND, FLAGS));
    return;
  }
  let opts;
  try {
    opts = parseFlags(process.argv.slice(2), FLAGS);
    if (opts.port < 1 || opts.port > 65535) throw new UsageError("--port must be 1..65535");
    if (opts.listen_port < 0 || opts.listen_port > 65535) {
      throw new UsageError("--listen_port must be 0..65535");
    }
    if (opts.election_timeout_ms < 1) throw new UsageError("--election_timeout_ms must be > 0");
    if (!(opts.clock_rate >= 0.1 && opts.clock_rate <= 10)) {
      throw new UsageError("--clock_rate must be 0.1..10");
    }
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`counter server: ${e.message}\n\n${usage(COMMAND, FLAGS)}`);
    process.exit(2);
  }
  const peerId = `${opts.ip}:${opts.port}:0`;
  const log = (line: string): void =>
    console.error(`${new Date().toISOString()} [${opts.group} ${peerId}] ${line}`);
  const dataPath = resolve(opts.data_path === "" ? `./data/${opts.port}` : opts.data_path);
  const secret = opts.secret !== "" ? opts.secret : process.env.WEBRAFT_SECRET;

  const fsm = new Counter(log);
  let node: Node | null = null;

  const app = new Hono();
  const service = addService(
    app,
    `${opts.ip}:${opts.port}`,
    secret === undefined || secret === "" ? {} : { secret },
  );

  /** 503 with where the client should go instead (the leader's endpoint, if known). */
  const notLeader = (extra: Record<string, unknown> = {}): Response =>
    Response.json(
      { success: false, redirect: node?.leaderId()?.endpoint ?? null, ...extra },
      { status: 503 },
    );
  const failed = (e: unknown): Response => {
    const ex = e instanceof RaftException ? e : null;
    return notLeader({ error: ex?.status.toString() ?? errorText(e), code: ex?.code ?? null });
  };
  const badRequest = (error: string): Response =>
    Response.json({ success: false, error }, { status: 400 });

  app.post("/counter/fetch_add", async (c) => {
    let body: unknown;
    try {
      body = JSON.parse(await readSmallBody(c.req.raw));
    } catch (e) {
      return badRequest(
        e instanceof RangeError ? e.message : 'Body must be JSON like {"delta": 1}',
      );
    }
    const delta = (body as { delta?: unknown } | null)?.delta;
    if (typeof delta !== "number" || !Number.isSafeInteger(delta)) {
      return badRequest(
        `"delta" must be a safe integer, got ${JSON.stringify(delta) ?? "nothing"}`,
      );
    }
    const term = fsm.leaderTerm;
    if (node === null || term <= 0) return notLeader();
    try {
      const old = await new Promise<bigint>((resolve, reject) =>
        node!.apply({
          data: encodeDelta(BigInt(delta)),
          done: new FetchAddClosure((st, old) =>
            st.ok() ? resolve(old) : reject(new RaftException(st))
          ),
          ...(opts.check_term ? { expectedTerm: term } : {}),
        })
      );
      return valueResponse(old);
    } catch (e) {
      return failed(e);
    }
  });

  app.get("/counter", async () => {
    if (node === null || (!fsm.isLeader() && !opts.follower_reads)) return notLeader();
    try {
      // On the leader: leadership confirmed (quorum or lease), applied up to the read index. On
      // a follower (--follower_reads): the leader's read index, applied here up to it.
      await node.readIndex();
      return valueResponse(fsm.value);
    } catch (e) {
      return failed(e);
    }
  });

  let server: ServeHandle;
  try {
    server = await serve(app, { hostname: opts.ip, port: opts.listen_port || opts.port });
  } catch (e) {
    const msg = errorText(e);
    const busy = /in use|EADDRINUSE/i.test(msg);
    log(
      busy
        ? `port ${opts.listen_port || opts.port} is busy (address already in use): ${msg}`
        : `cannot serve: ${msg}`,
    );
    await service.close();
    process.exit(busy ? 98 : 1); // 98 = EADDRINUSE, for scripts that retry on another port
  }

  let stopping: Promise<void> | null = null;
  const stop = (why: string): Promise<void> =>
    stopping ??= (async () => {
      log(`${why}: shutting down`);
      try {
        await node?.shutdown();
      } catch (e) {
        log(`node shutdown failed: ${errorText(e)}`);
      }
      await service.close();
      await server.shutdown();
      log("stopped");
      process.exit(0);
    })();
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));

  node = new Node(opts.group, peerId);
  try {
    await node.init({
      fsm,
      initialConf: opts.conf,
      logUri: `local://${dataPath}/log`,
      raftMetaUri: `local://${dataPath}/raft_meta`,
      snapshotUri: `local://${dataPath}/snapshot`,
      electionTimeoutMs: opts.election_timeout_ms,
      snapshotIntervalS: opts.snapshot_interval,
      disableCli: opts.disable_cli,
      ...(opts.enable_leader_lease ? { enableLeaderLease: true } : {}), // else the flag default
      ...(opts.clock_rate === 1 ? {} : { clock: skewedClock(opts.clock_rate) }),
    });
  } catch (e) {
    log(`cannot start the node: ${errorText(e)}`);
    node = null;
    await service.close();
    await server.shutdown();
    process.exit(1);
  }
  log(
    `serving http://${opts.ip}:${server.port} (conf "${opts.conf}", data ${dataPath}, ` +
      `election timeout ${opts.election_timeout_ms} ms` +
      (opts.enable_leader_lease ? ", leader lease" : "") +
      (opts.follower_reads ? ", follower reads" : "") +
      (opts.clock_rate === 1 ? "" : `, clock rate ${opts.clock_rate}`) + ")",
  );
}

if (import.meta.main) await main();
