import { describe, it } from "node:test";
import assert from "node:assert/strict";
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
  itemSize,
  WireError,
} from "../../../transports/http/wire.ts";
import { Outbox } from "../../../transports/http/outbox.ts";
import { Prng } from "../../../src/util/prng.ts";

const ALL = new Set<number>([ItemKind.FRAME, ItemKind.REQUEST, ItemKind.RESPONSE, ItemKind.ERROR]);

const items: Item[] = [
  { kind: ItemKind.FRAME, bytes: new Uint8Array([1, 2, 3]) },
  { kind: ItemKind.REQUEST, id: 7, bytes: new Uint8Array(0) },
  { kind: ItemKind.RESPONSE, id: 0xffffffff, bytes: new Uint8Array([9]) },
  { kind: ItemKind.ERROR, id: 3, code: 10001, message: "Not leader ✓" },
];

describe("wire", () => {
  it("round-trips batches, and itemSize matches the encoding", () => {
    const msg = encodeBatch(items);
    assert.equal(msg.length, 1 + items.reduce((n, i) => n + itemSize(i), 0));
    assert.deepEqual(decodeBatch(msg, ALL), items);
  });

  it("round-trips the handshake messages", () => {
    const hello = {
      authRequired: true,
      maxMessageBytes: 1234567,
      challenge: new Uint8Array(32).fill(5),
    };
    assert.deepEqual(decodeHello(encodeHello(hello)), hello);
    const auth = {
      maxMessageBytes: 5000,
      endpoint: "[::1]:8100",
      nonce: new Uint8Array(32).fill(1),
      mac: new Uint8Array(32).fill(2),
    };
    assert.deepEqual(decodeAuth(encodeAuth(auth)), auth);
    assert.deepEqual(decodeWelcome(encodeWelcome(new Uint8Array([4, 5]))), new Uint8Array([4, 5]));
  });

  it("refuses a HELLO announcing a tiny message limit", () => {
    const hello = { authRequired: false, maxMessageBytes: 10, challenge: new Uint8Array(32) };
    assert.throws(() => decodeHello(encodeHello(hello)), WireError);
  });

  it("refuses item kinds the side may not receive", () => {
    const msg = encodeBatch([items[2]!]);
    assert.throws(() => decodeBatch(msg, new Set([ItemKind.FRAME])), WireError);
  });

  it("never throws anything but WireError on mutated or truncated input", () => {
    const rng = new Prng(42);
    const good = [
      encodeBatch(items),
      encodeHello({
        authRequired: false,
        maxMessageBytes: 4096,
        challenge: new Uint8Array(32),
      }),
      encodeAuth({
        maxMessageBytes: 1 << 20,
        endpoint: "a:1",
        nonce: new Uint8Array(32),
        mac: new Uint8Array(0),
      }),
    ];
    let refused = 0;
    for (let round = 0; round < 5000; round++) {
      const base = good[round % good.length]!;
      let m = base.slice();
      const flips = 1 + Math.floor(rng.next() * 3);
      for (let f = 0; f < flips; f++) {
        m[Math.floor(rng.next() * m.length)] = Math.floor(rng.next() * 256);
      }
      if (rng.chance(0.3)) m = m.subarray(0, Math.floor(rng.next() * m.length));
      for (
        const decode of [
          (x: Uint8Array) => decodeBatch(x, ALL),
          decodeHello,
          decodeAuth,
          decodeWelcome,
        ]
      ) {
        try {
          decode(m);
        } catch (e) {
          assert.ok(e instanceof WireError, String(e));
          refused++;
        }
      }
    }
    assert.ok(refused > 0);
  });

  it("Outbox splits into messages within the limit and reports items too large alone", () => {
    const box = new Outbox();
    for (let i = 0; i < 10; i++) {
      box.push({ kind: ItemKind.FRAME, bytes: new Uint8Array(100).fill(i) });
    }
    box.push({ kind: ItemKind.FRAME, bytes: new Uint8Array(300) });
    const tooBig: Item[] = [];
    const { messages, frames } = box.drain(256, (i) => tooBig.push(i));
    assert.equal(tooBig.length, 1);
    assert.equal(frames, 10);
    assert.ok(messages.every((m) => m.length <= 256));
    const got = messages.flatMap((m) => decodeBatch(m, ALL));
    assert.deepEqual(got.map((i) => (i as { bytes: Uint8Array }).bytes[0]), [
      0,
      1,
      2,
      3,
      4,
      5,
      6,
      7,
      8,
      9,
    ]);
    assert.equal(box.length, 0);
  });
});
