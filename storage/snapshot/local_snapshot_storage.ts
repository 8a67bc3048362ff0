/**
 * `LocalSnapshotStorage`: snapshots as directories on a {@linkcode FileSystem}.
 *
 * Layout under the storage directory:
 * - `temp/`: the snapshot being written.
 * - `snapshot_<index>` (20-digit, zero-padded): published snapshots, each holding the user's
 *   files and `__raft_snapshot_meta`, a checksummed record of the meta (last included
 *   index/term, configuration) and the file list with CRC32C checksums and sizes.
 *
 * Publishing (`close(writer)`): every file is checksummed and fsynced, the meta file is
 * written and fsynced, `temp/` is fsynced and renamed to `snapshot_<index>`, the parent is
 * fsynced — and only then are older snapshots removed. Any failure (a full disk included)
 * removes `temp/` and leaves the previous snapshot untouched.
 *
 * @module
 */

import { ChunkChain } from "../../src/bytes/chunk_chain.ts";
import { crc32cUpdate } from "../../src/bytes/crc32c.ts";
import {
  configurationFromRecord,
  configurationToRecord,
} from "../../src/codec/configuration_payload.ts";
import { decodeRecord, encodeRecord } from "../../src/codec/record_file.ts";
import { Configuration } from "../../src/conf/configuration.ts";
import { RaftError, RaftException } from "../../src/errors/status.ts";
import { flags } from "../../src/util/flags.ts";
import { dirName, type FileSystem, joinPath, mkdirDurable } from "../fs/file_system.ts";
import type {
  FileMeta,
  SnapshotMeta,
  SnapshotReader,
  SnapshotStorage,
  SnapshotWriter,
} from "./snapshot.ts";

/** Name of the meta file inside a snapshot directory (as braft). */
export const SNAPSHOT_META_FILE = "__raft_snapshot_meta";
const TEMP_DIR = "temp";
const SNAPSHOT_RE = /^snapshot_(\d{20})$/;
/** Bytes per read of a snapshot file (fewer, larger reads: snapshots are copied whole). */
const CHUNK = 1024 * 1024;

function snapshotName(index: number): string {
  return `snapshot_${String(index).padStart(20, "0")}`;
}

function hex(crc: number): string {
  return crc.toString(16).padStart(8, "0");
}

function checkName(name: string): void {
  const parts = name.split("/");
  if (
    // The same names src/node/snapshot_file_name.ts refuses to copy between nodes.
    name.length === 0 || name.length > 4096 || name.startsWith("/") || /^[A-Za-z]:/.test(name) ||
    name.includes("\\") || name.includes("\0") ||
    parts.some((p) => p === ".." || p === "." || p === "") ||
    name === SNAPSHOT_META_FILE
  ) {
    throw RaftException.of(RaftError.EINVAL, `Cannot use snapshot file name "${name}"`);
  }
}

/** Options for {@linkcode LocalSnapshotStorage}. */
export interface SnapshotStorageOptions {
  /** fsync files and directories (`flags.raft_sync || flags.raft_sync_meta`). Default from flags. */
  sync?: boolean;
  /**
   * The file system `local://` snapshots live on (braft `snapshot_file_system_adaptor`); used
   * by the URI registry, default the runtime's.
   */
  fs?: FileSystem;
}

interface StoredFile {
  name: string;
  meta: FileMeta;
}

function encodeMetaFile(meta: SnapshotMeta, files: StoredFile[]): Uint8Array {
  const conf = configurationToRecord({
    peers: meta.peers,
    oldPeers: meta.oldPeers,
    ...(meta.learners ? { learners: meta.learners } : {}),
    ...(meta.oldLearners ? { oldLearners: meta.oldLearners } : {}),
  });
  return encodeRecord({
    meta: {
      lastIncludedIndex: meta.lastIncludedIndex,
      lastIncludedTerm: meta.lastIncludedTerm,
      ...conf,
    },
    files: files.map((f) => ({ name: f.name, meta: f.meta })),
  });
}

function isIndex(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}

