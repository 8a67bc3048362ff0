/**
 * What the `webraft` tool prints: braft_cli's lines where it has them, one clear line otherwise,
 * and `/raft_stat` JSON as `key: value` lines. Pure: no I/O.
 *
 * @module
 */

import type { Configuration } from "../conf/configuration.ts";
import type { PeerId } from "../conf/peer_id.ts";
import { errorName, RaftError, RaftException } from "../errors/status.ts";

/**
 * braft_cli's line after `add_peer`, `remove_peer` and `change_peers`.
 *
 * @param group The group.
 * @param oldPeers The voters before.
 * @param newPeers The voters after.
 * @returns The line.
 *
 * @example
 * ```ts
 * import { Configuration } from "../conf/configuration.ts";
 * import { formatChange } from "./format.ts";
 * import assert from "node:assert/strict";
 * assert.equal(
 *   formatChange("g", Configuration.parse("h:1"), Configuration.parse("h:1,h:2")),
 *   "Configuration of replication group `g' changed from h:1:0 to h:1:0,h:2:0",
 * );
 * ```
 */
export function formatChange(
  group: string,
  oldPeers: Configuration,
  newPeers: Configuration,
): string {
  return `Configuration of replication group \`${group}' changed from ${oldPeers} to ${newPeers}`;
}

/**
 * The line printed (to stderr) when a verb fails: `Fail to <verb> : [ECODE] message`.
 *
 * @param verb The verb.
 * @param error What was thrown; a `RaftException` gives its code, anything else is EIO.
 * @returns The line.
 *
 * @example
 * ```ts
 * import { RaftError, RaftException } from "../errors/status.ts";
 * import { formatFailure } from "./format.ts";
 * import assert from "node:assert/strict";
 * assert.equal(
 *   formatFailure("add_peer", RaftException.of(RaftError.EACCES, "Bad proof")),
 *   "Fail to add_peer : [EACCES] Bad proof",
 * );
 * ```
 */
export function formatFailure(verb: string, error: unknown): string {
  if (error instanceof RaftException) {
    return `Fail to ${verb} : [${errorName(error.code)}] ${error.status.message}`;
  }
  const message = error instanceof Error ? error.message : String(error);
  return `Fail to ${verb} : [${errorName(RaftError.EIO)}] ${message}`;
}

/**
 * The line after `transfer_leader`.
 *
 * @param group The group.
 * @param leader The leader found.
 * @param target The requested leader (empty: any peer).
 * @returns braft's "already the leader" line when `leader` is `target`, else the transfer.
 *
 * @example
 * ```ts
 * import { PeerId } from "../conf/peer_id.ts";
 * import { formatTransfer } from "./format.ts";
 * import assert from "node:assert/strict";
 * const a = PeerId.parse("h:1");
 * assert.equal(formatTransfer("g", a, a), "Peer h:1:0 is already the leader of group `g'");
 * ```
 */
export function formatTransfer(group: string, leader: PeerId, target: PeerId): string {
  if (leader.equals(target)) return `Peer ${target} is already the leader of group \`${group}'`;
  const to = target.isEmpty() ? "the most caught-up follower" : `${target}`;
  return `Leadership of group \`${group}' is being transferred from ${leader} to ${to}`;
}

/**
 * `snake_case` of a `camelCase` key (snake_case keys stay as they are).
 *
 * @param key A JSON key.
 * @returns The key as braft prints it.
 *
 * @example
 * ```ts
 * import { snakeCase } from "./format.ts";
 * import assert from "node:assert/strict";
 * assert.equal(snakeCase("lastLogId"), "last_log_id");
 * assert.equal(snakeCase("last_log_id"), "last_log_id");
 * ```
 */
export function snakeCase(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function scalar(v: unknown): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return JSON.stringify(v);
}

function pairs(o: Record<string, unknown>, sep: string, skip?: string): string {
  return Object.entries(o)
    .filter(([k]) => k !== skip)
    .map(([k, v]) => `${snakeCase(k)}=${Array.isArray(v) ? v.map(scalar).join(",") : scalar(v)}`)
    .join(sep);
}

