/**
 * The `webraft` command-line tool (braft's `braft_cli`): administer a raft group from a shell.
 *
 * ```sh
 * deno run -A src/cli/main.ts add_peer --group g --peer 127.0.0.1:8103 --conf 127.0.0.1:8100,127.0.0.1:8101
 * bun src/cli/main.ts get_leader --group g --conf 127.0.0.1:8100
 * npx webraft stat --peer 127.0.0.1:8100
 * ```
 *
 * Exit status 0 on success, 1 on failure (`Fail to <verb> : [ECODE] message` on stderr), 2 on a
 * usage error (the message and the usage text on stderr).
 *
 * @module
 */

import process from "node:process";
import type { PeerId } from "../conf/peer_id.ts";
import { RaftError, RaftException } from "../errors/status.ts";
import { type Command, parseArgs, USAGE, UsageError } from "./args.ts";
import * as cli from "./cli.ts";
import {
  formatChange,
  formatFailure,
  formatLeader,
  formatPeers,
  formatReset,
  formatSnapshot,
  formatStat,
  formatTransfer,
} from "./format.ts";

/** What a run of the tool prints and its exit status. */
export interface Outcome {
  /** 0 success, 1 failure, 2 usage error. */
  code: 0 | 1 | 2;
  /** Lines for stdout. */
  stdout: string[];
  /** Lines for stderr. */
  stderr: string[];
}

/**
 * Runs the tool on `argv` (the arguments after the program name) and returns what to print;
 * the calls to the nodes are the only I/O.
 *
 * @param argv For example `["get_leader", "--group", "g", "--conf", "127.0.0.1:8100"]`.
 * @param env The environment (`WEBRAFT_SECRET`).
 * @returns The lines and the exit status.
 *
 * @example A usage error needs no node
 * ```ts
 * import { run } from "./main.ts";
 * import assert from "node:assert/strict";
 * const out = await run(["add_peer", "--group", "g"], {});
 * assert.equal(out.code, 2);
 * assert.equal(out.stderr[0], "webraft: add_peer needs --peer");
 * ```
 */
export async function run(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Promise<Outcome> {
  let command: Command;
  try {
    const parsed = parseArgs(argv, env);
    if (parsed.help) return { code: 0, stdout: [USAGE], stderr: [] };
    command = parsed.command;
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    return { code: 2, stdout: [], stderr: [`webraft: ${e.message}`, "", USAGE] };
  }
  if (command.verb === "stat") return await stat(command);
  try {
    return { code: 0, stdout: await execute(command), stderr: [] };
  } catch (e) {
    return { code: 1, stdout: [], stderr: [formatFailure(command.verb, e)] };
  }
}

/** One verb through the `cli` library; the parser guaranteed its flags. */
async function execute(c: Command): Promise<string[]> {
  const options: cli.CliOptions = {
    timeoutMs: c.timeoutMs,
    maxRetry: c.maxRetry,
    ...(c.secret === undefined ? {} : { secret: c.secret }),
  };
  const group = c.group;
  switch (c.verb) {
    case "add_peer": {
      const r = await cli.addPeer(group, c.conf!, c.peer!, options);
      return [formatChange(group, r.oldPeers, r.newPeers)];
    }
    case "remove_peer": {
      const r = await cli.removePeer(group, c.conf!, c.peer!, options);
      return [formatChange(group, r.oldPeers, r.newPeers)];
    }
    case "change_peers": {
      const r = await cli.changePeers(group, c.conf!, c.newPeers!, options);
      return [formatChange(group, r.oldPeers, r.newPeers)];
    }
    case "reset_peer":
      await cli.resetPeer(group, c.peer!, c.newPeers!, options);
      return [formatReset(group, c.peer!, c.newPeers!)];
    case "snapshot":
      await cli.snapshot(group, c.peer!, options);
      return [formatSnapshot(group, c.peer!)];
    case "transfer_leader": {
      const leader = await cli.getLeader(group, c.conf!, options);
      if (!leader.equals(c.peer!)) await cli.transferLeader(group, c.conf!, c.peer!, options);
      return [formatTransfer(group, leader, c.peer!)];
    }
    case "get_leader":
      return [formatLeader(group, await cli.getLeader(group, c.conf!, options))];
    case "list_peers":
      return [formatPeers(group, await cli.listPeers(group, c.conf!, options))];
    case "stat":
      throw new Error("unreachable: stat is not a cli call");
  }
}

/** `stat`: each node's `/raft_stat` as key: value lines; status 1 if any peer failed. */
async function stat(c: Command): Promise<Outcome> {
  const peers = c.peer !== null ? [c.peer] : c.conf!.peers;
  const results = await Promise.allSettled(peers.map((p) => fetchStat(p, c.group, c.timeoutMs)));
  const out: Outcome = { code: 0, stdout: [], stderr: [] };
  results.forEach((r, i) => {
    if (r.status === "rejected") {
      out.code = 1;
      out.stderr.push(formatFailure("stat", r.reason));
      return;
    }
    if (r.value.length === 0) {
      if (out.stdout.length > 0) out.stdout.push("");
      out.stdout.push(`No raft node is served at ${peers[i]!.endpoint}`);
    }
    for (const node of r.value) {
      if (out.stdout.length > 0) out.stdout.push("");
      out.stdout.push(...formatStat(node));
    }
  });
  return out;
}

/** GETs `/raft_stat[/<group>]` of `peer`'s endpoint and returns its `nodes`. */
async function fetchStat(
  peer: PeerId,
  group: string,
  timeoutMs: number,
): Promise<Record<string, unknown>[]> {
  const path = group === "" ? "/raft_stat" : `/raft_stat/${encodeURIComponent(group)}`;
  const url = `http://${peer.endpoint}${path}?format=json`;
  const signal = timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : null;
  let status: number;
  let text: string;
  try {
    const res = await fetch(url, { headers: { accept: "application/json" }, signal });
    status = res.status;
    text = await res.text();
  } catch (e) {
    if (signal?.aborted) {
      throw RaftException.of(RaftError.ETIMEDOUT, `No answer from ${peer} in ${timeoutMs} ms`);
    }
    const why = e instanceof Error ? e.message : String(e);
    throw RaftException.of(RaftError.EHOSTUNREACH, `Cannot reach ${peer}: ${why}`);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  const o = body !== null && typeof body === "object" ? body as Record<string, unknown> : {};
  if (status !== 200) {
    const code = typeof o.code === "number" && Number.isInteger(o.code) && o.code !== 0
      ? o.code
      : RaftError.EIO;
    const message = typeof o.message === "string" ? o.message : `HTTP ${status}`;
    throw RaftException.of(code, `${peer}: ${message}`);
  }
  const nodes = o.nodes;
  if (!Array.isArray(nodes) || nodes.some((n) => n === null || typeof n !== "object")) {
    throw RaftException.of(RaftError.EIO, `${peer} did not answer /raft_stat JSON`);
  }
  return nodes as Record<string, unknown>[];
}

/** The program: runs `process.argv`, prints, and sets the exit status. */
async function main(): Promise<void> {
  const out = await run(process.argv.slice(2), process.env);
  for (const line of out.stdout) console.log(line);
  for (const line of out.stderr) console.error(line);
  process.exitCode = out.code;
}

if (import.meta.main) await main();
