/**
 * `SegmentLogStorage`: the `local://` log, segment files on a {@linkcode FileSystem}.
 *
 * Directory layout (as braft's, with checksummed records):
 * - `log_meta`: a checksummed record `{ firstLogIndex, resetPending? }`, written atomically;
 *   absent until the first index moves past 1 (a fresh log costs no file and no fsync).
 * - `log_<first>_<last>` (20-digit, zero-padded): closed segments.
 * - `log_inprogress_<first>`: the open segment (at most one).
 *
 * A segment is a sequence of entries, each a 32-byte header (see `src/codec/entry_header.ts`:
 * magic, version, type, term, index, payload length, payload CRC32C, header CRC32C) followed
 * by the payload. CONFIGURATION payloads are CBOR (`src/codec/configuration_payload.ts`).
 *
 * Recovery reads every segment and checks every checksum. A torn tail of the open segment
 * (an incomplete last entry, or garbage after the last good entry with no valid entry
 * after it) is truncated. Anything else — a bad entry in a closed segment, a bad entry
 * followed by valid ones, a gap between segments, an entry count that disagrees with a
 * closed segment's name — refuses to start with EIO naming the file and the offset.
 *
 * @module
 */

import { ChunkChain } from "../../src/bytes/chunk_chain.ts";
import { crc32cUpdate } from "../../src/bytes/crc32c.ts";
import {
  decodeEntryHeader,
  encodeEntryHeader,
  ENTRY_HEADER_SIZE,
} from "../../src/codec/entry_header.ts";
import {
  decodeConfigurationPayload,
  encodeConfigurationPayload,
} from "../../src/codec/configuration_payload.ts";
import { decodeRecord, encodeRecord } from "../../src/codec/record_file.ts";
import { type ConfigurationPayload, EntryType, type LogEntry } from "../../src/core/entry.ts";
import { RaftError, RaftException } from "../../src/errors/status.ts";
import { flags } from "../../src/util/flags.ts";
import {
  type FileHandle,
  type FileSystem,
  joinPath,
  mkdirDurable,
  readExactly,
  writeFileAtomic,
} from "../fs/file_system.ts";
import type { LogStorage, LogStorageOptions } from "./log_storage.ts";
import { checkAppend } from "./_check_append.ts";
import { TermIndex } from "./term_index.ts";
import { openLogFiles } from "./open_file_budget.ts";

const META_FILE = "log_meta";
/** At most this many closed segments keep a file open for reads. */
const MAX_READ_HANDLES = 16;
/** Offsets a new segment has room for before it grows. */
const INITIAL_OFFSETS = 8;
const CLOSED_RE = /^log_(\d{20})_(\d{20})$/;
const OPEN_RE = /^log_inprogress_(\d{20})$/;

function pad(n: number): string {
  return String(n).padStart(20, "0");
}

/** The file name of a closed segment. */
function closedName(first: number, last: number): string {
  return `log_${pad(first)}_${pad(last)}`;
}

/** The file name of the open segment. */
function openName(first: number): string {
  return `log_inprogress_${pad(first)}`;
}

/** What recovery repaired in {@linkcode SegmentLogStorage.init}. */
export interface LogRecoveryInfo {
  /** Bytes cut from the end of the open segment (0 when nothing was torn). */
  truncatedBytes: number;
  /** The segment that was cut. */
  file?: string;
  /** Where the cut happened. */
  offset?: number;
  /** Why the tail was considered torn. */
  reason?: string;
}

class Segment {
  first: number;
  last: number;
  closed: boolean;
  /** Bytes of valid entries. */
  bytes = 0;
  /** offsets[k] = byte offset of entry `first + k` (grown by doubling; idle groups hold few). */
  offsets: Float64Array = new Float64Array(INITIAL_OFFSETS);
  handle: FileHandle | undefined;
  opening: Promise<FileHandle> | undefined;
  pins = 0;
  dead = false;
  /** Handles replaced while reads held them (`pins > 0`): closed when the last read ends. */
  retired: FileHandle[] = [];

  constructor(first: number, closed: boolean, last = first - 1) {
    this.first = first;
    this.last = last;
    this.closed = closed;
  }

  get name(): string {
    return this.closed ? closedName(this.first, this.last) : openName(this.first);
  }

  get count(): number {
    return this.last - this.first + 1;
  }