/** A file entry of the meta file, checked (a meta file may come from a damaged disk). */
function storedFile(f: unknown): StoredFile {
  const bad = (): never => {
    throw new RangeError("malformed file entry in snapshot meta at offset 12");
  };
  if (typeof f !== "object" || f === null) return bad();
  const { name, meta } = f as { name?: unknown; meta?: unknown };
  if (typeof name !== "string") return bad();
  checkName(name);
  const fm: FileMeta = {};
  if (meta === undefined || meta === null) return { name, meta: fm };
  if (typeof meta !== "object") return bad();
  const { userMeta, checksum, size } = meta as FileMeta;
  if (userMeta !== undefined) {
    if (!(userMeta instanceof Uint8Array)) return bad();
    fm.userMeta = new Uint8Array(userMeta);
  }
  if (checksum !== undefined) {
    if (typeof checksum !== "string") return bad();
    fm.checksum = checksum;
  }
  if (size !== undefined) {
    if (!isIndex(size)) return bad();
    fm.size = size;
  }
  return { name, meta: fm };
}

function decodeMetaFile(bytes: Uint8Array): { meta: SnapshotMeta; files: StoredFile[] } {
  const record = decodeRecord(bytes) as {
    meta?: { lastIncludedIndex?: unknown; lastIncludedTerm?: unknown };
    files?: unknown;
  } | null;
  const m = typeof record === "object" && record !== null ? record.meta : undefined;
  if (
    typeof m !== "object" || m === null || !isIndex(m.lastIncludedIndex) ||
    !isIndex(m.lastIncludedTerm) || !Array.isArray(record!.files)
  ) {
    throw new RangeError("malformed snapshot meta at offset 12");
  }
  const conf = configurationFromRecord(m);
  const meta: SnapshotMeta = {
    lastIncludedIndex: m.lastIncludedIndex,
    lastIncludedTerm: m.lastIncludedTerm,
    peers: conf.peers,
    oldPeers: conf.oldPeers ?? new Configuration(),
    ...(conf.learners ? { learners: conf.learners } : {}),
    ...(conf.oldLearners ? { oldLearners: conf.oldLearners } : {}),
  };
  const files = (record!.files as unknown[]).map(storedFile);
  return { meta, files };
}

class LocalSnapshotWriter implements SnapshotWriter {
  readonly path: string;
  readonly fs: FileSystem;
  readonly sync: boolean;
  meta: SnapshotMeta | undefined;
  files = new Map<string, FileMeta>();
  /** Files written (and fsynced) by writeFile. */
  synced = new Set<string>();
  closed = false;

  constructor(fs: FileSystem, path: string, sync: boolean) {
    this.fs = fs;
    this.path = path;
    this.sync = sync;
  }

  saveMeta(meta: SnapshotMeta): void {
    this.meta = meta;
  }

  addFile(name: string, fileMeta: FileMeta = {}): void {
    checkName(name);
    this.files.set(name, { ...fileMeta });
  }

  removeFile(name: string): void {
    this.files.delete(name);
    this.synced.delete(name);
  }

  listFiles(): string[] {
    return [...this.files.keys()];
  }

  getFileMeta(name: string): FileMeta | null {
    const m = this.files.get(name);
    return m ? { ...m } : null;
  }

  async writeFile(
    name: string,
    data: Uint8Array | ChunkChain | ReadableStream<Uint8Array>,
    fileMeta: FileMeta = {},
  ): Promise<void> {
    checkName(name);
    if (this.closed) {
      throw RaftException.of(
        RaftError.EINVAL,
        `Cannot write snapshot file "${name}": writer is closed`,
      );
    }
    const path = joinPath(this.path, name);
    if (name.includes("/")) await this.fs.mkdir(dirName(path), { recursive: true });
    const file = await this.fs.open(path, { create: true, truncate: true, write: true });
    let crc = 0;
    let size = 0;
    try {
      const write = async (chunk: Uint8Array): Promise<void> => {
        // The checksum is computed while the write is under way.
        const written = file.write(chunk, size);
        crc = crc32cUpdate(crc, chunk);
        size += chunk.byteLength;
        await written;
      };
      if (data instanceof Uint8Array) await write(data);
      else if (data instanceof ChunkChain) {
        for (const chunk of data.chunks()) await write(chunk);
      } else {
        const reader = data.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          await write(value);
        }
      }
      if (this.sync) await file.sync();
    } finally {
      await file.close();
    }
    this.files.set(name, { ...fileMeta, checksum: hex(crc), size });
    this.synced.add(name);
  }
}

class LocalSnapshotReader implements SnapshotReader {
  readonly path: string;
  readonly index: number;
  readonly #fs: FileSystem;
  readonly #meta: SnapshotMeta;
  readonly #files: Map<string, FileMeta>;
  /** Set by the storage's `close`: a second close must not release another reader's hold. */
  closed = false;

