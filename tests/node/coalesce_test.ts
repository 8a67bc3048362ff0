// Coalesced heartbeats (CockroachDB's design) in the node layer: the heartbeats of every group
// bound for one endpoint leave as one batch frame per tick, answers come back the same way,
// and elections, leases, readIndex and failover behave as with one frame per heartbeat.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { AppendEntriesRespMessage } from "../../src/core/types.ts";
import {
  decodeHeartbeatBatch,
  encodeHeartbeatBatch,
  HEARTBEAT_BATCH_TAG,
} from "../../src/codec/heartbeat_batch.ts";
import { NodeManager } from "../../src/node/node_manager.ts";
import { Groups, HEARTBEAT_TICKS } from "./_groups.ts";

const GROUPS = 120;

describe("coalesced heartbeats", () => {
  let groups: Groups;
  before(async () => {
    groups = new Groups(GROUPS, 7300, { enableLeaderLease: true });
    await groups.start();
  });
  after(async () => await groups.stop());

  it("elect a leader in every group", async () => {
    const leaders = await groups.untilLeaders();
    assert.equal(leaders.length, GROUPS);
    // Leaders spread over the endpoints (each group elects on its own randomised timeout).
    const endpoints = new Set(leaders.map((l) => l.nodeId().endpoint));
    assert.ok(endpoints.size >= 2, `leaders on ${[...endpoints].join(", ")}`);
  });

  it("send one frame per endpoint pair and tick instead of one per group", async () => {
    // Let every follower catch up and every lease settle.
    await groups.untilLeaders(
      new Set(),
      200,
      () => groups.groupIds.every((g) => groups.leaderOf(g)!.isLeaderLeaseValid()),
    );
    await groups.tick(2 * HEARTBEAT_TICKS);
    const leaders = groups.groupIds.map((g) => groups.leaderOf(g)!);
    const terms = leaders.map((l) => l.term());
    const frames0 = groups.net.stats.sent;
    const batches0 = groups.total("heartbeatFramesOut");
    const tuples0 = groups.total("heartbeatTuplesOut");
    const intervals = 10;
    await groups.tick(intervals * HEARTBEAT_TICKS);
    const frames = groups.net.stats.sent - frames0;
    const batches = groups.total("heartbeatFramesOut") - batches0;
    const tuples = groups.total("heartbeatTuplesOut") - tuples0;
    assert.deepEqual(groups.groupIds.map((g) => groups.leaderOf(g)), leaders, "leaders changed");
    assert.deepEqual(leaders.map((l) => l.term()), terms);
    // Each leader: a heartbeat to each of 2 followers and their 2 answers per interval.
    assert.equal(tuples, 4 * GROUPS * intervals);
    // 3 endpoints: 6 directed pairs, each with heartbeats and answers, on each of the 2 ticks
    // of an interval (leaders elected on odd and even ticks heartbeat on either): 12 frames
    // per tick, doubled for answers that miss their turn's flush on a loaded machine.
    const bound = 2 * 6 * 2 * HEARTBEAT_TICKS * intervals;
    assert.ok(batches <= bound, `${batches} batch frames > ${bound}`);
    assert.ok(frames <= bound, `${frames} frames on the network > ${bound}`);
    // Without coalescing every tuple is a frame of its own.
    assert.ok(frames * 8 < tuples, `${frames} frames for ${tuples} heartbeats`);
    for (const l of leaders) assert.ok(l.isLeaderLeaseValid(), `${l.nodeId()} lost its lease`);
    console.log(
      `${GROUPS} groups, ${intervals} heartbeat intervals: ${tuples} heartbeats and answers ` +
        `in ${batches} batch frames; ${frames} frames on the network`,
    );
    const inbound = groups.total("heartbeatTuplesIn");
    assert.equal(inbound, groups.total("heartbeatTuplesOut"));
  });

  it("write to every group through coalesced heartbeats' commit propagation", async () => {
    const leaders = groups.groupIds.map((g) => groups.leaderOf(g)!);
    await groups.settle(
      Promise.all(leaders.map((l, i) => l.applyAsync(new TextEncoder().encode(`w${i}`)))),
    );
    // Followers learn the commit index from the next append or heartbeat.
    const index = leaders.map((l) => l.appliedIndex());
    await groups.settle(
      Promise.all(
        groups.groupIds.flatMap((g, i) =>
          groups.nodes.get(g)!.map((n) => n.waitApplied(index[i]!))
        ),
      ),
    );
  });
});

