/**
 * braft's `example/counter` client on webraft: `--threads` loops send `fetch_add` (and, for
 * the rest of `--add_percentage`, linearizable `GET /counter`) to the leader, found by trying
 * the peers of `--conf` and following `redirect` (with `--follower_reads`, GETs go to every peer
 * in turn). Prints one progress line every second
 * (ops/s, p50/p99 latency, leader, errors) and a summary at the end.
 *
 * ```sh
 * npx deno run -A examples/counter/client.ts \
 *   --conf 127.0.0.1:8100:0,127.0.0.1:8101:0,127.0.0.1:8102:0 --threads 3 --duration 10
 * ```
 *
 * Exits 0, or 1 when every request failed, 2 on a usage error.
 *
 * @module
 */

import process from "node:process";
import { type FlagSpec, parseFlags, usage, UsageError } from "./args.ts";

const FLAGS = {
  conf: { type: "string", default: "", help: "Configuration of the raft group (peer,peer,...)" },
  group: { type: "string", default: "Counter", help: "Id of the replication group (unused)" },
  threads: { type: "int", default: 1, help: "Number of concurrent request loops" },
  add_percentage: { type: "int", default: 100, help: "Percentage of fetch_add (rest are GETs)" },
  duration: { type: "number", default: 0, help: "Seconds to run; 0 runs until Ctrl-C" },
  timeout_ms: { type: "int", default: 1000, help: "Timeout of each request" },
  log_each_request: { type: "bool", default: false, help: "Print every request's outcome" },
  follower_reads: {
    type: "bool",
    default: false,
    help: "Send GETs to every peer in turn, not the leader (servers run with --follower_reads)",
  },
} satisfies Record<string, FlagSpec>;

const COMMAND = "deno run -A examples/counter/client.ts | bun examples/counter/client.ts";

/** What a run measured. */
interface Stats {
  ok: number;
  errors: number;
  redirects: number;
  latencies: number[];
}

