/**
 * Real counter servers (examples/counter/server.ts) as child processes on Deno and Bun, for
 * the counter tests: free ports, start/stop/SIGKILL/restart, and HTTP helpers that follow
 * redirects the way a client does.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { connect, createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = join(here, "..", "..");
const SERVER = join(ROOT, "examples", "counter", "server.ts");
export const DEADLINE_MS = 90_000;
const GRACE_MS = 15_000;
export const GROUP = "Counter";

export type Runtime = "deno" | "bun";

/** The path of a runtime's binary from node_modules. */
export function bin(name: string): string {
  return join(ROOT, "node_modules", ".bin", name);
}

/** `n` distinct ports that were free a moment ago (bound to port 0, then released). */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const srv = createServer();
          srv.once("error", reject);
          srv.listen(0, "127.0.0.1", () => resolve(srv));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** One server process. */
export class CounterServer {
  readonly port: number;
  readonly runtime: Runtime;
  readonly child: ChildProcess;
  readonly exited: Promise<number | string>;
  stderr = "";

  constructor(runtime: Runtime, port: number, args: string[], env: Record<string, string>) {
    this.runtime = runtime;
    this.port = port;
    const cmd = runtime === "deno" ? ["run", "-A", SERVER, ...args] : [SERVER, ...args];
    this.child = spawn(bin(runtime), cmd, {
      cwd: ROOT,
      env: { ...process.env, ...env, NO_COLOR: "1" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    this.child.stderr!.on("data", (d) => this.stderr += d);
    this.exited = new Promise((resolve) =>
      this.child.once("exit", (code, signal) => resolve(code ?? signal ?? -1))
    );
  }

  get endpoint(): string {
    return `127.0.0.1:${this.port}`;
  }

  alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves once the node serves (its "serving" line); rejects if it exits first. */
  async ready(): Promise<void> {
    await until(`${this.runtime} server ${this.port} to start`, () => {
      if (!this.alive()) {
        throw new Error(`server ${this.port} exited (${this.child.exitCode}): ${this.stderr}`);
      }
      return Promise.resolve(this.stderr.includes("serving http://") ? true : null);
    });
  }

  /** SIGTERM, then SIGKILL after a grace period; resolves with the exit code or signal. */
  async stop(): Promise<number | string> {
    if (this.alive()) this.child.kill("SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((r) => timer = setTimeout(r, GRACE_MS, "late"));
    const r = await Promise.race([this.exited, late]);
    clearTimeout(timer);
    if (r === "late") {
      this.child.kill("SIGKILL");
      return await this.exited;
    }
    return r;
  }

  async kill(): Promise<void> {
    this.child.kill("SIGKILL");
    await this.exited;
  }
}

/** Options of a cluster. */
export interface ClusterOptions {
  runtimes: Runtime[];
  dir: string;
  extraArgs?: string[];
  secret?: string;
}

/** A group of counter servers on free ports. */
export class CounterCluster {
  readonly servers: CounterServer[] = [];
  readonly ports: number[];
  readonly conf: string;
  readonly #options: ClusterOptions;

  private constructor(ports: number[], options: ClusterOptions) {
    this.ports = ports;
    this.conf = ports.map((p) => `127.0.0.1:${p}:0`).join(",");
    this.#options = options;
  }

  /** Starts every server (retrying on other ports if one was taken meanwhile). */
  static async start(options: ClusterOptions): Promise<CounterCluster> {
    for (let attempt = 0;; attempt++) {
      const cluster = new CounterCluster(await freePorts(options.runtimes.length), options);
      options.runtimes.forEach((_, i) => cluster.servers.push(cluster.spawn(i)));
      try {
        await Promise.all(cluster.servers.map((s) => s.ready()));
        return cluster;
      } catch (e) {
        await cluster.stop();
        const busy = cluster.servers.some((s) => s.child.exitCode === 98);
        if (!busy || attempt >= 3) throw e;
      }
    }
  }

  spawn(i: number): CounterServer {
    const port = this.ports[i]!;
    const args = [
      `--port=${port}`,
      `--conf=${this.conf}`,
      `--data_path=${join(this.#options.dir, String(port))}`,
      "--election_timeout_ms=1000",
      ...(this.#options.extraArgs ?? []),
    ];
    const env: Record<string, string> = this.#options.secret === undefined
      ? {}
      : { WEBRAFT_SECRET: this.#options.secret };
    return new CounterServer(this.#options.runtimes[i]!, port, args, env);
  }

  /** Starts server `i` again from its data (after it stopped). */
  async restart(i: number): Promise<CounterServer> {
    const s = this.spawn(i);
    this.servers[i] = s;
    await s.ready();
    return s;
  }

  /** The server answering `GET /counter` with 200 (the leader). */
  async leader(among: CounterServer[] = this.servers): Promise<CounterServer> {
    return await until("a leader answering GET /counter", async () => {
      for (const s of among) {
        if (!s.alive()) continue;
        const r = await get(s.endpoint).catch(() => null);
        if (r?.status === 200) return s;
      }
      return null;
    });
  }

  async stop(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop()));
  }
}

/** Polls `probe` (cross-process state has no events to wait on) until it returns non-null. */
export async function until<T>(what: string, probe: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    const got = await probe();
    if (got !== null) return got;
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${DEADLINE_MS} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** An HTTP answer: status and parsed JSON body. */
export interface Answer {
  status: number;
  body: Record<string, unknown>;
}

async function answer(res: Response): Promise<Answer> {
  return { status: res.status, body: await res.json() as Record<string, unknown> };
}

export async function get(endpoint: string, path = "/counter"): Promise<Answer> {
  return await answer(
    await fetch(`http://${endpoint}${path}`, { signal: AbortSignal.timeout(10_000) }),
  );
}

/**
 * `GET /counter` over a plain socket, one connection per call (fetch pools connections and,
 * under Deno, a request queued on a frozen process did not honour its timeout).
 */
export function rawGet(port: number, timeoutMs = 30_000): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let data = "";
    socket.setEncoding("utf8");
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`GET :${port} timed out`)));
    socket.on(
      "connect",
      () =>
        socket.write(
          `GET /counter HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`,
        ),
    );
    socket.on("data", (d) => data += d);
    socket.on("error", reject);
    socket.on("close", () => {
      const m = /^HTTP\/1\.1 (\d{3})[^]*?\r\n\r\n([^]*)$/.exec(data);
      if (m === null) return reject(new Error(`Bad HTTP answer from :${port}: ${data}`));
      const body = /^[0-9a-f]+\r\n/i.test(m[2]!) ? dechunk(m[2]!) : m[2]!;
      try {
        resolve({ status: Number(m[1]), body: JSON.parse(body) as Record<string, unknown> });
      } catch (e) {
        reject(new Error(`Bad JSON from :${port}: ${body} (${e})`));
      }
    });
  });
}

