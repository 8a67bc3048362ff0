/**
 * The Deno adapter of the {@linkcode FileSystem} port, on `Deno.*` file APIs.
 *
 * `Deno.FsFile` has a cursor but no positional read/write, so each handle serialises its
 * operations and seeks before reading or writing.
 *
 * @module
 */

import {
  type FileHandle,
  type FileInfo,
  type FileSystem,
  fsError,
  type OpenOptions,
} from "./file_system.ts";

class DenoFile implements FileHandle {
  readonly path: string;
  #file: Deno.FsFile;
  #cursor = -1;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(path: string, file: Deno.FsFile) {
    this.path = path;
    this.#file = file;
  }

  #run<T>(action: string, op: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(op).catch((e: unknown) => {
      this.#cursor = -1;
      throw fsError(action, this.path, e);
    });
    this.#queue = next.catch(() => {});
    return next;
  }

  async #seek(position: number): Promise<void> {
    if (this.#cursor !== position) {
      await this.#file.seek(position, Deno.SeekMode.Start);
      this.#cursor = position;
    }
  }

  write(data: Uint8Array, position: number): Promise<void> {
    return this.#run("write", async () => {
      await this.#seek(position);
      let done = 0;
      while (done < data.byteLength) {
        const n = await this.#file.write(data.subarray(done));
        if (n <= 0) throw new Error("write returned 0 bytes");
        done += n;
        this.#cursor += n;
      }
    });
  }

  read(target: Uint8Array, position: number): Promise<number> {
    return this.#run("read", async () => {
      await this.#seek(position);
      let done = 0;
      while (done < target.byteLength) {
        const n = await this.#file.read(target.subarray(done));
        if (n === null || n === 0) break;
        done += n;
        this.#cursor += n;
      }
      return done;
    });
  }

  sync(): Promise<void> {
    return this.#run("fsync", () => this.#file.sync());
  }

  datasync(): Promise<void> {
    return this.#run("fdatasync", () => this.#file.syncData());
  }

  truncate(size: number): Promise<void> {
    return this.#run("truncate", () => this.#file.truncate(size));
  }

  size(): Promise<number> {
    return this.#run("stat", async () => (await this.#file.stat()).size);
  }

  close(): Promise<void> {
    return this.#run("close", () => {
      this.#file.close();
      return Promise.resolve();
    });
  }
}

function isNotFound(e: unknown): boolean {
  return e instanceof Deno.errors.NotFound;
}

/**
 * The Deno file system.
 *
 * @example
 * ```ts ignore
 * import { DenoFileSystem } from "./deno.ts";
 * const fs = new DenoFileSystem();
 * await fs.mkdir("/tmp/webraft-example", { recursive: true });
 * ```
 */
export class DenoFileSystem implements FileSystem {
  /** The adapter name. */
  readonly kind: string = "deno";

  /** {@inheritDoc FileSystem.open} */
  async open(path: string, options: OpenOptions = {}): Promise<FileHandle> {
    try {
      const write = options.write ?? false;
      const file = await Deno.open(path, {
        read: true,
        write,
        create: write && (options.create ?? false) && !(options.createNew ?? false),
        createNew: write && (options.createNew ?? false),
        truncate: write && (options.truncate ?? false),
      });
      return new DenoFile(path, file);
    } catch (e) {
      throw fsError("open", path, e);
    }
  }

  /** {@inheritDoc FileSystem.readFile} */
  async readFile(path: string): Promise<Uint8Array> {
    try {
      return await Deno.readFile(path);
    } catch (e) {
      throw fsError("read", path, e);
    }
  }

  /** {@inheritDoc FileSystem.rename} */
  async rename(from: string, to: string): Promise<void> {
    try {
      await Deno.rename(from, to);
    } catch (e) {
      throw fsError("rename", `${from}" to "${to}`, e);
    }
  }

  /** {@inheritDoc FileSystem.remove} */
  async remove(path: string, options: { recursive?: boolean } = {}): Promise<void> {
    try {
      await Deno.remove(path, { recursive: options.recursive ?? false });
    } catch (e) {
      if (isNotFound(e)) return;
      throw fsError("remove", path, e);
    }
  }

  /** {@inheritDoc FileSystem.mkdir} */
  async mkdir(path: string, options: { recursive?: boolean } = {}): Promise<void> {
    try {
      await Deno.mkdir(path, { recursive: options.recursive ?? false });
    } catch (e) {
      if (e instanceof Deno.errors.AlreadyExists) return;
      throw fsError("create directory", path, e);
    }
  }

  /** {@inheritDoc FileSystem.readDir} */
  async readDir(path: string): Promise<string[]> {
    try {
      const names: string[] = [];
      for await (const entry of Deno.readDir(path)) names.push(entry.name);
      return names;
    } catch (e) {
      throw fsError("list", path, e);
    }
  }

  /** {@inheritDoc FileSystem.stat} */
  async stat(path: string): Promise<FileInfo | null> {
    try {
      const s = await Deno.stat(path);
      return { size: s.size, isDirectory: s.isDirectory, isFile: s.isFile };
    } catch (e) {
      if (isNotFound(e)) return null;
      throw fsError("stat", path, e);
    }
  }

  /** {@inheritDoc FileSystem.syncDir} */
  async syncDir(path: string): Promise<void> {
    let dir: Deno.FsFile | undefined;
    try {
      dir = await Deno.open(path, { read: true });
      await dir.sync();
    } catch (e) {
      throw fsError("fsync directory", path, e);
    } finally {
      dir?.close();
    }
  }

  /** {@inheritDoc FileSystem.truncate} */
  async truncate(path: string, size: number): Promise<void> {
    try {
      await Deno.truncate(path, size);
    } catch (e) {
      throw fsError("truncate", path, e);
    }
  }
}
