/**
 * `/raft_stat` in its three forms: braft's snake_case JSON, braft's `key: value` text, and an
 * HTML page with one table of fields per node, one row per follower, and links to the other
 * nodes' pages.
 *
 * @module
 */

import { PeerId } from "../../../src/conf/peer_id.ts";
import type { NodeStatus, PeerStatus } from "../../../src/node/options.ts";
import { escapeHtml, htmlPage } from "./html.ts";

/** One follower as the leader replicates to it (JSON form, braft's names where it has them). */
export interface ReplicatorJson {
  /** The follower. */
  peer_id: string;
  /** Next index the leader sends. */
  next_index: number;
  /** Highest index known replicated on the follower. */
  match_index: number;
  /** Entries sent and not yet acknowledged (`next_index - 1 - match_index` while replicating). */
  flying_append_entries_size: number;
  /** `probe`, `replicate` or `snapshot`. */
  state: string;
  /** The leader waits for this follower's answer before sending more. */
  blocking: boolean;
  /** A snapshot is being sent to it. */
  installing_snapshot: boolean;
  /** Heartbeat intervals it has not answered, beyond the first. */
  consecutive_error_times: number;
  /** Milliseconds since it last answered. */
  last_contact_ms: number;
}

/** One node's raft_stat in JSON: braft's field names (see {@linkcode statJson}). */
export interface NodeStatJson {
  /** The group. */
  group_id: string;
  /** This node. */
  peer_id: string;
  /** LEADER, FOLLOWER, CANDIDATE, … */
  state: string;
  /** Readonly mode (braft prints 0 or 1). */
  readonly: boolean;
  /** The group is idle and this node does not tick (`NodeOptions.quiesce`; 0 or 1 in text). */
  quiesced: boolean;
  /** Current term. */
  term: number;
  /** Log index of the configuration in effect. */
  conf_index: number;
  /** Voters. */
  peers: string[];
  /** Learners. */
  learners: string[];
  /** Old voters while a configuration change is joint (else empty). */
  old_peers: string[];
  /** Known leader, or "". */
  leader: string;
  /** Election timer. */
  election_timer: string;
  /** Vote timer. */
  vote_timer: string;
  /** Step-down timer. */
  stepdown_timer: string;
  /** Snapshot timer. */
  snapshot_timer: string;
  /** braft's `storage: [first, last]`. */
  storage: { first_index: number; last_index: number };
  /** Last index durable on disk. */
  disk_index: number;
  /** Last index applied by the state machine. */
  known_applied_index: number;
  /** braft's `last_log_id: (index=N,term=T)`. */
  last_log_id: { index: number; term: number };
  /** What the state machine caller is doing. */
  state_machine: string;
  /** Highest committed index. */
  last_committed_index: number;
  /** First uncommitted index on a leader (0 when none). */
  pending_index: number;
  /** Tasks accepted and not yet applied. */
  pending_queue_size: number;
  /** Bytes of those tasks (webraft). */
  pending_queue_bytes: number;
  /** Highest index handed to the state machine and not yet applied (0 when idle). */
  applying_index: number;
  /** Latest snapshot index (0 when none). */
  last_snapshot_index: number;
  /** Latest snapshot term. */
  last_snapshot_term: number;
  /** IDLE, SAVING, DOWNLOADING or LOADING. */
  snapshot_status: string;
  /** Leader only: one per follower. */
  replicators: ReplicatorJson[];
}

function inFlight(f: PeerStatus): number {
  return f.state === "replicate" ? Math.max(0, f.nextIndex - 1 - f.matchIndex) : 0;
}