  constructor(
    fs: FileSystem,
    path: string,
    index: number,
    meta: SnapshotMeta,
    files: StoredFile[],
  ) {
    this.#fs = fs;
    this.path = path;
    this.index = index;
    this.#meta = meta;
    this.#files = new Map(files.map((f) => [f.name, f.meta]));
  }

  loadMeta(): SnapshotMeta {
    return { ...this.#meta };
  }

  listFiles(): string[] {
    return [...this.#files.keys()];
  }

  getFileMeta(name: string): FileMeta | null {
    const m = this.#files.get(name);
    return m ? { ...m } : null;
  }

  #known(name: string): FileMeta {
    const m = this.#files.get(name);
    if (!m) {
      throw RaftException.of(
        RaftError.ENOENT,
        `Cannot read snapshot file "${name}": not in snapshot "${this.path}"`,
      );
    }
    return m;
  }

  async readFile(name: string): Promise<Uint8Array> {
    const meta = this.#known(name);
    const path = joinPath(this.path, name);
    const data = await this.#fs.readFile(path);
    verify(path, meta, crc32cUpdate(0, data), data.byteLength);
    return data;
  }

  openFile(name: string): ReadableStream<Uint8Array> {
    const meta = this.#known(name);
    const path = joinPath(this.path, name);
    const fs = this.#fs;
    let position = 0;
    let crc = 0;
    let handle: Awaited<ReturnType<FileSystem["open"]>> | undefined;
    return new ReadableStream<Uint8Array>({
      async pull(controller): Promise<void> {
        try {
          handle ??= await fs.open(path);
          // (not more than the recorded size asks for: small files stay small in memory)
          const left = meta.size === undefined ? CHUNK : meta.size - position;
          const buf = new Uint8Array(left > 0 ? Math.min(CHUNK, left) : left === 0 ? 1 : CHUNK);
          const n = await handle.read(buf, position);
          if (n === 0) {
            await handle.close();
            verify(path, meta, crc, position);
            controller.close();
            return;
          }
          const chunk = buf.subarray(0, n);
          crc = crc32cUpdate(crc, chunk);
          position += n;
          controller.enqueue(chunk);
        } catch (e) {
          await handle?.close().catch(() => {});
          controller.error(e);
        }
      },
      async cancel(): Promise<void> {
        await handle?.close().catch(() => {});
      },
    });
  }

  generateUriForCopy(): string {
    return `local://${this.path}`;
  }
}

function verify(path: string, meta: FileMeta, crc: number, size: number): void {
  if (meta.size !== undefined && meta.size !== size) {
    throw RaftException.of(
      RaftError.EIO,
      `Cannot read snapshot file "${path}": size ${size} differs from the recorded ${meta.size} at offset ${
        Math.min(size, meta.size)
      }`,
    );
  }
  if (meta.checksum !== undefined && meta.checksum !== hex(crc)) {
    throw RaftException.of(
      RaftError.EIO,
      `Cannot read snapshot file "${path}": checksum ${
        hex(crc)
      } differs from the recorded ${meta.checksum}`,
    );
  }
}

/**
 * Snapshot storage on a file system.
 *
 * @example
 * ```ts
 * import { LocalSnapshotStorage } from "./local_snapshot_storage.ts";
 * import { MemoryFileSystem } from "../fs/memory.ts";
 * import { Configuration } from "../../src/conf/configuration.ts";
 * import assert from "node:assert/strict";
 *
 * const storage = new LocalSnapshotStorage(new MemoryFileSystem(), "/raft/snapshot");
 * await storage.init();
 * const writer = await storage.create();
 * await writer.writeFile("data", new TextEncoder().encode("state"));
 * writer.saveMeta({
 *   lastIncludedIndex: 10,
 *   lastIncludedTerm: 2,
 *   peers: Configuration.parse("127.0.0.1:8100"),
 *   oldPeers: new Configuration(),
 * });
 * await storage.close(writer);
 * const reader = await storage.open();
 * assert.equal(reader?.loadMeta().lastIncludedIndex, 10);
 * assert.equal(new TextDecoder().decode(await reader!.readFile("data")), "state");
 * await storage.close(reader!);
 * ```
 */
export class LocalSnapshotStorage implements SnapshotStorage {
  readonly #fs: FileSystem;
  readonly #dir: string;
  readonly #sync: boolean;
  #lastIndex = 0;
  /** Readers open per snapshot index (made by the first `open()`). */
  #refs: Map<number, number> | null = null;
  /**
   * The one writer allowed at a time: set by `create` and cleared only when its `close`
   * (publish or discard) has finished, so no second writer can wipe `temp/` under an open
   * or publishing one.
   */
  #writer: LocalSnapshotWriter | undefined;
  /**
   * The directory exists (and its entry is durable). A missing one is created by the first
   * `create()`, so that a fresh group that never snapshots costs no directory and no fsync.
   */
  #made = false;

