// The CliService (src/node/cli_service.ts) and the cli library (src/cli) end to end on a
// MemoryNetwork: every verb, leader lookup and retry, disableCli, and bad requests.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { decode, encode } from "cbor-x";
import * as cli from "../../src/cli/mod.ts";
import { Configuration } from "../../src/conf/configuration.ts";
import { ANY_PEER, PeerId } from "../../src/conf/peer_id.ts";
import { RaftError, RaftException } from "../../src/errors/status.ts";
import { type CliNode, encodeCliCall, handleCliRequest } from "../../src/node/cli_service.ts";
import type { Node } from "../../src/node/node.ts";
import { NodeManager } from "../../src/node/node_manager.ts";
import {
  applyStatus,
  Cluster,
  DEADLINE_MS,
  peerIds,
  rejectsWith,
  waitFor,
  withDeadline,
} from "./cluster.ts";

// Node is what the CliService drives: keep the structural contract checked at compile time.
const _nodeIsCliNode = (n: Node): CliNode => n;

const CLIENT = "127.0.0.1:9999";

function options(c: Cluster, extra: Partial<cli.CliOptions> = {}): cli.CliOptions {
  return { transport: c.net.transport(CLIENT), timeoutMs: DEADLINE_MS, ...extra };
}

/** Sends a raw CliService call (any CBOR value) from the client endpoint to `endpoint`. */
async function rawCall(c: Cluster, endpoint: string, body: unknown): Promise<unknown> {
  const bytes = await c.net.transport(CLIENT).call(endpoint, encode(body) as Uint8Array, {
    timeoutMs: DEADLINE_MS,
  });
  return decode(bytes);
}

async function waitLeaderIs(c: Cluster, peer: PeerId): Promise<Node> {
  return await waitFor(
    () => {
      const n = c.nodes.get(peer.key());
      return n?.isLeader() ? n : undefined;
    },
    DEADLINE_MS,
    `${peer} to lead`,
  );
}

async function expectCode(p: Promise<unknown>, code: number, match?: RegExp): Promise<void> {
  const e = await rejectsWith(withDeadline(p, DEADLINE_MS, "cli call"), code);
  if (match !== undefined) assert.match(e.message, match);
}

