import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { encode } from "cbor-x";
import { ChunkChain } from "../../src/bytes/chunk_chain.ts";
import { Configuration } from "../../src/conf/configuration.ts";
import { EntryType } from "../../src/core/entry.ts";
import type { Message } from "../../src/core/types.ts";
import { decodeMessage, encodeMessage } from "../../src/codec/message_codec.ts";
import { RaftError, RaftException } from "../../src/errors/status.ts";
import { Prng } from "../../src/util/prng.ts";

const base = { from: "127.0.0.1:8100:0", to: "127.0.0.1:8101:0", term: 7 };

const samples: Message[] = [
  { ...base, type: "PreVote", lastLogIndex: 10, lastLogTerm: 6 },
  { ...base, type: "RequestVote", lastLogIndex: 10, lastLogTerm: 6, transfer: true },
  {
    ...base,
    type: "RequestVote",
    lastLogIndex: 10,
    lastLogTerm: 6,
    transfer: true,
    disruptedTerm: 6,
  },
  { ...base, type: "PreVoteResp", granted: false },
  { ...base, type: "RequestVoteResp", granted: true },
  {
    ...base,
    type: "AppendEntries",
    prevLogIndex: 4,
    prevLogTerm: 3,
    commit: 4,
    heartbeat: false,
    sentTick: 99,
    readSeq: 2,
    entries: [
      {
        index: 5,
        term: 7,
        type: EntryType.DATA,
        data: ChunkChain.concat([new Uint8Array([1, 2]), new Uint8Array([3])]),
      },
      { index: 6, term: 7, type: EntryType.NO_OP, data: new ChunkChain() },
      {
        index: 7,
        term: 7,
        type: EntryType.CONFIGURATION,
        data: new ChunkChain(),
        conf: {
          peers: Configuration.parse("a:1,b:1,c:1"),
          oldPeers: Configuration.parse("a:1,b:1"),
        },
      },
      { index: 8, term: 7, type: EntryType.DATA, data: ChunkChain.from("hello") },
    ],
  },
  {
    ...base,
    type: "AppendEntriesResp",
    success: false,
    heartbeat: false,
    index: 4,
    hintIndex: 2,
    hintTerm: 1,
    lastLogIndex: 3,
    readonly: true,
    sentTick: 99,
    readSeq: 2,
    priority: 3,
  },
  {
    ...base,
    type: "InstallSnapshot",
    meta: {
      index: 100,
      term: 6,
      conf: { peers: Configuration.parse("a:1,b:1"), learners: Configuration.parse("l:1") },
    },
  },
  { ...base, type: "InstallSnapshotResp", success: true, index: 100 },
  { ...base, type: "TimeoutNow" },
  { ...base, type: "TimeoutNow", leaderSteppedDown: true },
  { ...base, type: "TimeoutNowResp", success: true },
];

