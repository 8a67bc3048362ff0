/**
 * Where failover time goes (issue 13): three nodes in this process over `HttpTransport` on
 * 127.0.0.1, `local://` storage with fsync, one client writing to the leader. The leader is cut
 * off at once (its transport drops everything both ways: a SIGKILL as its peers see it), and
 * every vote message the survivors send is timestamped, so each trial splits into:
 *
 * - `detect`: kill → the first PreVote sent (the election timer ran out: timeout,
 *   randomisation, and the time since the last heartbeat before the kill);
 * - `prevote`: → the PreVote round won (a quorum of grants, the candidate's own included);
 * - `selfvote`: → the first RequestVote sent (the candidate's term and vote fsynced first);
 * - `vote`: → the RequestVote round won (the voter fsyncs its vote before answering);
 * - `noop`: → `onLeaderStart` (the new leader's first entry committed and applied);
 * - `write`: → the first client write committed on the new leader (a probe every 10 ms to
 *   whichever survivor says it leads).
 *
 * Pre-votes refused by a voter still in its follower lease, and campaigns that had to start
 * again, are counted. Prints a table per trial, medians, and a JSON line. Never asserts on time.
 *
 *   npx deno run -A bench/failover_probe.ts [--trials=10] [--election_timeout_ms=1000]
 *     [--max_election_delay_ms=N]
 *   npx bun bench/failover_probe.ts [...]
 *
 * `--max_election_delay_ms` sets `raft_max_election_delay_ms` (the random part of the timeout,
 * default 1000 = braft; etcd draws from [T, 2T) in heartbeat ticks).
 */

import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { Hono } from "hono";
import { type Iterator, Node, StateMachine, Status } from "../mod.ts";
import { decodeMessage } from "../src/codec/message_codec.ts";
import { flags } from "../src/util/flags.ts";
import type { CallOptions, Transport, TransportHandler } from "../transports/transport.ts";
import { HttpTransport, mountTransport, serve, type ServeHandle } from "../transports/http/mod.ts";

