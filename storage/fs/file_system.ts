/**
 * The `FileSystem` port: the few file operations durable storage needs, with positional
 * writes, fsync/fdatasync and directory fsync. Adapters: Deno, Bun, Node and an in-memory
 * file system that simulates crashes and injects faults.
 *
 * @module
 */

import { RaftError } from "../../src/errors/status.ts";
import { RaftException } from "../../src/errors/status.ts";

/** How to open a file. */
export interface OpenOptions {
  /** Create the file when missing. Default `false`. */
  create?: boolean;
  /** Fail when the file exists (with `create`). Default `false`. */
  createNew?: boolean;
  /** Truncate to zero length on open. Default `false`. */
  truncate?: boolean;
  /** Open for writing as well as reading. Default `false`. */
  write?: boolean;
}

/** What {@linkcode FileSystem.stat} reports. */
export interface FileInfo {
  /** Size in bytes. */
  size: number;
  /** Whether it is a directory. */
  isDirectory: boolean;
  /** Whether it is a regular file. */
  isFile: boolean;
}

/** An open file. All offsets are absolute; there is no implicit cursor. */
export interface FileHandle {
  /** The path it was opened with. */
  readonly path: string;
  /**
   * Writes every byte of `data` at `position` (looping over short writes).
   *
   * @throws {RaftException} EIO, ENOSPC.
   */
  write(data: Uint8Array, position: number): Promise<void>;
  /**
   * Reads up to `target.byteLength` bytes at `position`; returns how many were read
   * (fewer only at end of file).
   */
  read(target: Uint8Array, position: number): Promise<number>;
  /** fsync: data and metadata reach stable storage. */
  sync(): Promise<void>;
  /** fdatasync: data (and the size) reach stable storage. */
  datasync(): Promise<void>;
  /** Sets the file length. */
  truncate(size: number): Promise<void>;
  /** The current length. */
  size(): Promise<number>;
  /** Closes the handle. */
  close(): Promise<void>;
}

/** The file system port. Paths are absolute (`/`-separated) or relative to the process cwd. */
export interface FileSystem {
  /** `"deno"`, `"bun"`, `"node"` or `"memory"`. */
  readonly kind: string;
  /** Opens a file. */
  open(path: string, options?: OpenOptions): Promise<FileHandle>;
  /** Reads a whole file. */
  readFile(path: string): Promise<Uint8Array>;
  /** Renames atomically (replacing `to` when it is a file). */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file or (with `recursive`) a directory tree; missing paths are not an error. */
  remove(path: string, options?: { recursive?: boolean }): Promise<void>;
  /** Creates a directory (and parents with `recursive`). Existing directories are fine. */
  mkdir(path: string, options?: { recursive?: boolean }): Promise<void>;
  /** Names of the entries of a directory. */
  readDir(path: string): Promise<string[]>;
  /** Information about a path, or `null` when it does not exist. */
  stat(path: string): Promise<FileInfo | null>;
  /** fsyncs a directory, making creations, renames and removals in it durable. */
  syncDir(path: string): Promise<void>;
  /** Sets the length of a file by path. */
  truncate(path: string, size: number): Promise<void>;
}

const CODES: Record<string, number> = {
  ENOENT: RaftError.ENOENT,
  NotFound: RaftError.ENOENT,
  EEXIST: RaftError.EEXIST,
  AlreadyExists: RaftError.EEXIST,
  ENOSPC: RaftError.ENOSPC,
  EDQUOT: RaftError.ENOSPC,
  EACCES: RaftError.EACCES,
  EPERM: RaftError.EACCES,
  PermissionDenied: RaftError.EACCES,
  EINVAL: RaftError.EINVAL,
};

/**
 * Converts a native file system error into a {@linkcode RaftException} whose status names
 * the failed action and path; ENOSPC stays ENOSPC, unknown errors become EIO.
 *
 * @param action What was attempted, e.g. `"write"`.
 * @param path The path involved.
 * @param error The native error.
 * @returns The exception (for the caller to throw).
 *
 * @example
 * ```ts
 * import { fsError } from "./file_system.ts";
 * import assert from "node:assert/strict";
 * const e = fsError("open", "/x", Object.assign(new Error("gone"), { code: "ENOENT" }));
 * assert.equal(e.status.code, 2);
 * ```
 */
export function fsError(action: string, path: string, error: unknown): RaftException {
  if (error instanceof RaftException) return error;
  const err = error as { code?: unknown; name?: unknown; message?: unknown } | null;
  const key = typeof err?.code === "string" ? err.code : "";
  const name = typeof err?.name === "string" ? err.name : "";
  const message = typeof err?.message === "string" ? err.message : String(error);
  const code = CODES[key] ?? CODES[name] ??
    (/ENOSPC|no space/i.test(message)
      ? RaftError.ENOSPC
      : /ENOENT|no such file/i.test(message)
      ? RaftError.ENOENT
      : RaftError.EIO);
  return RaftException.of(code, `Cannot ${action} "${path}": ${message}`);
}

