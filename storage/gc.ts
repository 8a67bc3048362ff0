/**
 * `gcRaftData`: destroys a group member's log, meta and snapshots (braft `gc_raft_data`).
 *
 * @module
 */

import { RaftError, RaftException } from "../src/errors/status.ts";
import { localFileSystem } from "./fs/detect.ts";
import { dirName, type FileSystem } from "./fs/file_system.ts";
import { sharedMemoryFileSystem } from "./fs/memory.ts";
import { MemoryLogStorage } from "./log/memory_log_storage.ts";
import { MemoryRaftMetaStorage } from "./meta/meta_storage.ts";
import { parseStorageUri } from "./uri.ts";

/** What `gcRaftData` destroys (braft `GCOptions`). */
export interface GCOptions {
  /** The log storage URI (`local://` or `memory://`). */
  logUri: string;
  /** The meta storage URI. */
  raftMetaUri: string;
  /** The snapshot storage URI; empty or absent when the node had none. */
  snapshotUri?: string;
}

/**
 * Destroys the log, meta and snapshots stored under the given URIs, for a node that is shut
 * down and will not come back (e.g. after it was removed from its group). A `local://`
 * directory is first renamed to `<path>.tmp` and then deleted, as braft does, so a crash
 * never leaves a half-deleted store under the original name. Missing data is not an error.
 * Only the built-in schemes are known; a registered scheme gets EINVAL.
 *
 * @param options The URIs.
 * @throws {RaftException} EINVAL for a bad or unknown URI; the file system's error.
 *
 * @example
 * ```ts
 * import { createLogStorage, gcRaftData } from "./mod.ts";
 * import { ChunkChain } from "../src/bytes/chunk_chain.ts";
 * import assert from "node:assert/strict";
 * const log = await createLogStorage("memory://gc-example");
 * await log.init();
 * await log.appendEntries([{ index: 1, term: 1, type: 2, data: ChunkChain.from("x") }]);
 * await log.close();
 * await gcRaftData({ logUri: "memory://gc-example", raftMetaUri: "memory://gc-example-meta" });
 * const again = await createLogStorage("memory://gc-example");
 * await again.init();
 * assert.equal(again.lastLogIndex(), 0);
 * ```
 */
export async function gcRaftData(options: GCOptions): Promise<void> {
  await gcOne("log", options.logUri);
  await gcOne("meta", options.raftMetaUri);
  if (options.snapshotUri) await gcOne("snapshot", options.snapshotUri);
}

async function gcOne(kind: "log" | "meta" | "snapshot", uri: string): Promise<void> {
  const { scheme, path } = parseStorageUri(uri);
  if (scheme === "local") return await removeDurably(await localFileSystem(), path);
  if (scheme === "memory") {
    if (kind === "log") MemoryLogStorage.destroy(path);
    else if (kind === "meta") MemoryRaftMetaStorage.destroy(path);
    else {
      await removeDurably(
        sharedMemoryFileSystem(),
        `/memory-snapshot/${encodeURIComponent(path)}`,
      );
    }
    return;
  }
  throw RaftException.of(
    RaftError.EINVAL,
    `Cannot gc ${kind} storage "${uri}": unknown scheme "${scheme}"`,
  );
}

async function removeDurably(fs: FileSystem, path: string): Promise<void> {
  const tmp = `${path}.tmp`;
  if (await fs.stat(path) !== null) {
    if (await fs.stat(tmp) !== null) await fs.remove(tmp, { recursive: true });
    await fs.rename(path, tmp);
    await fs.syncDir(dirName(path));
  }
  if (await fs.stat(tmp) !== null) await fs.remove(tmp, { recursive: true });
}
