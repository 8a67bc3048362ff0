/**
 * Snapshot file copy over a `Transport` call (braft's FileService and RemoteFileCopier):
 * the leader registers a snapshot reader and sends its URI in InstallSnapshot; the follower
 * pulls the file list and then each file in chunks of `raft_max_byte_count_per_rpc`.
 *
 * Wire (CBOR): `{ t: "snapshot_files", readerId }` → `{ files: [{ name, meta }] }`;
 * `{ t: "get_file", readerId, name, offset, count }` → `{ offset, data, eof }` (`data` at most
 * `count` bytes at `offset`). A failed call is sent again from the same offset (braft's
 * `CopyOptions`), so a lost request or response costs one chunk, not the file. A node's copy
 * keeps several chunk calls in flight (`pipeline`), consumed in file order.
 *
 * @module
 */

import { decode, encode } from "cbor-x";
import { ChunkChain } from "../bytes/chunk_chain.ts";
import { RaftError, RaftException, Status } from "../errors/status.ts";
import type { CallOptions } from "../../transports/transport.ts";
import type { FileMeta, SnapshotReader, SnapshotWriter } from "../../storage/snapshot/snapshot.ts";
import { checkSnapshotFileNames, unsafeSnapshotFileName } from "./snapshot_file_name.ts";
import { acquireThroughput, type SnapshotThrottle } from "./snapshot_throttle.ts";
import { abortableDelay } from "../util/abortable_delay.ts";

/** A file as listed by the leader. */
export interface RemoteFile {
  /** File name inside the snapshot. */
  name: string;
  /** Its metadata (checksum, size, user meta). */
  meta: FileMeta;
}

/** A call request understood by a node endpoint. */
export type FileRequest =
  | { t: "snapshot_files"; readerId: number }
  | { t: "get_file"; readerId: number; name: string; offset: number; count: number };

interface Cursor {
  /**
   * File offset of `buf[0]`: the start of the chunk served last, or up to `RETAIN_CALLS`
   * chunks before it (kept for retries of a pipelined copy's calls).
   */
  base: number;
  stream: ReadableStreamDefaultReader<Uint8Array>;
  buf: ChunkChain;
  eof: boolean;
  lastUsed: number;
}

interface Session {
  reader: SnapshotReader;
  release: () => Promise<void>;
  throttle: SnapshotThrottle | undefined;
  /** Names the reader lists (the only ones served). */
  names: Set<string>;
  /** Open reads per file; several when followers copy the same snapshot at once. */
  cursors: Map<string, Cursor[]>;
  /** Requests are served one at a time: two must never move a cursor at once. */
  queue: Promise<unknown>;
  closed: boolean;
  lastUsed: number;
}

const MAX_COUNT = 16 * 1024 * 1024;
/**
 * A read keeps this many calls' worth of bytes (at most `2 * MAX_IN_FLIGHT_BYTES`) before the
 * end of the chunk it served last: a pipelined copy's retry is answered from memory.
 */
const RETAIN_CALLS = 2 * 16;
/** Open reads kept per file (one per follower copying it, or a few retries apart). */
const CURSORS_PER_FILE = 4;

/**
 * Serves registered snapshot readers to followers. Sessions not used for `idleMs` are
 * released.
 *
 * Any `(offset, count)` is answered with the file's bytes at that offset, whatever came
 * before: requests are served one at a time, each file keeps a few sequential reads open,
 * a read keeps the chunks it served last (so the retry of a chunk whose response was lost is
 * answered from memory), and a request behind every read starts a new one from the file's
 * beginning. Only names the reader lists are served.
 *
 * @internal
 */
export class FileService {
  #sessions = new Map<number, Session>();
  #nextId = Math.floor(Math.random() * 1e9);
  #idleMs: number;

  /**
   * @param idleMs Release a reader after this long without requests (default 10 minutes).
   */
  constructor(idleMs = 600_000) {
    this.#idleMs = idleMs;
  }