/**
 * Joins path segments with `/` (the storages only build paths below a root they were given).
 *
 * @param parts Path segments.
 * @returns The joined path.
 *
 * @example
 * ```ts
 * import { joinPath } from "./file_system.ts";
 * import assert from "node:assert/strict";
 * assert.equal(joinPath("/a/", "b", "c"), "/a/b/c");
 * ```
 */
export function joinPath(...parts: string[]): string {
  return parts.filter((p) => p.length > 0).join("/").replace(/\/{2,}/g, "/");
}

/**
 * The parent directory of a path.
 *
 * @param path A path.
 * @returns Its parent (`"."` for a bare name).
 */
export function dirName(path: string): string {
  const trimmed = path.length > 1 ? path.replace(/\/+$/, "") : path;
  const i = trimmed.lastIndexOf("/");
  if (i < 0) return ".";
  if (i === 0) return "/";
  return trimmed.slice(0, i);
}

/**
 * Creates a directory (and its missing parents) durably: after `mkdir`, the parent of every
 * directory created is fsynced, and so is the parent of `path` itself (it may have been
 * created by a run that crashed before syncing). With `sync` off it is a plain `mkdir`.
 *
 * @param fs The file system.
 * @param path The directory.
 * @param sync Whether to fsync (default `true`).
 *
 * @example
 * ```ts
 * import { mkdirDurable } from "./file_system.ts";
 * import { MemoryFileSystem } from "./memory.ts";
 * import assert from "node:assert/strict";
 * const fs = new MemoryFileSystem();
 * await mkdirDurable(fs, "/a/b");
 * fs.crash();
 * assert.ok((await fs.stat("/a/b"))?.isDirectory);
 * ```
 */
export async function mkdirDurable(fs: FileSystem, path: string, sync = true): Promise<void> {
  const created: string[] = [];
  for (let p = path; !(await fs.stat(p)); p = dirName(p)) {
    created.push(p);
    if (dirName(p) === p) break;
  }
  await fs.mkdir(path, { recursive: true });
  if (!sync) return;
  const parents = new Set([dirName(path), ...created.map(dirName)]);
  for (const dir of [...parents].sort((a, b) => b.length - a.length)) {
    if (dir !== path) await fs.syncDir(dir);
  }
}

/**
 * Writes a whole file atomically: write `<path>.tmp`, fsync it, rename over `path`, fsync the
 * directory. With `sync` off the fsyncs are skipped (the rename stays atomic).
 *
 * @param fs The file system.
 * @param path Destination.
 * @param data Contents.
 * @param options `sync` (default `true`): whether to fsync the file and the directory.
 * @returns When done.
 * @throws {RaftException} EIO or ENOSPC; the old file is then untouched.
 *
 * @example
 * ```ts
 * import { mkdirDurable, writeFileAtomic } from "./file_system.ts";
 * import { MemoryFileSystem } from "./memory.ts";
 * import assert from "node:assert/strict";
 * const fs = new MemoryFileSystem();
 * await mkdirDurable(fs, "/d");
 * await writeFileAtomic(fs, "/d/f", new Uint8Array([1]));
 * fs.crash();
 * assert.deepEqual(await fs.readFile("/d/f"), new Uint8Array([1]));
 * ```
 */
export async function writeFileAtomic(
  fs: FileSystem,
  path: string,
  data: Uint8Array,
  options: { sync?: boolean } = {},
): Promise<void> {
  const sync = options.sync ?? true;
  const tmp = `${path}.tmp`;
  const file = await fs.open(tmp, { create: true, truncate: true, write: true });
  try {
    await file.write(data, 0);
    if (sync) await file.sync();
  } catch (e) {
    await file.close().catch(() => {});
    await fs.remove(tmp).catch(() => {});
    throw e;
  }
  await file.close();
  await fs.rename(tmp, path);
  if (sync) await fs.syncDir(dirName(path));
}

/**
 * Reads `length` bytes at `position`, failing when the file is shorter.
 *
 * @param file An open file.
 * @param position Where to read.
 * @param length How many bytes.
 * @returns The bytes.
 * @throws {RaftException} EIO when the file ends early.
 */
export async function readExactly(
  file: FileHandle,
  position: number,
  length: number,
): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = await file.read(out.subarray(done), position + done);
    if (n === 0) {
      throw RaftException.of(
        RaftError.EIO,
        `Cannot read "${file.path}": unexpected end of file at offset ${position + done}`,
      );
    }
    done += n;
  }
  return out;
}
