/**
 * `ChunkChain`: a chain of `Uint8Array` chunks, webraft's replacement for braft's IOBuf.
 *
 * @module
 */

const EMPTY: Uint8Array = new Uint8Array(0);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Bytes accepted wherever webraft takes data. */
export type Bytes = Uint8Array | ChunkChain;

/**
 * A sequence of bytes held as a chain of `Uint8Array` chunks.
 *
 * Appending, slicing and cutting never copy payload bytes: they share the underlying
 * buffers. Only {@linkcode ChunkChain.toUint8Array} copies, and only when the bytes span
 * more than one chunk. Because buffers are shared, callers must not mutate a buffer after
 * handing it to a chain.
 *
 * @example Build, slice and cut without copying
 * ```ts
 * import { ChunkChain } from "@webraft/raft";
 * import assert from "node:assert/strict";
 *
 * const chain = ChunkChain.from("hello ");
 * chain.append(ChunkChain.from("world"));
 * assert.equal(chain.length, 11);
 * assert.equal(chain.slice(4, 7).text(), "o w");
 * const head = chain.cut(6);
 * assert.equal(head.text(), "hello ");
 * assert.equal(chain.text(), "world");
 * ```
 */
export class ChunkChain {
  #chunks: Uint8Array[] = [];
  #head = 0;
  #length = 0;

  /**
   * Creates a chain from bytes, a string (UTF-8 encoded) or another chain (shared, not copied).
   *
   * @param data The initial contents.
   * @returns A new chain.
   *
   * @example
   * ```ts
   * import { ChunkChain } from "@webraft/raft";
   * import assert from "node:assert/strict";
   * assert.equal(ChunkChain.from("abc").length, 3);
   * ```
   */
  static from(data: Uint8Array | ChunkChain | string): ChunkChain {
    const chain = new ChunkChain();
    chain.append(typeof data === "string" ? encoder.encode(data) : data);
    return chain;
  }

  /**
   * Reads a whole stream into a chain, keeping each received chunk as it arrived.
   *
   * @param stream A stream of byte chunks.
   * @returns The chain holding every byte of the stream.
   * @throws {TypeError} If the stream yields something other than a `Uint8Array`.
   *
   * @example
   * ```ts
   * import { ChunkChain } from "@webraft/raft";
   * import assert from "node:assert/strict";
   * const chain = await ChunkChain.fromReadableStream(ChunkChain.from("xyz").toReadableStream());
   * assert.equal(chain.text(), "xyz");
   * ```
   */
  static async fromReadableStream(stream: ReadableStream<Uint8Array>): Promise<ChunkChain> {
    const chain = new ChunkChain();
    const reader = stream.getReader();
    try {
      while (true) {
        const { done, value } = await reader.read();
        if (done) break;
        if (!(value instanceof Uint8Array)) {
          throw new TypeError(
            `Cannot read stream into ChunkChain: expected Uint8Array chunks, got ${typeof value}`,
          );
        }
        chain.append(value);
      }
    } finally {
      reader.releaseLock();
    }
    return chain;
  }

  /**
   * Concatenates several byte sequences into one chain without copying.
   *
   * @param parts The pieces, in order.
   * @returns A chain over all of them.
   *
   * @example
   * ```ts
   * import { ChunkChain } from "@webraft/raft";
   * import assert from "node:assert/strict";
   * assert.equal(ChunkChain.concat([new Uint8Array(2), ChunkChain.from("a")]).length, 3);
   * ```
   */
  static concat(parts: Iterable<Bytes>): ChunkChain {
    const chain = new ChunkChain();
    for (const part of parts) chain.append(part);
    return chain;
  }

  /** The number of bytes in the chain. */
  get length(): number {
    return this.#length;
  }

  /**
   * Whether the chain holds no bytes.
   *
   * @returns `true` when `length` is 0.
   */
  isEmpty(): boolean {
    return this.#length === 0;
  }

  /**
   * Appends bytes at the end without copying them. Empty chunks are skipped.
   *
   * @param data Bytes or another chain (whose chunks are shared; the other chain is unchanged).
   * @returns This chain, for chaining calls.
   *
   * @example
   * ```ts
   * import { ChunkChain } from "@webraft/raft";
   * import assert from "node:assert/strict";
   * const c = new ChunkChain().append(new Uint8Array([1])).append(new Uint8Array([2, 3]));
   * assert.deepEqual(c.toUint8Array(), new Uint8Array([1, 2, 3]));
   * ```
   */
  append(data: Bytes): this {
    if (data instanceof ChunkChain) {
      // Snapshot the other chain's chunks first: appending a chain to itself must terminate.
      for (const chunk of [...data.chunks()]) this.#push(chunk);
    } else {
      this.#push(data);
    }
    return this;
  }

