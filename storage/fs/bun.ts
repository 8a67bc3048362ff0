/**
 * The Bun adapter of the {@linkcode FileSystem} port.
 *
 * `Bun.file()` / `Bun.write()` are fast for whole files but expose no file descriptor, no
 * positional write and no fsync, which durable storage cannot do without. So this adapter
 * uses `Bun.file().bytes()` for whole-file reads and Bun's own implementation of
 * `node:fs/promises` for everything that needs a descriptor: positional writes, fsync,
 * fdatasync, truncate and directory fsync.
 *
 * @module
 */

import type { FileSystem } from "./file_system.ts";
import { fsError } from "./file_system.ts";
import { NodeFileSystem } from "./node.ts";

/** The slice of the `Bun` global this adapter uses (declared locally so Deno type-checks). */
interface BunGlobal {
  file(path: string): { bytes(): Promise<Uint8Array> };
}

function bunGlobal(): BunGlobal | undefined {
  return (globalThis as { Bun?: BunGlobal }).Bun;
}

/**
 * The Bun file system.
 *
 * @example
 * ```ts
 * import { BunFileSystem } from "./bun.ts";
 * import assert from "node:assert/strict";
 * assert.equal(new BunFileSystem().kind, "bun");
 * ```
 */
export class BunFileSystem extends NodeFileSystem implements FileSystem {
  /** Creates the adapter. */
  constructor() {
    super("bun");
  }

  /** {@inheritDoc FileSystem.readFile} */
  override async readFile(path: string): Promise<Uint8Array> {
    const bun = bunGlobal();
    if (!bun) return await super.readFile(path);
    try {
      return await bun.file(path).bytes();
    } catch (e) {
      throw fsError("read", path, e);
    }
  }
}
