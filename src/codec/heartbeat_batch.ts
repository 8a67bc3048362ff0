/**
 * Wire encoding of coalesced heartbeats (CockroachDB's design): the heartbeats, or heartbeat
 * answers, of many raft groups bound for one endpoint travel as one frame, where each group
 * id and peer id is written once.
 *
 * Frame: `u8 tag (0xC8) | u8 version (1) | varint S | S strings | varint N | N tuples`.
 * A string is `varint byteLength | UTF-8`. A tuple is `u8 flags | varint group | varint from |
 * varint to | varint term | fields…`, where group/from/to index the string table and every
 * number is an unsigned LEB128 varint (at most 8 bytes, at most `2^53 - 1`). Flags:
 * bit 0 answer (AppendEntriesResp) / heartbeat (AppendEntries), bit 1 `success`, bit 2
 * `readonly`, bit 3 the envelope's `quiesce`; the other bits must be 0 (bits 1-2 too for a
 * heartbeat). Fields: a heartbeat has `prevLogIndex, prevLogTerm, commit, sentTick, readSeq`;
 * an answer has `index, hintIndex, hintTerm, lastLogIndex, sentTick, readSeq, priority`.
 *
 * A message frame ({@linkcode encodeMessage}) starts with its version byte 1, so the tag
 * tells the two apart. Decoding validates everything: a malformed frame throws a
 * `RaftException` (EINVAL) saying what is wrong, never anything else.
 *
 * @module
 */

import type { AppendEntriesMessage, AppendEntriesRespMessage } from "../core/types.ts";
import { RaftError, RaftException } from "../errors/status.ts";
import type { MessageEnvelope } from "./message_codec.ts";

/** First byte of a heartbeat batch frame (a message frame starts with 1). */
export const HEARTBEAT_BATCH_TAG = 0xc8;
const VERSION = 1;
/** Most tuples in one frame (an encoder splits larger batches). */
export const MAX_BATCH_TUPLES = 4096;
/** Frames stay below this size (an encoder splits larger batches). */
export const MAX_BATCH_BYTES = 1 << 20;
/** Longest group or peer id carried, in UTF-16 units (as message frames). */
export const MAX_ID_CHARS = 1024;
const MAX_STRINGS = 3 * MAX_BATCH_TUPLES;
const MAX_STRING_BYTES = 3 * MAX_ID_CHARS;

const F_ANSWER = 1;
const F_SUCCESS = 2;
const F_READONLY = 4;
const F_QUIESCE = 8;

/** A heartbeat or heartbeat answer that a batch can carry. */
export type HeartbeatMessage = AppendEntriesMessage | AppendEntriesRespMessage;

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

/**
 * Whether an envelope can ride a heartbeat batch: a heartbeat AppendEntries without entries,
 * or a heartbeat AppendEntriesResp, with ids no longer than {@linkcode MAX_ID_CHARS}.
 *
 * @param envelope The envelope.
 * @returns `true` if {@linkcode encodeHeartbeatBatch} accepts it.
 *
 * @example
 * ```ts
 * import { isCoalescible } from "./heartbeat_batch.ts";
 * import assert from "node:assert/strict";
 * const m = { type: "TimeoutNow", from: "a:1:0", to: "b:1:0", term: 3 } as const;
 * assert.equal(isCoalescible({ groupId: "g", message: m }), false);
 * ```
 */
export function isCoalescible(envelope: MessageEnvelope): boolean {
  const m = envelope.message;
  if (envelope.uri !== undefined) return false;
  if (m.type === "AppendEntries") {
    if (!m.heartbeat || m.entries.length !== 0) return false;
  } else if (m.type !== "AppendEntriesResp" || !m.heartbeat) {
    return false;
  }
  return envelope.groupId.length <= MAX_ID_CHARS && m.from.length <= MAX_ID_CHARS &&
    m.to.length <= MAX_ID_CHARS;
}

/**
 * Encodes heartbeats (and heartbeat answers) into as few frames as the limits allow: at most
 * {@linkcode MAX_BATCH_TUPLES} tuples and about {@linkcode MAX_BATCH_BYTES} bytes each.
 *
 * @param envelopes Envelopes accepted by {@linkcode isCoalescible}.
 * @returns The frames, in order (none for no envelopes).
 * @throws {RaftException} EINVAL if an envelope cannot ride a batch.
 *
 * @example
 * ```ts
 * import { decodeHeartbeatBatch, encodeHeartbeatBatch } from "./heartbeat_batch.ts";
 * import assert from "node:assert/strict";
 * const hb = {
 *   type: "AppendEntries", from: "a:1:0", to: "b:1:0", term: 3, prevLogIndex: 9,
 *   prevLogTerm: 3, entries: [], commit: 9, heartbeat: true, sentTick: 40, readSeq: 0,
 * } as const;
 * const [frame] = encodeHeartbeatBatch([{ groupId: "g1", message: hb }, { groupId: "g2", message: hb }]);
 * assert.deepEqual(decodeHeartbeatBatch(frame!).map((e) => e.groupId), ["g1", "g2"]);
 * ```
 */