function dechunk(text: string): string {
  let out = "";
  let rest = text;
  for (;;) {
    const m = /^([0-9a-f]+)\r\n/i.exec(rest);
    if (m === null) return out;
    const size = parseInt(m[1]!, 16);
    if (size === 0) return out;
    out += rest.slice(m[0].length, m[0].length + size);
    rest = rest.slice(m[0].length + size + 2);
  }
}

export async function post(endpoint: string, body: string): Promise<Answer> {
  return await answer(
    await fetch(`http://${endpoint}/counter/fetch_add`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
      signal: AbortSignal.timeout(10_000),
    }),
  );
}

/** The outcome of one fetch_add as a careful client sees it. */
export type AddOutcome =
  | { kind: "ok"; delta: number; old: number }
  | { kind: "unknown"; delta: number; why: string }; // failed after it may have been proposed

/**
 * One `fetch_add(delta)` through whoever leads: follows redirects and retries a refusal
 * that proves nothing was proposed (503 without `error`); an apply error or a lost answer
 * leaves the outcome unknown (the entry may still commit).
 */
export async function fetchAdd(
  endpoints: () => string[],
  delta: number,
  hint: { leader: string | null },
): Promise<AddOutcome> {
  const deadline = Date.now() + DEADLINE_MS;
  let next = 0;
  while (Date.now() < deadline) {
    const list = endpoints();
    const target = hint.leader ?? list[next++ % list.length]!;
    let r: Answer;
    try {
      r = await post(target, JSON.stringify({ delta }));
    } catch (e) {
      hint.leader = null;
      // Refused connection (a dead node; followers point at a dead leader until they time
      // out): nothing was sent. Any other failure: it may have been applied.
      const why = errorChain(e);
      if (/refused|ECONNREFUSED/i.test(why)) {
        await new Promise((res) => setTimeout(res, 50));
        continue;
      }
      return { kind: "unknown", delta, why: `${target}: ${why}` };
    }
    if (r.status === 200) {
      hint.leader = target;
      return { kind: "ok", delta, old: r.body.value as number };
    }
    if (r.status === 503 && r.body.error === undefined) {
      const redirect = r.body.redirect;
      hint.leader = typeof redirect === "string" && redirect !== target ? redirect : null;
      if (hint.leader === null) await new Promise((res) => setTimeout(res, 50));
      continue;
    }
    hint.leader = null;
    return { kind: "unknown", delta, why: `${target}: ${r.status} ${JSON.stringify(r.body)}` };
  }
  throw new Error(`fetch_add(${delta}) found no leader in ${DEADLINE_MS} ms`);
}

