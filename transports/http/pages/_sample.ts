/**
 * @internal A fixed `NodeStatus` for the pages' doc examples.
 * @module
 */

import type { NodeStatus } from "../../../src/node/options.ts";

/** @internal A leader of group `demo` with one follower. */
export function sampleStatus(): NodeStatus {
  return {
    groupId: "demo",
    peerId: "127.0.0.1:8100:0",
    state: "LEADER",
    readonly: false,
    term: 3,
    confIndex: 1,
    peers: ["127.0.0.1:8100:0", "127.0.0.1:8101:0"],
    learners: [],
    oldPeers: [],
    leader: "127.0.0.1:8100:0",
    electionTimer: "timeout(1000ms) STOPPED (election)",
    voteTimer: "timeout(2000ms) STOPPED (vote)",
    stepdownTimer: "timeout(1000ms) SCHEDULING (stepdown)",
    snapshotTimer: "timeout(3600000ms) SCHEDULING (snapshot)",
    firstIndex: 1,
    lastIndex: 12,
    diskIndex: 12,
    knownAppliedIndex: 10,
    lastLogId: { index: 12, term: 3 },
    stateMachine: "Idle",
    lastCommittedIndex: 10,
    pendingIndex: 11,
    pendingQueueSize: 2,
    pendingQueueBytes: 96,
    applyingIndex: 0,
    lastSnapshotIndex: 0,
    lastSnapshotTerm: 0,
    snapshotStatus: "IDLE",
    followers: [{
      peer: "127.0.0.1:8101:0",
      nextIndex: 13,
      matchIndex: 10,
      state: "replicate",
      blocking: false,
      installingSnapshot: false,
      consecutiveErrorTimes: 0,
      lastContactMs: 50,
    }],
    quiesced: false,
  };
}