describe("cli: CliService verbs end to end", () => {
  it("add_peer, remove_peer, change_peers, get_leader and list_peers", async () => {
    const peers = peerIds(4);
    const c = new Cluster("cli-members", peers.slice(0, 3));
    try {
      for (const p of peers.slice(0, 3)) await c.start(p);
      await c.start(peers[3]!, { emptyPeers: true });
      const leader = await c.waitLeader();
      const conf = new Configuration(peers.slice(0, 3));
      const o = options(c);

      const found = await cli.getLeader(c.name, conf, o);
      assert.ok(found.equals(leader.nodeId()));
      // a string configuration works as well
      assert.ok((await cli.getLeader(c.name, conf.toString(), o)).equals(leader.nodeId()));

      const added = await cli.addPeer(c.name, conf, peers[3]!, o);
      assert.ok(added.oldPeers.equals(conf), `old ${added.oldPeers}`);
      assert.ok(added.newPeers.equals(new Configuration(peers)), `new ${added.newPeers}`);
      assert.ok(new Configuration((await c.waitLeader()).listPeers()).equals(added.newPeers));
      const listed = await cli.listPeers(c.name, conf, o);
      assert.ok(new Configuration(listed).equals(new Configuration(peers)));
      // adding a member again changes nothing
      const again = await cli.addPeer(c.name, conf, peers[3]!.toString(), o);
      assert.ok(again.oldPeers.equals(again.newPeers));

      await c.apply(await c.waitLeader(), 3);
      await c.ensureSame(); // the 4th node caught up

      const removed = await cli.removePeer(c.name, conf, peers[3]!, o);
      assert.ok(removed.oldPeers.equals(new Configuration(peers)));
      assert.ok(removed.newPeers.equals(conf));
      assert.ok(new Configuration((await c.waitLeader()).listPeers()).equals(conf));

      // change_peers: swap a follower for the 4th node
      const follower = c.followers().find((f) => conf.contains(f.nodeId()))!.nodeId();
      const target = conf.clone();
      target.remove(follower);
      target.add(peers[3]!);
      const changed = await cli.changePeers(c.name, peers.join(","), target, o);
      assert.ok(changed.oldPeers.equals(conf));
      assert.ok(changed.newPeers.equals(target));
      assert.ok(new Configuration((await c.waitLeader()).listPeers()).equals(target));
    } finally {
      await c.stopAll();
    }
  });

  it("transfer_leader to a given peer, to ANY_PEER, and to the leader itself", async () => {
    const peers = peerIds(3);
    const c = new Cluster("cli-transfer", peers);
    try {
      for (const p of peers) await c.start(p);
      const leader = await c.waitLeader();
      await c.apply(leader, 3);
      const conf = new Configuration(peers);
      const o = options(c);

      const target = c.followers()[0]!.nodeId();
      await cli.transferLeader(c.name, conf, target, o);
      await waitLeaderIs(c, target);
      // the target already leads: nothing to do
      await cli.transferLeader(c.name, conf, target.toString(), o);
      assert.ok(c.nodes.get(target.key())!.isLeader());

      await c.waitLeader(); // onLeaderStart ran, so the transfer below is not refused as busy
      await cli.transferLeader(c.name, conf, ANY_PEER, o);
      const next = await waitFor(
        () => [...c.nodes.values()].find((n) => n.isLeader() && !n.nodeId().equals(target)),
        DEADLINE_MS,
        "another leader",
      );
      assert.ok(!next.nodeId().equals(target));
      await c.waitLeader();
      // "" means any peer too
      await cli.transferLeader(c.name, conf, "", o);
      await waitFor(
        () => [...c.nodes.values()].find((n) => n.isLeader() && !n.nodeId().equals(next.nodeId())),
        DEADLINE_MS,
        "a third leader",
      );
      assert.ok((await applyStatus(await c.waitLeader(), "after")).ok());
    } finally {
      await c.stopAll();
    }
  });

  it("snapshot makes the named node take a snapshot", async () => {
    const peers = peerIds(3);
    const c = new Cluster("cli-snapshot", peers);
    try {
      for (const p of peers) await c.start(p);
      const leader = await c.waitLeader();
      await c.apply(leader, 5);
      await c.ensureSame();
      const follower = c.followers()[0]!;
      const before = c.fsm(follower.nodeId()).snapshotsSaved;
      await cli.snapshot(c.name, follower.nodeId(), options(c));
      assert.equal(c.fsm(follower.nodeId()).snapshotsSaved, before + 1);
      assert.ok(follower.describe().lastSnapshotIndex >= 5);
      // the leader was not asked
      assert.equal(c.fsm(leader.nodeId()).snapshotsSaved, 0);
    } finally {
      await c.stopAll();
    }
  });

  it("reset_peer on the survivor of a lost majority lets it lead alone", async () => {
    const peers = peerIds(3);
    const c = new Cluster("cli-reset", peers);
    try {
      for (const p of peers) await c.start(p);
      await c.apply(await c.waitLeader(), 3);
      await c.ensureSame();
      const survivor = peers[2]!;
      await c.stop(peers[0]!);
      await c.stop(peers[1]!);
      const o = options(c);
      await expectCode(cli.resetPeer(c.name, survivor, "", o), RaftError.EINVAL);
      await cli.resetPeer(c.name, survivor, new Configuration([survivor]), o);
      const node = await waitLeaderIs(c, survivor);
      assert.deepEqual(node.listPeers().map(String), [survivor.toString()]);
      assert.ok((await applyStatus(node, "alone")).ok());
      assert.ok((await cli.getLeader(c.name, [survivor].join(","), o)).equals(survivor));
    } finally {
      await c.stopAll();
    }
  });
});