/** An error with its causes and codes (fetch wraps the socket error as `cause`). */
function errorChain(e: unknown): string {
  const parts: string[] = [];
  for (let c: unknown = e, depth = 0; c !== undefined && c !== null && depth < 5; depth++) {
    const err = c as { message?: unknown; code?: unknown; cause?: unknown };
    parts.push(`${String(err.message ?? c)}${err.code === undefined ? "" : ` (${err.code})`}`);
    c = err.cause;
  }
  return parts.join(": ");
}

/**
 * Checks acknowledged adds against the final value: the previous values are distinct, and
 * sorted by them each add's `old + delta` is at most the next `old`, with gaps only where
 * unknown adds (all positive) may fit; the final value is the last `old + delta` plus what is
 * left of the unknown adds.
 *
 * @returns A description of the first violation, or null.
 */
export function checkHistory(outcomes: AddOutcome[], final: number, start = 0): string | null {
  const acked = outcomes.filter((o) => o.kind === "ok") as Extract<AddOutcome, { kind: "ok" }>[];
  const unknown = outcomes.filter((o) => o.kind === "unknown").reduce((s, o) => s + o.delta, 0);
  acked.sort((a, b) => a.old - b.old);
  let at = start;
  let gaps = 0;
  for (const a of acked) {
    if (a.old < at) return `previous value ${a.old} overlaps an earlier add ending at ${at}`;
    gaps += a.old - at;
    at = a.old + a.delta;
  }
  if (final < at) return `final value ${final} is below the last acknowledged add's ${at}`;
  gaps += final - at;
  if (gaps > unknown) {
    return `gaps total ${gaps} but only ${unknown} of adds have unknown outcomes`;
  }
  return null;
}

/** The node's `/raft_stat/<group>` fields (camelCase or snake_case, whichever is served). */
export async function raftStat(endpoint: string): Promise<Record<string, unknown>> {
  const res = await fetch(`http://${endpoint}/raft_stat/${GROUP}?format=json`, {
    headers: { accept: "application/json" },
    signal: AbortSignal.timeout(10_000),
  });
  const body = await res.json() as { nodes?: Record<string, unknown>[] } & Record<string, unknown>;
  return body.nodes?.[0] ?? body;
}

export function statNumber(stat: Record<string, unknown>, camel: string): number {
  const snake = camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  const v = stat[camel] ?? stat[snake];
  if (typeof v !== "number") {
    throw new Error(`raft_stat has no number ${camel}: ${JSON.stringify(stat)}`);
  }
  return v;
}