/**
 * A node's `describe()` in braft's snake_case names: the flat fields keep their braft names;
 * `storage` is `{ first_index, last_index }`, `last_log_id` is `{ index, term }`, `readonly` is
 * a boolean, and the followers are `replicators` (see {@linkcode ReplicatorJson}).
 *
 * @param s The node's status.
 * @returns The JSON object.
 *
 * @example
 * ```ts
 * import { statJson } from "./raft_stat_page.ts";
 * import { sampleStatus } from "./_sample.ts";
 * import assert from "node:assert/strict";
 * const json = statJson(sampleStatus());
 * assert.equal(json.peer_id, "127.0.0.1:8100:0");
 * assert.deepEqual(json.storage, { first_index: 1, last_index: 12 });
 * assert.equal(json.replicators[0]!.flying_append_entries_size, 2);
 * ```
 */
export function statJson(s: NodeStatus): NodeStatJson {
  return {
    group_id: s.groupId,
    peer_id: s.peerId,
    state: s.state,
    readonly: s.readonly,
    quiesced: s.quiesced,
    term: s.term,
    conf_index: s.confIndex,
    peers: [...s.peers],
    learners: [...s.learners],
    old_peers: [...s.oldPeers],
    leader: s.leader,
    election_timer: s.electionTimer,
    vote_timer: s.voteTimer,
    stepdown_timer: s.stepdownTimer,
    snapshot_timer: s.snapshotTimer,
    storage: { first_index: s.firstIndex, last_index: s.lastIndex },
    disk_index: s.diskIndex,
    known_applied_index: s.knownAppliedIndex,
    last_log_id: { index: s.lastLogId.index, term: s.lastLogId.term },
    state_machine: s.stateMachine,
    last_committed_index: s.lastCommittedIndex,
    pending_index: s.pendingIndex,
    pending_queue_size: s.pendingQueueSize,
    pending_queue_bytes: s.pendingQueueBytes,
    applying_index: s.applyingIndex,
    last_snapshot_index: s.lastSnapshotIndex,
    last_snapshot_term: s.lastSnapshotTerm,
    snapshot_status: s.snapshotStatus,
    replicators: s.followers.map((f) => ({
      peer_id: f.peer,
      next_index: f.nextIndex,
      match_index: f.matchIndex,
      flying_append_entries_size: inFlight(f),
      state: f.state,
      blocking: f.blocking,
      installing_snapshot: f.installingSnapshot,
      consecutive_error_times: f.consecutiveErrorTimes,
      last_contact_ms: f.lastContactMs,
    })),
  };
}

/** The `key: value` fields of one node, in braft's order, as text values. */
function fieldLines(j: NodeStatJson): [string, string][] {
  return [
    ["peer_id", j.peer_id],
    ["state", j.state],
    ["readonly", j.readonly ? "1" : "0"],
    ["quiesced", j.quiesced ? "1" : "0"],
    ["term", String(j.term)],
    ["conf_index", String(j.conf_index)],
    ["peers", j.peers.join(" ")],
    ["learners", j.learners.join(" ")],
    ["old_peers", j.old_peers.join(" ")],
    ["leader", j.leader],
    ["election_timer", j.election_timer],
    ["vote_timer", j.vote_timer],
    ["stepdown_timer", j.stepdown_timer],
    ["snapshot_timer", j.snapshot_timer],
    ["storage", `[${j.storage.first_index}, ${j.storage.last_index}]`],
    ["disk_index", String(j.disk_index)],
    ["known_applied_index", String(j.known_applied_index)],
    ["last_log_id", `(index=${j.last_log_id.index},term=${j.last_log_id.term})`],
    ["state_machine", j.state_machine],
    ["last_committed_index", String(j.last_committed_index)],
    ["pending_index", String(j.pending_index)],
    ["pending_queue_size", String(j.pending_queue_size)],
    ["pending_queue_bytes", String(j.pending_queue_bytes)],
    ["applying_index", String(j.applying_index)],
    ["last_snapshot_index", String(j.last_snapshot_index)],
    ["last_snapshot_term", String(j.last_snapshot_term)],
    ["snapshot_status", j.snapshot_status],
  ];
}

