import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { AppendEntriesMessage, AppendEntriesRespMessage } from "../../src/core/types.ts";
import {
  decodeMessage,
  encodeMessage,
  type MessageEnvelope,
} from "../../src/codec/message_codec.ts";
import {
  decodeHeartbeatBatch,
  encodeHeartbeatBatch,
  HEARTBEAT_BATCH_TAG,
  isCoalescible,
  MAX_BATCH_BYTES,
  MAX_BATCH_TUPLES,
} from "../../src/codec/heartbeat_batch.ts";
import { RaftError, RaftException } from "../../src/errors/status.ts";

const hb: AppendEntriesMessage = {
  type: "AppendEntries",
  from: "127.0.0.1:8100:0",
  to: "127.0.0.1:8101:0",
  term: 7,
  prevLogIndex: 41,
  prevLogTerm: 6,
  entries: [],
  commit: 40,
  heartbeat: true,
  sentTick: 1234,
  readSeq: 3,
};
const answer: AppendEntriesRespMessage = {
  type: "AppendEntriesResp",
  from: "127.0.0.1:8101:0",
  to: "127.0.0.1:8100:0",
  term: 7,
  success: true,
  heartbeat: true,
  index: 0,
  hintIndex: 0,
  hintTerm: 0,
  lastLogIndex: 41,
  readonly: false,
  sentTick: 1234,
  readSeq: 3,
  priority: 0,
};

function rejectsEinval(frame: Uint8Array, why?: RegExp): void {
  assert.throws(
    () => decodeHeartbeatBatch(frame),
    (e: unknown) =>
      e instanceof RaftException && e.code === RaftError.EINVAL &&
      (why === undefined || why.test(e.message)),
  );
}

const safe = fc.nat({ max: Number.MAX_SAFE_INTEGER });
const id = fc.oneof(
  fc.constantFrom("127.0.0.1:8100:0", "127.0.0.1:8101:0", "127.0.0.1:8102:0"),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 20 }),
);
const heartbeatArb: fc.Arbitrary<AppendEntriesMessage> = fc.record({
  type: fc.constant("AppendEntries" as const),
  from: id,
  to: id,
  term: safe,
  prevLogIndex: safe,
  prevLogTerm: safe,
  entries: fc.constant([]),
  commit: safe,
  heartbeat: fc.constant(true),
  sentTick: safe,
  readSeq: safe,
}).map((m) => ({ ...m }));
const answerArb: fc.Arbitrary<AppendEntriesRespMessage> = fc.record({
  type: fc.constant("AppendEntriesResp" as const),
  from: id,
  to: id,
  term: safe,
  success: fc.boolean(),
  heartbeat: fc.constant(true),
  index: safe,
  hintIndex: safe,
  hintTerm: safe,
  lastLogIndex: safe,
  readonly: fc.boolean(),
  sentTick: safe,
  readSeq: safe,
  priority: safe,
}).map((m) => ({ ...m }));
const envelopeArb: fc.Arbitrary<MessageEnvelope> = fc.record({
  groupId: fc.oneof(fc.constantFrom("g0", "g1", "g2"), fc.string({ maxLength: 30 })),
  message: fc.oneof(heartbeatArb, answerArb),
  quiesce: fc.boolean(),
}).map(({ groupId, message, quiesce }) =>
  quiesce ? { groupId, message, quiesce: true } : { groupId, message }
);