describe("coalesced heartbeats under a partition", () => {
  let groups: Groups;
  before(async () => {
    groups = new Groups(60, 7320);
    await groups.start();
  });
  after(async () => await groups.stop());

  it("confirm readIndex on every group at once with one round of batches", async () => {
    // The lease is off: a read needs a heartbeat round, and all of them ride the same frames.
    const leaders = await groups.untilLeaders();
    const batches0 = groups.total("heartbeatFramesOut");
    const tuples0 = groups.total("heartbeatTuplesOut");
    const reads = await groups.settle(Promise.all(leaders.map((l) => l.readIndex())));
    for (const [i, r] of reads.entries()) assert.ok(r >= 1, `group ${i} read index ${r}`);
    const tuples = groups.total("heartbeatTuplesOut") - tuples0;
    const batches = groups.total("heartbeatFramesOut") - batches0;
    assert.ok(tuples >= 4 * groups.groupIds.length, `${tuples} heartbeat tuples`);
    assert.ok(batches * 10 < tuples, `${batches} batch frames for ${tuples} tuples`);
    console.log(`readIndex on ${leaders.length} groups: ${tuples} tuples in ${batches} frames`);
  });

  it("move the leadership of an isolated endpoint's groups, then heal", async () => {
    const before = await groups.untilLeaders();
    const cut = groups.peers[0]!.endpoint;
    const led = groups.groupIds.filter((_, i) => before[i]!.nodeId().endpoint === cut);
    assert.ok(led.length > 0, "the isolated endpoint leads some groups");
    groups.net.isolate(cut);
    const down = new Set([cut]);
    const leaders = await groups.untilLeaders(down);
    for (const l of leaders) assert.notEqual(l.nodeId().endpoint, cut);

    // Every group still commits and confirms reads with the majority on the other side.
    await groups.settle(
      Promise.all(leaders.map((l, i) => l.applyAsync(new TextEncoder().encode(`p${i}`)))),
    );
    const reads = await groups.settle(Promise.all(leaders.map((l) => l.readIndex())));
    for (const [i, r] of reads.entries()) assert.ok(r >= leaders[i]!.appliedIndex() - 1);

    groups.net.heal();
    const healed = await groups.untilLeaders();
    await groups.settle(
      Promise.all(healed.map((l, i) => l.applyAsync(new TextEncoder().encode(`h${i}`)))),
    );
    const index = healed.map((l) => l.appliedIndex());
    await groups.settle(
      Promise.all(
        groups.groupIds.flatMap((g, i) =>
          groups.nodes.get(g)!.map((n) => n.waitApplied(index[i]!))
        ),
      ),
    );
    const reads2 = await groups.settle(Promise.all(healed.map((l) => l.readIndex())));
    assert.equal(reads2.length, groups.groupIds.length);
  });
});

describe("coalesced heartbeats from a hostile or confused peer", () => {
  let groups: Groups;
  before(async () => {
    groups = new Groups(3, 7340);
    await groups.start();
    await groups.untilLeaders();
  });
  after(async () => await groups.stop());

  it("drop malformed batches, skip unknown groups, answer the rest in one batch", async () => {
    const target = groups.peers[1]!;
    const manager = NodeManager.for(groups.net.transport(target.endpoint));
    const fake = groups.net.transport("127.0.0.1:7399");
    const got: Uint8Array[] = [];
    fake.listen({ onFrame: (_from, f) => got.push(f), onCall: () => Promise.reject(new Error()) });
    const stats0 = { ...manager.stats };

    fake.send(target.endpoint, new Uint8Array([HEARTBEAT_BATCH_TAG, 1, 5]));
    fake.send(target.endpoint, new Uint8Array([HEARTBEAT_BATCH_TAG]));
    await groups.quiet();
    assert.equal(manager.stats.malformed, stats0.malformed + 2);

    // A stale leader (term 0 is below every group's term) heartbeats two real groups and one
    // unknown group: the real ones answer with their term, in one batch.
    const heartbeat = (g: string) => ({
      groupId: g,
      message: {
        type: "AppendEntries" as const,
        from: "127.0.0.1:7399:0",
        to: target.key(),
        term: 0,
        prevLogIndex: 0,
        prevLogTerm: 0,
        entries: [],
        commit: 0,
        heartbeat: true,
        sentTick: 5,
        readSeq: 0,
      },
    });
    const [frame] = encodeHeartbeatBatch([
      heartbeat(groups.groupIds[0]!),
      heartbeat("no-such-group"),
      heartbeat(groups.groupIds[2]!),
    ]);
    fake.send(target.endpoint, frame!);
    await groups.quiet();
    assert.equal(manager.stats.unknownTarget, stats0.unknownTarget + 1);
    assert.equal(manager.stats.heartbeatFramesIn > stats0.heartbeatFramesIn, true);
    const answers = got.filter((f) => f[0] === HEARTBEAT_BATCH_TAG);
    assert.equal(answers.length, 1, `${answers.length} answer frames`);
    const decoded = decodeHeartbeatBatch(answers[0]!);
    assert.deepEqual(decoded.map((e) => e.groupId), [groups.groupIds[0], groups.groupIds[2]]);
    for (const e of decoded) {
      const m = e.message as AppendEntriesRespMessage;
      assert.equal(m.type, "AppendEntriesResp");
      assert.equal(m.success, false);
      assert.ok(m.term >= 1);
    }
    // The groups did not notice.
    await groups.untilLeaders();
    await fake.close();
  });
});