describe("message codec", () => {
  for (const message of samples) {
    it(`round-trips ${message.type}`, () => {
      const { groupId, message: back } = decodeMessage(encodeMessage("group-1", message));
      assert.equal(groupId, "group-1");
      assert.equal(back.type, message.type);
      for (const [k, v] of Object.entries(message)) {
        if (k === "entries" || k === "meta") continue;
        assert.deepEqual((back as unknown as Record<string, unknown>)[k], v, k);
      }
      if (message.type === "AppendEntries" && back.type === "AppendEntries") {
        assert.equal(back.entries.length, message.entries.length);
        message.entries.forEach((e, i) => {
          const b = back.entries[i]!;
          assert.equal(b.index, e.index);
          assert.equal(b.term, e.term);
          assert.equal(b.type, e.type);
          assert.ok(b.data.equals(e.data));
          assert.equal(String(b.conf?.peers ?? ""), String(e.conf?.peers ?? ""));
          assert.equal(String(b.conf?.oldPeers ?? ""), String(e.conf?.oldPeers ?? ""));
        });
      }
      if (message.type === "InstallSnapshot" && back.type === "InstallSnapshot") {
        assert.equal(back.meta.index, 100);
        assert.ok(back.meta.conf.peers.equals(message.meta.conf.peers));
        assert.equal(String(back.meta.conf.learners), "l:1:0");
      }
    });
  }

  const rejectsWith = (frame: Uint8Array, why: RegExp) =>
    assert.throws(() => decodeMessage(frame), (e: unknown) => {
      assert.ok(e instanceof RaftException, String(e));
      assert.equal(e.code, RaftError.EINVAL);
      assert.match(e.message, why);
      return true;
    });

  const frameOf = (header: unknown, tail = new Uint8Array(0)) => {
    const h = encode(header) as Uint8Array;
    const f = new Uint8Array(5 + h.length + tail.length);
    f[0] = 1;
    new DataView(f.buffer).setUint32(1, h.length);
    f.set(h, 5);
    f.set(tail, 5 + h.length);
    return f;
  };

  it("rejects malformed frames with EINVAL saying what is wrong", () => {
    rejectsWith(new Uint8Array(2), /shorter than/);
    rejectsWith(new Uint8Array([9, 0, 0, 0, 0]), /version 9/);
    rejectsWith(new Uint8Array([1, 0, 0, 1, 0]), /exceeds/);
    rejectsWith(frameOf("nope"), /header must be/);
    rejectsWith(frameOf({ g: "g", m: { ...base, type: "Bogus" } }), /unknown message type "Bogus"/);
    rejectsWith(
      frameOf({ g: "g", m: { ...base, type: "TimeoutNow", term: -1 } }),
      /TimeoutNow.term must be a non-negative integer/,
    );
    rejectsWith(
      frameOf({ g: "g", m: { ...base, type: "TimeoutNowResp", success: "yes" } }),
      /success must be a boolean/,
    );
    rejectsWith(
      frameOf({ g: "g", m: { ...base, type: "TimeoutNow", leaderSteppedDown: 1 } }),
      /TimeoutNow.leaderSteppedDown must be a boolean/,
    );
    rejectsWith(
      frameOf({
        g: "g",
        m: {
          ...base,
          type: "AppendEntries",
          prevLogIndex: 0,
          prevLogTerm: 0,
          commit: 0,
          heartbeat: false,
          sentTick: 0,
          readSeq: 0,
          entries: [[1, 1, 2, 10]],
        },
      }),
      /runs past the end/,
    );
    rejectsWith(
      frameOf({
        g: "g",
        m: {
          ...base,
          type: "AppendEntries",
          prevLogIndex: 0,
          prevLogTerm: 0,
          commit: 0,
          heartbeat: false,
          sentTick: 0,
          readSeq: 0,
          entries: [[1, 1, 9, 0]],
        },
      }),
      /unknown type 9/,
    );
    rejectsWith(
      frameOf({ g: "g", m: { ...base, type: "TimeoutNow" } }, new Uint8Array(3)),
      /3 trailing bytes/,
    );
    rejectsWith(
      frameOf({
        g: "g",
        m: { ...base, type: "InstallSnapshot", meta: { index: 1, term: 1, conf: 5 } },
      }),
      /bad configuration/,
    );
  });

  it("never throws anything but RaftException on corrupted or random bytes", () => {
    const seed = 2024;
    const rng = new Prng(seed);
    const good = samples.map((m) => encodeMessage("g", m));
    for (let i = 0; i < 3000; i++) {
      let frame: Uint8Array;
      if (i % 3 === 0) {
        frame = new Uint8Array(rng.int(64)).map(() => rng.int(256));
      } else {
        const src = rng.pick(good);
        frame = src.slice(0, i % 3 === 1 ? rng.int(src.length + 1) : src.length);
        for (let k = 0; k < 3 && frame.length > 0; k++) frame[rng.int(frame.length)] = rng.int(256);
      }
      try {
        decodeMessage(frame);
      } catch (e) {
        assert.ok(e instanceof RaftException, `seed ${seed} case ${i}: ${String(e)}`);
      }
    }
  });
});
