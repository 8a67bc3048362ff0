/**
 * `/raft_stat` and `/raft_stat/<group>` through `app.request()` on members of a served 3-node
 * group: every braft field in the JSON, text and HTML forms, per-follower rows, links to the
 * other nodes' pages, escaping of user-chosen group ids, content negotiation and 404s.
 */

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Node } from "../../../src/node/node.ts";
import { STAT_FIELDS } from "../../../transports/http/pages/raft_stat_page.ts";
import { MockFsm, waitFor } from "../../node/cluster.ts";
import { DEADLINE_MS, HttpCluster, type Member } from "./_http_cluster.ts";

const EVIL = `<script>alert("g")</script>&'x`;

/** Every key of a node in `/raft_stat` JSON, as documented on `mountStatusRoutes`. */
const JSON_KEYS = [
  "group_id",
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
  "replicators",
].sort();

const REPLICATOR_KEYS = [
  "peer_id",
  "next_index",
  "match_index",
  "flying_append_entries_size",
  "state",
  "blocking",
  "installing_snapshot",
  "consecutive_error_times",
  "last_contact_ms",
].sort();

// deno-lint-ignore no-explicit-any
type Json = any;

function html(m: Member, path: string): Promise<Response> {
  return Promise.resolve(
    m.app.request(path, { headers: { accept: "text/html,application/xhtml+xml,*/*;q=0.8" } }),
  );
}

function cell(page: string, field: string): string {
  const m = new RegExp(`<tr data-field="${field}"><th>${field}</th><td>(.*?)</td></tr>`).exec(page);
  assert.ok(m !== null, `the page has no ${field} row`);
  return m[1]!;
}

function stripTags(s: string): string {
  return s.replace(/<[^>]*>/g, "");
}