  /**
   * Makes a reader available for copying.
   *
   * @param reader The snapshot to serve.
   * @param release Called once when the session ends (closes the reader).
   * @param throttle Limits how fast this reader is served (chunks may come back shorter).
   * @returns The reader id to put into the copy URI.
   */
  register(
    reader: SnapshotReader,
    release: () => Promise<void>,
    throttle?: SnapshotThrottle,
  ): number {
    this.#expire();
    const id = ++this.#nextId;
    this.#sessions.set(id, {
      reader,
      release,
      throttle,
      names: new Set(reader.listFiles()),
      cursors: new Map(),
      queue: Promise.resolve(),
      closed: false,
      lastUsed: Date.now(),
    });
    return id;
  }

  /**
   * Ends a session early.
   *
   * @param readerId What `register` returned.
   */
  async unregister(readerId: number): Promise<void> {
    const s = this.#sessions.get(readerId);
    if (s === undefined) return;
    this.#sessions.delete(readerId);
    s.closed = true;
    for (const list of s.cursors.values()) {
      for (const c of list) await c.stream.cancel().catch(() => {});
    }
    s.cursors.clear();
    await s.release().catch(() => {});
  }

  /** Releases every session. */
  async close(): Promise<void> {
    for (const id of [...this.#sessions.keys()]) await this.unregister(id);
  }

  /**
   * Answers one request.
   *
   * @param request A decoded request.
   * @returns The CBOR-encoded response: `{ files }` for a listing, `{ offset, data, eof }`
   *   for a chunk.
   * @throws {RaftException} ENOENT for an unknown reader or a file not in the snapshot, EPERM
   *   for a name that is never served (internal or escaping the snapshot), EINVAL for an
   *   offset past the end of the file.
   */
  async handle(request: FileRequest): Promise<Uint8Array> {
    const s = this.#sessions.get(request.readerId);
    if (s === undefined) {
      throw RaftException.of(
        RaftError.ENOENT,
        `Snapshot reader ${request.readerId} does not exist`,
      );
    }
    s.lastUsed = Date.now();
    if (request.t === "snapshot_files") {
      const files = s.reader.listFiles().map((name) => ({
        name,
        meta: s.reader.getFileMeta(name) ?? {},
      }));
      return encode({ files }) as Uint8Array;
    }
    const { name, offset } = request;
    const why = unsafeSnapshotFileName(name);
    if (why !== null) {
      throw RaftException.of(
        RaftError.EPERM,
        `Snapshot file ${JSON.stringify(name)} is not served: ${why}`,
      );
    }
    if (!s.names.has(name) || s.reader.getFileMeta(name) === null) {
      throw RaftException.of(RaftError.ENOENT, `Snapshot file "${name}" is not in the snapshot`);
    }
    // braft reads partly when throttled (raft_allow_read_partly_when_install_snapshot).
    const count = s.throttle === undefined
      ? request.count
      : await acquireThroughput(s.throttle, request.count);
    const served = s.queue.then(() =>
      this.#read(s, request.readerId, name, offset, count, request.count)
    );
    s.queue = served.catch(() => {});
    const { data, eof } = await served;
    return encode({ offset, data, eof }) as Uint8Array;
  }

  /**
   * Reads `count` bytes of `name` at `offset` (alone: the caller holds the session's queue);
   * `asked` is what the request asked for before the throttle.
   */
  async #read(
    s: Session,
    readerId: number,
    name: string,
    offset: number,
    count: number,
    asked: number,
  ): Promise<{ data: Uint8Array; eof: boolean }> {
    if (s.closed) {
      throw RaftException.of(RaftError.ENOENT, `Snapshot reader ${readerId} does not exist`);
    }
    // Finished reads of other files only keep their last chunk: let it go (a retry of it
    // reads the file again) rather than hold one chunk per file of a large snapshot.
    for (const [other, cursors] of s.cursors) {
      if (other === name) continue;
      const open = cursors.filter((c) => !c.eof);
      if (open.length === 0) s.cursors.delete(other);
      else s.cursors.set(other, open);
    }
    const list = s.cursors.get(name) ?? [];
    s.cursors.set(name, list);
    // The read furthest along that has not passed `offset`; else a new one from the start.
    let cursor: Cursor | undefined;
    for (const c of list) {
      if (c.base <= offset && (cursor === undefined || c.base > cursor.base)) cursor = c;
    }
    if (cursor === undefined) {
      if (list.length >= CURSORS_PER_FILE) {
        const oldest = list.reduce((a, b) => (b.lastUsed < a.lastUsed ? b : a));
        list.splice(list.indexOf(oldest), 1);
        await oldest.stream.cancel().catch(() => {});
      }
      cursor = {
        base: 0,
        stream: s.reader.openFile(name).getReader(),
        buf: new ChunkChain(),
        eof: false,
        lastUsed: 0,
      };
      list.push(cursor);
    }
    cursor.lastUsed = Date.now();
    try {
      // One byte more than asked: a chunk that ends the file says so (no empty call after).
      while (cursor.base + cursor.buf.length <= offset + count && !cursor.eof) {
        const { done, value } = await cursor.stream.read();
        if (done) cursor.eof = true;
        else cursor.buf.append(value);
      }
    } catch (e) {
      list.splice(list.indexOf(cursor), 1);
      await cursor.stream.cancel().catch(() => {});
      throw e;
    }
    // Unregistered meanwhile: the stream was cancelled, so `eof` may be a lie.
    if (s.closed) {
      throw RaftException.of(RaftError.ENOENT, `Snapshot reader ${readerId} does not exist`);
    }
    const end = cursor.base + cursor.buf.length;
    if (offset > end) {
      throw RaftException.of(
        RaftError.EINVAL,
        `Cannot read snapshot file "${name}" at offset ${offset}: it has ${end} bytes`,
      );
    }
    const data = cursor.buf.slice(offset - cursor.base, offset - cursor.base + count)
      .toUint8Array();
    // (from what was asked, not what the throttle allowed: the copy's calls are that long)
    const retain = Math.min(2 * MAX_IN_FLIGHT_BYTES, RETAIN_CALLS * asked);
    // Keep this chunk and what a pipelined copy may still ask again (the calls it has in
    // flight); drop what is before.
    const keepFrom = Math.min(offset, Math.max(cursor.base, offset + count - retain));
    cursor.buf.skip(keepFrom - cursor.base);
    cursor.base = keepFrom;
    return { data, eof: cursor.eof && offset + data.byteLength === end };
  }

  #expire(): void {
    const now = Date.now();
    for (const [id, s] of this.#sessions) {
      if (now - s.lastUsed > this.#idleMs) void this.unregister(id);
    }
  }
}