  #push(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    this.#chunks.push(chunk);
    this.#length += chunk.byteLength;
  }

  /**
   * The chunks in order, as views that share the chain's buffers.
   *
   * @returns An iterator over the non-empty chunks.
   */
  *chunks(): IterableIterator<Uint8Array> {
    for (let i = this.#head; i < this.#chunks.length; i++) yield this.#chunks[i]!;
  }

  /** The number of chunks held. */
  get chunkCount(): number {
    return this.#chunks.length - this.#head;
  }

  /**
   * Returns the bytes in `[start, end)` as a new chain that shares this chain's buffers.
   * Negative or out-of-range bounds are clamped, as in `Array.prototype.slice`.
   *
   * @param start First byte offset (inclusive). Defaults to 0.
   * @param end Last byte offset (exclusive). Defaults to `length`.
   * @returns A new chain; this chain is unchanged.
   */
  slice(start = 0, end: number = this.#length): ChunkChain {
    const from = clampIndex(start, this.#length);
    const to = Math.max(from, clampIndex(end, this.#length));
    const out = new ChunkChain();
    if (from === to) return out;
    let offset = 0;
    for (let i = this.#head; i < this.#chunks.length; i++) {
      const chunk = this.#chunks[i]!;
      const chunkEnd = offset + chunk.byteLength;
      if (chunkEnd > from) {
        const a = Math.max(0, from - offset);
        const b = Math.min(chunk.byteLength, to - offset);
        out.#push(a === 0 && b === chunk.byteLength ? chunk : chunk.subarray(a, b));
      }
      if (chunkEnd >= to) break;
      offset = chunkEnd;
    }
    return out;
  }

  /**
   * Removes the first `n` bytes from this chain and returns them as a new chain
   * (braft's `IOBuf::cutn`). Cutting more than `length` cuts everything.
   *
   * @param n How many bytes to cut from the front.
   * @returns The cut bytes.
   * @throws {RangeError} If `n` is negative or not an integer.
   */
  cut(n: number): ChunkChain {
    if (!Number.isInteger(n) || n < 0) {
      throw new RangeError(`Cannot cut ${n} bytes: expected a non-negative integer`);
    }
    const out = new ChunkChain();
    let remaining = Math.min(n, this.#length);
    while (remaining > 0) {
      const chunk = this.#chunks[this.#head]!;
      if (chunk.byteLength <= remaining) {
        out.#push(chunk);
        this.#head++;
        this.#length -= chunk.byteLength;
        remaining -= chunk.byteLength;
      } else {
        out.#push(chunk.subarray(0, remaining));
        this.#chunks[this.#head] = chunk.subarray(remaining);
        this.#length -= remaining;
        remaining = 0;
      }
    }
    this.#compact();
    return out;
  }

  /**
   * Drops the first `n` bytes without returning them.
   *
   * @param n How many bytes to drop (clamped to `length`).
   */
  skip(n: number): void {
    this.cut(n);
  }

  #compact(): void {
    if (this.#head === this.#chunks.length) {
      this.#chunks = [];
      this.#head = 0;
    } else if (this.#head > 32 && this.#head * 2 > this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#head);
      this.#head = 0;
    }
  }

  /**
   * The byte at `index`.
   *
   * @param index Offset from the start.
   * @returns The byte value, or `undefined` when out of range.
   */
  at(index: number): number | undefined {
    if (!Number.isInteger(index) || index < 0 || index >= this.#length) return undefined;
    let offset = index;
    for (let i = this.#head; i < this.#chunks.length; i++) {
      const chunk = this.#chunks[i]!;
      if (offset < chunk.byteLength) return chunk[offset];
      offset -= chunk.byteLength;
    }
    return undefined;
  }

  /**
   * Returns the contents as one `Uint8Array`. When the chain holds a single chunk, that
   * chunk itself is returned (no copy); otherwise the bytes are copied into a new array.
   *
   * @returns The bytes.
   */
  toUint8Array(): Uint8Array {
    const count = this.chunkCount;
    if (count === 0) return EMPTY;
    if (count === 1) return this.#chunks[this.#head]!;
    const out = new Uint8Array(this.#length);
    this.copyTo(out);
    return out;
  }

  /**
   * Copies the bytes into `target` starting at `targetOffset`.
   *
   * @param target Destination array; must have room for `length` bytes.
   * @param targetOffset Where to start writing.
   * @returns The number of bytes copied.
   * @throws {RangeError} If the target is too small.
   */
  copyTo(target: Uint8Array, targetOffset = 0): number {
    if (targetOffset < 0 || targetOffset + this.#length > target.byteLength) {
      throw new RangeError(
        `Cannot copy ${this.#length} bytes at offset ${targetOffset} into ${target.byteLength} bytes`,
      );
    }
    let offset = targetOffset;
    for (const chunk of this.chunks()) {
      target.set(chunk, offset);
      offset += chunk.byteLength;
    }
    return this.#length;
  }

  /**
   * Decodes the bytes as UTF-8.
   *
   * @returns The decoded string.
   */
  text(): string {
    return decoder.decode(this.toUint8Array());
  }

  /**
   * A stream that yields the chunks in order (shared, not copied).
   *
   * @returns A new readable stream over a snapshot of the current chunks.
   */
  toReadableStream(): ReadableStream<Uint8Array> {
    const chunks = [...this.chunks()];
    let i = 0;
    return new ReadableStream<Uint8Array>({
      pull(controller) {
        const chunk = chunks[i++];
        if (chunk === undefined) controller.close();
        else controller.enqueue(chunk);
      },
    }, { highWaterMark: 0 });
  }

  /**
   * Byte-wise equality with another chain or array, regardless of how either is chunked.
   *
   * @param other The bytes to compare with.
   * @returns `true` when both hold the same bytes.
   */
  equals(other: Bytes): boolean {
    const that = other instanceof ChunkChain ? other : ChunkChain.from(other);
    if (that.length !== this.#length) return false;
    const a = this.chunks();
    const b = that.chunks();
    let ca: Uint8Array = EMPTY;
    let cb: Uint8Array = EMPTY;
    let ia = 0;
    let ib = 0;
    let remaining = this.#length;
    while (remaining > 0) {
      if (ia === ca.byteLength) {
        ca = a.next().value as Uint8Array;
        ia = 0;
      }
      if (ib === cb.byteLength) {
        cb = b.next().value as Uint8Array;
        ib = 0;
      }
      const n = Math.min(ca.byteLength - ia, cb.byteLength - ib);
      for (let k = 0; k < n; k++) {
        if (ca[ia + k] !== cb[ib + k]) return false;
      }
      ia += n;
      ib += n;
      remaining -= n;
    }
    return true;
  }

  /**
   * Removes every byte.
   */
  clear(): void {
    this.#chunks = [];
    this.#head = 0;
    this.#length = 0;
  }
}

/**
 * Views any accepted byte input as a `ChunkChain` (no copy).
 *
 * @param data Bytes or a chain.
 * @returns `data` itself when it already is a chain, else a chain over it.
 *
 * @example
 * ```ts
 * import { toChunkChain } from "@webraft/raft";
 * import assert from "node:assert/strict";
 * assert.equal(toChunkChain(new Uint8Array(4)).length, 4);
 * ```
 */
export function toChunkChain(data: Bytes): ChunkChain {
  return data instanceof ChunkChain ? data : ChunkChain.from(data);
}

/**
 * Views any accepted byte input as one `Uint8Array` (copies only a multi-chunk chain).
 *
 * @param data Bytes or a chain.
 * @returns The bytes as a single array.
 *
 * @example
 * ```ts
 * import { toBytes, ChunkChain } from "@webraft/raft";
 * import assert from "node:assert/strict";
 * assert.equal(toBytes(ChunkChain.from("ab")).length, 2);
 * ```
 */
export function toBytes(data: Bytes): Uint8Array {
  return data instanceof ChunkChain ? data.toUint8Array() : data;
}

function clampIndex(index: number, length: number): number {
  const i = Math.trunc(index);
  if (Number.isNaN(i)) return 0;
  if (i < 0) return Math.max(0, length + i);
  return Math.min(i, length);
}
