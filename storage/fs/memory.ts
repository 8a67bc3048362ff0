/**
 * An in-memory {@linkcode FileSystem} for tests and `memory://` storage that models what a
 * real disk promises and nothing more: {@linkcode MemoryFileSystem.crash} drops every
 * write, truncation, creation, rename and removal that was not made durable by `sync` /
 * `datasync` (file contents) or `syncDir` (directory entries), as a power loss would.
 * Faults (EIO, ENOSPC, short writes) and a disk capacity can be injected.
 *
 * Every new directory entry — a created file, a created directory, a rename — is volatile
 * until its parent directory is synced, as on a POSIX file system: `mkdir` of a storage
 * directory must be followed by `syncDir` of its parent (see `mkdirDurable`).
 *
 * @module
 */

import { RaftError, RaftException } from "../../src/errors/status.ts";
import type { Prng } from "../../src/util/prng.ts";
import type { FileHandle, FileInfo, FileSystem, OpenOptions } from "./file_system.ts";

/** The operations a fault can target. */
export type FsOp =
  | "open"
  | "write"
  | "read"
  | "sync"
  | "truncate"
  | "readFile"
  | "rename"
  | "remove"
  | "mkdir"
  | "readDir"
  | "stat"
  | "syncDir";

/** A fault to inject into matching operations. */
export interface FaultSpec {
  /** The operation that fails (`sync` covers fsync and fdatasync). */
  op: FsOp;
  /** Only paths containing this string (or matching this pattern). Default: every path. */
  path?: string | RegExp;
  /** The error: `"EIO"` or `"ENOSPC"`. Default `"EIO"`. */
  error?: "EIO" | "ENOSPC";
  /** For writes: persist the first half of the bytes before failing (a short write). */
  short?: boolean;
  /** Let this many matching operations succeed first. Default 0. */
  after?: number;
  /** Fail this many times, then disarm. Default 1; `Infinity` for ever. */
  count?: number;
}

/** Options for {@linkcode MemoryFileSystem.crash}. */
export interface CrashOptions {
  /**
   * Leave the file system down after the crash: every call fails with EIO until
   * {@linkcode MemoryFileSystem.restart}. Use it when operations of the "dead" process are
   * still in flight, so they cannot touch the disk after the power loss. Default `false`.
   */
  stayDown?: boolean;
  /**
   * When given, each file also keeps a random prefix of its unsynced writes (the last one
   * possibly torn), as a disk that flushed part of its cache would.
   */
  prng?: Prng;
}

type Pending = { kind: "write"; pos: number; bytes: Uint8Array } | { kind: "size"; size: number };

/** A growable byte buffer: `buf[0, size)` is the content. */
interface Grow {
  buf: Uint8Array;
  size: number;
}

class FileNode {
  readonly kind = "file" as const;
  data: Uint8Array = new Uint8Array(64);
  size = 0;
  durable: Grow = { buf: new Uint8Array(0), size: 0 };
  pending: Pending[] = [];

  writeAt(bytes: Uint8Array, pos: number): void {
    const end = pos + bytes.byteLength;
    this.#ensure(end);
    if (pos > this.size) this.data.fill(0, this.size, pos);
    this.data.set(bytes, pos);
    if (end > this.size) this.size = end;
    this.pending.push({ kind: "write", pos, bytes: bytes.slice() });
  }

  setSize(size: number): void {
    this.#ensure(size);
    if (size > this.size) this.data.fill(0, this.size, size);
    this.size = size;
    this.pending.push({ kind: "size", size });
  }

