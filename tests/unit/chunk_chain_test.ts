import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ChunkChain, toBytes, toChunkChain } from "../../mod.ts";
import { Prng } from "../../src/util/prng.ts";

const bytes = (...xs: number[]) => new Uint8Array(xs);

function reference(chain: ChunkChain): number[] {
  const out: number[] = [];
  for (const chunk of chain.chunks()) out.push(...chunk);
  return out;
}

describe("ChunkChain", () => {
  it("starts empty and skips empty chunks on append", () => {
    const c = new ChunkChain();
    assert.equal(c.length, 0);
    assert.ok(c.isEmpty());
    c.append(new Uint8Array(0)).append(bytes(1)).append(new Uint8Array(0));
    assert.equal(c.chunkCount, 1);
    assert.equal(c.length, 1);
    assert.deepEqual([...c.chunks()].map((x) => x.length), [1]);
    assert.equal(c.toUint8Array().length, 1);
    assert.equal(new ChunkChain().toUint8Array().length, 0);
  });

  it("appends without copying and returns the single chunk itself", () => {
    const a = bytes(1, 2, 3);
    const c = ChunkChain.from(a);
    assert.equal(c.toUint8Array(), a, "single chunk must not be copied");
    const [first] = [...c.chunks()];
    assert.equal(first, a);
    c.append(bytes(4));
    const flat = c.toUint8Array();
    assert.notEqual(flat, a);
    assert.deepEqual(flat, bytes(1, 2, 3, 4));
  });

  it("shares buffers when appending another chain and leaves it unchanged", () => {
    const other = ChunkChain.concat([bytes(1), bytes(2, 3)]);
    const c = ChunkChain.from(bytes(0)).append(other);
    assert.deepEqual(reference(c), [0, 1, 2, 3]);
    assert.equal(other.length, 3);
    c.append(c); // self-append terminates and doubles
    assert.deepEqual(reference(c), [0, 1, 2, 3, 0, 1, 2, 3]);
  });

  it("slices across chunk boundaries and clamps bounds", () => {
    const c = ChunkChain.concat([bytes(0, 1, 2), bytes(3), bytes(4, 5, 6, 7)]);
    assert.deepEqual(reference(c.slice(2, 5)), [2, 3, 4]);
    assert.deepEqual(reference(c.slice(3, 4)), [3]);
    assert.deepEqual(reference(c.slice(-2)), [6, 7]);
    assert.deepEqual(reference(c.slice(6, 100)), [6, 7]);
    assert.equal(c.slice(5, 2).length, 0);
    assert.equal(c.slice(8).length, 0);
    assert.deepEqual(reference(c), [0, 1, 2, 3, 4, 5, 6, 7], "slice leaves the chain unchanged");
    // Whole chunks are shared as-is, partial ones as views over the same buffer.
    const whole = [...c.slice(3, 4).chunks()][0]!;
    assert.equal(whole.buffer, [...c.chunks()][1]!.buffer);
  });

  it("cuts from the front, across boundaries, and past the end", () => {
    const c = ChunkChain.concat([bytes(0, 1, 2), bytes(3), bytes(4, 5, 6, 7)]);
    assert.deepEqual(reference(c.cut(0)), []);
    assert.deepEqual(reference(c.cut(2)), [0, 1]);
    assert.deepEqual(reference(c.cut(2)), [2, 3]);
    assert.equal(c.length, 4);
    assert.equal(c.at(0), 4);
    assert.deepEqual(reference(c.cut(100)), [4, 5, 6, 7]);
    assert.equal(c.length, 0);
    assert.throws(() => c.cut(-1), RangeError);
    assert.throws(() => c.cut(1.5), RangeError);
  });

  it("matches a flat-array model under random operations", () => {
    const seed = 7;
    const rng = new Prng(seed);
    const chain = new ChunkChain();
    let model: number[] = [];
    for (let step = 0; step < 2000; step++) {
      const op = rng.int(4);
      if (op <= 1) {
        const n = rng.int(5);
        const chunk = new Uint8Array(n).map(() => rng.int(256));
        chain.append(chunk);
        model.push(...chunk);
      } else if (op === 2) {
        const n = rng.int(7);
        const cut = chain.cut(n);
        assert.deepEqual(reference(cut), model.slice(0, n), `seed ${seed} step ${step}`);
        model = model.slice(n);
      } else {
        const a = rng.int(model.length + 2);
        const b = rng.int(model.length + 2);
        assert.deepEqual(
          reference(chain.slice(a, b)),
          model.slice(a, b),
          `seed ${seed} step ${step}`,
        );
      }
      assert.equal(chain.length, model.length);
    }
  });

  it("compares by content regardless of chunking", () => {
    const a = ChunkChain.concat([bytes(1, 2), bytes(3)]);
    const b = ChunkChain.concat([bytes(1), bytes(2, 3)]);
    assert.ok(a.equals(b));
    assert.ok(a.equals(bytes(1, 2, 3)));
    assert.ok(!a.equals(bytes(1, 2, 4)));
    assert.ok(!a.equals(bytes(1, 2)));
    assert.ok(new ChunkChain().equals(new Uint8Array(0)));
  });

  it("round-trips strings, at() and copyTo", () => {
    const c = ChunkChain.from("héllo");
    assert.equal(c.text(), "héllo");
    assert.equal(c.length, 6);
    assert.equal(c.at(-1), undefined);
    assert.equal(c.at(6), undefined);
    const target = new Uint8Array(8);
    assert.equal(c.copyTo(target, 2), 6);
    assert.throws(() => c.copyTo(new Uint8Array(3)), RangeError);
    assert.equal(toChunkChain(c), c);
    assert.equal(toBytes(bytes(9)).length, 1);
  });

  it("streams out and back in, including 1-byte chunks", async () => {
    const source = new ChunkChain();
    for (let i = 0; i < 1000; i++) source.append(bytes(i & 0xff));
    const back = await ChunkChain.fromReadableStream(source.toReadableStream());
    assert.equal(back.chunkCount, 1000);
    assert.ok(back.equals(source));
    const empty = await ChunkChain.fromReadableStream(new ChunkChain().toReadableStream());
    assert.equal(empty.length, 0);
  });

  it("rejects a stream of non-bytes with a TypeError", async () => {
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue("nope" as unknown as Uint8Array);
        controller.close();
      },
    });
    await assert.rejects(ChunkChain.fromReadableStream(stream), TypeError);
  });

  it("handles a 64 MiB payload without copying on slice or cut", async () => {
    const size = 64 * 1024 * 1024;
    const big = new Uint8Array(size);
    for (let i = 0; i < size; i += 4096) big[i] = (i >>> 12) & 0xff;
    const c = ChunkChain.from(big);
    const tail = c.slice(size - 4096);
    assert.equal(tail.length, 4096);
    assert.equal([...tail.chunks()][0]!.buffer, big.buffer);
    const head = c.cut(size / 2);
    assert.equal(head.length, size / 2);
    assert.equal(c.length, size / 2);
    assert.equal(c.at(0), big[size / 2]);
    // Stream it in 1 MiB pieces and reassemble.
    const pieces = new ChunkChain();
    for (let off = 0; off < size; off += 1 << 20) pieces.append(big.subarray(off, off + (1 << 20)));
    const back = await ChunkChain.fromReadableStream(pieces.toReadableStream());
    assert.equal(back.length, size);
    assert.ok(back.equals(big));
  });
});
