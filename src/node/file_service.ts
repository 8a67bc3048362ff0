/**
 * Snapshot file copy over a `Transport` call (braft's FileService and RemoteFileCopier):
 * the leader registers a snapshot reader and sends its URI in InstallSnapshot; the follower
 * pulls the file list and then each file in chunks of `raft_max_byte_count_per_rpc`.
 *
 * @module
 */

import { decode, encode } from "cbor-x";
import { ChunkChain } from "../bytes/chunk_chain.ts";
import { RaftError, RaftException } from "../errors/status.ts";
import type { CallOptions } from "../../transports/transport.ts";
import type { FileMeta, SnapshotReader, SnapshotWriter } from "../../storage/snapshot/snapshot.ts";
import { acquireThroughput, type SnapshotThrottle } from "./snapshot_throttle.ts";

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

interface Session {
  reader: SnapshotReader;
  release: () => Promise<void>;
  throttle: SnapshotThrottle | undefined;
  cursors: Map<
    string,
    {
      offset: number;
      stream: ReadableStreamDefaultReader<Uint8Array>;
      buf: ChunkChain;
      eof: boolean;
    }
  >;
  lastUsed: number;
}

const MAX_COUNT = 16 * 1024 * 1024;

/**
 * Serves registered snapshot readers to followers. Sessions not used for `idleMs` are
 * released.
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
      cursors: new Map(),
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
    for (const c of s.cursors.values()) await c.stream.cancel().catch(() => {});
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
   * @returns The CBOR-encoded response.
   * @throws {RaftException} ENOENT for an unknown reader or file, EINVAL for bad ranges.
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
    if (s.reader.getFileMeta(request.name) === null) {
      throw RaftException.of(
        RaftError.ENOENT,
        `Snapshot file "${request.name}" is not in the snapshot`,
      );
    }
    // braft reads partly when throttled (raft_allow_read_partly_when_install_snapshot).
    const count = s.throttle === undefined
      ? request.count
      : await acquireThroughput(s.throttle, request.count);
    let cursor = s.cursors.get(request.name);
    if (cursor === undefined || cursor.offset > request.offset) {
      await cursor?.stream.cancel().catch(() => {});
      cursor = {
        offset: 0,
        stream: s.reader.openFile(request.name).getReader(),
        buf: new ChunkChain(),
        eof: false,
      };
      s.cursors.set(request.name, cursor);
    }
    // Sequential reads are the norm; skip forward if the follower resumed further on.
    while (cursor.offset + cursor.buf.length < request.offset + count && !cursor.eof) {
      const { done, value } = await cursor.stream.read();
      if (done) cursor.eof = true;
      else cursor.buf.append(value);
    }
    const skip = Math.min(request.offset - cursor.offset, cursor.buf.length);
    cursor.buf.skip(skip);
    cursor.offset += skip;
    const data = cursor.buf.cut(count);
    cursor.offset += data.length;
    const eof = cursor.eof && cursor.buf.length === 0;
    return encode({ data: data.toUint8Array(), eof }) as Uint8Array;
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

/** Options for {@linkcode copySnapshot}. */
export interface CopySnapshotOptions {
  /** Bytes per GetFile call (`raft_max_byte_count_per_rpc`, default 128 KiB). */
  chunkBytes?: number;
  /** Limits download throughput: each call asks for what it allows. */
  throttle?: SnapshotThrottle | undefined;
  /** Per-call options (timeout, abort). */
  call?: CallOptions;
  /**
   * Files already present locally with the same checksum can be copied from here instead of
   * downloaded (`filterBeforeCopyRemote`).
   */
  local?: SnapshotReader | null;
}

/**
 * Copies every file of a remote snapshot into `writer` and checks each checksum.
 *
 * @param call Sends one call to the leader's endpoint (frames built by the node layer).
 * @param readerId The remote reader id from the copy URI.
 * @param writer Where to write the files.
 * @param options Chunk size and local filter.
 * @throws {RaftException} EIO on a checksum mismatch, or the transport's error.
 * @internal
 */
export async function copySnapshot(
  call: (request: FileRequest, options?: CallOptions) => Promise<Uint8Array>,
  readerId: number,
  writer: SnapshotWriter,
  options: CopySnapshotOptions = {},
): Promise<void> {
  const chunk = options.chunkBytes ?? 128 * 1024;
  const listing = decode(await call({ t: "snapshot_files", readerId }, options.call)) as {
    files?: RemoteFile[];
  };
  if (!Array.isArray(listing?.files)) {
    throw RaftException.of(RaftError.EIO, "Cannot copy snapshot: malformed file list");
  }
  for (const file of listing.files) {
    const local = options.local;
    const localMeta = local?.getFileMeta(file.name);
    const fileMeta: FileMeta = file.meta.userMeta !== undefined
      ? { userMeta: file.meta.userMeta }
      : {};
    if (local && localMeta?.checksum !== undefined && localMeta.checksum === file.meta.checksum) {
      await writer.writeFile(file.name, await local.readFile(file.name), fileMeta);
      continue;
    }
    let offset = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        const count = options.throttle === undefined
          ? chunk
          : await acquireThroughput(options.throttle, chunk, options.call?.signal);
        if (count === 0) {
          controller.error(RaftException.of(RaftError.ECANCELED, "Snapshot copy was aborted"));
          return;
        }
        const reply = decode(
          await call(
            { t: "get_file", readerId, name: file.name, offset, count },
            options.call,
          ),
        ) as { data?: Uint8Array; eof?: boolean };
        if (!(reply?.data instanceof Uint8Array)) {
          controller.error(
            RaftException.of(RaftError.EIO, `Cannot copy "${file.name}": malformed chunk`),
          );
          return;
        }
        offset += reply.data.byteLength;
        if (reply.data.byteLength > 0) controller.enqueue(reply.data);
        if (reply.eof) controller.close();
        else if (reply.data.byteLength === 0) {
          controller.error(
            RaftException.of(RaftError.EIO, `Cannot copy "${file.name}": empty chunk before eof`),
          );
        }
      },
    });
    await writer.writeFile(file.name, stream, fileMeta);
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
}