  push(offset: number): void {
    const k = this.count;
    if (k >= this.offsets.length) {
      const next = new Float64Array(this.offsets.length * 2);
      next.set(this.offsets);
      this.offsets = next;
    }
    this.offsets[k] = offset;
    this.last++;
  }

  /** Byte offset where entry `index` starts (`bytes` for `last + 1`). */
  offsetOf(index: number): number {
    return index > this.last ? this.bytes : this.offsets[index - this.first]!;
  }
}

function eio(message: string): RaftException {
  return RaftException.of(RaftError.EIO, message);
}

/** Encodes an entry's payload: the conf as CBOR for CONFIGURATION entries, else `data`. */
function payloadOf(entry: LogEntry): ChunkChain | Uint8Array {
  if (entry.type === EntryType.CONFIGURATION && entry.conf) {
    return encodeConfigurationPayload(entry.conf);
  }
  return entry.data;
}

function sizeOf(payload: ChunkChain | Uint8Array): number {
  return payload instanceof Uint8Array ? payload.byteLength : payload.length;
}

/**
 * Builds a LogEntry from a decoded header and payload bytes; `where` names the file and
 * offset for the error when a configuration payload does not decode.
 */
function makeEntry(
  index: number,
  term: number,
  type: number,
  payload: Uint8Array,
  where: () => string,
): LogEntry {
  if (type === EntryType.CONFIGURATION) {
    let conf: ConfigurationPayload;
    try {
      conf = decodeConfigurationPayload(payload);
    } catch (e) {
      throw eio(
        `${where()}: bad configuration payload of entry ${index} (${(e as Error).message})`,
      );
    }
    return { index, term, type, data: new ChunkChain(), conf };
  }
  return { index, term, type: type as EntryType, data: ChunkChain.from(payload) };
}

/**
 * The segmented, checksummed, crash-safe log storage behind `local://` URIs.
 *
 * @example
 * ```ts
 * import { SegmentLogStorage } from "./segment_log_storage.ts";
 * import { MemoryFileSystem } from "../fs/memory.ts";
 * import { ChunkChain } from "../../src/bytes/chunk_chain.ts";
 * import assert from "node:assert/strict";
 *
 * const fs = new MemoryFileSystem();
 * const log = new SegmentLogStorage(fs, "/raft/log");
 * await log.init();
 * await log.appendEntries([{ index: 1, term: 1, type: 2, data: ChunkChain.from("x") }]);
 * assert.equal(log.getTerm(1), 1);
 * assert.equal((await log.getEntry(1))?.data.text(), "x");
 * await log.close();
 * ```
 */
export class SegmentLogStorage implements LogStorage {
  readonly #fs: FileSystem;
  readonly #dir: string;
  readonly #sync: boolean;
  readonly #syncMeta: boolean;
  readonly #maxSegmentSize: number;
  readonly #recoverFromCorrupt: boolean;
  #first = 1;
  #last = 0;
  #segments: Segment[] = [];
  #terms = new TermIndex();
  #confs: LogEntry[] = [];
  #queue: Promise<unknown> = Promise.resolve();
  #broken: RaftException | undefined;
  #initialized = false;
  #closed = false;
  #recovery: LogRecoveryInfo = { truncatedBytes: 0 };
  /** Closed segments with an open read handle, least recently used first. */
  #readers: Set<Segment> | null = null;

  /**
   * Creates a storage over `dir`; call {@linkcode SegmentLogStorage.init} next.
   *
   * @param fs The file system.
   * @param dir The log directory (created when missing).
   * @param options Overrides of `flags`.
   */
  constructor(fs: FileSystem, dir: string, options: LogStorageOptions = {}) {
    this.#fs = fs;
    this.#dir = dir;
    this.#sync = options.sync ?? flags.raft_sync;
    this.#syncMeta = options.syncMeta ?? flags.raft_sync_meta;
    this.#maxSegmentSize = options.maxSegmentSize ?? flags.raft_max_segment_size;
    this.#recoverFromCorrupt = options.recoverFromCorrupt ?? flags.raft_recover_log_from_corrupt;
  }

  /** The directory holding the segments. */
  get path(): string {
    return this.#dir;
  }