export function encodeHeartbeatBatch(envelopes: readonly MessageEnvelope[]): Uint8Array[] {
  const frames: Uint8Array[] = [];
  let w = new BatchWriter();
  for (const envelope of envelopes) {
    if (!isCoalescible(envelope)) {
      throw RaftException.of(
        RaftError.EINVAL,
        `Cannot batch a ${envelope.message.type} of group ${envelope.groupId}: not a heartbeat`,
      );
    }
    if (w.tuples > 0 && (w.tuples >= MAX_BATCH_TUPLES || w.wouldExceed(envelope))) {
      frames.push(w.finish());
      w = new BatchWriter();
    }
    w.add(envelope);
  }
  if (w.tuples > 0) frames.push(w.finish());
  return frames;
}

/**
 * Decodes and validates a frame made by {@linkcode encodeHeartbeatBatch}.
 *
 * @param frame The bytes received.
 * @returns The envelopes, as {@linkcode decodeMessage} would give for each message alone.
 * @throws {RaftException} EINVAL, saying what is malformed.
 *
 * @example
 * ```ts
 * import { decodeHeartbeatBatch, HEARTBEAT_BATCH_TAG } from "./heartbeat_batch.ts";
 * import assert from "node:assert/strict";
 * // No strings, no tuples: an empty batch.
 * assert.deepEqual(decodeHeartbeatBatch(new Uint8Array([HEARTBEAT_BATCH_TAG, 1, 0, 0])), []);
 * assert.throws(() => decodeHeartbeatBatch(new Uint8Array([HEARTBEAT_BATCH_TAG, 1, 0])));
 * ```
 */
export function decodeHeartbeatBatch(frame: Uint8Array): MessageEnvelope[] {
  if (!(frame instanceof Uint8Array) || frame.byteLength < 2) {
    throw bad(`frame of ${frame?.byteLength ?? 0} bytes is shorter than its 2-byte prefix`);
  }
  if (frame[0] !== HEARTBEAT_BATCH_TAG) throw bad(`not a heartbeat batch (tag ${frame[0]})`);
  if (frame[1] !== VERSION) throw bad(`unsupported batch version ${frame[1]}`);
  const r = new Reader(frame, 2);
  const stringCount = r.count("string count", MAX_STRINGS);
  const strings: string[] = [];
  for (let i = 0; i < stringCount; i++) {
    const length = r.count(`string ${i} length`, MAX_STRING_BYTES);
    const s = r.utf8(length, `string ${i}`);
    if (s.length > MAX_ID_CHARS) throw bad(`string ${i} is longer than ${MAX_ID_CHARS} characters`);
    strings.push(s);
  }
  const tupleCount = r.count("tuple count", MAX_BATCH_TUPLES);
  const out: MessageEnvelope[] = [];
  for (let i = 0; i < tupleCount; i++) {
    const flags = r.byte(`tuple ${i} flags`);
    const answer = (flags & F_ANSWER) !== 0;
    const allowed = answer ? F_ANSWER | F_SUCCESS | F_READONLY | F_QUIESCE : F_QUIESCE;
    if ((flags & ~allowed) !== 0) throw bad(`tuple ${i} has unknown flags ${flags}`);
    const string = (what: string): string => {
      const k = r.varint(`tuple ${i} ${what}`);
      if (k >= strings.length) {
        throw bad(`tuple ${i} ${what} names string ${k} of ${strings.length}`);
      }
      return strings[k]!;
    };
    const groupId = string("group");
    const from = string("from");
    const to = string("to");
    const term = r.varint(`tuple ${i} term`);
    const f = (name: string): number => r.varint(`tuple ${i} ${name}`);
    let message: HeartbeatMessage;
    if (answer) {
      message = {
        type: "AppendEntriesResp",
        from,
        to,
        term,
        success: (flags & F_SUCCESS) !== 0,
        heartbeat: true,
        index: f("index"),
        hintIndex: f("hintIndex"),
        hintTerm: f("hintTerm"),
        lastLogIndex: f("lastLogIndex"),
        readonly: (flags & F_READONLY) !== 0,
        sentTick: f("sentTick"),
        readSeq: f("readSeq"),
        priority: f("priority"),
      };
    } else {
      message = {
        type: "AppendEntries",
        from,
        to,
        term,
        prevLogIndex: f("prevLogIndex"),
        prevLogTerm: f("prevLogTerm"),
        entries: [],
        commit: f("commit"),
        heartbeat: true,
        sentTick: f("sentTick"),
        readSeq: f("readSeq"),
      };
    }
    out.push(
      (flags & F_QUIESCE) !== 0 ? { groupId, message, quiesce: true } : { groupId, message },
    );
  }
  if (r.offset !== frame.byteLength) {
    throw bad(`frame has ${frame.byteLength - r.offset} trailing bytes`);
  }
  return out;
}

/** Builds one frame: a string table and the tuples that index it. */
class BatchWriter {
  #index = new Map<string, number>();
  #strings: Uint8Array[] = [];
  #stringBytes = 0;
  #body: number[] = [];
  tuples = 0;