/**
 * Validates a decoded call body as a {@linkcode FileRequest}.
 *
 * @param body The decoded CBOR value.
 * @returns The request.
 * @throws {RaftException} EINVAL when malformed.
 * @internal
 */
export function parseFileRequest(body: Record<string, unknown>): FileRequest {
  const id = body.readerId;
  if (typeof id !== "number" || !Number.isSafeInteger(id)) {
    throw badRequest("readerId must be an integer");
  }
  if (body.t === "snapshot_files") return { t: "snapshot_files", readerId: id };
  const { name, offset, count } = body;
  if (typeof name !== "string" || name.length === 0 || name.length > 4096) {
    throw badRequest("name must be a non-empty string");
  }
  if (typeof offset !== "number" || !Number.isSafeInteger(offset) || offset < 0) {
    throw badRequest("offset must be a non-negative integer");
  }
  if (
    typeof count !== "number" || !Number.isSafeInteger(count) || count <= 0 || count > MAX_COUNT
  ) {
    throw badRequest(`count must be an integer in 1..${MAX_COUNT}`);
  }
  return { t: "get_file", readerId: id, name, offset, count };
}

function badRequest(why: string): RaftException {
  return RaftException.of(RaftError.EINVAL, `Cannot serve snapshot file request: ${why}`);
}

/** braft's `CopyOptions` defaults for one GetFile call (remote_file_copier.h). */
export const COPY_DEFAULTS: Readonly<
  { timeoutMs: number; maxRetry: number; retryIntervalMs: number }
> = Object.freeze({ timeoutMs: 10_000, maxRetry: 3, retryIntervalMs: 1000 });