/** The names of the per-node fields, in the order the text and HTML forms show them. */
export const STAT_FIELDS: readonly string[] = [
  "peer_id",
  "state",
  "readonly",
  "quiesced",
  "term",
  "conf_index",
  "peers",
  "learners",
  "old_peers",
  "leader",
  "election_timer",
  "vote_timer",
  "stepdown_timer",
  "snapshot_timer",
  "storage",
  "disk_index",
  "known_applied_index",
  "last_log_id",
  "state_machine",
  "last_committed_index",
  "pending_index",
  "pending_queue_size",
  "pending_queue_bytes",
  "applying_index",
  "last_snapshot_index",
  "last_snapshot_term",
  "snapshot_status",
];

function replicatorLine(r: ReplicatorJson): string {
  const flags = [r.blocking ? " blocking" : "", r.installing_snapshot ? " installing_snapshot" : ""]
    .join("");
  return `replicator@${r.peer_id}: next_index=${r.next_index} match_index=${r.match_index} ` +
    `flying_append_entries_size=${r.flying_append_entries_size} state=${r.state}${flags} ` +
    `consecutive_error_times=${r.consecutive_error_times} last_contact_ms=${r.last_contact_ms}`;
}

function byGroup(nodes: readonly NodeStatJson[]): Map<string, NodeStatJson[]> {
  const groups = new Map<string, NodeStatJson[]>();
  for (const n of nodes) {
    const list = groups.get(n.group_id) ?? [];
    list.push(n);
    groups.set(n.group_id, list);
  }
  return groups;
}

/**
 * braft's text form: `[group]` once per group, then per node one `key: value` line per field
 * and one `replicator@<peer>: …` line per follower; nodes are separated by a blank line.
 * Line breaks inside values (none are expected) become spaces so each field stays one line.
 *
 * @param nodes The nodes, in JSON form.
 * @returns The text.
 *
 * @example
 * ```ts
 * import { statJson, statText } from "./raft_stat_page.ts";
 * import { sampleStatus } from "./_sample.ts";
 * import assert from "node:assert/strict";
 * const text = statText([statJson(sampleStatus())]);
 * assert.match(text, /^\[demo\]\npeer_id: 127\.0\.0\.1:8100:0\n/);
 * assert.match(text, /\nstorage: \[1, 12\]\n/);
 * assert.match(text, /\nreplicator@127\.0\.0\.1:8101:0: next_index=13 /);
 * ```
 */
export function statText(nodes: readonly NodeStatJson[]): string {
  const out: string[] = [];
  for (const [group, members] of byGroup(nodes)) {
    out.push(`[${oneLine(group)}]`);
    members.forEach((n, i) => {
      if (i > 0) out.push("");
      for (const [k, v] of fieldLines(n)) out.push(`${k}: ${oneLine(v)}`);
      for (const r of n.replicators) out.push(oneLine(replicatorLine(r)));
    });
    out.push("");
  }
  return out.join("\n");
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, " ");
}

/** A peer id as a link to its node's page for `group`, or plain text when it does not parse. */
function peerLink(peer: string, group: string, self: string): string {
  let endpoint: string;
  try {
    endpoint = PeerId.parse(peer).endpoint;
  } catch {
    return escapeHtml(peer);
  }
  const href = `http://${endpoint}/raft_stat/${encodeURIComponent(group)}`;
  const mark = peer === self ? " (this node)" : "";
  return `<a class="peer" href="${escapeHtml(href)}">${escapeHtml(peer)}</a>${escapeHtml(mark)}`;
}

function peerLinks(peers: readonly string[], group: string, self: string): string {
  return peers.map((p) => peerLink(p, group, self)).join(" ");
}