describe("cli: leader lookup and retries", () => {
  it("finds the leader through a conf whose first peer is down", async () => {
    const peers = peerIds(4);
    const c = new Cluster("cli-firstdown", peers.slice(0, 3));
    try {
      for (const p of peers.slice(0, 3)) await c.start(p);
      await c.start(peers[3]!, { emptyPeers: true });
      await c.waitLeader();
      await c.stop(peers[0]!);
      const leader = await c.waitLeader();
      const conf = new Configuration(peers.slice(0, 3));
      assert.ok(conf.peers[0]!.equals(peers[0]!)); // the dead peer is asked first
      const o = options(c);
      assert.ok((await cli.getLeader(c.name, conf, o)).equals(leader.nodeId()));
      const added = await cli.addPeer(c.name, conf, peers[3]!, o);
      assert.equal(added.newPeers.size, 4);
    } finally {
      await c.stopAll();
    }
  });

  it("reports every peer's failure when no peer answers", async () => {
    const peers = peerIds(2);
    const c = new Cluster("cli-nonedown", peers);
    try {
      // nothing runs at these endpoints
      const e = await rejectsWith(
        cli.getLeader(c.name, new Configuration(peers), options(c)),
        RaftError.EHOSTUNREACH,
      );
      for (const p of peers) {
        assert.match(e.message, new RegExp(p.toString().replace(/\./g, "\\.")));
      }
      await expectCode(
        cli.getLeader(c.name, "", options(c)),
        RaftError.EINVAL,
        /empty group configuration/,
      );
    } finally {
      await c.stopAll();
    }
  });

  it("retries at the new leader when leadership moves under a request (EPERM)", async () => {
    const peers = peerIds(4);
    const c = new Cluster("cli-retry", peers.slice(0, 3));
    try {
      for (const p of peers.slice(0, 3)) await c.start(p);
      await c.start(peers[3]!, { emptyPeers: true });
      await c.waitLeader();
      const conf = new Configuration(peers.slice(0, 3));
      const transport = c.net.transport(CLIENT);
      const verbs: string[] = [];
      let moved = false;
      // Before the first add_peer reaches the leader, leadership moves elsewhere.
      const call: cli.CliCaller = async (endpoint, request, opts) => {
        const body = decode(request) as { verb: string };
        verbs.push(body.verb);
        if (body.verb === "add_peer" && !moved) {
          moved = true;
          const current = await c.waitLeader();
          const target = c.followers().find((f) => conf.contains(f.nodeId()))!.nodeId();
          assert.ok(current.transferLeadershipTo(target).ok());
          await waitLeaderIs(c, target);
        }
        return await transport.call(endpoint, request, opts);
      };
      // without retries the moved leader's EPERM is the answer
      await expectCode(
        cli.addPeer(c.name, conf, peers[3]!, { call, maxRetry: 0 }),
        RaftError.EPERM,
      );
      moved = false;
      verbs.length = 0;
      await c.waitLeader();
      const second = [...c.nodes.values()].find((n) => n.isLeader())!;
      const done = await cli.addPeer(c.name, conf, peers[3]!, { call, timeoutMs: DEADLINE_MS });
      assert.ok(done.newPeers.equals(new Configuration(peers)));
      assert.ok(verbs.filter((v) => v === "add_peer").length >= 2, verbs.join(","));
      assert.ok(verbs.indexOf("get_leader", verbs.indexOf("add_peer")) > 0, verbs.join(","));
      assert.ok(!second.isLeader());
    } finally {
      await c.stopAll();
    }
  });
});

describe("cli: options", () => {
  it("timeoutMs goes to every call; an aborted signal rejects with ECANCELED", async () => {
    const peers = peerIds(3);
    const c = new Cluster("cli-options", peers);
    try {
      for (const p of peers) await c.start(p);
      const leader = await c.waitLeader();
      const transport = c.net.transport(CLIENT);
      const seen: Array<number | undefined> = [];
      const call: cli.CliCaller = (endpoint, request, opts) => {
        seen.push(opts.timeoutMs);
        return transport.call(endpoint, request, opts);
      };
      await cli.listPeers(c.name, peers.join(","), { call, timeoutMs: 1234 });
      assert.ok(seen.length >= 2 && seen.every((t) => t === 1234), String(seen));
      seen.length = 0;
      await cli.getLeader(c.name, leader.nodeId().toString(), { call }); // default: none
      assert.deepEqual(seen, [undefined]);
      const ac = new AbortController();
      ac.abort();
      await expectCode(
        cli.getLeader(c.name, peers.join(","), { call, signal: ac.signal }),
        RaftError.ECANCELED,
      );
      // a caller that throws something else is reported as unreachable, with the cause
      const e = await rejectsWith(
        cli.snapshot(c.name, peers[0]!, { call: () => Promise.reject(new Error("boom")) }),
        RaftError.EHOSTUNREACH,
      );
      assert.match(e.message, /boom/);
    } finally {
      await c.stopAll();
    }
  });
});

