/**
 * Fuzzing the codecs of `src/codec/`: raft message frames, entry headers, checksummed records
 * and configuration payloads. Each decoder returns a valid value or throws its documented error
 * (message frames: RaftException EINVAL; records: RangeError; configuration payloads: TypeError;
 * entry headers: `null`), never anything else, and never hangs.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { decode } from "cbor-x";
import { decodeMessage, encodeMessage } from "../../src/codec/message_codec.ts";
import {
  decodeEntryHeader,
  encodeEntryHeader,
  ENTRY_HEADER_SIZE,
  type EntryHeader,
} from "../../src/codec/entry_header.ts";
import { decodeRecord, encodeRecord } from "../../src/codec/record_file.ts";
import {
  configurationToRecord,
  decodeConfigurationPayload,
  encodeConfigurationPayload,
} from "../../src/codec/configuration_payload.ts";
import { crc32cUpdate } from "../../src/bytes/crc32c.ts";
import { RaftError } from "../../src/errors/status.ts";
import { check, expectOnly, instanceOf, raftError } from "./_fuzz.ts";
import {
  applyMutations,
  concat,
  mutated,
  nastyValue,
  rawCbor,
  spliceCbor,
  withHostileField,
} from "./_arbitraries.ts";
import { configuration, groupId, message } from "./_valid.ts";

const EINVAL = raftError(RaftError.EINVAL);

/** A frame's prefix and header around raw header bytes. */
function frameOf(header: Uint8Array, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const prefix = new Uint8Array(5);
  prefix[0] = 1;
  new DataView(prefix.buffer).setUint32(1, header.length);
  return concat(prefix, header, payload);
}

const validFrame = fc.tuple(groupId, message, fc.option(fc.string(), { nil: undefined })).map((
  [g, m, uri],
) => encodeMessage(g, m, uri));

/** The header of a valid frame as plain data (entries as rows), to splice hostile fields into. */
const validHeader = fc.tuple(groupId, message).map(([g, m]) => {
  const frame = encodeMessage(g, m);
  const length = new DataView(frame.buffer).getUint32(1);
  return {
    header: decode(frame.subarray(5, 5 + length)) as Record<string, unknown>,
    payload: frame.subarray(5 + length),
  };
});

/** A decoded frame is well formed: encoding it again gives a frame that decodes the same. */
function checkRoundTrip(env: ReturnType<typeof decodeMessage>): void {
  const again = encodeMessage(env.groupId, env.message, env.uri);
  const twice = decodeMessage(again);
  assert.deepEqual(encodeMessage(twice.groupId, twice.message, twice.uri), again);
  for (const [k, v] of Object.entries(env.message)) {
    if (typeof v === "number") assert.ok(Number.isSafeInteger(v) && v >= 0, `${k} = ${v}`);
  }
}

function decodeFrame(frame: Uint8Array): void {
  expectOnly(() => decodeMessage(frame), EINVAL, "decodeMessage", checkRoundTrip);
}

