/**
 * Fuzzing the WebSocket wire protocol of `transports/http/wire.ts` (batches, HELLO, AUTH,
 * WELCOME) and the `x-raft-auth` header check. Decoders return a valid value or throw a
 * WireError; the header check answers `null` or a reason and never throws.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  decodeAuth,
  decodeBatch,
  decodeHello,
  decodeWelcome,
  encodeAuth,
  encodeBatch,
  encodeHello,
  encodeWelcome,
  type Item,
  ItemKind,
  MIN_MESSAGE_LIMIT,
  MsgType,
  WireError,
} from "../../transports/http/wire.ts";
import { callProof, SharedKey, verifyCallProof } from "../../transports/http/auth.ts";
import { check, checkAsync, expectOnly, instanceOf } from "./_fuzz.ts";
import { concat, extremeNumber, mutated, oddString } from "./_arbitraries.ts";

const WIRE = instanceOf(WireError);
const ALL_KINDS = new Set<number>([
  ItemKind.FRAME,
  ItemKind.REQUEST,
  ItemKind.RESPONSE,
  ItemKind.ERROR,
]);
const FROM_CLIENT = new Set<number>([ItemKind.FRAME, ItemKind.REQUEST]);
const FROM_SERVER = new Set<number>([ItemKind.FRAME, ItemKind.RESPONSE, ItemKind.ERROR]);

const u32 = fc.oneof(fc.constantFrom(0, 1, 0x7fffffff, 0x80000000, 0xffffffff), fc.nat());

const item: fc.Arbitrary<Item> = fc.oneof(
  fc.record({ kind: fc.constant(ItemKind.FRAME), bytes: fc.uint8Array({ maxLength: 32 }) }),
  fc.record({
    kind: fc.constantFrom(ItemKind.REQUEST, ItemKind.RESPONSE),
    id: u32,
    bytes: fc.uint8Array({ maxLength: 32 }),
  }),
  fc.record({
    kind: fc.constant(ItemKind.ERROR),
    id: u32,
    code: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
    message: fc.string({ unit: "grapheme", maxLength: 20 }),
  }),
) as fc.Arbitrary<Item>;

const validBatch = fc.array(item, { minLength: 1, maxLength: 6 }).map(encodeBatch);

function checkBatch(msg: Uint8Array, allowed: ReadonlySet<number>): void {
  expectOnly(() => decodeBatch(msg, allowed), WIRE, "decodeBatch", (items) => {
    assert.ok(items.length > 0);
    for (const it of items) assert.ok(allowed.has(it.kind));
    // Consumed exactly: encoding the items again gives the same bytes.
    assert.deepEqual(encodeBatch(items), msg);
  });
}

const nonce = fc.uint8Array({ minLength: 32, maxLength: 32 });

const validHello = fc.record({
  authRequired: fc.boolean(),
  maxMessageBytes: fc.integer({ min: MIN_MESSAGE_LIMIT, max: 0xffffffff }),
  challenge: nonce,
}).map(encodeHello);

const validAuth = fc.record({
  maxMessageBytes: fc.integer({ min: MIN_MESSAGE_LIMIT, max: 0xffffffff }),
  endpoint: fc.oneof(oddString, fc.constant("127.0.0.1:8100")),
  nonce,
  mac: fc.uint8Array({ maxLength: 40 }),
}).filter((a) => new TextEncoder().encode(a.endpoint).length < 65536).map(encodeAuth);

const validWelcome = fc.uint8Array({ maxLength: 255 }).map(encodeWelcome);

const anyMessage = fc.oneof(
  fc.uint8Array({ maxLength: 80 }),
  fc.tuple(
    fc.constantFrom(MsgType.HELLO, MsgType.AUTH, MsgType.WELCOME, MsgType.BATCH),
    fc.uint8Array({ maxLength: 80 }),
  ).map(([t, rest]) => concat(new Uint8Array([t]), rest)),
  mutated(fc.oneof(validHello, validAuth, validWelcome, validBatch)),
);

describe("fuzz: WebSocket wire messages", () => {
  it("decodeBatch of random, typed and mutated messages, for both sides", () => {
    check("decodeBatch", fc.tuple(anyMessage, fc.boolean()), 15000, ([msg, client]) => {
      checkBatch(msg, client ? FROM_CLIENT : FROM_SERVER);
      checkBatch(msg, ALL_KINDS);
    });
  });

  it("decodeBatch: items with huge declared lengths", () => {
    const arb = fc.tuple(validBatch, fc.nat({ max: 64 }), u32).map(([b, at, len]) => {
      const copy = b.slice();
      if (at + 4 <= copy.length) new DataView(copy.buffer).setUint32(at, len);
      return copy;
    });
    check("decodeBatch/lengths", arb, 5000, (msg) => checkBatch(msg, ALL_KINDS));
  });

  it("decodeHello / decodeAuth / decodeWelcome", () => {
    check("decodeHello+Auth+Welcome", anyMessage, 15000, (msg) => {
      expectOnly(() => decodeHello(msg), WIRE, "decodeHello", (h) => {
        assert.ok(h.maxMessageBytes >= MIN_MESSAGE_LIMIT && h.challenge.length === 32);
        // (flag bits other than bit 0 are reserved and ignored)
        assert.deepEqual(decodeHello(encodeHello(h)), h);
      });
      expectOnly(() => decodeAuth(msg), WIRE, "decodeAuth", (a) => {
        assert.ok(a.maxMessageBytes >= MIN_MESSAGE_LIMIT && a.nonce.length === 32);
        assert.equal(typeof a.endpoint, "string");
      });
      expectOnly(() => decodeWelcome(msg), WIRE, "decodeWelcome", (mac) => {
        assert.deepEqual(encodeWelcome(mac), msg);
      });
    });
  });

  it("verifyCallProof: odd headers, endpoints and times never throw", async () => {
    const key = new SharedKey("fuzz-secret");
    const body = new Uint8Array([1, 2, 3]);
    const good = await callProof(key, "", body, 1_000_000);
    const header = fc.oneof(
      oddString,
      fc.constantFrom(good, `${good} `, good.toUpperCase(), good.replace("v1", "v2")),
      fc.tuple(
        extremeNumber,
        fc.string({ unit: fc.constantFrom(..."0123456789abcdefA"), maxLength: 70 }),
      ).map(([t, h]) => `v1 ${t} ${h}`),
      mutated(fc.constant(new TextEncoder().encode(good))).map((b) => new TextDecoder().decode(b)),
    );
    const arb = fc.tuple(
      fc.option(header, { nil: null }),
      fc.oneof(oddString, fc.constant("")),
      extremeNumber,
      extremeNumber,
    );
    await checkAsync("verifyCallProof", arb, 4000, async ([h, from, windowMs, now]) => {
      const why = await verifyCallProof(key, h, from, body, windowMs, now);
      assert.ok(why === null || typeof why === "string");
      if (why === null) {
        // Only the genuine header over the genuine caller passes.
        assert.equal(h, good);
        assert.equal(from, "");
      }
    });
  });
});