describe("/raft_stat pages", () => {
  const c = new HttpCluster();
  let leader: Node;
  let leaderMember: Member;
  let follower: Member;
  let evil: Node;

  before(async () => {
    for (let i = 0; i < 3; i++) await c.serveMember();
    for (const m of c.members) await c.startNode(m, c.conf());
    leader = await c.waitLeader();
    for (let i = 0; i < 3; i++) await leader.applyAsync(new TextEncoder().encode(`e${i}`));
    await c.ensureSame();
    leaderMember = c.memberOf(leader);
    // The leader hears the followers' acks a little after they apply.
    await waitFor(
      () => {
        const d = leader.describe();
        const caughtUp = d.followers.length === 2 &&
          d.followers.every((f) => f.matchIndex === d.lastLogId.index);
        return caughtUp ? true : undefined;
      },
      DEADLINE_MS,
      "the leader sees both followers caught up",
    );
    follower = c.members.find((m) => m !== leaderMember)!;
    // A one-node group with a hostile name, served next to the 3-node group on one endpoint.
    evil = new Node(EVIL, follower.peer);
    await evil.init({
      fsm: new MockFsm(),
      initialConf: follower.peer.toString(),
      electionTimeoutMs: 300,
      logUri: `memory://${c.group}/evil/log`,
      raftMetaUri: `memory://${c.group}/evil/meta`,
    });
    await evil.waitLeader();
  });

  after(async () => {
    await evil?.shutdown();
    await c.stopAll();
  });

  it("JSON has every braft field with the node's values, and one replicator per follower", async () => {
    for (
      const init of [
        { path: `/raft_stat/${c.group}?format=json` },
        { path: `/raft_stat/${c.group}`, headers: { accept: "application/json" } },
      ]
    ) {
      const res = await leaderMember.app.request(init.path, { headers: init.headers ?? {} });
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type")!, /application\/json/);
      const body: Json = await res.json();
      assert.equal(body.nodes.length, 1);
      const n = body.nodes[0];
      assert.deepEqual(Object.keys(n).sort(), JSON_KEYS);
      const d = leader.describe();
      assert.equal(n.group_id, c.group);
      assert.equal(n.peer_id, leaderMember.peer.toString());
      assert.equal(n.state, "LEADER");
      assert.equal(n.readonly, false);
      assert.equal(n.term, leader.term());
      assert.equal(n.conf_index, d.confIndex);
      assert.deepEqual([...n.peers].sort(), c.members.map((m) => m.peer.toString()).sort());
      assert.deepEqual(n.learners, []);
      assert.deepEqual(n.old_peers, []);
      assert.equal(n.leader, leaderMember.peer.toString());
      for (const t of ["election_timer", "vote_timer", "stepdown_timer", "snapshot_timer"]) {
        assert.match(n[t], /^timeout\(\d+ms\) /, t);
      }
      assert.match(n.stepdown_timer, /SCHEDULING/);
      assert.deepEqual(n.storage, { first_index: d.firstIndex, last_index: d.lastIndex });
      assert.ok(n.storage.last_index >= 4, "three entries and the leader's first");
      assert.equal(n.disk_index, d.diskIndex);
      assert.equal(n.known_applied_index, leader.appliedIndex());
      assert.deepEqual(n.last_log_id, { index: d.lastLogId.index, term: leader.term() });
      assert.equal(n.state_machine, "Idle");
      assert.equal(n.last_committed_index, d.lastCommittedIndex);
      assert.equal(n.pending_index, 0);
      assert.equal(n.pending_queue_size, 0);
      assert.equal(n.pending_queue_bytes, 0);
      assert.equal(n.applying_index, 0);
      assert.equal(n.last_snapshot_index, 0);
      assert.equal(n.last_snapshot_term, 0);
      assert.equal(n.snapshot_status, "IDLE");
      const followers = c.members.filter((m) => m !== leaderMember).map((m) => m.peer.toString());
      assert.deepEqual(n.replicators.map((r: Json) => r.peer_id).sort(), followers.sort());
      for (const r of n.replicators) {
        assert.deepEqual(Object.keys(r).sort(), REPLICATOR_KEYS);
        assert.equal(r.match_index, n.last_log_id.index, `${r.peer_id} caught up`);
        assert.equal(r.next_index, r.match_index + 1);
        assert.equal(r.flying_append_entries_size, 0);
        assert.equal(typeof r.state, "string");
        assert.equal(typeof r.blocking, "boolean");
        assert.equal(r.installing_snapshot, false);
        assert.equal(typeof r.consecutive_error_times, "number");
        assert.ok(r.last_contact_ms >= 0 && r.last_contact_ms < 60_000, `${r.last_contact_ms}`);
      }
    }
    const f: Json = await (await follower.app.request(`/raft_stat/${c.group}?format=json`)).json();
    assert.equal(f.nodes[0].state, "FOLLOWER");
    assert.equal(f.nodes[0].leader, leaderMember.peer.toString());
    assert.deepEqual(f.nodes[0].replicators, []);
  });

  it("/raft_stat lists every node served on the endpoint", async () => {
    const body: Json = await (await follower.app.request("/raft_stat?format=json")).json();
    assert.deepEqual(body.nodes.map((n: Json) => n.group_id).sort(), [c.group, EVIL].sort());
    const text = await (await follower.app.request("/raft_stat?format=text")).text();
    assert.ok(text.includes(`[${c.group}]\n`));
    assert.ok(text.includes(`[${EVIL}]\n`));
  });

  it("text: braft's key: value lines for every field, and a replicator line per follower", async () => {
    for (
      const init of [{ path: `/raft_stat/${c.group}?format=text` }, {
        path: `/raft_stat/${c.group}`,
      }]
    ) {
      const res = await leaderMember.app.request(init.path, { headers: { accept: "*/*" } });
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type")!, /text\/plain/);
      const text = await res.text();
      const lines = text.split("\n");
      assert.equal(lines[0], `[${c.group}]`);
      const keys = lines.slice(1).filter((l) => /^[a-z_]+: /.test(l)).map((l) => l.split(":")[0]);
      assert.deepEqual(keys, [...STAT_FIELDS]);
      assert.ok(lines.includes(`peer_id: ${leaderMember.peer}`));
      assert.ok(lines.includes("state: LEADER"));
      assert.ok(lines.includes("readonly: 0"));
      assert.ok(lines.includes(`term: ${leader.term()}`));
      const d = leader.describe();
      assert.ok(lines.includes(`storage: [${d.firstIndex}, ${d.lastIndex}]`));
      assert.ok(lines.includes(`last_log_id: (index=${d.lastLogId.index},term=${leader.term()})`));
      for (const m of c.members.filter((m) => m !== leaderMember)) {
        const line = lines.find((l) => l.startsWith(`replicator@${m.peer}: `));
        assert.ok(line !== undefined, `no replicator line for ${m.peer}`);
        assert.match(
          line,
          / next_index=\d+ match_index=\d+ flying_append_entries_size=\d+ state=\w+/,
        );
        assert.match(line, / consecutive_error_times=\d+ last_contact_ms=\d+$/);
      }
    }
  });

  it("HTML: every field, a row per follower, links to the other nodes' pages, auto-refresh", async () => {
    const res = await html(leaderMember, `/raft_stat/${c.group}`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type")!, /text\/html/);
    assert.match(res.headers.get("content-security-policy")!, /default-src 'none'/);
    const page = await res.text();
    assert.match(page, /<meta http-equiv="refresh" content="2">/);
    for (const field of STAT_FIELDS) cell(page, field);
    assert.equal(stripTags(cell(page, "state")), "LEADER");
    assert.equal(cell(page, "term"), String(leader.term()));
    const d = leader.describe();
    assert.equal(cell(page, "storage"), `[${d.firstIndex}, ${d.lastIndex}]`);
    assert.equal(cell(page, "known_applied_index"), String(leader.appliedIndex()));
    for (const m of c.members) {
      const href = `href="http://${m.peer.endpoint}/raft_stat/${encodeURIComponent(c.group)}"`;
      assert.ok(cell(page, "peers").includes(href), `no link to ${m.peer}`);
      if (m !== leaderMember) {
        const row = new RegExp(`<tr data-peer="${m.peer}">(.*?)</tr>`).exec(page);
        assert.ok(row !== null, `no replication row for ${m.peer}`);
        assert.ok(row[1]!.includes(href));
        for (const col of REPLICATOR_KEYS) assert.match(row[1]!, new RegExp(`data-col="${col}"`));
      }
    }
    const quiet = await (await html(leaderMember, `/raft_stat/${c.group}?refresh=0`)).text();
    assert.doesNotMatch(quiet, /http-equiv="refresh"/);
    const fpage = await (await html(follower, `/raft_stat/${c.group}`)).text();
    assert.ok(cell(fpage, "leader").includes(`http://${leaderMember.peer.endpoint}/raft_stat/`));
  });

  it("escapes group ids everywhere: no markup from users reaches the page", async () => {
    const path = `/raft_stat/${encodeURIComponent(EVIL)}`;
    for (const p of [path, "/raft_stat"]) {
      const page = await (await html(follower, p)).text();
      assert.ok(!page.includes("<script"), `${p} contains a script tag`);
      assert.ok(!page.includes(`"g")`), `${p} contains the raw quote`);
      assert.ok(page.includes("[&lt;script&gt;alert(&quot;g&quot;)&lt;/script&gt;&amp;&#39;x]"));
      assert.ok(page.includes(`/raft_stat/${encodeURIComponent(EVIL).replaceAll("'", "&#39;")}"`));
    }
    const json: Json = await (await follower.app.request(`${path}?format=json`)).json();
    assert.equal(json.nodes[0].group_id, EVIL);
    const missing = await html(
      follower,
      `/raft_stat/${encodeURIComponent("<img src=x onerror=1>")}`,
    );
    assert.equal(missing.status, 404);
    const text = await missing.text();
    assert.ok(!text.includes("<img"));
    assert.ok(text.includes("&lt;img src=x onerror=1&gt;"));
  });

  it("an unknown group is 404 (JSON error for JSON and text, a page for browsers); a bad format is 400", async () => {
    for (const q of ["?format=json", "?format=text", ""]) {
      const res = await leaderMember.app.request(`/raft_stat/no-such-group${q}`);
      assert.equal(res.status, 404);
      const body: Json = await res.json();
      assert.equal(body.error, "ENOENT");
      assert.match(body.message, /no-such-group/);
    }
    const page = await html(leaderMember, "/raft_stat/no-such-group");
    assert.equal(page.status, 404);
    assert.match(page.headers.get("content-type")!, /text\/html/);
    assert.match(await page.text(), /Group &quot;no-such-group&quot; is not served here/);
    const bad = await leaderMember.app.request(`/raft_stat/${c.group}?format=xml`);
    assert.equal(bad.status, 400);
    await bad.body?.cancel();
  });
});