/** Options for {@linkcode copySnapshot}. */
export interface CopySnapshotOptions {
  /** Bytes per GetFile call (`raft_max_byte_count_per_rpc`, default 128 KiB). */
  chunkBytes?: number;
  /**
   * Chunk calls in flight at once for a file whose size the leader lists (default 1: one
   * after the other, as braft). At most {@linkcode MAX_PIPELINE} calls and
   * {@linkcode MAX_IN_FLIGHT_BYTES} are asked at once.
   */
  pipeline?: number;
  /** Limits download throughput: each call asks for what it allows. */
  throttle?: SnapshotThrottle | undefined;
  /** Each call fails with ETIMEDOUT after this long (braft `timeout_ms`, default 10 s). */
  timeoutMs?: number;
  /**
   * A failed call is sent again this many times, from the same offset, before the copy fails
   * with its error (braft `max_retry`, default 3).
   */
  maxRetry?: number;
  /** Wait before sending a failed call again (braft `retry_interval_ms`, default 1 s). */
  retryIntervalMs?: number;
  /** Cancels the copy: it fails at once with ECANCELED, without retrying. */
  signal?: AbortSignal;
  /**
   * Files already present locally with the same checksum can be copied from here instead of
   * downloaded (`filterBeforeCopyRemote`).
   */
  local?: SnapshotReader | null;
}

/**
 * Most bytes a pipelined copy asks for at once; the server keeps at least this much behind
 * its reads, so the retry of any call in flight is answered from memory.
 */
export const MAX_IN_FLIGHT_BYTES = 4 * 1024 * 1024;
/** Most chunk calls a pipelined copy has in flight. */
export const MAX_PIPELINE = 16;

/** One chunk call of a copy. */
interface Slot {
  offset: number;
  count: number;
  reply: Promise<{ data: Uint8Array; eof: boolean }>;
}

/** What a {@linkcode copySnapshot} did. */
export interface CopySnapshotStats {
  /** Calls sent (listing and chunks, retries included). */
  calls: number;
  /** Calls sent again after a failure. */
  retries: number;
  /** File bytes downloaded. */
  bytes: number;
  /** Files copied from the local snapshot instead. */
  localFiles: number;
}

/** Errors that sending the same request again cannot cure. */
const FINAL_ERRORS: ReadonlySet<number> = new Set([
  RaftError.ECANCELED,
  RaftError.ESHUTDOWN,
  RaftError.EINVAL,
  RaftError.ENOENT,
  RaftError.EPERM,
]);

/**
 * Copies every file of a remote snapshot into `writer` and checks each checksum.
 *
 * Files are streamed into the writer chunk by chunk. A failed call (the transport's error, a
 * lost response, a malformed or misplaced chunk) is sent again from the last offset received,
 * up to `maxRetry` times per call, `retryIntervalMs` apart; a call that succeeds resets the
 * count (as braft). The leader's file list is checked before anything is written.
 *
 * @param call Sends one call to the leader's endpoint (frames built by the node layer).
 * @param readerId The remote reader id from the copy URI.
 * @param writer Where to write the files.
 * @param options Chunk size, retries, cancellation and local filter.
 * @returns Counters of what was done.
 * @throws {RaftException} ECANCELED when `signal` aborts; EINVAL when the leader lists an
 *   unsafe or duplicate file name; EIO on a checksum mismatch or a malformed listing; the
 *   last call's error when the retries are used up.
 * @internal
 */