  #ensure(n: number): void {
    if (n <= this.data.byteLength) return;
    const next = new Uint8Array(Math.max(n, this.data.byteLength * 2));
    next.set(this.data.subarray(0, this.size));
    this.data = next;
  }

  sync(): void {
    for (const op of this.pending) applyOp(this.durable, op);
    this.pending = [];
  }

  crash(prng: Prng | undefined): void {
    const durable = this.durable;
    if (prng && this.pending.length > 0) {
      const keep = prng.int(this.pending.length + 1);
      for (let i = 0; i < keep; i++) applyOp(durable, this.pending[i]!);
      const torn = this.pending[keep];
      if (torn && torn.kind === "write" && prng.chance(0.5)) {
        const n = prng.int(torn.bytes.byteLength);
        applyOp(durable, { kind: "write", pos: torn.pos, bytes: torn.bytes.subarray(0, n) });
      }
    }
    this.pending = [];
    this.data = durable.buf.slice(0, Math.max(64, durable.size));
    this.size = durable.size;
  }
}

function applyOp(target: Grow, op: Pending): void {
  const end = op.kind === "size" ? op.size : op.pos + op.bytes.byteLength;
  if (end > target.buf.byteLength) {
    const next = new Uint8Array(Math.max(end, target.buf.byteLength * 2));
    next.set(target.buf.subarray(0, target.size));
    target.buf = next;
  }
  if (op.kind === "size") {
    if (op.size > target.size) target.buf.fill(0, target.size, op.size);
    target.size = op.size;
    return;
  }
  if (op.pos > target.size) target.buf.fill(0, target.size, op.pos);
  target.buf.set(op.bytes, op.pos);
  if (end > target.size) target.size = end;
}

class DirNode {
  readonly kind = "dir" as const;
  entries = new Map<string, FileNode | DirNode>();
  durableEntries = new Map<string, FileNode | DirNode>();

  crash(prng: Prng | undefined, seen: Set<unknown>): void {
    if (seen.has(this)) return;
    seen.add(this);
    this.entries = new Map(this.durableEntries);
    for (const child of this.entries.values()) {
      if (child.kind === "dir") child.crash(prng, seen);
      else if (!seen.has(child)) {
        seen.add(child);
        child.crash(prng);
      }
    }
  }
}

/** Lets other tasks run, as a real file system call would; errors become rejections. */
function settle(): Promise<void> {
  return Promise.resolve();
}

function splitPath(path: string): string[] {
  return path.split("/").filter((p) => p.length > 0 && p !== ".");
}

function err(code: number, action: string, path: string, detail: string): RaftException {
  return RaftException.of(code, `Cannot ${action} "${path}": ${detail}`);
}

class MemoryFile implements FileHandle {
  readonly path: string;
  #fs: MemoryFileSystem;
  #node: FileNode;
  #generation: number;
  #writable: boolean;
  #closed = false;

  constructor(fs: MemoryFileSystem, path: string, node: FileNode, generation: number, w: boolean) {
    this.#fs = fs;
    this.path = path;
    this.#node = node;
    this.#generation = generation;
    this.#writable = w;
  }

  #check(action: string): void {
    if (this.#closed) throw err(RaftError.EIO, action, this.path, "file is closed");
    if (this.#generation !== this.#fs.generation) {
      throw err(RaftError.EIO, action, this.path, "handle opened before a simulated crash");
    }
  }

