/**
 * An embedded replicated key-value service: a Hono app with its own routes that embeds webraft
 * through `addService`. Runs unchanged on Deno, Bun and Node.
 *
 * ```sh
 * npx deno run -A examples/kv/server.ts --port 8200 \
 *   --conf 127.0.0.1:8200:0,127.0.0.1:8201:0,127.0.0.1:8202:0
 * npx bun examples/kv/server.ts --port 8201 --conf ...
 * npx node examples/kv/server.ts --port 8202 --conf ...
 * ```
 *
 * See README.md for the HTTP API. SIGTERM or SIGINT shuts the node down, ends the watch
 * streams, stops the server and exits 0.
 *
 * @module
 */

import process from "node:process";
import { resolve } from "node:path";
import { type Context, Hono } from "hono";
import { addService, Node, RaftException, serve, type ServeHandle } from "../../mod.ts";
import { type FlagSpec, parseFlags, usage, UsageError } from "../counter/args.ts";
import {
  type Command,
  CommandClosure,
  encodeCommand,
  errorText,
  KvStore,
  type Outcome,
} from "./store.ts";
import { WatchHub } from "./watch.ts";

const FLAGS = {
  port: { type: "int", default: 8200, help: "Listen port of this peer" },
  ip: { type: "string", default: "127.0.0.1", help: "IP of this peer (its PeerId is ip:port:0)" },
  conf: { type: "string", default: "", help: "Initial configuration of the group (peer,peer,...)" },
  group: { type: "string", default: "kv", help: "Id of the replication group" },
  data_path: { type: "string", default: "", help: "Where data is stored (default ./data/<port>)" },
  election_timeout_ms: {
    type: "int",
    default: 5000,
    help: "Start an election after this many ms without hearing from the leader",
  },
  snapshot_interval: { type: "int", default: 30, help: "Interval between snapshots, seconds" },
  secret: {
    type: "string",
    default: "",
    help: "Shared secret of the cluster (or env WEBRAFT_SECRET)",
  },
} satisfies Record<string, FlagSpec>;

const COMMAND = "deno run -A examples/kv/server.ts | bun examples/kv/server.ts | node ...";

/** Largest key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;
/** Largest request body (a PUT value or a CAS JSON), in bytes. */
export const MAX_BODY_BYTES = 64 * 1024;

/** A body over `MAX_BODY_BYTES` (answered 413). */
class TooLarge extends Error {}