describe("fuzz: raft message frames (decodeMessage)", () => {
  it("random bytes", () => {
    check("decodeMessage/random", fc.uint8Array({ maxLength: 300 }), 4000, decodeFrame);
  });

  it("a valid prefix around a random or hostile CBOR header, with trailing payload", () => {
    const arb = fc.tuple(
      fc.oneof(rawCbor, fc.uint8Array({ maxLength: 64 })),
      fc.uint8Array({ maxLength: 16 }),
    ).map(([h, p]) => frameOf(h, p));
    check("decodeMessage/raw-header", arb, 6000, decodeFrame);
  });

  it("truncated, bit-flipped and spliced valid frames", () => {
    check("decodeMessage/mutated", mutated(validFrame), 15000, decodeFrame);
  });

  it("valid frames with one field replaced by a hostile CBOR item", () => {
    const arb = validHeader.chain(({ header, payload }) =>
      withHostileField(header, ["u", "x"]).map((h) => frameOf(h, payload))
    );
    check("decodeMessage/hostile-field", arb, 8000, decodeFrame);
  });

  it("huge declared header lengths", () => {
    const arb = fc.tuple(validFrame, fc.constantFrom(0xffffffff, 0x7fffffff, 0x80000000, 1 << 30))
      .map(([f, len]) => {
        const copy = f.slice();
        new DataView(copy.buffer).setUint32(1, len);
        return copy;
      });
    check("decodeMessage/huge-length", arb, 500, decodeFrame);
  });

  it("regression: a field holding a bigint or a cyclic value is EINVAL, not a TypeError", () => {
    const header = { g: "g", m: { type: "TimeoutNow", from: "a:1:0", to: "b:1:0", term: 1 } };
    for (const raw of ["1bffffffffffffffff", "c249010000000000000000", "d81ca16161d81d00"]) {
      const item = new Uint8Array(raw.match(/../g)!.map((h) => parseInt(h, 16)));
      for (const path of [["m", "term"], ["m", "type"], ["m", "from"]]) {
        const frame = frameOf(
          spliceCbor(header, path, item),
        );
        assert.throws(() => decodeMessage(frame), (e) => EINVAL(e), `${raw} at ${path}`);
      }
    }
    const entryRow = {
      g: "g",
      m: {
        type: "AppendEntries",
        from: "a:1:0",
        to: "b:1:0",
        term: 1,
        prevLogIndex: 0,
        prevLogTerm: 0,
        commit: 0,
        heartbeat: false,
        sentTick: 0,
        readSeq: 0,
        entries: [[1, 1, 2, 0]],
      },
    };
    const frame = frameOf(
      spliceCbor(entryRow, ["m", "entries", 0, 2], hexBytes("c249010000000000000000")),
    );
    assert.throws(() => decodeMessage(frame), (e) => EINVAL(e));
  });
});

function hexBytes(s: string): Uint8Array {
  return new Uint8Array(s.match(/../g)!.map((h) => parseInt(h, 16)));
}

const header: fc.Arbitrary<EntryHeader> = fc.record({
  type: fc.nat({ max: 255 }),
  term: fc.maxSafeNat(),
  index: fc.maxSafeNat(),
  dataLength: fc.nat({ max: 0xffffffff }),
  dataCrc: fc.nat({ max: 0xffffffff }),
});

function encodedHeader(h: EntryHeader): Uint8Array {
  const buf = new Uint8Array(ENTRY_HEADER_SIZE);
  encodeEntryHeader(buf, 0, h);
  return buf;
}

/** A decoded header is `null` or has every field in range. */
function checkHeader(bytes: Uint8Array, offset: number): void {
  const h = expectOnly(() => decodeEntryHeader(bytes, offset), () => false, "decodeEntryHeader");
  if (h === null || h === undefined) return;
  for (const [k, v] of Object.entries(h)) {
    assert.ok(Number.isInteger(v) && v >= 0, `${k} = ${v}`);
  }
  assert.ok(h.type <= 255 && h.dataLength <= 0xffffffff && h.dataCrc <= 0xffffffff);
}

describe("fuzz: entry headers (decodeEntryHeader)", () => {
  it("valid headers round-trip", () => {
    check("entryHeader/roundtrip", header, 3000, (h) => {
      assert.deepEqual(decodeEntryHeader(encodedHeader(h), 0), { ...h });
    });
  });

  it("random bytes at random offsets", () => {
    const arb = fc.tuple(fc.uint8Array({ maxLength: 80 }), fc.integer({ min: -4, max: 90 }));
    check("entryHeader/random", arb, 5000, ([b, off]) => checkHeader(b, Math.max(0, off)));
  });

  it("mutated valid headers are rejected unless the mutation missed the checked bytes", () => {
    const arb = fc.tuple(
      header,
      fc.array(
        fc.record({ at: fc.nat({ max: 31 }), bit: fc.nat({ max: 7 }) }),
        { minLength: 1, maxLength: 3 },
      ),
    );
    check("entryHeader/bitflip", arb, 5000, ([h, flips]) => {
      const bytes = encodedHeader(h);
      const flipped = applyMutations(bytes, flips.map((f) => ({ op: "flip" as const, ...f })));
      const out = decodeEntryHeader(flipped, 0);
      const changed = flipped.some((b, i) => b !== bytes[i]);
      // CRC32C catches every 1-3 bit error in 32 bytes.
      if (changed) assert.equal(out, null, "a corrupted header decoded");
      checkHeader(flipped, 0);
    });
  });

  it("forged headers with a recomputed checksum decode to in-range numbers", () => {
    const arb = fc.uint8Array({ minLength: 28, maxLength: 28 }).map((b) => {
      const out = new Uint8Array(32);
      out.set(b);
      out[0] = 0x57;
      out[1] = 0x52;
      out[2] = 1;
      new DataView(out.buffer).setUint32(28, crc32cUpdate(0, out.subarray(0, 28)));
      return out;
    });
    check("entryHeader/forged", arb, 3000, (b) => checkHeader(b, 0));
  });
});