export async function copySnapshot(
  call: (request: FileRequest, options?: CallOptions) => Promise<Uint8Array>,
  readerId: number,
  writer: SnapshotWriter,
  options: CopySnapshotOptions = {},
): Promise<CopySnapshotStats> {
  const chunk = Math.min(MAX_COUNT, Math.max(1, Math.floor(options.chunkBytes ?? 128 * 1024)));
  const depth = Math.max(
    1,
    Math.min(
      Math.floor(options.pipeline ?? 1),
      MAX_PIPELINE,
      Math.floor(MAX_IN_FLIGHT_BYTES / chunk),
    ),
  );
  const maxRetry = Math.max(0, options.maxRetry ?? COPY_DEFAULTS.maxRetry);
  const retryIntervalMs = Math.max(0, options.retryIntervalMs ?? COPY_DEFAULTS.retryIntervalMs);
  const timeoutMs = options.timeoutMs ?? COPY_DEFAULTS.timeoutMs;
  const stats: CopySnapshotStats = { calls: 0, retries: 0, bytes: 0, localFiles: 0 };
  // Ends a chunk call still running when the writer gave up on the stream.
  const done = new AbortController();
  const signal = options.signal === undefined
    ? done.signal
    : AbortSignal.any([options.signal, done.signal]);
  const cancelled = (): RaftException =>
    RaftException.of(RaftError.ECANCELED, "Snapshot copy was aborted");

  /** Sends `request` until `accept` takes a response, or the retries are used up. */
  async function send<T>(
    request: FileRequest,
    accept: (response: Uint8Array, asked: FileRequest) => T,
  ): Promise<T> {
    for (let attempt = 0;; attempt++) {
      if (signal.aborted) throw cancelled();
      let ask = request;
      if (request.t === "get_file" && options.throttle !== undefined) {
        const count = await acquireThroughput(options.throttle, request.count, signal);
        if (count === 0) throw cancelled();
        ask = { ...request, count };
      }
      try {
        stats.calls++;
        const response = await guarded(call(ask, { timeoutMs, signal }), signal, timeoutMs);
        return accept(response, ask);
      } catch (e) {
        if (options.signal?.aborted === true) throw cancelled();
        const error = e instanceof RaftException ? e : new RaftException(
          new Status(
            RaftError.EIO,
            `Cannot copy snapshot: ${e instanceof Error ? e.message : String(e)}`,
          ),
          { cause: e },
        );
        if (FINAL_ERRORS.has(error.code) || attempt >= maxRetry) throw error;
      }
      stats.retries++;
      await abortableDelay(retryIntervalMs, signal);
    }
  }

  const files = await send({ t: "snapshot_files", readerId }, parseListing);
  try {
    for (const file of files) {
      const fileMeta: FileMeta = file.meta.userMeta !== undefined
        ? { userMeta: file.meta.userMeta }
        : {};
      const local = options.local;
      const localMeta = local?.getFileMeta(file.name);
      if (local && localMeta?.checksum !== undefined && localMeta.checksum === file.meta.checksum) {
        await writer.writeFile(file.name, local.openFile(file.name), fileMeta);
        stats.localFiles++;
      } else {
        // Calls in flight at successive offsets; the head is consumed in file order. A short
        // answer (a throttled leader) is followed by a call for the rest of its range, ahead
        // of the later ones. Past the listed size nothing is asked: the last call says eof.
        const size = file.meta.size;
        const window = size === undefined ? 1 : depth;
        let next = 0;
        const slots: Slot[] = [];
        const ask = (offset: number, count: number): Slot => {
          const reply = send(
            { t: "get_file", readerId, name: file.name, offset, count },
            (response, asked) =>
              parseChunk(file.name, offset, asked.t === "get_file" ? asked.count : 0, response),
          );
          reply.catch(() => {}); // (a call after eof or after a failure is never awaited)
          return { offset, count, reply };
        };
        const stream = new ReadableStream<Uint8Array>({
          pull: async (controller) => {
            while (slots.length < window && (slots.length === 0 || next < size!)) {
              slots.push(ask(next, chunk));
              next += chunk;
            }
            const slot = slots.shift()!;
            const reply = await slot.reply;
            const got = reply.data.byteLength;
            stats.bytes += got;
            if (got > 0) controller.enqueue(reply.data);
            if (reply.eof) controller.close();
            else if (got < slot.count) slots.unshift(ask(slot.offset + got, slot.count - got));
          },
        }, { highWaterMark: 0 });
        await writer.writeFile(file.name, stream, fileMeta);
      }
      const written = writer.getFileMeta(file.name);
      if (
        file.meta.checksum !== undefined && written?.checksum !== undefined &&
        written.checksum !== file.meta.checksum
      ) {
        throw RaftException.of(
          RaftError.EIO,
          `Cannot copy "${file.name}": checksum ${written.checksum} differs from the leader's ${file.meta.checksum}`,
        );
      }
    }
  } finally {
    done.abort();
  }
  return stats;
}

