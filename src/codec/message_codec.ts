/**
 * Wire encoding of raft messages: one frame per message, a CBOR header plus the entry
 * payloads as raw bytes (decoded as zero-copy views of the frame).
 *
 * Frame: `u8 version (1) | u32 BE header length | CBOR header | payload bytes…`.
 * The header is `{ g: groupId, m: message, u?: uri, q?: true }` where each entry of an AppendEntries is
 * `[index, term, type, payloadLength, configuration?]` and the payloads follow in order.
 *
 * Decoding validates every field: a malformed frame throws a `RaftException` (EINVAL) that
 * says what is wrong, never anything else.
 *
 * @module
 */

import { decode, encode } from "cbor-x";
import { ChunkChain } from "../bytes/chunk_chain.ts";
import { EntryType, type LogEntry } from "../core/entry.ts";
import type { Message, SnapshotMeta } from "../core/types.ts";
import { RaftError, RaftException } from "../errors/status.ts";
import { configurationFromRecord, configurationToRecord } from "./configuration_payload.ts";

const VERSION = 1;
const PREFIX = 5;

/** A decoded frame: which group it is for, and the message. */
export interface MessageEnvelope {
  /** The raft group. */
  readonly groupId: string;
  /** The message (its `to` names the receiving peer). */
  readonly message: Message;
  /** For InstallSnapshot: where to copy the snapshot's files from (`remote://host:port/id`). */
  readonly uri?: string;
  /**
   * The leader stops ticking its group after this heartbeat; a follower that accepted it may
   * stop ticking too (quiescence). Encoded as `q: true` in the header, only when set.
   */
  readonly quiesce?: boolean;
}

type FieldKind = "int" | "str" | "bool";

const BASE: Record<string, FieldKind> = { from: "str", to: "str", term: "int" };
const VOTE_REQ: Record<string, FieldKind> = { lastLogIndex: "int", lastLogTerm: "int" };
const SCHEMAS: Record<Message["type"], Record<string, FieldKind>> = {
  PreVote: { ...VOTE_REQ },
  RequestVote: { ...VOTE_REQ, transfer: "bool" },
  PreVoteResp: { granted: "bool" },
  RequestVoteResp: { granted: "bool" },
  AppendEntries: {
    prevLogIndex: "int",
    prevLogTerm: "int",
    commit: "int",
    heartbeat: "bool",
    sentTick: "int",
    readSeq: "int",
  },
  AppendEntriesResp: {
    success: "bool",
    heartbeat: "bool",
    index: "int",
    hintIndex: "int",
    hintTerm: "int",
    lastLogIndex: "int",
    readonly: "bool",
    sentTick: "int",
    readSeq: "int",
    priority: "int",
  },
  InstallSnapshot: {},
  InstallSnapshotResp: { success: "bool", index: "int" },
  TimeoutNow: {},
  TimeoutNowResp: { success: "bool" },
};
// Fields a message may lack (older senders, or nothing to say).
const OPTIONAL: Partial<Record<Message["type"], Record<string, FieldKind>>> = {
  PreVote: { triggered: "bool" },
  RequestVote: { disruptedTerm: "int", triggered: "bool" },
  TimeoutNow: { leaderSteppedDown: "bool" },
};

/**
 * Encodes a message for `groupId` into one frame.
 *
 * @param groupId The raft group.
 * @param message The message.
 * @param uri For InstallSnapshot: the copy URI of the snapshot's files.
 * @param quiesce Flag the frame as the leader's last heartbeat before it quiesces.
 * @returns The frame bytes.
 *
 * @example
 * ```ts
 * import { decodeMessage, encodeMessage } from "./message_codec.ts";
 * import assert from "node:assert/strict";
 * const frame = encodeMessage("g", { type: "TimeoutNow", from: "a:1:0", to: "b:1:0", term: 3 });
 * assert.equal(decodeMessage(frame).message.term, 3);
 * ```
 */
