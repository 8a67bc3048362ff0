// Coalesced heartbeats, measured: N groups of the same 3 peers on a MemoryNetwork and a
// hand-moved clock (one `advance` ticks every group, as a shared tick source does). Once every
// group has a leader, counts the frames and bytes on the network over a few heartbeat
// intervals, and what one frame per heartbeat (`encodeMessage`, before coalescing) would have
// been for the same heartbeats. Prints, never asserts.
//
//   npx deno run -A bench/heartbeat_batch_bench.ts [groups=1000] [intervals=10]
//   npx bun bench/heartbeat_batch_bench.ts [groups=1000] [intervals=10]
import process from "node:process";
import { Configuration } from "../src/conf/configuration.ts";
import { PeerId } from "../src/conf/peer_id.ts";
import { decodeHeartbeatBatch, HEARTBEAT_BATCH_TAG } from "../src/codec/heartbeat_batch.ts";
import { encodeMessage } from "../src/codec/message_codec.ts";
import { Node } from "../src/node/node.ts";
import { StateMachine } from "../src/node/state_machine.ts";
import type { Iterator } from "../src/node/iterator.ts";
import { ManualClock } from "../src/util/clock.ts";
import { Status } from "../src/errors/status.ts";
import { MemoryNetwork } from "../transports/memory/memory_network.ts";

const GROUPS = Number(process.argv[2] ?? 1000);
const INTERVALS = Number(process.argv[3] ?? 10);
const ELECTION_TIMEOUT_MS = 1000;
const TICK_MS = ELECTION_TIMEOUT_MS / 20;
const HEARTBEAT_TICKS = 2;

class NullFsm extends StateMachine {
  onApply(iter: Iterator): void {
    for (; iter.valid(); iter.next()) iter.done()?.run(Status.OK());
  }
}

const net = new MemoryNetwork();
const clock = new ManualClock();
const peers = [8100, 8101, 8102].map((p) => PeerId.parse(`127.0.0.1:${p}:0`));
const conf = new Configuration(peers);

interface Counters {
  frames: number;
  bytes: number;
  batchFrames: number;
  batchBytes: number;
  tuples: number;
  singleBytes: number;
}
const counters: Counters = {
  frames: 0,
  bytes: 0,
  batchFrames: 0,
  batchBytes: 0,
  tuples: 0,
  singleBytes: 0,
};
const pairs = new Map<string, number>();
let counting = false;
for (const p of peers) {
  const t = net.transport(p.endpoint);
  const send = t.send.bind(t);
  t.send = (to: string, frame: Uint8Array): void => {
    if (counting) {
      counters.frames++;
      counters.bytes += frame.byteLength;
      const pair = `${p.endpoint}->${to}`;
      pairs.set(pair, (pairs.get(pair) ?? 0) + 1);
      if (frame[0] === HEARTBEAT_BATCH_TAG) {
        counters.batchFrames++;
        counters.batchBytes += frame.byteLength;
        for (const e of decodeHeartbeatBatch(frame)) {
          counters.tuples++;
          counters.singleBytes += encodeMessage(e.groupId, e.message).byteLength;
        }
      }
    }
    send(to, frame);
  };
}

const t0 = performance.now();
const nodes: Node[][] = [];
let seed = 1;
for (let g = 0; g < GROUPS; g++) {
  const groupId = `kv-shard-${String(g).padStart(6, "0")}`;
  const row: Node[] = [];
  for (const p of peers) {
    const node = new Node(groupId, p);
    await node.init({
      fsm: new NullFsm(),
      electionTimeoutMs: ELECTION_TIMEOUT_MS,
      logUri: `memory://hb-bench/${groupId}/${p.port}/log`,
      raftMetaUri: `memory://hb-bench/${groupId}/${p.port}/meta`,
      transport: net.transport(p.endpoint),
      initialConf: conf,
      clock,
      seed: seed++,
    });
    row.push(node);
  }
  nodes.push(row);
}
console.log(`${GROUPS} groups × 3 nodes started in ${(performance.now() - t0).toFixed(0)} ms`);