  /**
   * Creates the storage; call {@linkcode LocalSnapshotStorage.init} next.
   *
   * @param fs The file system.
   * @param dir The snapshot directory (created when missing).
   * @param options Overrides of `flags`.
   */
  constructor(fs: FileSystem, dir: string, options: SnapshotStorageOptions = {}) {
    this.#fs = fs;
    this.#dir = dir;
    this.#sync = options.sync ?? (flags.raft_sync || flags.raft_sync_meta);
  }

  /** The storage directory. */
  get path(): string {
    return this.#dir;
  }

  /** Index of the newest published snapshot (0 when none). */
  get lastSnapshotIndex(): number {
    return this.#lastIndex;
  }

  /** {@inheritDoc SnapshotStorage.init} */
  async init(): Promise<void> {
    this.#made = false;
    this.#lastIndex = 0;
    if (!(await this.#fs.stat(this.#dir))) return; // made by the first create()
    await mkdirDurable(this.#fs, this.#dir, this.#sync);
    this.#made = true;
    await this.#fs.remove(joinPath(this.#dir, TEMP_DIR), { recursive: true });
    const indexes: number[] = [];
    for (const name of await this.#fs.readDir(this.#dir)) {
      const m = SNAPSHOT_RE.exec(name);
      if (m) indexes.push(Number(m[1]));
    }
    indexes.sort((a, b) => b - a);
    const newest = indexes[0];
    if (newest !== undefined) {
      await this.#load(newest); // refuse to start on a corrupt newest snapshot
      for (const old of indexes.slice(1)) {
        await this.#fs.remove(joinPath(this.#dir, snapshotName(old)), { recursive: true });
      }
    }
    this.#lastIndex = newest ?? 0;
  }

  async #load(index: number): Promise<{ meta: SnapshotMeta; files: StoredFile[] }> {
    const path = joinPath(this.#dir, snapshotName(index), SNAPSHOT_META_FILE);
    let bytes: Uint8Array;
    try {
      bytes = await this.#fs.readFile(path);
    } catch (e) {
      if (e instanceof RaftException) {
        throw RaftException.of(
          RaftError.EIO,
          `Cannot load snapshot meta "${path}": ${e.status.message}`,
        );
      }
      throw e;
    }
    try {
      return decodeMetaFile(bytes);
    } catch (e) {
      throw RaftException.of(
        RaftError.EIO,
        `Cannot load snapshot meta "${path}": ${(e as Error).message}`,
      );
    }
  }

  /**
   * {@inheritDoc SnapshotStorage.create}
   *
   * @throws {RaftException} EBUSY while another writer is open or being published.
   */
  async create(): Promise<SnapshotWriter> {
    if (this.#writer !== undefined) {
      throw RaftException.of(
        RaftError.EBUSY,
        `Cannot create snapshot in "${this.#dir}": ${
          this.#writer.closed ? "another snapshot is being published" : "another writer is open"
        }`,
      );
    }
    const writer = new LocalSnapshotWriter(this.#fs, joinPath(this.#dir, TEMP_DIR), this.#sync);
    this.#writer = writer; // claimed before the first await
    try {
      if (!this.#made) {
        await mkdirDurable(this.#fs, this.#dir, this.#sync);
        this.#made = true;
      }
      await this.#fs.remove(writer.path, { recursive: true });
      await this.#fs.mkdir(writer.path, { recursive: true }); // made durable by publish
    } catch (e) {
      this.#writer = undefined;
      throw e;
    }
    return writer;
  }

  /** {@inheritDoc SnapshotStorage.close} */
  async close(target: SnapshotWriter | SnapshotReader, keepDataOnError = false): Promise<void> {
    if (target instanceof LocalSnapshotReader) {
      if (target.closed) return; // closed twice: the hold was already released
      target.closed = true;
      const left = (this.#refs?.get(target.index) ?? 1) - 1;
      if (left > 0) this.#refs!.set(target.index, left);
      else {
        this.#refs?.delete(target.index);
        if (target.index < this.#lastIndex) await this.#removeSnapshot(target.index);
      }
      return;
    }
    if (!(target instanceof LocalSnapshotWriter) || target !== this.#writer || target.closed) {
      throw RaftException.of(
        RaftError.EINVAL,
        `Cannot close snapshot: not an open writer of "${this.#dir}"`,
      );
    }
    target.closed = true;
    try {
      await this.#publish(target);
    } catch (e) {
      if (!keepDataOnError) await this.#fs.remove(target.path, { recursive: true }).catch(() => {});
      throw e;
    } finally {
      this.#writer = undefined; // only now may another writer take temp/
    }
  }

  async #publish(writer: LocalSnapshotWriter): Promise<void> {
    const meta = writer.meta;
    if (!meta) {
      throw RaftException.of(
        RaftError.EINVAL,
        `Cannot close snapshot "${writer.path}": saveMeta() was not called`,
      );
    }
    const index = meta.lastIncludedIndex;
    if (index < this.#lastIndex) {
      throw RaftException.of(
        RaftError.ESTALE,
        `Cannot close snapshot at index ${index}: snapshot ${this.#lastIndex} is newer`,
      );
    }
    const files: StoredFile[] = [];
    const dirs = new Set<string>([writer.path]);
    for (const [name, fileMeta] of writer.files) {
      const path = joinPath(writer.path, name);
      // Every directory on the way down holds a new entry: each one is synced below.
      for (
        let d = dirName(path);
        d !== writer.path && d.length > writer.path.length;
        d = dirName(d)
      ) {
        dirs.add(d);
      }
      if (writer.synced.has(name)) {
        files.push({ name, meta: fileMeta });
        continue;
      }
      // A file the user wrote directly: checksum it and make it durable.
      const handle = await this.#fs.open(path).catch((e: unknown) => {
        throw RaftException.of(
          RaftError.EIO,
          `Cannot close snapshot: added file "${path}" cannot be opened: ${
            e instanceof RaftException ? e.status.message : String(e)
          }`,
        );
      });
      let crc = 0;
      let size = 0;
      try {
        const buf = new Uint8Array(CHUNK);
        for (;;) {
          const n = await handle.read(buf, size);
          if (n === 0) break;
          crc = crc32cUpdate(crc, buf.subarray(0, n));
          size += n;
        }
        if (this.#sync) await handle.sync();
      } finally {
        await handle.close();
      }
      files.push({ name, meta: { ...fileMeta, checksum: hex(crc), size } });
    }
    const metaPath = joinPath(writer.path, SNAPSHOT_META_FILE);
    const metaFile = await this.#fs.open(metaPath, { create: true, truncate: true, write: true });
    try {
      await metaFile.write(encodeMetaFile(meta, files), 0);
      if (this.#sync) await metaFile.sync();
    } finally {
      await metaFile.close();
    }
    if (this.#sync) {
      for (const dir of [...dirs].sort((a, b) => b.length - a.length)) await this.#fs.syncDir(dir);
    }
    const finalPath = joinPath(this.#dir, snapshotName(index));
    if (await this.#fs.stat(finalPath)) {
      // The same snapshot already exists (braft reports EEXIST as success): keep the old one.
      await this.#fs.remove(writer.path, { recursive: true });
      return;
    }
    await this.#fs.rename(writer.path, finalPath);
    if (this.#sync) await this.#fs.syncDir(this.#dir);
    // Durable: only now may older snapshots go.
    const previous = this.#lastIndex;
    this.#lastIndex = index;
    if (previous > 0 && previous < index && !this.#refs?.has(previous)) {
      await this.#removeSnapshot(previous);
    }
  }

  async #removeSnapshot(index: number): Promise<void> {
    await this.#fs.remove(joinPath(this.#dir, snapshotName(index)), { recursive: true });
    if (this.#sync) await this.#fs.syncDir(this.#dir);
  }

  /** {@inheritDoc SnapshotStorage.open} */
  async open(): Promise<SnapshotReader | null> {
    const index = this.#lastIndex;
    if (index === 0) return null;
    const { meta, files } = await this.#load(index);
    this.#refs ??= new Map();
    this.#refs.set(index, (this.#refs.get(index) ?? 0) + 1);
    return new LocalSnapshotReader(
      this.#fs,
      joinPath(this.#dir, snapshotName(index)),
      index,
      meta,
      files,
    );
  }
}
