/**
 * `RaftMetaStorage`: durable term and votedFor (braft's `RaftMetaStorage`), with the
 * `local://` (file) and `memory://` implementations.
 *
 * `local://dir` keeps the file `dir/raft_meta`: a checksummed record
 * `{ term, votedFor }` (votedFor is a peer id string, `""` for none), replaced atomically
 * (temp file, fsync, rename, directory fsync). A fresh storage starts at term 1, as braft.
 *
 * @module
 */

import { decodeRecord, encodeRecord } from "../../src/codec/record_file.ts";
import { PeerId } from "../../src/conf/peer_id.ts";
import { RaftError, RaftException } from "../../src/errors/status.ts";
import { flags } from "../../src/util/flags.ts";
import { type FileSystem, joinPath, mkdirDurable, writeFileAtomic } from "../fs/file_system.ts";

/** The persisted hard state. */
export interface TermAndVotedFor {
  /** The current term (1 on a fresh storage). */
  term: number;
  /** Whom this node voted for in `term`, or `null`. */
  votedFor: PeerId | null;
}

/** Durable term and vote. */
export interface RaftMetaStorage {
  /** Loads the stored state (or starts at term 1 with no vote). */
  init(): Promise<void>;
  /** The stored state. */
  getTermAndVotedFor(): TermAndVotedFor;
  /** Replaces the state; resolves once it is durable. */
  setTermAndVotedFor(term: number, votedFor: PeerId | null): Promise<void>;
  /** Releases resources. */
  close(): Promise<void>;
}

/** Options for the meta storages; unset fields come from `flags`. */
export interface MetaStorageOptions {
  /** fsync writes (`flags.raft_sync || flags.raft_sync_meta`). */
  sync?: boolean;
}

function checkTerm(term: number): RaftException | undefined {
  if (!Number.isSafeInteger(term) || term < 0) {
    return RaftException.of(
      RaftError.EINVAL,
      `Cannot set term to ${term}: expected a non-negative integer`,
    );
  }
  return undefined;
}

/**
 * Term and vote in a file, replaced atomically.
 *
 * @example
 * ```ts
 * import { LocalRaftMetaStorage } from "./meta_storage.ts";
 * import { MemoryFileSystem } from "../fs/memory.ts";
 * import { PeerId } from "../../src/conf/peer_id.ts";
 * import assert from "node:assert/strict";
 *
 * const fs = new MemoryFileSystem();
 * const meta = new LocalRaftMetaStorage(fs, "/raft/meta");
 * await meta.init();
 * assert.equal(meta.getTermAndVotedFor().term, 1);
 * await meta.setTermAndVotedFor(5, PeerId.parse("127.0.0.1:8100"));
 * fs.crash();
 * const again = new LocalRaftMetaStorage(fs, "/raft/meta");
 * await again.init();
 * assert.equal(again.getTermAndVotedFor().term, 5);
 * ```
 */
export class LocalRaftMetaStorage implements RaftMetaStorage {
  readonly #fs: FileSystem;
  readonly #dir: string;
  readonly #sync: boolean;
  #state: TermAndVotedFor = { term: 1, votedFor: null };
  #queue: Promise<unknown> = Promise.resolve();

  /**
   * Creates the storage; call {@linkcode LocalRaftMetaStorage.init} next.
   *
   * @param fs The file system.
   * @param dir Directory of the `raft_meta` file (created when missing).
   * @param options Overrides of `flags`.
   */
  constructor(fs: FileSystem, dir: string, options: MetaStorageOptions = {}) {
    this.#fs = fs;
    this.#dir = dir;
    this.#sync = options.sync ?? (flags.raft_sync || flags.raft_sync_meta);
  }

