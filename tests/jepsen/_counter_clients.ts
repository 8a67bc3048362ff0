/**
 * Concurrent counter clients for the fault tests: each does `fetch_add(1)` and linearizable
 * `GET /counter` against whichever node it believes leads, recording every operation in a
 * {@link History}:
 *
 * - 200: `ok` with the value;
 * - a refused connection (nothing sent) or 503 without `error` (a node that is not the leader
 *   refused before doing anything): `fail`, and the next operation goes elsewhere;
 * - a request sent and then reset or timed out, or a 503 with an apply/read `error`: `info`
 *   (unknown), and the client continues as a new process, since the old one may still be
 *   "in" that operation forever.
 *
 * Clients dial each node's own port, not the partition proxy (clients are never cut off).
 * With `followerReads` (servers run with `--follower_reads`) every GET goes to a random node,
 * so most are served by followers.
 *
 * @module
 */

import type { History } from "./history.ts";
import type { CounterInput } from "./counter_checker.ts";
import type { FaultCluster, FaultNode } from "./_fault_cluster.ts";
import { rawRequest } from "./_raw_http.ts";

/**
 * How long a client waits for an answer before recording `info`: shorter than a pause (so
 * clients move on to the new leader while the old one is frozen), generous otherwise.
 */
export const REQUEST_TIMEOUT_MS = 2_000;
/**
 * Share of operations sent to a random node rather than the believed leader: some reach a
 * frozen or cut-off old leader after the new one acknowledged writes (where a stale read would
 * show).
 */
const STRAY = 0.25;

/** Counts by operation and outcome. */
export type ClientStats = Record<"add" | "get", Record<"ok" | "fail" | "info", number>>;

/** Options of {@link runClients}. */
export interface ClientOptions {
  clients: number;
  /** Stops starting operations once aborted; resolves after the ones in flight end. */
  signal: AbortSignal;
  /** Uniform [0, 1) numbers (seeded) to choose operations and nodes. */
  random: () => number;
  /** GETs go to any node (followers answer them), not to the believed leader. */
  followerReads?: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs the clients until `signal` aborts.
 *
 * @param cluster The group.
 * @param history Where operations are recorded.
 * @param options Number of clients, stop signal, randomness.
 * @returns Counts by operation and outcome.
 */
export async function runClients(
  cluster: FaultCluster,
  history: History<CounterInput, number>,
  options: ClientOptions,
): Promise<ClientStats> {
  const stats: ClientStats = {
    add: { ok: 0, fail: 0, info: 0 },
    get: { ok: 0, fail: 0, info: 0 },
  };
  let nextProcess = 0;
  await Promise.all(Array.from({ length: options.clients }, async () => {
    let proc = nextProcess++;
    let leader: number | null = null; // public port
    while (!options.signal.aborted) {
      const nodes = cluster.nodes;
      const isAdd = options.random() < 0.6;
      // a GET to any node says nothing of who leads: `leader` is left as it is
      const anyNode = !isAdd && options.followerReads === true;
      const stray = anyNode || leader === null || options.random() < STRAY;
      const target: FaultNode = (stray ? undefined : cluster.byPublicPort(leader!)) ??
        nodes[Math.floor(options.random() * nodes.length)]!;
      const input: CounterInput = isAdd ? { f: "add", delta: 1 } : { f: "get" };
      const op = history.invoke(proc, input);
      const r = await rawRequest(
        target.privatePort,
        isAdd ? "POST" : "GET",
        isAdd ? "/counter/fetch_add" : "/counter",
        isAdd ? '{"delta":1}' : null,
        REQUEST_TIMEOUT_MS,
      );
      const kind = isAdd ? "add" : "get";
      if (r.kind === "answer" && r.status === 200 && typeof r.body.value === "number") {
        op.ok(r.body.value);
        stats[kind].ok++;
        if (!anyNode) leader = target.publicPort;
        continue;
      }
      if (r.kind === "answer" && r.status !== 503) {
        throw new Error(`Unexpected answer ${r.status} ${JSON.stringify(r.body)} to ${kind}`);
      }
      const definite = r.kind === "refused" ||
        (r.kind === "answer" && r.body.error === undefined);
      if (definite) {
        op.fail();
        stats[kind].fail++;
      } else {
        op.info();
        stats[kind].info++;
        proc = nextProcess++;
      }
      if (anyNode) {
        await sleep(50); // the next GET goes to another random node anyway
        continue;
      }
      const redirect = r.kind === "answer" ? r.body.redirect : null;
      const port = typeof redirect === "string" ? Number(/:(\d+)$/.exec(redirect)?.[1]) : NaN;
      leader = cluster.byPublicPort(port) !== undefined && port !== target.publicPort ? port : null;
      if (leader === null) await sleep(100);
    }
  }));
  return stats;
}
