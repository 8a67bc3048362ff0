/**
 * The Node adapter of the {@linkcode FileSystem} port, on `node:fs/promises`. Bun uses it
 * for everything that needs a file descriptor (see `bun.ts`).
 *
 * @module
 */

import * as fsp from "node:fs/promises";
import {
  type FileHandle,
  type FileInfo,
  type FileSystem,
  fsError,
  type OpenOptions,
} from "./file_system.ts";

class NodeFile implements FileHandle {
  readonly path: string;
  #fh: fsp.FileHandle;
  constructor(path: string, fh: fsp.FileHandle) {
    this.path = path;
    this.#fh = fh;
  }
  async write(data: Uint8Array, position: number): Promise<void> {
    let done = 0;
    try {
      while (done < data.byteLength) {
        const { bytesWritten } = await this.#fh.write(
          data,
          done,
          data.byteLength - done,
          position + done,
        );
        if (bytesWritten <= 0) throw new Error("write returned 0 bytes");
        done += bytesWritten;
      }
    } catch (e) {
      throw fsError("write", this.path, e);
    }
  }
  async read(target: Uint8Array, position: number): Promise<number> {
    try {
      const { bytesRead } = await this.#fh.read(target, 0, target.byteLength, position);
      return bytesRead;
    } catch (e) {
      throw fsError("read", this.path, e);
    }
  }
  async sync(): Promise<void> {
    try {
      await this.#fh.sync();
    } catch (e) {
      throw fsError("fsync", this.path, e);
    }
  }
  async datasync(): Promise<void> {
    try {
      await this.#fh.datasync();
    } catch (e) {
      throw fsError("fdatasync", this.path, e);
    }
  }
  async truncate(size: number): Promise<void> {
    try {
      await this.#fh.truncate(size);
    } catch (e) {
      throw fsError("truncate", this.path, e);
    }
  }
  async size(): Promise<number> {
    try {
      return (await this.#fh.stat()).size;
    } catch (e) {
      throw fsError("stat", this.path, e);
    }
  }
  async close(): Promise<void> {
    try {
      await this.#fh.close();
    } catch (e) {
      throw fsError("close", this.path, e);
    }
  }
}

function flagsOf(options: OpenOptions): string {
  // Numeric flags are not portable to every runtime's node:fs; the string forms are.
  if (!options.write) return "r";
  if (options.createNew) return "wx+";
  if (options.truncate) return options.create ? "w+" : "r+";
  return options.create ? "a+" : "r+";
}

/**
 * The Node (`node:fs/promises`) file system.
 *
 * @example
 * ```ts
 * import { NodeFileSystem } from "./node.ts";
 * import assert from "node:assert/strict";
 * assert.equal(new NodeFileSystem().kind, "node");
 * ```
 */
export class NodeFileSystem implements FileSystem {
  /** The adapter name. */
  readonly kind: string;

  /**
   * Creates the adapter.
   *
   * @param kind The name reported by `kind` (Bun reuses this adapter).
   */
  constructor(kind: string = "node") {
    this.kind = kind;
  }

  /** {@inheritDoc FileSystem.open} */
  async open(path: string, options: OpenOptions = {}): Promise<FileHandle> {
    try {
      let flags = flagsOf(options);
      if (flags === "a+") {
        // "a+" would force appends; create the file, then reopen it for positional writes.
        const created = await fsp.open(path, "a");
        await created.close();
        flags = "r+";
      }
      return new NodeFile(path, await fsp.open(path, flags));
    } catch (e) {
      throw fsError("open", path, e);
    }
  }

  /** {@inheritDoc FileSystem.readFile} */
  async readFile(path: string): Promise<Uint8Array> {
    try {
      const buf = await fsp.readFile(path);
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    } catch (e) {
      throw fsError("read", path, e);
    }
  }

  /** {@inheritDoc FileSystem.rename} */
  async rename(from: string, to: string): Promise<void> {
    try {
      await fsp.rename(from, to);
    } catch (e) {
      throw fsError("rename", `${from}" to "${to}`, e);
    }
  }

  /** {@inheritDoc FileSystem.remove} */
  async remove(path: string, options: { recursive?: boolean } = {}): Promise<void> {
    try {
      await fsp.rm(path, { recursive: options.recursive ?? false, force: true });
    } catch (e) {
      throw fsError("remove", path, e);
    }
  }

  /** {@inheritDoc FileSystem.mkdir} */
  async mkdir(path: string, options: { recursive?: boolean } = {}): Promise<void> {
    try {
      await fsp.mkdir(path, { recursive: options.recursive ?? false });
    } catch (e) {
      if ((e as { code?: string }).code === "EEXIST") return;
      throw fsError("create directory", path, e);
    }
  }

  /** {@inheritDoc FileSystem.readDir} */
  async readDir(path: string): Promise<string[]> {
    try {
      return await fsp.readdir(path);
    } catch (e) {
      throw fsError("list", path, e);
    }
  }

  /** {@inheritDoc FileSystem.stat} */
  async stat(path: string): Promise<FileInfo | null> {
    try {
      const s = await fsp.stat(path);
      return { size: s.size, isDirectory: s.isDirectory(), isFile: s.isFile() };
    } catch (e) {
      if ((e as { code?: string }).code === "ENOENT") return null;
      throw fsError("stat", path, e);
    }
  }

  /** {@inheritDoc FileSystem.syncDir} */
  async syncDir(path: string): Promise<void> {
    let fh: fsp.FileHandle | undefined;
    try {
      fh = await fsp.open(path, "r");
      await fh.sync();
    } catch (e) {
      throw fsError("fsync directory", path, e);
    } finally {
      await fh?.close().catch(() => {});
    }
  }

  /** {@inheritDoc FileSystem.truncate} */
  async truncate(path: string, size: number): Promise<void> {
    try {
      await fsp.truncate(path, size);
    } catch (e) {
      throw fsError("truncate", path, e);
    }
  }
}