export function encodeMessage(
  groupId: string,
  message: Message,
  uri?: string,
  quiesce?: boolean,
): Uint8Array {
  const payloads: Uint8Array[] = [];
  let body: Record<string, unknown> = { ...message };
  if (message.type === "AppendEntries") {
    body.entries = message.entries.map((e) => {
      const data = e.data.toUint8Array();
      payloads.push(data);
      const row: unknown[] = [e.index, e.term, e.type, data.byteLength];
      if (e.conf !== undefined) row.push(configurationToRecord(e.conf));
      return row;
    });
  } else if (message.type === "InstallSnapshot") {
    body = { ...body, meta: snapshotMetaToRecord(message.meta) };
  }
  const head: Record<string, unknown> = { g: groupId, m: body };
  if (uri !== undefined) head.u = uri;
  if (quiesce === true) head.q = true;
  const header = encode(head) as Uint8Array;
  const payloadBytes = payloads.reduce((n, p) => n + p.byteLength, 0);
  const frame = new Uint8Array(PREFIX + header.byteLength + payloadBytes);
  frame[0] = VERSION;
  new DataView(frame.buffer).setUint32(1, header.byteLength);
  frame.set(header, PREFIX);
  let offset = PREFIX + header.byteLength;
  for (const p of payloads) {
    frame.set(p, offset);
    offset += p.byteLength;
  }
  return frame;
}

/**
 * Decodes and validates a frame made by {@linkcode encodeMessage}.
 *
 * @param frame The bytes received.
 * @returns The group and message; entry payloads are views of `frame`.
 * @throws {RaftException} EINVAL, saying what is malformed.
 */