function newStats(): Stats {
  return { ok: 0, errors: 0, redirects: 0, latencies: [] };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

/** Endpoints (`host:port`) of a configuration string. */
function endpointsOf(conf: string): string[] {
  const out: string[] = [];
  for (const raw of conf.split(",")) {
    const peer = raw.trim();
    if (peer === "") continue;
    const m = /^(\[[^\]]+\]|[^:]+):(\d+)(?::\d+)?(?::\d+)?$/.exec(peer);
    if (m === null) throw new UsageError(`--conf: "${peer}" is not a peer id (ip:port[:idx])`);
    out.push(`${m[1]}:${m[2]}`);
  }
  if (out.length === 0) throw new UsageError("--conf is required (e.g. 127.0.0.1:8100:0,...)");
  return out;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.some((a) => a === "--help" || a === "-h")) {
    console.log(usage(COMMAND, FLAGS));
    return;
  }
  let opts;
  let peers: string[];
  try {
    opts = parseFlags(argv, FLAGS);
    peers = endpointsOf(opts.conf);
    if (opts.threads < 1) throw new UsageError("--threads must be at least 1");
    if (opts.add_percentage < 0 || opts.add_percentage > 100) {
      throw new UsageError("--add_percentage must be 0..100");
    }
    if (opts.duration < 0) throw new UsageError("--duration must be >= 0");
    if (opts.timeout_ms < 1) throw new UsageError("--timeout_ms must be > 0");
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`counter client: ${e.message}\n\n${usage(COMMAND, FLAGS)}`);
    process.exit(2);
  }

  const total = newStats();
  let window = newStats();
  let leader: string | null = null;
  let nextPeer = 0;
  let nextReader = 0;
  let stopped = false;
  let wake: () => void = () => {};
  const stoppedPromise = new Promise<void>((r) => wake = r);
  const stop = (): void => {
    stopped = true;
    wake();
  };

  const pickTarget = (): string => leader ?? peers[nextPeer++ % peers.length]!;
  const pause = (ms: number): Promise<void> =>
    Promise.race([new Promise<void>((r) => setTimeout(r, ms)), stoppedPromise]);

  /** One request; returns after success or one failed attempt. */
  const attempt = async (): Promise<void> => {
    const add = Math.random() * 100 < opts.add_percentage;
    // a GET served by any peer (follower reads) says nothing of who leads
    const anyPeer = !add && opts.follower_reads;
    const target = anyPeer ? peers[nextReader++ % peers.length]! : pickTarget();
    const started = performance.now();
    let outcome: string;
    try {
      const res = await fetch(
        `http://${target}/counter${add ? "/fetch_add" : ""}`,
        add
          ? {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: '{"delta":1}',
            signal: AbortSignal.timeout(opts.timeout_ms),
          }
          : { signal: AbortSignal.timeout(opts.timeout_ms) },
      );
      const body = await res.json() as {
        success?: boolean;
        value?: number;
        redirect?: string | null;
        error?: string;
      };
      const ms = performance.now() - started;
      if (res.status === 200 && body.success === true) {
        if (!anyPeer) leader = target;
        for (const s of [total, window]) {
          s.ok++;
          s.latencies.push(ms);
        }
        outcome = `${add ? "fetch_add(1)" : "get"} = ${body.value} (${ms.toFixed(1)} ms)`;
      } else if (res.status === 503 && body.error === undefined) {
        // Not the leader: go where it points, or try the next peer.
        total.redirects++;
        window.redirects++;
        const next = typeof body.redirect === "string" && body.redirect !== target
          ? body.redirect
          : null;
        if (!anyPeer) leader = next;
        outcome = `redirect from ${target} to ${next ?? "(unknown)"}`;
        if (next === null) await pause(100); // an election is going on
      } else {
        total.errors++;
        window.errors++;
        if (!anyPeer) leader = typeof body.redirect === "string" ? body.redirect : null;
        outcome = `error from ${target}: HTTP ${res.status} ${body.error ?? JSON.stringify(body)}`;
        await pause(50);
      }
    } catch (e) {
      total.errors++;
      window.errors++;
      if (leader === target) leader = null;
      outcome = `error from ${target}: ${e instanceof Error ? e.message : String(e)}`;
      await pause(100);
    }
    if (opts.log_each_request) console.log(outcome);
  };

  const loop = async (): Promise<void> => {
    while (!stopped) await attempt();
  };

  const tty = process.stdout.isTTY === true;
  const started = performance.now();
  const progress = setInterval(() => {
    const w = window;
    window = newStats();
    const sorted = w.latencies.sort((a, b) => a - b);
    const secs = Math.round((performance.now() - started) / 1000);
    const line = `[${String(secs).padStart(4)} s] ${String(w.ok).padStart(6)} ops/s  ` +
      `p50 ${percentile(sorted, 0.5).toFixed(1)} ms  p99 ${
        percentile(sorted, 0.99).toFixed(1)
      } ms  ` +
      `leader ${leader ?? "?"}  errors ${w.errors}  redirects ${w.redirects}`;
    if (tty) process.stdout.write(`\r${line}\x1b[K`);
    else console.log(line);
  }, 1000);

  const onSignal = (): void => stop();
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const timer = opts.duration > 0 ? setTimeout(stop, opts.duration * 1000) : null;

  await Promise.all(Array.from({ length: opts.threads }, loop));
  clearInterval(progress);
  if (timer !== null) clearTimeout(timer);
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);

  const secs = (performance.now() - started) / 1000;
  const sorted = total.latencies.sort((a, b) => a - b);
  if (tty) process.stdout.write("\n");
  console.log(
    `Summary: ${total.ok} ok in ${secs.toFixed(1)} s (${(total.ok / secs).toFixed(0)} ops/s), ` +
      `p50 ${percentile(sorted, 0.5).toFixed(1)} ms, p99 ${
        percentile(sorted, 0.99).toFixed(1)
      } ms, ` +
      `max ${(sorted.at(-1) ?? 0).toFixed(1)} ms; errors ${total.errors}, ` +
      `redirects ${total.redirects}; leader ${leader ?? "?"}`,
  );
  if (total.ok === 0 && total.errors + total.redirects > 0) process.exit(1);
  process.exit(0);
}

if (import.meta.main) await main();