describe("cli: access control and bad requests", () => {
  it("disableCli refuses with EACCES; get_leader still answers (as braft)", async () => {
    const peers = peerIds(3);
    const c = new Cluster("cli-disabled", peers);
    try {
      for (const p of peers) await c.start(p, { extra: { disableCli: true } });
      const leader = await c.waitLeader();
      const conf = new Configuration(peers);
      const o = options(c);
      assert.ok((await cli.getLeader(c.name, conf, o)).equals(leader.nodeId()));
      await expectCode(cli.snapshot(c.name, peers[0]!, o), RaftError.EACCES, /not allowed/);
      await expectCode(cli.listPeers(c.name, conf, o), RaftError.EACCES);
      await expectCode(cli.transferLeader(c.name, conf, ANY_PEER, o), RaftError.EACCES);
      await expectCode(cli.removePeer(c.name, conf, peers[0]!, o), RaftError.EACCES);
      await expectCode(
        cli.resetPeer(c.name, peers[0]!, peers[0]!.toString(), o),
        RaftError.EACCES,
      );
      assert.equal(leader.listPeers().length, 3);
      assert.ok(leader.isLeader());
    } finally {
      await c.stopAll();
    }
  });

  it("disableCli must be a boolean (a truthy string must not leave the CLI open)", async () => {
    const peers = peerIds(1);
    const c = new Cluster("cli-disabled-type", peers);
    try {
      await assert.rejects(
        c.start(peers[0]!, { extra: { disableCli: "yes" as unknown as boolean } }),
        (e: unknown) =>
          e instanceof RaftException && e.code === RaftError.EINVAL && /disableCli/.test(e.message),
      );
    } finally {
      await c.stopAll();
    }
  });

  it("wrong field types, unknown group/peer/verb and an ambiguous node get the right codes", async () => {
    const peers = peerIds(3);
    const c = new Cluster("cli-bad", peers);
    try {
      for (const p of peers) await c.start(p);
      const leader = await c.waitLeader();
      const at = leader.nodeId().endpoint;
      const g = c.name;
      const me = leader.nodeId().toString();
      const cases: Array<[unknown, number, RegExp]> = [
        [{ t: "cli", verb: 7, group_id: g }, RaftError.EINVAL, /verb/],
        [{ t: "cli", verb: "frobnicate", group_id: g }, RaftError.EINVAL, /frobnicate/],
        [{ t: "cli", verb: "get_leader" }, RaftError.EINVAL, /group_id/],
        [{ t: "cli", verb: "get_leader", group_id: 5 }, RaftError.EINVAL, /group_id/],
        [{ t: "cli", verb: "get_leader", group_id: g, peer_id: 5 }, RaftError.EINVAL, /peer_id/],
        [{ t: "cli", verb: "get_leader", group_id: g, peer_id: "x" }, RaftError.EINVAL, /peer_id/],
        [{ t: "cli", verb: "add_peer", group_id: g, leader_id: me }, RaftError.EINVAL, /peer_id/],
        [
          { t: "cli", verb: "add_peer", group_id: g, leader_id: [me], peer_id: me },
          RaftError.EINVAL,
          /leader_id/,
        ],
        [{ t: "cli", verb: "change_peers", group_id: g }, RaftError.EINVAL, /new_peers/],
        [
          { t: "cli", verb: "change_peers", group_id: g, new_peers: 3 },
          RaftError.EINVAL,
          /new_peers/,
        ],
        [
          { t: "cli", verb: "change_peers", group_id: g, new_peers: [me, 4] },
          RaftError.EINVAL,
          /new_peers\[1\]/,
        ],
        [
          {
            t: "cli",
            verb: "reset_peer",
            group_id: g,
            peer_id: me,
            new_peers: [me],
            old_peers: {},
          },
          RaftError.EINVAL,
          /old_peers/,
        ],
        [
          { t: "cli", verb: "transfer_leader", group_id: g, leader_id: me, peer_id: true },
          RaftError.EINVAL,
          /peer_id/,
        ],
        [{ t: "cli", verb: "snapshot", group_id: "no-such-group" }, RaftError.ENOENT, /no-such/],
        [
          { t: "cli", verb: "get_leader", group_id: "no-such-group" },
          RaftError.ENOENT,
          /No nodes of group/,
        ],
        [
          { t: "cli", verb: "snapshot", group_id: g, peer_id: "127.0.0.1:1:0" },
          RaftError.ENOENT,
          /127\.0\.0\.1:1:0/,
        ],
        [
          { t: "cli", verb: "get_leader", group_id: g, peer_id: "127.0.0.1:1:0" },
          RaftError.ENOENT,
          /127\.0\.0\.1:1:0/,
        ],
      ];
      for (const [body, code, match] of cases) {
        await expectCode(rawCall(c, at, body), code, match);
      }
      await expectCode(
        c.net.transport(CLIENT).call(at, new Uint8Array([0xff, 0x00])),
        RaftError.EINVAL,
      );
      // a follower refuses leader-only verbs with EPERM
      const follower = c.followers()[0]!.nodeId();
      await expectCode(
        rawCall(c, follower.endpoint, { t: "cli", verb: "list_peers", group_id: g }),
        RaftError.EPERM,
      );
      // the library checks its own arguments
      await expectCode(cli.addPeer(g, peers.join(","), "nope", options(c)), RaftError.EINVAL);
      await expectCode(cli.getLeader("", peers.join(","), options(c)), RaftError.EINVAL);
      await expectCode(
        cli.getLeader(g, peers.join(","), { call: 5 as unknown as cli.CliCaller }),
        RaftError.EINVAL,
        /call/,
      );
      await expectCode(
        cli.getLeader(g, peers.join(","), { ...options(c), maxRetry: -1 }),
        RaftError.EINVAL,
        /maxRetry/,
      );
      // an unknown group is reported at once through the library as well
      await expectCode(
        cli.listPeers("no-such-group", peers.join(","), options(c)),
        RaftError.ENOENT,
      );

      // the group still works and the answers it gives are right
      assert.ok((await applyStatus(leader, "still fine")).ok());
      assert.deepEqual(await rawCall(c, at, { t: "cli", verb: "get_leader", group_id: g }), {
        leader_id: me,
      });
    } finally {
      await c.stopAll();
    }
  });

  it("an endpoint with two nodes of a group needs peer_id (EINVAL), and routes by it", async () => {
    const peers = [
      PeerId.parse("127.0.0.1:5006:0"),
      PeerId.parse("127.0.0.1:5006:1"),
      PeerId.parse("127.0.0.1:5007:0"),
    ];
    const c = new Cluster("cli-ambiguous", peers);
    try {
      for (const p of peers) await c.start(p);
      const leader = await c.waitLeader();
      await c.apply(leader, 2);
      await c.ensureSame();
      const at = "127.0.0.1:5006";
      await expectCode(
        rawCall(c, at, { t: "cli", verb: "snapshot", group_id: c.name }),
        RaftError.EINVAL,
        /peer must be specified since there are 2 nodes/,
      );
      await cli.snapshot(c.name, peers[1]!, options(c));
      assert.equal(c.fsm(peers[1]!).snapshotsSaved, 1);
      assert.equal(c.fsm(peers[0]!).snapshotsSaved, 0);
      // get_leader without peer_id: any local node that knows the leader answers
      const res = await rawCall(c, at, { t: "cli", verb: "get_leader", group_id: c.name });
      assert.deepEqual(res, { leader_id: leader.nodeId().toString() });
    } finally {
      await c.stopAll();
    }
  });

  it("handleCliRequest takes decoded JSON objects (the HTTP layer's entry point)", async () => {
    const peers = peerIds(3);
    const c = new Cluster("cli-json", peers);
    try {
      for (const p of peers) await c.start(p);
      const leader = await c.waitLeader();
      const manager = NodeManager.for(c.net.transport(leader.nodeId().endpoint));
      const res = await handleCliRequest(
        manager,
        "list_peers",
        JSON.parse(
          JSON.stringify({ group_id: c.name, peer_id: null }),
        ),
      );
      assert.deepEqual(res, { peers: peers.map(String) });
      await assert.rejects(
        handleCliRequest(manager, "list_peers", [1, 2]),
        (e: unknown) => e instanceof RaftException && e.code === RaftError.EINVAL,
      );
      // a comma-separated new_peers is accepted too
      const same = await handleCliRequest(manager, "change_peers", {
        group_id: c.name,
        new_peers: peers.join(","),
      });
      assert.deepEqual(same, { old_peers: peers.map(String), new_peers: peers.map(String) });
      // the encoder makes exactly what NodeManager accepts
      const bytes = await c.net.transport(CLIENT).call(
        leader.nodeId().endpoint,
        encodeCliCall("get_leader", { group_id: c.name }),
      );
      assert.deepEqual(decode(bytes), { leader_id: leader.nodeId().toString() });
    } finally {
      await c.stopAll();
    }
  });
});