const args = (globalThis as { Deno?: { args: string[] } }).Deno?.args ?? process.argv.slice(2);
function opt(name: string, fallback: number): number {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  if (a === undefined) return fallback;
  const v = Number(a.slice(name.length + 3));
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} must be a number ≥ 0`);
  return v;
}
const TRIALS = opt("trials", 10);
const ELECTION_MS = opt("election_timeout_ms", 1000);
const MAX_DELAY = opt("max_election_delay_ms", flags.raft_max_election_delay_ms);
const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";

class ProbeFsm extends StateMachine {
  leaderStartAt = 0;
  onApply(iter: Iterator): void {
    for (; iter.valid(); iter.next()) iter.done()?.run(Status.OK());
  }
  override onLeaderStart(_term: number): void {
    this.leaderStartAt = performance.now();
  }
}

/** Vote traffic of the trial under way. */
interface Trace {
  killedAt: number;
  /** Last AppendEntries (heartbeat) each survivor received before the kill. */
  lastHeartbeat: Map<string, number>;
  firstPreVote: number;
  preVoteWon: number;
  firstRequestVote: number;
  voteWon: number;
  preVotesRefused: number;
  preVoteRounds: Set<string>;
  grants: Map<string, number>;
}

const cutOff = new Set<string>();
let trace: Trace | null = null;

/** `inner`, which drops everything when its endpoint is cut off, and traces vote messages. */
function traced(inner: Transport): Transport {
  const me = inner.endpoint;
  const note = (from: string, frame: Uint8Array, outgoing: boolean): void => {
    const t = trace;
    if (t === null || t.killedAt === 0) return;
    let m;
    try {
      m = decodeMessage(frame).message;
    } catch {
      return;
    }
    const now = performance.now();
    if (outgoing && m.type === "PreVote") {
      if (t.firstPreVote === 0) t.firstPreVote = now;
      t.preVoteRounds.add(`${from}/${m.term}`);
    } else if (outgoing && m.type === "RequestVote" && t.firstRequestVote === 0) {
      t.firstRequestVote = now;
    } else if (!outgoing && (m.type === "PreVoteResp" || m.type === "RequestVoteResp")) {
      if (!m.granted) {
        if (m.type === "PreVoteResp") t.preVotesRefused++;
        return;
      }
      // one grant from a peer plus the candidate's own is a quorum of three
      if (m.type === "PreVoteResp" && t.preVoteWon === 0) t.preVoteWon = now;
      if (m.type === "RequestVoteResp" && t.voteWon === 0) t.voteWon = now;
    }
  };
  return {
    get endpoint() {
      return inner.endpoint;
    },
    listen(handler: TransportHandler): void {
      inner.listen({
        onFrame(from, frame) {
          if (cutOff.has(me)) return;
          const t = trace;
          if (t !== null && t.killedAt === 0) {
            try {
              if (decodeMessage(frame).message.type === "AppendEntries") {
                t.lastHeartbeat.set(me, performance.now());
              }
            } catch { /* (the node judges it) */ }
          }
          note(me, frame, false);
          handler.onFrame(from, frame);
        },
        onCall(from, request) {
          if (cutOff.has(me)) return Promise.reject(new Error("cut off"));
          return handler.onCall(from, request);
        },
      });
    },
    send(to: string, frame: Uint8Array): void {
      if (cutOff.has(me) || cutOff.has(to)) return;
      note(me, frame, true);
      inner.send(to, frame);
    },
    call(to: string, request: Uint8Array, options?: CallOptions): Promise<Uint8Array> {
      if (cutOff.has(me)) return Promise.reject(new Error("cut off"));
      return inner.call(to, request, options);
    },
    close: () => inner.close(),
  };
}

interface Trial {
  total: number;
  detect: number;
  prevote: number;
  selfvote: number;
  vote: number;
  noop: number;
  write: number;
  sinceHeartbeat: number;
  preVotesRefused: number;
  preVoteRounds: number;
}

const dir = mkdtempSync(join(tmpdir(), "webraft-failover-probe-"));
const servers: ServeHandle[] = [];
const transports: HttpTransport[] = [];
const nodes: Node[] = [];
const fsms: ProbeFsm[] = [];
const trials: Trial[] = [];
flags.raft_sync = true;
flags.raft_max_election_delay_ms = MAX_DELAY;
try {
  for (let i = 0; i < 3; i++) {
    const app = new Hono();
    const holder: { t?: HttpTransport } = {};
    mountTransport(app, () => holder.t);
    const server = await serve(app, { hostname: "127.0.0.1", port: 0 });
    servers.push(server);
    transports.push(holder.t = new HttpTransport(`127.0.0.1:${server.port}`));
  }
  const peers = transports.map((t) => `${t.endpoint}:0`);
  for (let i = 0; i < 3; i++) {
    const node = new Node("failover", peers[i]!);
    fsms.push(new ProbeFsm());
    await node.init({
      fsm: fsms[i]!,
      initialConf: peers.join(","),
      logUri: `local://${join(dir, String(i), "log")}`,
      raftMetaUri: `local://${join(dir, String(i), "meta")}`,
      transport: traced(transports[i]!),
      electionTimeoutMs: ELECTION_MS,
      snapshotIntervalS: 0,
    });
    nodes.push(node);
  }
  console.log(
    `webraft failover probe (${runtime}), 3 nodes in one process, HttpTransport, fsync on, election timeout ${ELECTION_MS} ms, raft_max_election_delay_ms ${MAX_DELAY}\n`,
  );
  console.log(
    "| trial | total ms | detect | prevote | selfvote | vote | noop | write | kill − last heartbeat | pre-votes refused | pre-vote rounds | load |",
  );
  console.log(
    "| ----: | -------: | -----: | ------: | -------: | ---: | ---: | ----: | --------------------: | ----------------: | --------------: | ---: |",
  );
  for (let n = 0; n < TRIALS; n++) {
    const leader = await Promise.race(
      nodes.filter((x) => !cutOff.has(transports[nodes.indexOf(x)]!.endpoint))
        .map((x) => x.waitLeader().then(() => x)),
    );
    // everyone back in: the previous victim rejoins and catches up first
    cutOff.clear();
    await leader.applyAsync(new Uint8Array(8));
    await Promise.all(nodes.map((x) => x.waitApplied(leader.appliedIndex())));
    const li = nodes.indexOf(leader);
    trace = {
      killedAt: 0,
      lastHeartbeat: new Map(),
      firstPreVote: 0,
      preVoteWon: 0,
      firstRequestVote: 0,
      voteWon: 0,
      preVotesRefused: 0,
      preVoteRounds: new Set(),
      grants: new Map(),
    };
    // one client writing back to back, then the cut
    let writing = true;
    const client = (async () => {
      while (writing) await leader.applyAsync(new Uint8Array(256)).catch(() => {});
    })();
    await new Promise((r) => setTimeout(r, 300 + Math.random() * 100));
    const survivors = nodes.filter((_, i) => i !== li);
    const killedAt = performance.now();
    trace.killedAt = killedAt;
    cutOff.add(transports[li]!.endpoint);
    writing = false;
    // probes: every 10 ms to whichever survivor leads
    const writtenAt = await new Promise<number>((resolve) => {
      let done = false;
      const tick = () => {
        if (done) return;
        for (const s of survivors) {
          if (!s.isLeader()) continue;
          s.applyAsync(new Uint8Array(256)).then(() => {
            if (!done) {
              done = true;
              resolve(performance.now());
            }
          }, () => {});
        }
        setTimeout(tick, 10);
      };
      tick();
    });
    await client;
    const t = trace;
    const newLeader = survivors.find((s) => s.isLeader()) ?? survivors[0]!;
    const startAt = fsms[nodes.indexOf(newLeader)]!.leaderStartAt;
    const lastHb = Math.max(
      ...survivors.map((s) => t.lastHeartbeat.get(transports[nodes.indexOf(s)]!.endpoint) ?? 0),
    );
    const r: Trial = {
      total: writtenAt - killedAt,
      detect: t.firstPreVote - killedAt,
      prevote: t.preVoteWon - t.firstPreVote,
      selfvote: t.firstRequestVote - t.preVoteWon,
      vote: t.voteWon - t.firstRequestVote,
      noop: startAt - t.voteWon,
      write: writtenAt - startAt,
      sinceHeartbeat: killedAt - lastHb,
      preVotesRefused: t.preVotesRefused,
      preVoteRounds: t.preVoteRounds.size,
    };
    trace = null;
    trials.push(r);
    const f = (x: number) => Math.round(x);
    console.log(
      `| ${n + 1} | ${f(r.total)} | ${f(r.detect)} | ${f(r.prevote)} | ${f(r.selfvote)} | ${
        f(r.vote)
      } | ${f(r.noop)} | ${f(r.write)} | ${
        f(r.sinceHeartbeat)
      } | ${r.preVotesRefused} | ${r.preVoteRounds} | ${loadavg()[0]!.toFixed(1)} |`,
    );
  }
} finally {
  for (const node of nodes) await node.shutdown();
  for (const t of transports) await t.close();
  for (const s of servers) await s.shutdown();
  rmSync(dir, { recursive: true, force: true });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1
    ? s[(s.length - 1) / 2]!
    : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const keys = [
  "total",
  "detect",
  "prevote",
  "selfvote",
  "vote",
  "noop",
  "write",
  "sinceHeartbeat",
] as const;
const medians = Object.fromEntries(
  keys.map((k) => [k, Math.round(median(trials.map((t) => t[k])))]),
);
console.log(
  `\nmedian ms: ${keys.map((k) => `${k} ${medians[k]}`).join(", ")}; worst total ${
    Math.round(Math.max(...trials.map((t) => t.total)))
  }`,
);
console.log(JSON.stringify({
  bench: "failover_probe",
  runtime,
  at: new Date().toISOString(),
  electionTimeoutMs: ELECTION_MS,
  maxElectionDelayMs: MAX_DELAY,
  medians,
  trials,
}));
