import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ChunkChain, crc32c, crc32cUpdate } from "../../mod.ts";
import { Prng } from "../../src/util/prng.ts";

/** Bit-at-a-time reference implementation, independent of the table-driven one. */
function slowCrc32c(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of data) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

describe("crc32c", () => {
  it("matches the RFC 3720 (iSCSI) test vectors", () => {
    assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
    assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
    assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
    assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
    const iscsiRead = Uint8Array.from([
      0x01,
      0xc0,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
      0x14,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
      0x04,
      0x00,
      0x00,
      0x00,
      0x00,
      0x14,
      0x00,
      0x00,
      0x00,
      0x18,
      0x28,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
      0x02,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
      0x00,
    ]);
    assert.equal(crc32c(iscsiRead), 0xd9963a56);
  });

  it("gives the standard check value and 0 for no bytes", () => {
    assert.equal(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
    assert.equal(crc32c(new Uint8Array(0)), 0);
  });

  it("agrees with a bit-wise reference at every length and alignment", () => {
    const rng = new Prng(99);
    const buf = new Uint8Array(300).map(() => rng.int(256));
    for (let start = 0; start < 9; start++) {
      for (let len = 0; len < 70; len++) {
        const view = buf.subarray(start, start + len);
        assert.equal(crc32c(view), slowCrc32c(view), `start ${start} len ${len}`);
      }
    }
  });

  it("continues across pieces and chunk chains", () => {
    const rng = new Prng(5);
    const data = new Uint8Array(10_000).map(() => rng.int(256));
    const whole = crc32c(data);
    let crc = 0;
    for (let off = 0; off < data.length; off += 777) {
      crc = crc32cUpdate(crc, data.subarray(off, off + 777));
    }
    assert.equal(crc, whole);
    const chain = ChunkChain.concat([
      data.subarray(0, 3),
      data.subarray(3, 4000),
      data.subarray(4000),
    ]);
    assert.equal(crc32c(chain), whole);
    assert.equal(crc32c(data.subarray(5000), crc32c(data.subarray(0, 5000))), whole);
  });
});
