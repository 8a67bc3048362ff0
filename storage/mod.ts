/**
 * Durable Raft state: the segmented log, term/vote meta and snapshots, behind storage URIs
 * (`local://path` on disk, `memory://name` in process, or registered schemes), over a small
 * {@linkcode FileSystem} port with Deno, Bun and Node adapters and an in-memory,
 * crash-simulating adapter for tests.
 *
 * Formats (all integers big-endian, all checksums CRC32C):
 * - Log directory: `log_meta` (checksummed record `{ firstLogIndex }`, replaced atomically),
 *   closed segments `log_<first>_<last>` and one open segment `log_inprogress_<first>`
 *   (20-digit indexes). Each entry is a 32-byte header — magic `"WR"`, version, type, term
 *   (u64), index (u64), payload length, payload CRC, header CRC — then the payload
 *   (CONFIGURATION payloads are CBOR peer lists).
 * - Meta directory: `raft_meta`, a checksummed record `{ term, votedFor }`; temp file,
 *   fsync, rename, directory fsync.
 * - Snapshot directory: `snapshot_<index>/` with the user's files and
 *   `__raft_snapshot_meta` (checksummed record of the meta and of every file's size and
 *   CRC), built in `temp/` and renamed into place; older snapshots go only afterwards.
 * - A checksummed record is `"WRF1"`, body length (u32), body CRC (u32), CBOR body.
 *
 * Guarantees: with `raft_sync` on, an append, truncation, reset, vote or snapshot whose
 * Promise resolved survives kill -9 and power loss. Recovery cuts a torn tail of the open
 * segment (see `SegmentLogStorage.recoveryInfo()`); any other damage refuses to start with
 * EIO naming the file and offset. Failures reject with `RaftException` (EIO, ENOSPC,
 * EINVAL, ESTALE, EBUSY); after a failed fsync the log refuses further writes.
 *
 * @example
 * ```ts
 * import { createLogStorage, createMetaStorage } from "./mod.ts";
 * import { ChunkChain } from "../src/bytes/chunk_chain.ts";
 * import assert from "node:assert/strict";
 *
 * const log = await createLogStorage("memory://mod-example-log");
 * await log.init();
 * await log.appendEntries([{ index: 1, term: 1, type: 2, data: ChunkChain.from("hi") }]);
 * assert.equal(log.lastLogIndex(), 1);
 *
 * const meta = await createMetaStorage("memory://mod-example-meta");
 * await meta.init();
 * assert.equal(meta.getTermAndVotedFor().term, 1);
 * ```
 *
 * @module
 */
export {
  dirName,
  type FileHandle,
  type FileInfo,
  type FileSystem,
  fsError,
  joinPath,
  type OpenOptions,
  readExactly,
  writeFileAtomic,
} from "./fs/file_system.ts";
export { detectRuntime, localFileSystem, type RuntimeName } from "./fs/detect.ts";
export { NodeFileSystem } from "./fs/node.ts";
export { BunFileSystem } from "./fs/bun.ts";
export {
  type CrashOptions,
  type FaultSpec,
  type FsOp,
  MemoryFileSystem,
  sharedMemoryFileSystem,
} from "./fs/memory.ts";
export type { LogStorage, LogStorageOptions } from "./log/log_storage.ts";
export { type LogRecoveryInfo, SegmentLogStorage } from "./log/segment_log_storage.ts";
export { MemoryLogStorage } from "./log/memory_log_storage.ts";
export { TermIndex } from "./log/term_index.ts";
export {
  LocalRaftMetaStorage,
  MemoryRaftMetaStorage,
  type MetaStorageOptions,
  type RaftMetaStorage,
  type TermAndVotedFor,
} from "./meta/meta_storage.ts";
export type {
  FileMeta,
  SnapshotMeta,
  SnapshotReader,
  SnapshotStorage,
  SnapshotWriter,
} from "./snapshot/snapshot.ts";
export {
  LocalSnapshotStorage,
  SNAPSHOT_META_FILE,
  type SnapshotStorageOptions,
} from "./snapshot/local_snapshot_storage.ts";
export { type GCOptions, gcRaftData } from "./gc.ts";
export {
  createLogStorage,
  createMetaStorage,
  createSnapshotStorage,
  type LogStorageFactory,
  type MetaStorageFactory,
  parseStorageUri,
  registerLogStorage,
  registerMetaStorage,
  registerSnapshotStorage,
  type SnapshotStorageFactory,
  type StorageUri,
} from "./uri.ts";