describe("heartbeat batch codec", () => {
  it("round-trips heartbeats and answers to the envelopes decodeMessage gives", () => {
    const envelopes: MessageEnvelope[] = [
      { groupId: "g1", message: hb },
      { groupId: "g2", message: { ...hb, readSeq: 0 }, quiesce: true },
      { groupId: "g1", message: answer },
      { groupId: "g3", message: { ...answer, success: false, readonly: true, hintIndex: 9 } },
    ];
    const frames = encodeHeartbeatBatch(envelopes);
    assert.equal(frames.length, 1);
    assert.equal(frames[0]![0], HEARTBEAT_BATCH_TAG);
    const decoded = decodeHeartbeatBatch(frames[0]!);
    assert.deepEqual(decoded, envelopes);
    // Same as each message alone through the message codec (bar the envelope flag).
    for (const [i, e] of envelopes.entries()) {
      const alone = decodeMessage(encodeMessage(e.groupId, e.message));
      assert.deepEqual(decoded[i]!.message, alone.message);
      assert.equal(decoded[i]!.groupId, alone.groupId);
    }
  });

  it("writes each group and peer id once per frame", () => {
    const envelopes = Array.from({ length: 100 }, (_, g) => ({
      groupId: "group-with-a-long-name-0000",
      message: { ...hb, term: g },
    }));
    const [frame] = encodeHeartbeatBatch(envelopes);
    const text = new TextDecoder().decode(frame!);
    assert.equal(text.split("group-with-a-long-name-0000").length - 1, 1);
    assert.equal(text.split("127.0.0.1:8100:0").length - 1, 1);
    // 100 single frames are far larger than one batch.
    const single = encodeMessage("group-with-a-long-name-0000", hb).byteLength;
    assert.ok(frame!.byteLength * 5 < 100 * single, `${frame!.byteLength} vs ${100 * single}`);
  });

  it("is told apart from a message frame", () => {
    const single = encodeMessage("g", hb);
    assert.notEqual(single[0], HEARTBEAT_BATCH_TAG);
    rejectsEinval(single, /not a heartbeat batch/);
    const [frame] = encodeHeartbeatBatch([{ groupId: "g", message: hb }]);
    assert.throws(
      () => decodeMessage(frame!),
      (e: unknown) => e instanceof RaftException && e.code === RaftError.EINVAL,
    );
  });

  it("accepts only heartbeats", () => {
    assert.equal(isCoalescible({ groupId: "g", message: hb }), true);
    assert.equal(isCoalescible({ groupId: "g", message: answer }), true);
    assert.equal(isCoalescible({ groupId: "g", message: { ...hb, heartbeat: false } }), false);
    assert.equal(isCoalescible({ groupId: "g", message: { ...answer, heartbeat: false } }), false);
    assert.equal(isCoalescible({ groupId: "x".repeat(1025), message: hb }), false);
    assert.equal(
      isCoalescible({ groupId: "g", message: { type: "TimeoutNow", from: "a", to: "b", term: 1 } }),
      false,
    );
    assert.throws(
      () => encodeHeartbeatBatch([{ groupId: "g", message: { ...hb, heartbeat: false } }]),
      (e: unknown) => e instanceof RaftException && e.code === RaftError.EINVAL,
    );
    assert.throws(
      () => encodeHeartbeatBatch([{ groupId: "g", message: { ...hb, term: -1 } }]),
      (e: unknown) => e instanceof RaftException && e.code === RaftError.EINVAL,
    );
  });

  it("splits large batches by tuple count and by bytes", () => {
    const many = Array.from({ length: MAX_BATCH_TUPLES * 2 + 5 }, (_, g) => ({
      groupId: `g${g}`,
      message: hb,
    }));
    const frames = encodeHeartbeatBatch(many);
    assert.equal(frames.length, 3);
    assert.deepEqual(frames.map((f) => decodeHeartbeatBatch(f).length), [
      MAX_BATCH_TUPLES,
      MAX_BATCH_TUPLES,
      5,
    ]);
    const big = Array.from({ length: 1000 }, (_, g) => ({
      groupId: `${"é".repeat(1000)}${g}`.slice(-1024),
      message: hb,
    }));
    const bigFrames = encodeHeartbeatBatch(big);
    assert.ok(bigFrames.length >= 2);
    for (const f of bigFrames) assert.ok(f.byteLength <= MAX_BATCH_BYTES, `${f.byteLength}`);
    assert.deepEqual(bigFrames.flatMap(decodeHeartbeatBatch), big);
    assert.deepEqual(encodeHeartbeatBatch([]), []);
  });

  it("round-trips any batch (property)", () => {
    fc.assert(
      fc.property(fc.array(envelopeArb, { maxLength: 60 }), (envelopes) => {
        const frames = encodeHeartbeatBatch(envelopes);
        assert.deepEqual(frames.flatMap(decodeHeartbeatBatch), envelopes);
      }),
      { numRuns: 300 },
    );
  });

  it("rejects every truncation and trailing bytes", () => {
    const [frame] = encodeHeartbeatBatch([
      { groupId: "g1", message: hb },
      { groupId: "g2", message: answer, quiesce: true },
    ]);
    for (let n = 0; n < frame!.byteLength; n++) rejectsEinval(frame!.subarray(0, n));
    const longer = new Uint8Array(frame!.byteLength + 1);
    longer.set(frame!);
    rejectsEinval(longer, /trailing/);
  });

  it("rejects bad versions, flags, indexes, varints, UTF-8 and huge counts", () => {
    // tag, version, 3 strings "g" "a" "b", 1 tuple
    const tuple = [0, 0, 1, 2, 7, 1, 1, 1, 1, 1];
    const strings = [3, 1, 0x67, 1, 0x61, 1, 0x62];
    const frame = (s: number[], t: number[], count = 1) =>
      new Uint8Array([HEARTBEAT_BATCH_TAG, 1, ...s, count, ...t]);
    assert.equal(decodeHeartbeatBatch(frame(strings, tuple))[0]!.message.term, 7);
    rejectsEinval(new Uint8Array([HEARTBEAT_BATCH_TAG, 2, 0, 0]), /version/);
    rejectsEinval(frame(strings, [0x10, ...tuple.slice(1)]), /flags/);
    rejectsEinval(frame(strings, [2, ...tuple.slice(1)]), /flags/); // success on a heartbeat
    rejectsEinval(frame(strings, [0, 3, ...tuple.slice(2)]), /names string 3/);
    rejectsEinval(frame(strings, [0, 0, 1, 2, 0x87, 0x00, 1, 1, 1, 1, 1]), /minimally/);
    const nine = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    rejectsEinval(frame(strings, [0, 0, 1, 2, ...nine, 1, 1, 1, 1, 1]), /longer than 8/);
    const tooBig = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]; // 2^56 - 1
    rejectsEinval(frame(strings, [0, 0, 1, 2, ...tooBig, 1, 1, 1, 1, 1]), /2\^53/);
    rejectsEinval(frame([3, 1, 0xff, 1, 0x61, 1, 0x62], tuple), /UTF-8/);
    rejectsEinval(new Uint8Array([HEARTBEAT_BATCH_TAG, 1, 0xff, 0xff, 0x7f]), /string count/);
    rejectsEinval(new Uint8Array([HEARTBEAT_BATCH_TAG, 1, 100, 1, 0x61]), /bytes left/);
    rejectsEinval(new Uint8Array([HEARTBEAT_BATCH_TAG, 1, 0, 0xff, 0x7f]), /tuple count/);
    rejectsEinval(new Uint8Array([HEARTBEAT_BATCH_TAG, 1, 0, 0x80, 0x40]), /tuple count/);
    rejectsEinval(frame(strings, tuple, 2), /bytes left|ends before/);
    // An answer tuple without its last field.
    rejectsEinval(frame(strings, [1, 0, 1, 2, 7, 1, 1, 1, 1, 1, 1]), /priority/);
  });

  it("never throws anything but EINVAL on mutated frames (property)", () => {
    fc.assert(
      fc.property(
        fc.array(envelopeArb, { minLength: 1, maxLength: 8 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 6,
        }),
        (envelopes, edits) => {
          const [frame] = encodeHeartbeatBatch(envelopes);
          const mutated = frame!.slice();
          for (const [at, value] of edits) mutated[at % mutated.length] = value;
          try {
            const out = decodeHeartbeatBatch(mutated);
            for (const e of out) assert.ok(isCoalescible(e));
          } catch (e) {
            assert.ok(e instanceof RaftException && e.code === RaftError.EINVAL, String(e));
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