/** The leader's file list, checked whole before anything is written. */
function parseListing(response: Uint8Array): RemoteFile[] {
  const listing = decodeResponse(response) as { files?: unknown } | undefined;
  const files = listing?.files;
  if (!Array.isArray(files)) {
    throw RaftException.of(RaftError.EIO, "Cannot copy snapshot: malformed file list");
  }
  for (const f of files as unknown[]) {
    const meta = (f as { meta?: unknown } | null)?.meta;
    const m = meta as FileMeta | undefined;
    if (
      typeof f !== "object" || f === null || typeof meta !== "object" || meta === null ||
      (m!.checksum !== undefined && typeof m!.checksum !== "string") ||
      (m!.userMeta !== undefined && !(m!.userMeta instanceof Uint8Array))
    ) {
      throw RaftException.of(RaftError.EIO, "Cannot copy snapshot: malformed file list entry");
    }
  }
  const list = files as RemoteFile[];
  checkSnapshotFileNames(list.map((f) => f.name));
  return list;
}

/** One chunk, which must be for `offset` and not longer than asked. */
function parseChunk(
  name: string,
  offset: number,
  count: number,
  response: Uint8Array,
): { data: Uint8Array; eof: boolean } {
  const reply = decodeResponse(response) as
    | { offset?: unknown; data?: unknown; eof?: unknown }
    | undefined;
  if (!(reply?.data instanceof Uint8Array)) {
    throw RaftException.of(RaftError.EIO, `Cannot copy "${name}": malformed chunk`);
  }
  // (a leader of an older version does not say the offset)
  if (reply.offset !== undefined && reply.offset !== offset) {
    throw RaftException.of(
      RaftError.EIO,
      `Cannot copy "${name}": asked for offset ${offset}, got a chunk at ${String(reply.offset)}`,
    );
  }
  if (reply.data.byteLength > count) {
    throw RaftException.of(
      RaftError.EIO,
      `Cannot copy "${name}": asked for ${count} bytes at ${offset}, got ${reply.data.byteLength}`,
    );
  }
  const eof = reply.eof === true;
  if (!eof && reply.data.byteLength === 0) {
    throw RaftException.of(RaftError.EIO, `Cannot copy "${name}": empty chunk before eof`);
  }
  return { data: reply.data, eof };
}

function decodeResponse(response: Uint8Array): unknown {
  try {
    return decode(response);
  } catch (e) {
    throw new RaftException(
      new Status(RaftError.EIO, "Cannot copy snapshot: response is not CBOR"),
      { cause: e },
    );
  }
}

/**
 * `p`, or ECANCELED as soon as `signal` aborts, or ETIMEDOUT after `timeoutMs`: a transport
 * that ignores its call options cannot hang the copy.
 */
function guarded<T>(p: Promise<T>, signal: AbortSignal, timeoutMs: number): Promise<T> {
  p.catch(() => {}); // (settles unobserved when the guard wins)
  if (signal.aborted) {
    return Promise.reject(RaftException.of(RaftError.ECANCELED, "Snapshot copy was aborted"));
  }
  return new Promise<T>((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const settle = (fn: () => void): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      fn();
    };
    const onAbort = (): void =>
      settle(() => reject(RaftException.of(RaftError.ECANCELED, "Snapshot copy was aborted")));
    signal.addEventListener("abort", onAbort, { once: true });
    if (Number.isFinite(timeoutMs) && timeoutMs > 0) {
      timer = setTimeout(
        () =>
          settle(() =>
            reject(
              RaftException.of(
                RaftError.ETIMEDOUT,
                `Snapshot file call timed out after ${timeoutMs} ms`,
              ),
            )
          ),
        timeoutMs,
      );
    }
    p.then((v) => settle(() => resolve(v)), (e) => settle(() => reject(e)));
  });
}
