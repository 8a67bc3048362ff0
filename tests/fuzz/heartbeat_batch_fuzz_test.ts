/**
 * Fuzzing the heartbeat batch codec (`src/codec/heartbeat_batch.ts`): a batch frame decodes to
 * heartbeats that encode again into frames that decode the same, or throws RaftException EINVAL, never anything
 * else, and never hangs.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { MessageEnvelope } from "../../src/codec/message_codec.ts";
import {
  decodeHeartbeatBatch,
  encodeHeartbeatBatch,
  HEARTBEAT_BATCH_TAG,
  isCoalescible,
} from "../../src/codec/heartbeat_batch.ts";
import { RaftError } from "../../src/errors/status.ts";
import { check, expectOnly, raftError } from "./_fuzz.ts";
import { concat, mutated } from "./_arbitraries.ts";
import { groupId, peerString } from "./_valid.ts";

const EINVAL = raftError(RaftError.EINVAL);

const nat = fc.oneof(
  fc.nat({ max: 1000 }),
  fc.constantFrom(0, 127, 128, 16383, 16384, Number.MAX_SAFE_INTEGER),
  fc.maxSafeNat(),
);
const envelope: fc.Arbitrary<MessageEnvelope> = fc.tuple(
  groupId,
  peerString,
  peerString,
  fc.boolean(),
  fc.array(nat, { minLength: 8, maxLength: 8 }),
  fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
).map(([g, from, to, answer, [term, a, b, c, d, e, f, h], [success, readonly, quiesce]]) => {
  const message = answer
    ? {
      type: "AppendEntriesResp" as const,
      from,
      to,
      term: term!,
      success: success!,
      heartbeat: true,
      index: a!,
      hintIndex: b!,
      hintTerm: c!,
      lastLogIndex: d!,
      readonly: readonly!,
      sentTick: e!,
      readSeq: f!,
      priority: h!,
    }
    : {
      type: "AppendEntries" as const,
      from,
      to,
      term: term!,
      prevLogIndex: a!,
      prevLogTerm: b!,
      entries: [],
      commit: c!,
      heartbeat: true,
      sentTick: d!,
      readSeq: e!,
    };
  return quiesce ? { groupId: g, message, quiesce: true } : { groupId: g, message };
});
const validFrame = fc.array(envelope, { minLength: 1, maxLength: 12 }).map((es) =>
  encodeHeartbeatBatch(es)[0]!
);

/** A decoded batch is well formed: it encodes again into frames that decode the same. */
function checkRoundTrip(out: MessageEnvelope[]): void {
  for (const e of out) assert.ok(isCoalescible(e));
  assert.deepEqual(encodeHeartbeatBatch(out).flatMap(decodeHeartbeatBatch), out);
}

function decodeFrame(frame: Uint8Array): void {
  expectOnly(
    () => decodeHeartbeatBatch(frame),
    EINVAL,
    "decodeHeartbeatBatch",
    checkRoundTrip,
  );
}

describe("fuzz: heartbeat batch frames (decodeHeartbeatBatch)", () => {
  it("random bytes after the tag", () => {
    const arb = fc.tuple(fc.constantFrom(0, 1, 2), fc.uint8Array({ maxLength: 200 })).map((
      [v, body],
    ) => concat(new Uint8Array([HEARTBEAT_BATCH_TAG, v]), body));
    check("decodeHeartbeatBatch/random", arb, 4000, decodeFrame);
  });

  it("truncated, bit-flipped and spliced valid frames", () => {
    check("decodeHeartbeatBatch/mutated", mutated(validFrame), 8000, decodeFrame);
  });

  it("valid frames round-trip", () => {
    check("decodeHeartbeatBatch/valid", validFrame, 1000, (frame) => {
      const out = decodeHeartbeatBatch(frame);
      assert.deepEqual(encodeHeartbeatBatch(out)[0], frame);
    });
  });
});