/**
 * One node's `/raft_stat` JSON as `key: value` lines, in the order of the JSON, keys in
 * snake_case: lists are space-separated (as braft prints peers), objects become
 * `(k=v,k=v)` (as braft prints `last_log_id`), and each object of a list (the leader's
 * followers) gets its own line, `follower@<peer>: k=v k=v`.
 *
 * @param stat One entry of `nodes` in the `/raft_stat` answer.
 * @returns The lines.
 *
 * @example
 * ```ts
 * import { formatStat } from "./format.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(
 *   formatStat({
 *     state: "LEADER",
 *     peers: ["h:1:0", "h:2:0"],
 *     lastLogId: { index: 5, term: 2 },
 *     followers: [{ peer: "h:2:0", nextIndex: 6 }],
 *   }),
 *   [
 *     "state: LEADER",
 *     "peers: h:1:0 h:2:0",
 *     "last_log_id: (index=5,term=2)",
 *     "follower@h:2:0: next_index=6",
 *   ],
 * );
 * ```
 */
export function formatStat(stat: Record<string, unknown>): string[] {
  const lines: string[] = [];
  for (const [key, value] of Object.entries(stat)) {
    const name = snakeCase(key);
    if (Array.isArray(value) && value.some(isPlainObject)) {
      const item = name.endsWith("s") ? name.slice(0, -1) : name;
      value.forEach((v, i) => {
        if (!isPlainObject(v)) {
          lines.push(`${item}[${i}]: ${scalar(v)}`);
          return;
        }
        const id = typeof v.peer === "string"
          ? "peer"
          : typeof v.peer_id === "string"
          ? "peer_id"
          : "";
        const label = id === "" ? `${item}[${i}]` : `${item}@${v[id]}`;
        lines.push(`${label}: ${pairs(v, " ", id)}`.trimEnd());
      });
    } else if (Array.isArray(value)) {
      lines.push(`${name}: ${value.map(scalar).join(" ")}`.trimEnd());
    } else if (isPlainObject(value)) {
      lines.push(`${name}: (${pairs(value, ",")})`);
    } else {
      lines.push(`${name}: ${scalar(value)}`.trimEnd());
    }
  }
  return lines;
}

/**
 * The line after `get_leader`.
 *
 * @param group The group.
 * @param leader The leader.
 * @returns The line.
 *
 * @example
 * ```ts
 * import { PeerId } from "../conf/peer_id.ts";
 * import { formatLeader } from "./format.ts";
 * import assert from "node:assert/strict";
 * assert.equal(formatLeader("g", PeerId.parse("h:1")), "Leader of replication group `g' is h:1:0");
 * ```
 */
export function formatLeader(group: string, leader: PeerId): string {
  return `Leader of replication group \`${group}' is ${leader}`;
}

/**
 * The line after `list_peers`.
 *
 * @param group The group.
 * @param peers The voters.
 * @returns The line, peers comma-separated as a `--conf`.
 *
 * @example
 * ```ts
 * import { PeerId } from "../conf/peer_id.ts";
 * import { formatPeers } from "./format.ts";
 * import assert from "node:assert/strict";
 * assert.equal(
 *   formatPeers("g", [PeerId.parse("h:1"), PeerId.parse("h:2")]),
 *   "Peers of replication group `g' are h:1:0,h:2:0",
 * );
 * ```
 */
export function formatPeers(group: string, peers: readonly PeerId[]): string {
  return `Peers of replication group \`${group}' are ${peers.join(",")}`;
}

/**
 * The line after `reset_peer`.
 *
 * @param group The group.
 * @param peer The node that was reset.
 * @param newPeers Its configuration now.
 * @returns The line.
 *
 * @example
 * ```ts
 * import { Configuration } from "../conf/configuration.ts";
 * import { PeerId } from "../conf/peer_id.ts";
 * import { formatReset } from "./format.ts";
 * import assert from "node:assert/strict";
 * assert.equal(
 *   formatReset("g", PeerId.parse("h:1"), Configuration.parse("h:1")),
 *   "Configuration of peer h:1:0 in replication group `g' was reset to h:1:0",
 * );
 * ```
 */
export function formatReset(group: string, peer: PeerId, newPeers: Configuration): string {
  return `Configuration of peer ${peer} in replication group \`${group}' was reset to ${newPeers}`;
}

/**
 * The line after `snapshot`.
 *
 * @param group The group.
 * @param peer The node that saved a snapshot.
 * @returns The line.
 *
 * @example
 * ```ts
 * import { PeerId } from "../conf/peer_id.ts";
 * import { formatSnapshot } from "./format.ts";
 * import assert from "node:assert/strict";
 * assert.equal(
 *   formatSnapshot("g", PeerId.parse("h:1")),
 *   "Peer h:1:0 of replication group `g' saved a snapshot",
 * );
 * ```
 */
export function formatSnapshot(group: string, peer: PeerId): string {
  return `Peer ${peer} of replication group \`${group}' saved a snapshot`;
}