/** The request body as UTF-8 text, at most `MAX_BODY_BYTES` (TooLarge) and valid UTF-8. */
async function readBody(req: Request): Promise<string> {
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > MAX_BODY_BYTES) throw new TooLarge(`Body larger than ${MAX_BODY_BYTES} bytes`);
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
      throw new TooLarge(`Body larger than ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return new TextDecoder("utf-8", { fatal: true }).decode(all); // TypeError if not UTF-8
}

/** The CAS body, validated; a string says what is wrong. */
function parseCas(key: string, text: string): Command | string {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return 'Body must be JSON like {"expected": "old" | null, "value": "new"}';
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return "Body must be a JSON object";
  }
  const b = body as Record<string, unknown>;
  if (typeof b.value !== "string") return '"value" must be a string';
  const hasExpected = "expected" in b;
  const hasRevision = "expectedRevision" in b;
  if (hasExpected === hasRevision) return 'Give exactly one of "expected" and "expectedRevision"';
  if (hasRevision) {
    const r = b.expectedRevision;
    if (typeof r !== "number" || !Number.isSafeInteger(r) || r < 0) {
      return '"expectedRevision" must be an integer >= 0';
    }
    return { op: "cas", key, expectedRevision: r, value: b.value };
  }
  if (b.expected !== null && typeof b.expected !== "string") {
    return '"expected" must be a string or null';
  }
  return { op: "cas", key, expected: b.expected as string | null, value: b.value };
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
    if (opts.election_timeout_ms < 1) throw new UsageError("--election_timeout_ms must be > 0");
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`kv server: ${e.message}\n\n${usage(COMMAND, FLAGS)}`);
    process.exit(2);
  }
  const peerId = `${opts.ip}:${opts.port}:0`;
  const log = (line: string): void =>
    console.error(`${new Date().toISOString()} [${opts.group} ${peerId}] ${line}`);
  const dataPath = resolve(opts.data_path === "" ? `./data/${opts.port}` : opts.data_path);
  const secret = opts.secret !== "" ? opts.secret : process.env.WEBRAFT_SECRET;

  const store = new KvStore(log);
  const watches = new WatchHub(store);
  let node: Node | null = null;

  const app = new Hono();
  const service = addService(
    app,
    `${opts.ip}:${opts.port}`,
    secret === undefined || secret === "" ? {} : { secret },
  );

  const notLeader = (extra: Record<string, unknown> = {}): Response =>
    Response.json({ redirect: node?.leaderId()?.endpoint ?? null, ...extra }, { status: 503 });
  const failed = (e: unknown): Response => {
    const ex = e instanceof RaftException ? e : null;
    return notLeader({ error: ex?.status.toString() ?? errorText(e), code: ex?.code ?? null });
  };
  const bad = (status: 400 | 413, error: string): Response => Response.json({ error }, { status });

  /** The key of the route, or a 400 answer. */
  const keyOf = (c: Context): string | Response => {
    const key = c.req.param("key") ?? "";
    if (key === "") return bad(400, "The key must not be empty");
    if (new TextEncoder().encode(key).byteLength > MAX_KEY_BYTES) {
      return bad(400, `The key is longer than ${MAX_KEY_BYTES} bytes`);
    }
    return key;
  };

  /** The body as text, or a 400/413 answer. */
  const bodyOf = async (c: Context): Promise<string | { error: Response }> => {
    try {
      return await readBody(c.req.raw);
    } catch (e) {
      if (e instanceof TooLarge) return { error: bad(413, e.message) };
      return { error: bad(400, `Cannot read the body as UTF-8 text: ${errorText(e)}`) };
    }
  };

  /** Proposes `cmd` as the leader and resolves with its outcome once applied. */
  const propose = async (cmd: Command): Promise<Outcome | Response> => {
    const term = store.leaderTerm;
    if (node === null || term <= 0) return notLeader();
    try {
      return await new Promise<Outcome>((resolve, reject) =>
        node!.apply({
          data: encodeCommand(cmd),
          done: new CommandClosure((st, outcome) =>
            st.ok() && outcome !== null ? resolve(outcome) : reject(new RaftException(st))
          ),
          expectedTerm: term,
        })
      );
    } catch (e) {
      return failed(e);
    }
  };

  app.get("/kv/watch", (c) => watches.respond(c.req.query("prefix") ?? ""));

  app.get("/kv/:key", async (c) => {
    const key = keyOf(c);
    if (key instanceof Response) return key;
    if (node === null || store.leaderTerm <= 0) return notLeader();
    try {
      await node.readIndex(); // leadership confirmed by a quorum, applied up to the read index
    } catch (e) {
      return failed(e);
    }
    const entry = store.get(key);
    if (entry === null) return c.json({ error: `No key "${key}"` }, 404);
    return c.json({ key, value: entry.value, revision: entry.revision });
  });

  app.put("/kv/:key", async (c) => {
    const key = keyOf(c);
    if (key instanceof Response) return key;
    const value = await bodyOf(c);
    if (typeof value !== "string") return value.error;
    const out = await propose({ op: "put", key, value });
    if (out instanceof Response) return out;
    return c.json({ revision: out.ok ? out.revision : null });
  });

  app.delete("/kv/:key", async (c) => {
    const key = keyOf(c);
    if (key instanceof Response) return key;
    const out = await propose({ op: "delete", key });
    if (out instanceof Response) return out;
    return out.ok ? c.json({ revision: out.revision }) : c.json({ error: `No key "${key}"` }, 404);
  });

  app.post("/kv/:key/cas", async (c) => {
    const key = keyOf(c);
    if (key instanceof Response) return key;
    const text = await bodyOf(c);
    if (typeof text !== "string") return text.error;
    const cmd = parseCas(key, text);
    if (typeof cmd === "string") return bad(400, cmd);
    const out = await propose(cmd);
    if (out instanceof Response) return out;
    if (out.ok) return c.json({ revision: out.revision });
    return c.json({ error: "Compare-and-set mismatch", current: out.current }, 409);
  });

  let server: ServeHandle;
  try {
    server = await serve(app, { hostname: opts.ip, port: opts.port });
  } catch (e) {
    const msg = errorText(e);
    const busy = /in use|EADDRINUSE/i.test(msg);
    log(busy ? `port ${opts.port} is busy: ${msg}` : `cannot serve: ${msg}`);
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
      await watches.closeAll();
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
      fsm: store,
      initialConf: opts.conf,
      logUri: `local://${dataPath}/log`,
      raftMetaUri: `local://${dataPath}/raft_meta`,
      snapshotUri: `local://${dataPath}/snapshot`,
      electionTimeoutMs: opts.election_timeout_ms,
      snapshotIntervalS: opts.snapshot_interval,
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
      `election timeout ${opts.election_timeout_ms} ms, snapshot every ${opts.snapshot_interval} s)`,
  );
}

if (import.meta.main) await main();