  #serial<T>(op: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(() => {
      this.#checkUsable();
      return op();
    });
    this.#queue = next.catch(() => {});
    return next;
  }

  #checkUsable(): void {
    if (this.#closed) {
      throw RaftException.of(RaftError.EINVAL, "Cannot use log storage: it is closed");
    }
    if (!this.#initialized) {
      throw RaftException.of(RaftError.EINVAL, "Cannot use log storage: init() was not called");
    }
    if (this.#broken) throw this.#broken;
  }

  #path(name: string): string {
    return joinPath(this.#dir, name);
  }

  /** {@inheritDoc LogStorage.init} */
  init(): Promise<void> {
    const next = this.#queue.then(async () => {
      if (this.#initialized) return;
      try {
        await this.#load();
      } catch (e) {
        for (const seg of this.#segments) await this.#closeHandle(seg);
        throw e;
      }
      this.#initialized = true;
    });
    this.#queue = next.catch(() => {});
    return next;
  }

  async #writeMeta(firstLogIndex: number, resetPending = false): Promise<void> {
    const record = resetPending ? { firstLogIndex, resetPending } : { firstLogIndex };
    await writeFileAtomic(
      this.#fs,
      this.#path(META_FILE),
      encodeRecord(record),
      { sync: this.#sync || this.#syncMeta },
    );
  }

  async #load(): Promise<void> {
    this.#segments = [];
    this.#terms = new TermIndex();
    this.#confs = [];
    this.#readers = null;
    this.#recovery = { truncatedBytes: 0 };
    await mkdirDurable(this.#fs, this.#dir, this.#sync || this.#syncMeta);
    const metaPath = this.#path(META_FILE);
    let resetPending = false;
    if (await this.#fs.stat(metaPath)) {
      let record: unknown;
      try {
        record = decodeRecord(await this.#fs.readFile(metaPath));
      } catch (e) {
        if (e instanceof RaftException) throw e;
        throw eio(`Cannot load log meta "${metaPath}": ${(e as Error).message}`);
      }
      const r = (typeof record === "object" && record !== null ? record : {}) as {
        firstLogIndex?: unknown;
        resetPending?: unknown;
      };
      if (!Number.isSafeInteger(r.firstLogIndex) || !((r.firstLogIndex as number) >= 1)) {
        throw eio(`Cannot load log meta "${metaPath}": invalid firstLogIndex at offset 12`);
      }
      this.#first = r.firstLogIndex as number;
      resetPending = r.resetPending === true;
    } else {
      this.#first = 1; // what a missing log_meta means: nothing to write yet
    }
    await this.#fs.remove(`${metaPath}.tmp`);

    const names = await this.#fs.readDir(this.#dir);
    const segments: Segment[] = [];
    for (const name of names) {
      let m = CLOSED_RE.exec(name);
      if (m) {
        segments.push(new Segment(Number(m[1]), true, Number(m[2])));
        continue;
      }
      m = OPEN_RE.exec(name);
      if (m) segments.push(new Segment(Number(m[1]), false));
    }
    segments.sort((a, b) => a.first - b.first || (a.closed ? -1 : 1));

    if (resetPending) {
      // A reset() was interrupted: its segments must not come back.
      for (const seg of segments) await this.#fs.remove(this.#path(seg.name));
      await this.#fs.syncDir(this.#dir);
      await this.#writeMeta(this.#first);
      segments.length = 0;
    }

    const opened = segments.filter((s) => !s.closed);
    if (opened.length > 1) {
      throw eio(
        `Cannot load log "${this.#dir}": found ${opened.length} open segments (${
          opened.map((s) => s.name).join(", ")
        })`,
      );
    }
    if (opened.length === 1 && opened[0] !== segments[segments.length - 1]) {
      throw eio(
        `Cannot load log "${this.#dir}": open segment "${opened[0]!.name}" is not the last segment`,
      );
    }

    // Segments wholly before the first index survive a crash inside truncatePrefix().
    const kept: Segment[] = [];
    let removed = false;
    for (const seg of segments) {
      if (seg.closed && seg.last < this.#first) {
        await this.#fs.remove(this.#path(seg.name));
        removed = true;
      } else {
        kept.push(seg);
      }
    }

    this.#segments = kept;
    let prevLast: number | undefined;
    let prevTerm = 0;
    for (const seg of kept) {
      if (prevLast !== undefined && seg.first !== prevLast + 1) {
        throw eio(
          `Cannot load log segment "${this.#path(seg.name)}": expected first index ${
            prevLast + 1
          }, found ${seg.first} (a segment is missing)`,
        );
      }
      prevTerm = await this.#loadSegment(seg, prevTerm);
      prevLast = seg.last;
    }
    const open = kept[kept.length - 1];
    if (open && !open.closed && open.last < this.#first) {
      // The open segment ends before the first index (truncatePrefix/reset beyond it).
      await this.#closeHandle(open);
      await this.#fs.remove(this.#path(open.name));
      removed = true;
      kept.pop();
    }
    if (removed && this.#sync) await this.#fs.syncDir(this.#dir);
    const head = kept[0];
    if (head && head.first > this.#first) {
      throw eio(
        `Cannot load log segment "${this.#path(head.name)}": starts at index ${head.first} ` +
          `but the log meta says the first index is ${this.#first} (entries are missing)`,
      );
    }
    this.#segments = kept;
    this.#last = Math.max(this.#first - 1, kept[kept.length - 1]?.last ?? 0);
  }

  /** Scans one segment, filling offsets, terms and configurations; returns the last term. */
  async #loadSegment(seg: Segment, prevTerm: number): Promise<number> {
    const path = this.#path(seg.name);
    const data = await this.#fs.readFile(path);
    const expectedLast = seg.last;
    seg.last = seg.first - 1;
    let pos = 0;
    let term = prevTerm;
    while (pos < data.byteLength) {
      const index = seg.last + 1;
      const problem = this.#checkEntryAt(data, pos, index, term);
      if (problem) {
        if (!seg.closed && (problem.torn || this.#recoverFromCorrupt)) {
          // Torn tail of the open segment: cut it off (and say so in recoveryInfo).
          this.#recovery = {
            truncatedBytes: data.byteLength - pos,
            file: path,
            offset: pos,
            reason: problem.reason,
          };
          const file = await this.#fs.open(path, { write: true });
          try {
            await file.truncate(pos);
            if (this.#sync) await file.sync();
          } finally {
            await file.close();
          }
          break;
        }
        throw eio(`Cannot load log segment "${path}": ${problem.reason} at offset ${pos}`);
      }
      const header = decodeEntryHeader(data, pos)!;
      seg.push(pos);
      if (index >= this.#first) {
        this.#terms.append(index, header.term);
        if (header.type === EntryType.CONFIGURATION) {
          const start = pos + ENTRY_HEADER_SIZE;
          this.#confs = appendTight(
            this.#confs,
            makeEntry(
              index,
              header.term,
              header.type,
              data.slice(start, start + header.dataLength),
              () => `Cannot load log segment "${path}" at offset ${pos}`,
            ),
          );
        }
      }
      term = header.term;
      pos += ENTRY_HEADER_SIZE + header.dataLength;
    }
    seg.bytes = pos;
    if (seg.closed && seg.last !== expectedLast) {
      throw eio(
        `Cannot load log segment "${path}": holds entries ${seg.first}..${seg.last} but its ` +
          `name says ${seg.first}..${expectedLast} (at offset ${pos})`,
      );
    }
    if (!seg.closed) {
      seg.handle = await this.#fs.open(path, { write: true });
      openLogFiles.touch(this);
    }
    return term;
  }

  /** Validates the entry at `pos`; returns null when fine, else what is wrong. */
  #checkEntryAt(
    data: Uint8Array,
    pos: number,
    index: number,
    prevTerm: number,
  ): { reason: string; torn: boolean } | null {
    const remaining = data.byteLength - pos;
    if (remaining < ENTRY_HEADER_SIZE) {
      return { reason: `incomplete entry header (${remaining} bytes)`, torn: true };
    }
    const header = decodeEntryHeader(data, pos);
    if (!header) {
      return {
        reason: "bad entry header (magic or header checksum)",
        torn: !hasValidHeaderAfter(data, pos + 1),
      };
    }
    const end = pos + ENTRY_HEADER_SIZE + header.dataLength;
    if (end > data.byteLength) {
      return {
        reason: `incomplete entry payload (${header.dataLength} bytes expected, ${
          remaining - ENTRY_HEADER_SIZE
        } present)`,
        torn: true,
      };
    }
    const crc = crc32cUpdate(0, data.subarray(pos + ENTRY_HEADER_SIZE, end));
    if (crc !== header.dataCrc) {
      return {
        reason: `payload checksum mismatch for entry ${header.index}`,
        torn: end === data.byteLength,
      };
    }
    if (header.index !== index) {
      return { reason: `expected entry ${index}, found entry ${header.index}`, torn: false };
    }
    if (header.term < prevTerm) {
      return {
        reason: `term ${header.term} of entry ${index} is lower than the previous term ${prevTerm}`,
        torn: false,
      };
    }
    if (header.type < EntryType.NO_OP || header.type > EntryType.CONFIGURATION) {
      return { reason: `unknown entry type ${header.type} for entry ${index}`, torn: false };
    }
    return null;
  }

  /**
   * What the last `init()` had to repair: the bytes of a torn tail cut from the open segment
   * (0 when none), with the file, offset and reason.
   *
   * @returns The recovery report.
   */
  recoveryInfo(): LogRecoveryInfo {
    return { ...this.#recovery };
  }

  /** {@inheritDoc LogStorage.firstLogIndex} */
  firstLogIndex(): number {
    return this.#first;
  }

  /** {@inheritDoc LogStorage.lastLogIndex} */
  lastLogIndex(): number {
    return this.#last;
  }

  /** {@inheritDoc LogStorage.getTerm} */
  getTerm(index: number): number {
    if (index < this.#first || index > this.#last) return 0;
    return this.#terms.termAt(index);
  }

  /** {@inheritDoc LogStorage.configurationEntries} */
  configurationEntries(): LogEntry[] {
    return this.#confs.slice();
  }

  #segmentOf(index: number): Segment | undefined {
    const segs = this.#segments;
    let lo = 0;
    let hi = segs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = segs[mid]!;
      if (index < s.first) hi = mid - 1;
      else if (index > s.last) lo = mid + 1;
      else return s;
    }
    return undefined;
  }

  async #readHandle(seg: Segment): Promise<FileHandle> {
    if (seg.closed) {
      // Most recently used last; closed segments keep at most MAX_READ_HANDLES open files.
      this.#readers ??= new Set();
      this.#readers.delete(seg);
      this.#readers.add(seg);
    }
    if (seg.handle) {
      openLogFiles.touch(this);
      return seg.handle;
    }
    // The open segment's handle also serves appends: after the open-file budget closed it, a
    // read reopens it for writing.
    const opening = seg.opening ??= this.#fs.open(
      this.#path(seg.name),
      seg.closed ? undefined : { write: true },
    );
    let opened: FileHandle;
    try {
      opened = await opening;
    } finally {
      if (seg.opening === opening) seg.opening = undefined;
    }
    if (seg.handle !== undefined && seg.handle !== opened) {
      // The segment got another handle meanwhile (reopened for writing by truncateSuffix):
      // this one serves only the reads that opened it.
      if (!seg.retired.includes(opened)) seg.retired.push(opened);
      return opened;
    }
    seg.handle = opened;
    openLogFiles.touch(this);
    await this.#evictReaders(seg);
    return opened;
  }

  /**
   * The open segment's handle for a write, reopened if the open-file budget closed it. Only
   * from the queue (`#serial`), so no release runs until the write is done.
   */
  async #writeHandle(seg: Segment): Promise<FileHandle> {
    const handle = seg.handle ?? await this.#readHandle(seg);
    openLogFiles.touch(this);
    return seg.handle ?? handle;
  }

  /**
   * Closes every segment file no read is using, in the queue (after the writes queued before);
   * the next append or read reopens what it needs. The process's open-file budget
   * (`flags.raft_max_open_log_files`) calls it on the least recently used logs; calling it
   * directly is safe at any time, and it never throws.
   */
  releaseIdleFiles(): void {
    const next = this.#queue.then(async () => {
      if (this.#closed) return;
      for (const seg of this.#segments) {
        const h = seg.handle;
        // A file a read is using stays open; the read puts the log back on the budget when it
        // ends. (Re-joining the budget here would evict another log, whose release could
        // evict another: a cycle of releases that never yields.)
        if (h === undefined || seg.pins > 0 || seg.opening !== undefined) continue;
        seg.handle = undefined;
        this.#readers?.delete(seg);
        await h.close().catch(() => {});
      }
    });
    this.#queue = next.catch(() => {});
  }

  /** Closes the least recently used read handles beyond MAX_READ_HANDLES (not `keep`). */
  async #evictReaders(keep: Segment): Promise<void> {
    if (this.#readers === null || this.#readers.size <= MAX_READ_HANDLES) return;
    for (const old of this.#readers) {
      if (this.#readers.size <= MAX_READ_HANDLES) break;
      if (old === keep || old.pins > 0 || !old.closed) continue;
      this.#readers.delete(old);
      const h = old.handle;
      old.handle = undefined;
      await h?.close().catch(() => {});
    }
  }

  async #closeHandle(seg: Segment): Promise<void> {
    seg.dead = true;
    this.#readers?.delete(seg);
    if (seg.pins > 0) return; // the last reader closes it
    const h = seg.handle;
    seg.handle = undefined;
    await h?.close().catch(() => {});
  }

  /** Reads entries `[lo, hi]` of one segment with a single read. */
  async #readRange(seg: Segment, lo: number, hi: number): Promise<LogEntry[]> {
    const start = seg.offsetOf(lo);
    const end = seg.offsetOf(hi + 1);
    const name = seg.name;
    seg.pins++;
    let buf: Uint8Array;
    try {
      const handle = await this.#readHandle(seg);
      buf = await readExactly(handle, start, end - start);
    } finally {
      seg.pins--;
      if (seg.pins === 0) {
        for (const h of seg.retired.splice(0)) await h.close().catch(() => {});
        if (seg.handle !== undefined && !this.#closed) openLogFiles.touch(this);
      }
      if (seg.dead && seg.pins === 0) await this.#closeHandle(seg);
    }
    const out: LogEntry[] = [];
    let pos = 0;
    for (let index = lo; index <= hi; index++) {
      const header = decodeEntryHeader(buf, pos);
      const where = `"${this.#path(name)}"`;
      if (!header || header.index !== index) {
        throw eio(
          `Cannot read log entry ${index} from ${where}: bad header at offset ${start + pos}`,
        );
      }
      const payload = buf.subarray(
        pos + ENTRY_HEADER_SIZE,
        pos + ENTRY_HEADER_SIZE + header.dataLength,
      );
      if (crc32cUpdate(0, payload) !== header.dataCrc) {
        throw eio(
          `Cannot read log entry ${index} from ${where}: payload checksum mismatch at offset ${
            start + pos
          }`,
        );
      }
      const at = start + pos;
      out.push(
        makeEntry(
          index,
          header.term,
          header.type,
          payload,
          () => `Cannot read log entry ${index} from ${where} at offset ${at}`,
        ),
      );
      pos += ENTRY_HEADER_SIZE + header.dataLength;
    }
    return out;
  }

  /** {@inheritDoc LogStorage.getEntry} */
  async getEntry(index: number): Promise<LogEntry | null> {
    this.#checkUsable();
    if (index < this.#first || index > this.#last) return null;
    const seg = this.#segmentOf(index);
    if (!seg) return null;
    const [entry] = await this.#readRange(seg, index, index);
    return entry ?? null;
  }

  /** {@inheritDoc LogStorage.getEntries} */
  async getEntries(lo: number, hi: number, maxBytes: number = Infinity): Promise<LogEntry[]> {
    this.#checkUsable();
    const from = Math.max(lo, this.#first);
    const to = Math.min(hi, this.#last);
    const out: LogEntry[] = [];
    let budget = maxBytes;
    let index = from;
    while (index <= to && budget > 0) {
      const seg = this.#segmentOf(index);
      if (!seg) break;
      let end = Math.min(to, seg.last);
      if (budget !== Infinity) {
        // Stop after the entry that reaches the byte budget.
        let bytes = 0;
        for (let i = index; i <= end; i++) {
          bytes += seg.offsetOf(i + 1) - seg.offsetOf(i) - ENTRY_HEADER_SIZE;
          if (bytes >= budget) {
            end = i;
            break;
          }
        }
        budget -= bytes;
      }
      out.push(...await this.#readRange(seg, index, end));
      index = end + 1;
    }
    return out;
  }

  /** {@inheritDoc LogStorage.appendEntries} */
  appendEntries(entries: readonly LogEntry[]): Promise<number> {
    return this.#serial(async () => {
      if (entries.length === 0) return 0;
      checkAppend(entries, this.#last, this.getTerm(this.#last));
      const payloads = entries.map(payloadOf);
      let i = 0;
      while (i < entries.length) {
        let seg = this.#segments[this.#segments.length - 1];
        if (!seg || seg.closed) seg = await this.#openSegment(this.#last + 1);
        else if (seg.bytes > this.#maxSegmentSize) {
          await this.#rollSegment(seg);
          seg = await this.#openSegment(this.#last + 1);
        }
        // Entries go into this segment until it exceeds the maximum size.
        let j = i;
        let size = 0;
        do {
          size += ENTRY_HEADER_SIZE + sizeOf(payloads[j]!);
          j++;
        } while (j < entries.length && seg.bytes + size <= this.#maxSegmentSize);
        await this.#writeBatch(seg, entries, payloads, i, j, size);
        i = j;
      }
      return entries.length;
    });
  }

  async #writeBatch(
    seg: Segment,
    entries: readonly LogEntry[],
    payloads: (ChunkChain | Uint8Array)[],
    from: number,
    to: number,
    size: number,
  ): Promise<void> {
    const buf = new Uint8Array(size);
    const offsets = new Float64Array(to - from);
    let pos = 0;
    for (let k = from; k < to; k++) {
      const entry = entries[k]!;
      const payload = payloads[k]!;
      const start = pos + ENTRY_HEADER_SIZE;
      if (payload instanceof Uint8Array) buf.set(payload, start);
      else payload.copyTo(buf, start);
      const length = sizeOf(payload);
      const dataCrc = crc32cUpdate(0, buf.subarray(start, start + length));
      encodeEntryHeader(buf, pos, {
        type: entry.type,
        term: entry.term,
        index: entry.index,
        dataLength: length,
        dataCrc,
      });
      offsets[k - from] = seg.bytes + pos;
      pos = start + length;
    }
    const handle = await this.#writeHandle(seg); // (a failed reopen wrote nothing)
    try {
      await handle.write(buf, seg.bytes);
      if (this.#sync) await handle.datasync();
    } catch (e) {
      await this.#recoverFromWriteError(seg, e);
    }
    seg.bytes += size;
    for (let k = from; k < to; k++) {
      const entry = entries[k]!;
      seg.push(offsets[k - from]!);
      this.#terms.append(entry.index, entry.term);
      if (entry.type === EntryType.CONFIGURATION) this.#confs = appendTight(this.#confs, entry);
    }
    this.#last = entries[to - 1]!.index;
  }

  /** After a failed write or fsync: cut the file back to its good prefix, then rethrow. */
  async #recoverFromWriteError(seg: Segment, error: unknown): Promise<never> {
    const cause = error instanceof RaftException
      ? error
      : eio(`Cannot append to log segment "${this.#path(seg.name)}": ${String(error)}`);
    try {
      await seg.handle!.truncate(seg.bytes);
      if (this.#sync) await seg.handle!.sync();
    } catch {
      // The file state is unknown: refuse further use (fsync errors are not retryable).
      this.#broken = eio(
        `Cannot use log "${this.#dir}": segment "${seg.name}" is in an unknown state after: ${cause.message}`,
      );
    }
    if (cause.status.code === RaftError.EIO && this.#sync) {
      // A failed fsync may have dropped dirty pages; do not trust this storage again.
      this.#broken ??= eio(`Cannot use log "${this.#dir}" after an I/O error: ${cause.message}`);
    }
    throw cause;
  }

  async #openSegment(first: number): Promise<Segment> {
    const seg = new Segment(first, false);
    seg.handle = await this.#fs.open(this.#path(seg.name), {
      create: true,
      truncate: true,
      write: true,
    });
    openLogFiles.touch(this);
    if (this.#sync) await this.#fs.syncDir(this.#dir);
    this.#segments = appendTight(this.#segments, seg);
    return seg;
  }

  async #rollSegment(seg: Segment): Promise<void> {
    const from = this.#path(seg.name);
    if (this.#sync) await (await this.#writeHandle(seg)).sync();
    seg.closed = true;
    try {
      await this.#fs.rename(from, this.#path(seg.name));
    } catch (e) {
      seg.closed = false; // still under its open name
      throw e;
    }
    (this.#readers ??= new Set()).add(seg); // its write handle now serves reads and may be evicted
    await this.#evictReaders(seg);
    if (this.#sync) await this.#fs.syncDir(this.#dir);
  }

  async #removeSegment(seg: Segment): Promise<void> {
    await this.#closeHandle(seg);
    await this.#fs.remove(this.#path(seg.name));
  }

  /** {@inheritDoc LogStorage.truncatePrefix} */
  truncatePrefix(firstIndexKept: number): Promise<void> {
    return this.#serial(async () => {
      if (firstIndexKept <= this.#first) return;
      await this.#writeMeta(firstIndexKept);
      this.#first = firstIndexKept;
      const keep: Segment[] = [];
      let removed = false;
      for (const seg of this.#segments) {
        if (seg.last < firstIndexKept) {
          await this.#removeSegment(seg);
          removed = true;
        } else {
          keep.push(seg);
        }
      }
      this.#segments = keep;
      if (removed && this.#sync) await this.#fs.syncDir(this.#dir);
      if (this.#last < firstIndexKept - 1) this.#last = firstIndexKept - 1;
      this.#terms.dropBefore(firstIndexKept);
      this.#confs = this.#confs.filter((e) => e.index >= firstIndexKept);
    });
  }

  /** {@inheritDoc LogStorage.truncateSuffix} */
  truncateSuffix(lastIndexKept: number): Promise<void> {
    return this.#serial(async () => {
      const kept = Math.max(lastIndexKept, this.#first - 1);
      if (kept >= this.#last) return;
      let removed = false;
      while (this.#segments.length > 0 && this.#segments[this.#segments.length - 1]!.first > kept) {
        await this.#removeSegment(this.#segments.pop()!);
        removed = true;
      }
      if (removed && this.#sync) await this.#fs.syncDir(this.#dir);
      const seg = this.#segments[this.#segments.length - 1];
      if (seg && seg.last > kept) {
        const size = seg.offsetOf(kept + 1);
        if (seg.closed) {
          // Reopen it as the open segment first (braft does the same).
          const from = this.#path(seg.name);
          // Its read handle may be in use: retire it rather than let the write handle
          // below overwrite (and leak) it.
          this.#readers?.delete(seg);
          const old = seg.handle;
          seg.handle = undefined;
          if (old !== undefined && seg.pins > 0) seg.retired.push(old);
          else await old?.close().catch(() => {});
          seg.closed = false;
          await this.#fs.rename(from, this.#path(seg.name));
          seg.handle = await this.#fs.open(this.#path(seg.name), { write: true });
        }
        const handle = await this.#writeHandle(seg);
        await handle.truncate(size);
        if (this.#sync) {
          await handle.sync();
          await this.#fs.syncDir(this.#dir);
        }
        seg.bytes = size;
        seg.last = kept;
      }
      this.#last = kept;
      this.#terms.dropAfter(kept);
      this.#confs = this.#confs.filter((e) => e.index <= kept);
    });
  }

  /** {@inheritDoc LogStorage.reset} */
  reset(nextLogIndex: number): Promise<void> {
    return this.#serial(async () => {
      if (!(nextLogIndex >= 1)) {
        throw RaftException.of(RaftError.EINVAL, `Cannot reset log to index ${nextLogIndex}`);
      }
      await this.#writeMeta(nextLogIndex, true);
      for (const seg of this.#segments) await this.#removeSegment(seg);
      this.#segments = [];
      await this.#fs.syncDir(this.#dir);
      await this.#writeMeta(nextLogIndex);
      this.#first = nextLogIndex;
      this.#last = nextLogIndex - 1;
      this.#terms = new TermIndex();
      this.#confs = [];
    });
  }

  /** {@inheritDoc LogStorage.close} */
  close(): Promise<void> {
    const next = this.#queue.then(async () => {
      if (this.#closed) return;
      this.#closed = true;
      openLogFiles.forget(this);
      for (const seg of this.#segments) await this.#closeHandle(seg);
    });
    this.#queue = next.catch(() => {});
    return next;
  }
}

/**
 * `items` plus `item` in a new array of exactly the size needed (`concat` allocates no more,
 * where `push`, spread or `slice` reserve room for ~17 more): for the segment and
 * configuration lists, which grow rarely and are held by every group.
 */
function appendTight<T>(items: T[], item: T): T[] {
  return items.concat([item]);
}

function hasValidHeaderAfter(data: Uint8Array, from: number): boolean {
  for (let p = from; p + ENTRY_HEADER_SIZE <= data.byteLength; p++) {
    if (data[p] === 0x57 && data[p + 1] === 0x52 && decodeEntryHeader(data, p)) return true;
  }
  return false;
}