export function decodeMessage(frame: Uint8Array): MessageEnvelope {
  if (!(frame instanceof Uint8Array) || frame.byteLength < PREFIX) {
    throw bad(`frame of ${frame?.byteLength ?? 0} bytes is shorter than its ${PREFIX}-byte prefix`);
  }
  if (frame[0] !== VERSION) throw bad(`unsupported frame version ${frame[0]}`);
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const headerLength = view.getUint32(1);
  if (PREFIX + headerLength > frame.byteLength) {
    throw bad(`header length ${headerLength} exceeds the ${frame.byteLength}-byte frame`);
  }
  let header: unknown;
  try {
    header = decode(frame.subarray(PREFIX, PREFIX + headerLength));
  } catch (e) {
    throw bad(`header is not valid CBOR (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!isRecord(header) || typeof header.g !== "string" || !isRecord(header.m)) {
    throw bad("header must be { g: string, m: object }");
  }
  const raw = header.m;
  const type = raw.type;
  if (typeof type !== "string" || !Object.hasOwn(SCHEMAS, type)) {
    throw bad(`unknown message type ${show(type)}`);
  }
  const messageType = type as Message["type"];
  const out: Record<string, unknown> = { type: messageType };
  for (const [field, kind] of Object.entries({ ...BASE, ...SCHEMAS[messageType] })) {
    out[field] = checkField(messageType, field, kind, raw[field]);
  }
  for (const [field, kind] of Object.entries(OPTIONAL[messageType] ?? {})) {
    if (raw[field] !== undefined) out[field] = checkField(messageType, field, kind, raw[field]);
  }
  let offset = PREFIX + headerLength;
  if (messageType === "AppendEntries") {
    if (!Array.isArray(raw.entries)) throw bad("AppendEntries.entries must be an array");
    const entries: LogEntry[] = [];
    for (const [i, row] of (raw.entries as unknown[]).entries()) {
      const entry = decodeEntryRow(row, i, frame, offset);
      offset += entry.data.length;
      entries.push(entry);
    }
    out.entries = entries;
  } else if (messageType === "InstallSnapshot") {
    out.meta = snapshotMetaFromRecord(raw.meta);
  }
  if (offset !== frame.byteLength) {
    throw bad(`frame has ${frame.byteLength - offset} trailing bytes`);
  }
  const message = out as unknown as Message;
  if (header.q !== undefined && typeof header.q !== "boolean") throw bad("q must be a boolean");
  const quiesce = header.q === true;
  if (header.u === undefined) {
    return quiesce ? { groupId: header.g, message, quiesce } : { groupId: header.g, message };
  }
  if (typeof header.u !== "string" || header.u.length > 4096) throw bad("uri must be a string");
  return quiesce
    ? { groupId: header.g, message, uri: header.u, quiesce }
    : { groupId: header.g, message, uri: header.u };
}

function decodeEntryRow(row: unknown, i: number, frame: Uint8Array, offset: number): LogEntry {
  if (!Array.isArray(row) || row.length < 4 || row.length > 5) {
    throw bad(`entry ${i} must be [index, term, type, length, conf?]`);
  }
  const [index, term, type, length, conf] = row as unknown[];
  for (const [name, v] of [["index", index], ["term", term], ["length", length]] as const) {
    if (!isNonNegativeInt(v)) throw bad(`entry ${i} ${name} must be a non-negative integer`);
  }
  if (type !== EntryType.DATA && type !== EntryType.NO_OP && type !== EntryType.CONFIGURATION) {
    throw bad(`entry ${i} has unknown type ${show(type)}`);
  }
  const end = offset + (length as number);
  if (end > frame.byteLength) throw bad(`entry ${i} payload runs past the end of the frame`);
  const entry: LogEntry = {
    index: index as number,
    term: term as number,
    type,
    data: ChunkChain.from(frame.subarray(offset, end)),
  };
  if (type === EntryType.CONFIGURATION) {
    if (conf === undefined) throw bad(`configuration entry ${i} has no configuration`);
    return { ...entry, conf: parseConf(conf, `entry ${i}`) };
  }
  return entry;
}

function snapshotMetaToRecord(meta: SnapshotMeta): Record<string, unknown> {
  return { index: meta.index, term: meta.term, conf: configurationToRecord(meta.conf) };
}

function snapshotMetaFromRecord(raw: unknown): SnapshotMeta {
  if (!isRecord(raw) || !isNonNegativeInt(raw.index) || !isNonNegativeInt(raw.term)) {
    throw bad("InstallSnapshot.meta must be { index, term, conf }");
  }
  return { index: raw.index, term: raw.term, conf: parseConf(raw.conf, "snapshot meta") };
}

function parseConf(raw: unknown, where: string): ReturnType<typeof configurationFromRecord> {
  try {
    return configurationFromRecord(raw);
  } catch (e) {
    throw bad(`${where} has a bad configuration (${e instanceof Error ? e.message : String(e)})`);
  }
}

function checkField(type: string, field: string, kind: FieldKind, value: unknown): unknown {
  const ok = kind === "int"
    ? isNonNegativeInt(value)
    : kind === "str"
    ? typeof value === "string" && value.length <= 1024
    : typeof value === "boolean";
  if (!ok) {
    const expected = kind === "int"
      ? "a non-negative integer"
      : kind === "str"
      ? "a string"
      : "a boolean";
    throw bad(`${type}.${field} must be ${expected}, got ${show(value)}`);
  }
  return value;
}

/**
 * A short description of a decoded value for an error message. Never throws: CBOR can carry
 * bigints and (through shared references) cyclic values, which `JSON.stringify` rejects.
 */
function show(value: unknown): string {
  if (typeof value === "string") {
    return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value);
  }
  if (typeof value === "bigint") return `${value}n`;
  if (value === null || typeof value !== "object") return String(value);
  return Array.isArray(value) ? "an array" : "an object";
}

function isNonNegativeInt(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function bad(why: string): RaftException {
  return RaftException.of(RaftError.EINVAL, `Cannot decode raft message: ${why}`);
}