  /** {@inheritDoc RaftMetaStorage.init} */
  async init(): Promise<void> {
    await mkdirDurable(this.#fs, this.#dir, this.#sync);
    const path = joinPath(this.#dir, "raft_meta");
    await this.#fs.remove(`${path}.tmp`);
    if (!(await this.#fs.stat(path))) return;
    let record: { term?: unknown; votedFor?: unknown } | null;
    try {
      record = decodeRecord(await this.#fs.readFile(path)) as typeof record;
    } catch (e) {
      if (e instanceof RaftException) throw e;
      throw RaftException.of(
        RaftError.EIO,
        `Cannot load raft meta "${path}": ${(e as Error).message}`,
      );
    }
    const malformed = (why: string): RaftException =>
      RaftException.of(RaftError.EIO, `Cannot load raft meta "${path}": ${why} at offset 12`);
    if (typeof record !== "object" || record === null || typeof record.votedFor !== "string") {
      throw malformed("malformed record");
    }
    const term = record.term;
    if (typeof term !== "number" || checkTerm(term) !== undefined) {
      throw malformed(
        `term ${typeof term === "number" ? term : typeof term} is not a non-negative integer`,
      );
    }
    let votedFor: PeerId | null = null;
    if (record.votedFor !== "") {
      try {
        votedFor = PeerId.parse(record.votedFor);
      } catch (e) {
        throw malformed(`votedFor is not a peer id (${(e as Error).message})`);
      }
    }
    this.#state = { term, votedFor };
  }

  /** {@inheritDoc RaftMetaStorage.getTermAndVotedFor} */
  getTermAndVotedFor(): TermAndVotedFor {
    return { ...this.#state };
  }

  /** {@inheritDoc RaftMetaStorage.setTermAndVotedFor} */
  setTermAndVotedFor(term: number, votedFor: PeerId | null): Promise<void> {
    const invalid = checkTerm(term);
    if (invalid) return Promise.reject(invalid);
    const next = this.#queue.then(async () => {
      const bytes = encodeRecord({ term, votedFor: votedFor?.toString() ?? "" });
      await writeFileAtomic(this.#fs, joinPath(this.#dir, "raft_meta"), bytes, {
        sync: this.#sync,
      });
      this.#state = { term, votedFor };
    });
    this.#queue = next.catch(() => {});
    return next;
  }

  /** {@inheritDoc RaftMetaStorage.close} */
  close(): Promise<void> {
    return this.#queue.then(() => {});
  }
}

const MEMORY_META = new Map<string, TermAndVotedFor>();

/**
 * Term and vote in process memory, shared by name (survives a node restart in-process).
 *
 * @example
 * ```ts
 * import { MemoryRaftMetaStorage } from "./meta_storage.ts";
 * import assert from "node:assert/strict";
 * const meta = new MemoryRaftMetaStorage("example-meta");
 * await meta.init();
 * await meta.setTermAndVotedFor(3, null);
 * assert.equal(new MemoryRaftMetaStorage("example-meta").getTermAndVotedFor().term, 3);
 * MemoryRaftMetaStorage.destroy("example-meta");
 * ```
 */
export class MemoryRaftMetaStorage implements RaftMetaStorage {
  readonly #name: string;

  /**
   * Creates the storage.
   *
   * @param name Process-wide name.
   */
  constructor(name: string) {
    this.#name = name;
    if (!MEMORY_META.has(name)) MEMORY_META.set(name, { term: 1, votedFor: null });
  }

  /**
   * Forgets a named state.
   *
   * @param name The name.
   */
  static destroy(name: string): void {
    MEMORY_META.delete(name);
  }

  /** {@inheritDoc RaftMetaStorage.init} */
  init(): Promise<void> {
    return Promise.resolve();
  }

  /** {@inheritDoc RaftMetaStorage.getTermAndVotedFor} */
  getTermAndVotedFor(): TermAndVotedFor {
    return { ...(MEMORY_META.get(this.#name) ?? { term: 1, votedFor: null }) };
  }

  /** {@inheritDoc RaftMetaStorage.setTermAndVotedFor} */
  setTermAndVotedFor(term: number, votedFor: PeerId | null): Promise<void> {
    const invalid = checkTerm(term);
    if (invalid) return Promise.reject(invalid);
    MEMORY_META.set(this.#name, { term, votedFor });
    return Promise.resolve();
  }

  /** {@inheritDoc RaftMetaStorage.close} */
  close(): Promise<void> {
    return Promise.resolve();
  }
}