async function quiet(): Promise<void> {
  // Until a round passes with nothing sent: every answer of this tick has arrived.
  for (let i = 0, sent = -1; i < 3 || sent !== net.stats.sent; i++) {
    sent = net.stats.sent;
    await new Promise((r) => setTimeout(r, 1));
    await net.idle();
  }
}
async function tick(n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    clock.advance(TICK_MS);
    await quiet();
  }
}

let ticks = 0;
while (!nodes.every((row) => row.some((n) => n.isLeader()))) {
  await tick(1);
  if (++ticks > 5000) throw new Error("no leader in every group after 5000 ticks");
}
await tick(40); // followers catch up, elections settle
const leadersPerEndpoint = peers.map((p) =>
  nodes.filter((row) => row.find((n) => n.isLeader())!.nodeId().equals(p)).length
);
console.log(
  `every group has a leader after ${ticks} ticks; leaders per endpoint: ${
    leadersPerEndpoint.join(", ")
  }`,
);

const leaderOf = (row: Node[]) => row.find((n) => n.isLeader());
const before = nodes.map((row) => `${leaderOf(row)?.nodeId()}@${leaderOf(row)?.term()}`);
counting = true;
await tick(INTERVALS * HEARTBEAT_TICKS);
counting = false;
const changed =
  nodes.filter((row, g) => `${leaderOf(row)?.nodeId()}@${leaderOf(row)?.term()}` !== before[g])
    .length;
console.log(`groups whose leader changed while measuring: ${changed}`);

const per = (n: number) => (n / INTERVALS).toFixed(1);
const kib = (n: number) => (n / INTERVALS / 1024).toFixed(1);
console.log(`\nper heartbeat interval (${HEARTBEAT_TICKS * TICK_MS} ms), all 6 directed pairs:`);
console.log(
  `  heartbeats + answers: ${per(counters.tuples)} (${per(counters.tuples / 6)} per pair)`,
);
console.log(
  `  before (one frame each): ${per(counters.tuples)} frames, ${kib(counters.singleBytes)} KiB` +
    ` (${(counters.singleBytes / counters.tuples).toFixed(1)} B per heartbeat)`,
);
console.log(
  `  after (coalesced):       ${per(counters.batchFrames)} frames, ${
    kib(counters.batchBytes)
  } KiB` +
    ` (${(counters.batchBytes / counters.tuples).toFixed(1)} B per heartbeat)`,
);
console.log(
  `  all frames on the network: ${per(counters.frames)} (${kib(counters.bytes)} KiB); ` +
    `per pair: ${[...pairs.values()].map(per).join(", ")}`,
);

// Encoding cost: one bucket of every group's heartbeats to one endpoint.
const { encodeHeartbeatBatch } = await import("../src/codec/heartbeat_batch.ts");
const bucket = nodes.map((_row, g) => ({
  groupId: `kv-shard-${String(g).padStart(6, "0")}`,
  message: {
    type: "AppendEntries" as const,
    from: peers[0]!.key(),
    to: peers[1]!.key(),
    term: 3,
    prevLogIndex: 12345,
    prevLogTerm: 3,
    entries: [],
    commit: 12345,
    heartbeat: true,
    sentTick: 987654,
    readSeq: 17,
  },
}));
const time = (fn: () => void): number => {
  const reps = 20;
  fn();
  const s = performance.now();
  for (let i = 0; i < reps; i++) fn();
  return (performance.now() - s) / reps;
};
const encBatch = time(() => encodeHeartbeatBatch(bucket));
const encSingle = time(() => bucket.forEach((e) => encodeMessage(e.groupId, e.message)));
const [frame] = encodeHeartbeatBatch(bucket);
const decBatch = time(() => decodeHeartbeatBatch(frame!));
console.log(
  `\n${GROUPS} heartbeats to one endpoint: batch encode ${encBatch.toFixed(2)} ms, decode ` +
    `${decBatch.toFixed(2)} ms (${frame!.byteLength} B); ${GROUPS} encodeMessage ` +
    `${encSingle.toFixed(2)} ms`,
);

for (const row of nodes) await Promise.all(row.map((n) => n.shutdown()));
await net.close();