  /** Whether adding `envelope` could push the frame past {@linkcode MAX_BATCH_BYTES}. */
  wouldExceed(envelope: MessageEnvelope): boolean {
    // Upper bound: three new strings and a tuple of 1 + 11 varints of 8 bytes.
    const m = envelope.message;
    const ids = [envelope.groupId, m.from, m.to].filter((s) => !this.#index.has(s));
    const extra = ids.reduce((n, s) => n + 3 * s.length + 2, 0) + 1 + 11 * 8;
    return this.#size() + extra > MAX_BATCH_BYTES;
  }

  add(envelope: MessageEnvelope): void {
    const m = envelope.message as HeartbeatMessage;
    const answer = m.type === "AppendEntriesResp";
    let flags = envelope.quiesce === true ? F_QUIESCE : 0;
    if (answer) {
      flags |= F_ANSWER;
      if (m.success) flags |= F_SUCCESS;
      if (m.readonly) flags |= F_READONLY;
    }
    const b = this.#body;
    b.push(flags);
    pushVarint(b, this.#ref(envelope.groupId));
    pushVarint(b, this.#ref(m.from));
    pushVarint(b, this.#ref(m.to));
    const fields = answer
      ? [
        m.term,
        m.index,
        m.hintIndex,
        m.hintTerm,
        m.lastLogIndex,
        m.sentTick,
        m.readSeq,
        m.priority,
      ]
      : [m.term, m.prevLogIndex, m.prevLogTerm, m.commit, m.sentTick, m.readSeq];
    for (const v of fields) pushVarint(b, checkNumber(v, m.type));
    this.tuples++;
  }

  finish(): Uint8Array {
    const head: number[] = [HEARTBEAT_BATCH_TAG, VERSION];
    pushVarint(head, this.#strings.length);
    const tail: number[] = [];
    pushVarint(tail, this.tuples);
    const frame = new Uint8Array(this.#size());
    frame.set(head, 0);
    let offset = head.length;
    for (const s of this.#strings) {
      const len: number[] = [];
      pushVarint(len, s.byteLength);
      frame.set(len, offset);
      offset += len.length;
      frame.set(s, offset);
      offset += s.byteLength;
    }
    frame.set(tail, offset);
    offset += tail.length;
    frame.set(this.#body, offset);
    return frame;
  }

  #size(): number {
    return 2 + varintSize(this.#strings.length) + this.#stringBytes +
      varintSize(this.tuples) + this.#body.length;
  }

  #ref(s: string): number {
    let k = this.#index.get(s);
    if (k === undefined) {
      k = this.#strings.length;
      const bytes = utf8.encode(s);
      this.#index.set(s, k);
      this.#strings.push(bytes);
      this.#stringBytes += varintSize(bytes.byteLength) + bytes.byteLength;
    }
    return k;
  }
}

function checkNumber(v: number, type: string): number {
  if (!Number.isSafeInteger(v) || v < 0) {
    throw RaftException.of(
      RaftError.EINVAL,
      `Cannot batch a ${type}: field value ${v} is not a non-negative integer`,
    );
  }
  return v;
}

function pushVarint(out: number[], v: number): void {
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
}

function varintSize(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    n++;
  }
  return n;
}

/** Reads a frame front to back; every read checks bounds and says what it was reading. */
class Reader {
  #frame: Uint8Array;
  offset: number;

  constructor(frame: Uint8Array, offset: number) {
    this.#frame = frame;
    this.offset = offset;
  }

  byte(what: string): number {
    if (this.offset >= this.#frame.byteLength) throw bad(`frame ends before ${what}`);
    return this.#frame[this.offset++]!;
  }

  varint(what: string): number {
    let v = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.byte(what);
      v += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (i > 0 && b === 0) throw bad(`${what} is not minimally encoded`);
        if (!Number.isSafeInteger(v)) throw bad(`${what} exceeds 2^53 - 1`);
        return v;
      }
      scale *= 0x80;
    }
    throw bad(`${what} is longer than 8 bytes`);
  }

  /** A count that must not exceed `max` nor the bytes left (each item takes at least one). */
  count(what: string, max: number): number {
    const n = this.varint(what);
    if (n > max) throw bad(`${what} ${n} exceeds ${max}`);
    if (n > this.#frame.byteLength - this.offset) {
      throw bad(`${what} ${n} exceeds the ${this.#frame.byteLength - this.offset} bytes left`);
    }
    return n;
  }

  utf8(length: number, what: string): string {
    const end = this.offset + length;
    if (end > this.#frame.byteLength) throw bad(`${what} runs past the end of the frame`);
    let s: string;
    try {
      s = utf8Strict.decode(this.#frame.subarray(this.offset, end));
    } catch {
      throw bad(`${what} is not valid UTF-8`);
    }
    this.offset = end;
    return s;
  }
}

function bad(why: string): RaftException {
  return RaftException.of(RaftError.EINVAL, `Cannot decode heartbeat batch: ${why}`);
}