/** A record file whose checksum is right, around any body. */
function sealed(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + body.length);
  out.set([0x57, 0x52, 0x46, 0x31]);
  const view = new DataView(out.buffer);
  view.setUint32(4, body.length);
  view.setUint32(8, crc32cUpdate(0, body));
  out.set(body, 12);
  return out;
}

const RANGE = instanceOf(RangeError);

describe("fuzz: checksummed records (decodeRecord)", () => {
  it("random bytes and mutated valid records throw RangeError", () => {
    const arb = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      mutated(nastyValue.map((v) => encodeRecord(v))),
    );
    check("decodeRecord/mutated", arb, 8000, (b) => {
      expectOnly(() => decodeRecord(b), RANGE, "decodeRecord");
    });
  });

  it("a right checksum around any CBOR body: a value or RangeError", () => {
    const arb = fc.oneof(rawCbor, fc.uint8Array({ maxLength: 32 })).map(sealed);
    check("decodeRecord/sealed-body", arb, 8000, (b) => {
      expectOnly(() => decodeRecord(b), RANGE, "decodeRecord");
    });
  });

  it("regression: a sealed body that is not CBOR is a RangeError", () => {
    for (const body of [hexBytes("9f01"), hexBytes("d81d05"), hexBytes("1c"), new Uint8Array(0)]) {
      assert.throws(() => decodeRecord(sealed(body)), RangeError);
    }
  });
});

const TYPE = instanceOf(TypeError);

function checkPayload(b: Uint8Array): void {
  expectOnly(() => decodeConfigurationPayload(b), TYPE, "decodeConfigurationPayload", (conf) => {
    const again = decodeConfigurationPayload(encodeConfigurationPayload(conf));
    assert.deepEqual(configurationToRecord(again), configurationToRecord(conf));
  });
}

describe("fuzz: configuration payloads (decodeConfigurationPayload)", () => {
  const validPayload = fc.record({
    peers: configuration,
    oldPeers: configuration,
    learners: configuration,
  })
    .map((c) => encodeConfigurationPayload(c));

  it("valid payloads round-trip", () => {
    check("confPayload/roundtrip", validPayload, 2000, checkPayload);
  });

  it("random bytes, hostile CBOR and mutated payloads throw TypeError", () => {
    const arb = fc.oneof(fc.uint8Array({ maxLength: 64 }), rawCbor, mutated(validPayload));
    check("confPayload/mutated", arb, 8000, checkPayload);
  });

  it("payloads with one hostile field", () => {
    const arb = fc.record({ peers: configuration, oldPeers: configuration }).chain((c) =>
      withHostileField(configurationToRecord(c), ["peers", "learners", "oldLearners"])
    );
    check("confPayload/hostile-field", arb, 5000, checkPayload);
  });

  it("regression: CBOR that does not decode is a TypeError", () => {
    for (
      const b of [hexBytes("9f01"), hexBytes("d81d05"), new Uint8Array(0), hexBytes("9a05f5e100")]
    ) {
      assert.throws(() => decodeConfigurationPayload(b), TypeError);
    }
  });
});
