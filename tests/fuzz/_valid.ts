/**
 * Generators of valid values (messages, peers, configurations, entries) that the fuzz targets
 * encode and then mutate.
 */

import fc from "fast-check";
import { ChunkChain } from "../../src/bytes/chunk_chain.ts";
import { Configuration } from "../../src/conf/configuration.ts";
import { EntryType, type LogEntry } from "../../src/core/entry.ts";
import type { Message } from "../../src/core/types.ts";

/** A valid peer id string. */
export const peerString: fc.Arbitrary<string> = fc.oneof(
  fc.tuple(fc.nat({ max: 255 }), fc.nat({ max: 65535 }), fc.nat({ max: 3 })).map(([a, port, idx]) =>
    `10.0.0.${a}:${port}:${idx}`
  ),
  fc.tuple(fc.nat({ max: 65535 }), fc.nat({ max: 3 }), fc.constantFrom("", ":1")).map((
    [port, idx, role],
  ) => `[::1]:${port}:${idx}${role}`),
  fc.constantFrom("node-a.example:8100:0", "localhost:1:2"),
);

/** A valid configuration. */
export const configuration: fc.Arbitrary<Configuration> = fc.array(peerString, { maxLength: 5 })
  .map((peers) => new Configuration(peers));

const conf = fc.record(
  {
    peers: configuration,
    oldPeers: configuration,
    learners: configuration,
    oldLearners: configuration,
  },
  { requiredKeys: ["peers"] },
);

const safeNat = fc.oneof(
  fc.nat({ max: 1000 }),
  fc.constantFrom(0, Number.MAX_SAFE_INTEGER),
  fc.maxSafeNat(),
);

/** A valid log entry (index and term chosen by the caller's message). */
export const logEntry: fc.Arbitrary<LogEntry> = fc.oneof(
  fc.record({
    index: safeNat,
    term: safeNat,
    type: fc.constantFrom(EntryType.DATA, EntryType.NO_OP),
    data: fc.uint8Array({ maxLength: 64 }).map((b) => ChunkChain.from(b)),
  }) as fc.Arbitrary<LogEntry>,
  fc.record({
    index: safeNat,
    term: safeNat,
    type: fc.constant(EntryType.CONFIGURATION),
    data: fc.constant(new ChunkChain()),
    conf,
  }) as fc.Arbitrary<LogEntry>,
);

const base = {
  from: peerString,
  to: peerString,
  term: safeNat,
};

/** A valid raft message of any type. */
export const message: fc.Arbitrary<Message> = fc.oneof(
  fc.record({
    ...base,
    type: fc.constant("PreVote" as const),
    lastLogIndex: safeNat,
    lastLogTerm: safeNat,
    triggered: fc.boolean(),
  }, { requiredKeys: ["from", "to", "term", "type", "lastLogIndex", "lastLogTerm"] }),
  fc.record({
    ...base,
    type: fc.constant("RequestVote" as const),
    lastLogIndex: safeNat,
    lastLogTerm: safeNat,
    transfer: fc.boolean(),
    disruptedTerm: safeNat,
    triggered: fc.boolean(),
  }, { requiredKeys: ["from", "to", "term", "type", "lastLogIndex", "lastLogTerm", "transfer"] }),
  fc.record({
    ...base,
    type: fc.constantFrom("PreVoteResp" as const, "RequestVoteResp" as const),
    granted: fc.boolean(),
  }),
  fc.record({
    ...base,
    type: fc.constant("AppendEntries" as const),
    prevLogIndex: safeNat,
    prevLogTerm: safeNat,
    entries: fc.array(logEntry, { maxLength: 4 }),
    commit: safeNat,
    heartbeat: fc.boolean(),
    sentTick: safeNat,
    readSeq: safeNat,
  }),
  fc.record({
    ...base,
    type: fc.constant("AppendEntriesResp" as const),
    success: fc.boolean(),
    heartbeat: fc.boolean(),
    index: safeNat,
    hintIndex: safeNat,
    hintTerm: safeNat,
    lastLogIndex: safeNat,
    readonly: fc.boolean(),
    sentTick: safeNat,
    readSeq: safeNat,
    priority: safeNat,
  }),
  fc.record({
    ...base,
    type: fc.constant("InstallSnapshot" as const),
    meta: fc.record({ index: safeNat, term: safeNat, conf }),
  }),
  fc.record({
    ...base,
    type: fc.constant("InstallSnapshotResp" as const),
    success: fc.boolean(),
    index: safeNat,
  }),
  fc.record({
    ...base,
    type: fc.constant("TimeoutNow" as const),
    leaderSteppedDown: fc.boolean(),
  }, { requiredKeys: ["from", "to", "term", "type"] }),
  fc.record({ ...base, type: fc.constant("TimeoutNowResp" as const), success: fc.boolean() }),
) as fc.Arbitrary<Message>;

/** A group id. */
export const groupId: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom("g", "counter", ""),
  fc.string({ maxLength: 16 }),
);
