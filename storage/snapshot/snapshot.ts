/**
 * Snapshot types: `SnapshotMeta`, `FileMeta`, and the `SnapshotWriter`, `SnapshotReader` and
 * `SnapshotStorage` interfaces (braft's snapshot.h, API.md "Snapshots").
 *
 * @module
 */

import type { ChunkChain } from "../../src/bytes/chunk_chain.ts";
import type { Configuration } from "../../src/conf/configuration.ts";

/** What a snapshot covers: the last included entry and the configuration at that point. */
export interface SnapshotMeta {
  /** Index of the last entry the snapshot includes. */
  lastIncludedIndex: number;
  /** Term of that entry. */
  lastIncludedTerm: number;
  /** Voting peers of the configuration at `lastIncludedIndex`. */
  peers: Configuration;
  /** Old voting peers when that configuration is joint (empty otherwise). */
  oldPeers: Configuration;
  /** Learners of that configuration. */
  learners?: Configuration;
  /** Old learners when joint. */
  oldLearners?: Configuration;
}

/** Per-file metadata kept in the snapshot's meta file. */
export interface FileMeta {
  /** Opaque bytes the user attached with `addFile` / `writeFile`. */
  userMeta?: Uint8Array;
  /** CRC32C of the contents as 8 hex digits (filled in when the snapshot is closed). */
  checksum?: string;
  /** Size in bytes (filled in when the snapshot is closed). */
  size?: number;
}

/** Builds a snapshot in a temporary directory; `SnapshotStorage.close` publishes it. */
export interface SnapshotWriter {
  /** Directory to write files into (local:// snapshots may be written there directly). */
  readonly path: string;
  /** Sets the snapshot's meta (required before close). */
  saveMeta(meta: SnapshotMeta): void;
  /** Registers a file written under `path`. */
  addFile(name: string, fileMeta?: FileMeta): void;
  /** Unregisters a file. */
  removeFile(name: string): void;
  /** Names of the registered files. */
  listFiles(): string[];
  /** Metadata of a registered file, or `null`. */
  getFileMeta(name: string): FileMeta | null;
  /** Writes a file durably (computing its checksum) and registers it. */
  writeFile(
    name: string,
    data: Uint8Array | ChunkChain | ReadableStream<Uint8Array>,
    fileMeta?: FileMeta,
  ): Promise<void>;
}

/** Reads a published snapshot. */
export interface SnapshotReader {
  /** Directory holding the snapshot's files. */
  readonly path: string;
  /** The snapshot's meta. */
  loadMeta(): SnapshotMeta;
  /** Names of its files. */
  listFiles(): string[];
  /** Metadata of a file, or `null`. */
  getFileMeta(name: string): FileMeta | null;
  /** A whole file, verified against its checksum. */
  readFile(name: string): Promise<Uint8Array>;
  /** A file as a stream (verified against its checksum at the end). */
  openFile(name: string): ReadableStream<Uint8Array>;
  /** A URI a follower can copy this snapshot from (placeholder until the file service). */
  generateUriForCopy(): string;
}

/** Where snapshots live. */
export interface SnapshotStorage {
  /** Opens the storage: drops a stale temp directory and all but the newest snapshot. */
  init(): Promise<void>;
  /**
   * Starts a new snapshot. One writer at a time: while another writer is open or being
   * published (its `close` has not finished), this rejects with EBUSY.
   */
  create(): Promise<SnapshotWriter>;
  /**
   * Publishes a writer's snapshot (or, for a reader, releases it; closing a reader twice
   * releases it once). A failure leaves the previous snapshot intact and removes the
   * temporary data unless `keepDataOnError`.
   */
  close(target: SnapshotWriter | SnapshotReader, keepDataOnError?: boolean): Promise<void>;
  /** The newest snapshot, or `null` when there is none. */
  open(): Promise<SnapshotReader | null>;
}