  async write(data: Uint8Array, position: number): Promise<void> {
    await settle();
    this.#check("write");
    if (!this.#writable) throw err(RaftError.EIO, "write", this.path, "file is read-only");
    const fault = this.#fs.takeFault("write", this.path);
    let bytes = data;
    let failure: RaftException | undefined;
    if (fault) {
      failure = err(
        fault.error === "ENOSPC" ? RaftError.ENOSPC : RaftError.EIO,
        "write",
        this.path,
        fault.error === "ENOSPC" ? "no space left on device (injected)" : "I/O error (injected)",
      );
      bytes = fault.short ? data.subarray(0, data.byteLength >> 1) : data.subarray(0, 0);
    }
    const growth = Math.max(0, position + bytes.byteLength - this.#node.size);
    const room = this.#fs.capacity - this.#fs.usedBytes();
    if (growth > room) {
      const fits = Math.max(0, bytes.byteLength - (growth - Math.max(0, room)));
      bytes = bytes.subarray(0, fits);
      failure = err(RaftError.ENOSPC, "write", this.path, "no space left on device");
    }
    if (bytes.byteLength > 0) this.#node.writeAt(bytes, position);
    return failure ? Promise.reject(failure) : Promise.resolve();
  }

  async read(target: Uint8Array, position: number): Promise<number> {
    await settle();
    this.#check("read");
    this.#fs.fail("read", this.path);
    const n = Math.max(0, Math.min(target.byteLength, this.#node.size - position));
    if (n > 0) target.set(this.#node.data.subarray(position, position + n));
    return Promise.resolve(n);
  }

  async sync(): Promise<void> {
    await settle();
    this.#check("fsync");
    this.#fs.fail("sync", this.path);
    this.#node.sync();
    this.#fs.syncCount++;
    return Promise.resolve();
  }

  async datasync(): Promise<void> {
    await settle();
    return this.sync();
  }

  async truncate(size: number): Promise<void> {
    await settle();
    this.#check("truncate");
    this.#fs.fail("truncate", this.path);
    this.#node.setSize(size);
    return Promise.resolve();
  }

  async size(): Promise<number> {
    await settle();
    this.#check("stat");
    return Promise.resolve(this.#node.size);
  }

  async close(): Promise<void> {
    await settle();
    if (!this.#closed && this.#generation === this.#fs.generation) this.#fs.openFiles--;
    this.#closed = true;
    return Promise.resolve();
  }
}

/**
 * An in-memory, crash-simulating file system with fault injection.
 *
 * @example Unsynced writes are lost by a crash
 * ```ts
 * import { MemoryFileSystem } from "./memory.ts";
 * import assert from "node:assert/strict";
 *
 * const fs = new MemoryFileSystem();
 * await fs.mkdir("/d", { recursive: true });
 * await fs.syncDir("/"); // a new directory entry is durable once its parent is synced
 * const f = await fs.open("/d/a", { create: true, write: true });
 * await f.write(new Uint8Array([1, 2, 3]), 0);
 * await f.sync();
 * await fs.syncDir("/d");
 * await f.write(new Uint8Array([4]), 3);
 * fs.crash();
 * assert.deepEqual(await fs.readFile("/d/a"), new Uint8Array([1, 2, 3]));
 * ```
 */
export class MemoryFileSystem implements FileSystem {
  /** The adapter name. */
  readonly kind: string = "memory";
  /** Bumped by every crash; handles from an older generation fail. */
  generation = 0;
  /** Total bytes all files may hold; writes beyond it fail with ENOSPC. Default unlimited. */
  capacity: number = Number.POSITIVE_INFINITY;
  /** How many file syncs have run (for tests and benchmarks). */
  syncCount = 0;
  /** Handles opened since the last crash and not yet closed (for leak checks). */
  openFiles = 0;
  #root = new DirNode();
  #faults: (FaultSpec & { seen: number; left: number })[] = [];
  #down = false;

  /**
   * Simulates a power loss: forgets everything not yet made durable and invalidates open
   * handles.
   *
   * @param options Optionally keep random prefixes of unsynced writes.
   */
  crash(options: CrashOptions = {}): void {
    this.generation++;
    this.openFiles = 0;
    this.#root.crash(options.prng, new Set());
    this.#down = options.stayDown ?? false;
  }

  /** Brings the file system back after `crash({ stayDown: true })`. */
  restart(): void {
    this.#down = false;
  }

  /**
   * Arms a fault.
   *
   * @param fault What fails, where and how often.
   */
  injectFault(fault: FaultSpec): void {
    this.#faults.push({ ...fault, seen: 0, left: fault.count ?? 1 });
  }

  /** Disarms every fault and removes the capacity limit. */
  clearFaults(): void {
    this.#faults = [];
    this.capacity = Number.POSITIVE_INFINITY;
  }

  /**
   * The bytes currently held by all files.
   *
   * @returns The sum of file sizes.
   */
  usedBytes(): number {
    let total = 0;
    const walk = (dir: DirNode, seen: Set<unknown>): void => {
      if (seen.has(dir)) return;
      seen.add(dir);
      for (const child of dir.entries.values()) {
        if (child.kind === "dir") walk(child, seen);
        else total += child.size;
      }
    };
    if (this.capacity !== Number.POSITIVE_INFINITY) walk(this.#root, new Set());
    return total;
  }

  /**
   * Returns the armed fault matching `op` on `path`, consuming one use; internal.
   *
   * @param op The operation.
   * @param path The path.
   * @returns The fault, if one fires.
   */
  takeFault(op: FsOp, path: string): FaultSpec | undefined {
    if (this.#down) throw err(RaftError.EIO, op, path, "the disk is down (simulated crash)");
    for (const f of this.#faults) {
      if (f.op !== op || f.left <= 0) continue;
      if (f.path !== undefined) {
        const hit = typeof f.path === "string" ? path.includes(f.path) : f.path.test(path);
        if (!hit) continue;
      }
      if (f.seen++ < (f.after ?? 0)) continue;
      f.left--;
      return f;
    }
    return undefined;
  }

  /**
   * Throws when a fault fires for `op` on `path`; internal.
   *
   * @param op The operation.
   * @param path The path.
   */
  fail(op: FsOp, path: string): void {
    const f = this.takeFault(op, path);
    if (!f) return;
    if (f.error === "ENOSPC") {
      throw err(RaftError.ENOSPC, op, path, "no space left on device (injected)");
    }
    throw err(RaftError.EIO, op, path, "I/O error (injected)");
  }

  #lookup(path: string): FileNode | DirNode | undefined {
    let node: FileNode | DirNode = this.#root;
    for (const part of splitPath(path)) {
      if (node.kind !== "dir") return undefined;
      const next: FileNode | DirNode | undefined = node.entries.get(part);
      if (!next) return undefined;
      node = next;
    }
    return node;
  }

  #parent(path: string, action: string): { dir: DirNode; name: string } {
    const parts = splitPath(path);
    const name = parts.pop();
    if (name === undefined) throw err(RaftError.EINVAL, action, path, "is the root");
    const dir = this.#lookup(parts.join("/"));
    if (!dir || dir.kind !== "dir") {
      throw err(RaftError.ENOENT, action, path, "parent directory does not exist");
    }
    return { dir, name };
  }

  /** {@inheritDoc FileSystem.open} */
  async open(path: string, options: OpenOptions = {}): Promise<FileHandle> {
    await settle();
    this.fail("open", path);
    const { dir, name } = this.#parent(path, "open");
    let node = dir.entries.get(name);
    if (node?.kind === "dir") throw err(RaftError.EINVAL, "open", path, "is a directory");
    if (node && options.createNew) throw err(RaftError.EEXIST, "open", path, "file exists");
    if (!node) {
      if (!(options.write && (options.create || options.createNew))) {
        throw err(RaftError.ENOENT, "open", path, "no such file");
      }
      node = new FileNode();
      dir.entries.set(name, node);
    } else if (options.write && options.truncate) {
      node.setSize(0);
    }
    this.openFiles++;
    return new MemoryFile(this, path, node, this.generation, options.write ?? false);
  }

  /** {@inheritDoc FileSystem.readFile} */
  async readFile(path: string): Promise<Uint8Array> {
    await settle();
    this.fail("readFile", path);
    const node = this.#lookup(path);
    if (!node) throw err(RaftError.ENOENT, "read", path, "no such file");
    if (node.kind === "dir") throw err(RaftError.EINVAL, "read", path, "is a directory");
    return Promise.resolve(node.data.slice(0, node.size));
  }

  /** {@inheritDoc FileSystem.rename} */
  async rename(from: string, to: string): Promise<void> {
    await settle();
    this.fail("rename", from);
    const src = this.#parent(from, "rename");
    const node = src.dir.entries.get(src.name);
    if (!node) throw err(RaftError.ENOENT, "rename", from, "no such file");
    const dst = this.#parent(to, "rename");
    const existing = dst.dir.entries.get(dst.name);
    if (existing?.kind === "dir" && existing.entries.size > 0) {
      throw err(RaftError.EEXIST, "rename", to, "directory not empty");
    }
    src.dir.entries.delete(src.name);
    dst.dir.entries.set(dst.name, node);
    return Promise.resolve();
  }

  /** {@inheritDoc FileSystem.remove} */
  async remove(path: string, options: { recursive?: boolean } = {}): Promise<void> {
    await settle();
    this.fail("remove", path);
    const node = this.#lookup(path);
    if (!node) return Promise.resolve();
    if (node.kind === "dir" && node.entries.size > 0 && !options.recursive) {
      throw err(RaftError.EEXIST, "remove", path, "directory not empty");
    }
    const { dir, name } = this.#parent(path, "remove");
    dir.entries.delete(name);
    return Promise.resolve();
  }

  /** {@inheritDoc FileSystem.mkdir} */
  async mkdir(path: string, options: { recursive?: boolean } = {}): Promise<void> {
    await settle();
    this.fail("mkdir", path);
    let dir = this.#root;
    const parts = splitPath(path);
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      let next = dir.entries.get(part);
      if (!next) {
        if (i < parts.length - 1 && !options.recursive) {
          throw err(RaftError.ENOENT, "create directory", path, "parent does not exist");
        }
        next = new DirNode();
        dir.entries.set(part, next); // durable only once `dir` is synced
      }
      if (next.kind !== "dir") {
        throw err(RaftError.EEXIST, "create directory", path, "a file is in the way");
      }
      dir = next;
    }
    return Promise.resolve();
  }

  /** {@inheritDoc FileSystem.readDir} */
  async readDir(path: string): Promise<string[]> {
    await settle();
    this.fail("readDir", path);
    const node = this.#lookup(path);
    if (!node) throw err(RaftError.ENOENT, "list", path, "no such directory");
    if (node.kind !== "dir") throw err(RaftError.EINVAL, "list", path, "not a directory");
    return Promise.resolve([...node.entries.keys()]);
  }

  /** {@inheritDoc FileSystem.stat} */
  async stat(path: string): Promise<FileInfo | null> {
    await settle();
    this.fail("stat", path);
    const node = this.#lookup(path);
    if (!node) return Promise.resolve(null);
    return Promise.resolve(
      node.kind === "dir"
        ? { size: 0, isDirectory: true, isFile: false }
        : { size: node.size, isDirectory: false, isFile: true },
    );
  }

  /** {@inheritDoc FileSystem.syncDir} */
  async syncDir(path: string): Promise<void> {
    await settle();
    this.fail("syncDir", path);
    const node = this.#lookup(path);
    if (!node || node.kind !== "dir") {
      throw err(RaftError.ENOENT, "fsync directory", path, "no such directory");
    }
    node.durableEntries = new Map(node.entries);
    return Promise.resolve();
  }

  /** {@inheritDoc FileSystem.truncate} */
  async truncate(path: string, size: number): Promise<void> {
    await settle();
    this.fail("truncate", path);
    const node = this.#lookup(path);
    if (!node || node.kind !== "file") {
      throw err(RaftError.ENOENT, "truncate", path, "no such file");
    }
    node.setSize(size);
    return Promise.resolve();
  }
}

let shared: MemoryFileSystem | undefined;

/**
 * The process-wide memory file system behind `memory://` URIs: its contents survive a
 * node's shutdown and restart in the same process.
 *
 * @returns The shared instance.
 *
 * @example
 * ```ts
 * import { sharedMemoryFileSystem } from "./memory.ts";
 * import assert from "node:assert/strict";
 * assert.equal(sharedMemoryFileSystem(), sharedMemoryFileSystem());
 * ```
 */
export function sharedMemoryFileSystem(): MemoryFileSystem {
  shared ??= new MemoryFileSystem();
  return shared;
}