function nodeSection(n: NodeStatJson): string {
  const rows = fieldLines(n).map(([k, v]) => {
    let cell = escapeHtml(v);
    if (k === "peers" || k === "learners" || k === "old_peers") {
      cell = peerLinks(
        k === "peers" ? n.peers : k === "learners" ? n.learners : n.old_peers,
        n.group_id,
        n.peer_id,
      );
    } else if (k === "leader" && v !== "") {
      cell = peerLink(v, n.group_id, n.peer_id);
    } else if (k === "state") {
      cell = `<span class="${escapeHtml(v)}">${escapeHtml(v)}</span>`;
    }
    return `<tr data-field="${escapeHtml(k)}"><th>${escapeHtml(k)}</th><td>${cell}</td></tr>`;
  });
  const replicators = n.replicators.length === 0
    ? `<p class="replicators-none">No followers (${
      n.state === "LEADER" ? "single-node group" : "only the leader replicates"
    }).</p>`
    : `<table class="replicators"><thead><tr><th>follower</th><th>next_index</th>` +
      `<th>match_index</th><th>in flight</th><th>state</th><th>blocking</th>` +
      `<th>installing snapshot</th><th>consecutive errors</th><th>last contact</th></tr></thead>` +
      `<tbody>` +
      n.replicators.map((r) =>
        `<tr data-peer="${escapeHtml(r.peer_id)}">` +
        `<td data-col="peer_id">${peerLink(r.peer_id, n.group_id, n.peer_id)}</td>` +
        `<td data-col="next_index">${r.next_index}</td>` +
        `<td data-col="match_index">${r.match_index}</td>` +
        `<td data-col="flying_append_entries_size">${r.flying_append_entries_size}</td>` +
        `<td data-col="state">${escapeHtml(r.state)}</td>` +
        `<td data-col="blocking">${r.blocking ? "yes" : "no"}</td>` +
        `<td data-col="installing_snapshot">${r.installing_snapshot ? "yes" : "no"}</td>` +
        `<td data-col="consecutive_error_times">${r.consecutive_error_times}</td>` +
        `<td data-col="last_contact_ms">${r.last_contact_ms} ms ago</td></tr>`
      ).join("") + `</tbody></table>`;
  return `<section class="node" data-peer-id="${escapeHtml(n.peer_id)}" data-group="${
    escapeHtml(n.group_id)
  }">\n<h2>${escapeHtml(n.peer_id)}</h2>\n<table class="fields">${rows.join("\n")}</table>\n` +
    `<h3>Replication</h3>\n${replicators}\n</section>`;
}

/** Options for {@linkcode statHtml}. */
export interface StatHtmlOptions {
  /** Seconds between reloads; 0 turns auto-refresh off. Default 2. */
  refreshS?: number;
  /** The group asked for, when the page is `/raft_stat/<group>`. */
  group?: string;
}

/**
 * The HTML page: a heading per group, then per node a table of every field (rows carry
 * `data-field="<name>"`) and a table with one row per follower (`data-peer`, cells
 * `data-col`). Peer ids link to `http://<host:port>/raft_stat/<group>`. Everything from
 * users is escaped.
 *
 * @param nodes The nodes, in JSON form.
 * @param options Auto-refresh and the group asked for.
 * @returns The document.
 *
 * @example
 * ```ts
 * import { statHtml, statJson } from "./raft_stat_page.ts";
 * import { sampleStatus } from "./_sample.ts";
 * import assert from "node:assert/strict";
 * const html = statHtml([statJson(sampleStatus())]);
 * assert.match(html, /<tr data-field="term"><th>term<\/th><td>3<\/td><\/tr>/);
 * assert.match(html, /href="http:\/\/127\.0\.0\.1:8101\/raft_stat\/demo"/);
 * ```
 */
export function statHtml(nodes: readonly NodeStatJson[], options: StatHtmlOptions = {}): string {
  const sections: string[] = [];
  for (const [group, members] of byGroup(nodes)) {
    sections.push(`<h1 data-group="${escapeHtml(group)}">[${escapeHtml(group)}]</h1>`);
    for (const n of members) sections.push(nodeSection(n));
  }
  if (sections.length === 0) sections.push(`<p>No raft node is served here.</p>`);
  const title = options.group === undefined ? "raft_stat" : `raft_stat ${options.group}`;
  return htmlPage(title, sections.join("\n"), { refreshS: options.refreshS ?? 2 });
}
