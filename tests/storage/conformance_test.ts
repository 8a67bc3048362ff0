// Runs the shared conformance suite against every storage implementation: local:// on the
// real runtime file system, the segment log on the crash-simulating memory FS, and memory://.
import { join } from "node:path";
import { detectRuntime, localFileSystem } from "../../storage/fs/detect.ts";
import type { FileSystem } from "../../storage/fs/file_system.ts";
import { NodeFileSystem } from "../../storage/fs/node.ts";
import { MemoryFileSystem } from "../../storage/fs/memory.ts";
import type { LogStorage } from "../../storage/log/log_storage.ts";
import { MemoryLogStorage } from "../../storage/log/memory_log_storage.ts";
import { SegmentLogStorage } from "../../storage/log/segment_log_storage.ts";
import {
  LocalRaftMetaStorage,
  MemoryRaftMetaStorage,
  type RaftMetaStorage,
} from "../../storage/meta/meta_storage.ts";
import { LocalSnapshotStorage } from "../../storage/snapshot/local_snapshot_storage.ts";
import type { SnapshotStorage } from "../../storage/snapshot/snapshot.ts";
import { createLogStorage, createMetaStorage, createSnapshotStorage } from "../../storage/uri.ts";
import {
  type HarnessFactory,
  logStorageConformance,
  metaStorageConformance,
  snapshotStorageConformance,
} from "./_conformance.ts";
import { withTempDir } from "./_helpers.ts";

let unique = 0;
const uniqueName = (kind: string): string => `conformance-${kind}-${Date.now()}-${unique++}`;

async function opened<S extends { init(): Promise<void> }>(s: S): Promise<S> {
  await s.init();
  return s;
}

// --- LogStorage -----------------------------------------------------------------------
const localLog: HarnessFactory<LogStorage> = (fn) =>
  withTempDir((dir) =>
    fn({
      open: async () =>
        opened(await createLogStorage(`local://${join(dir, "log")}`, { maxSegmentSize: 4096 })),
    })
  );
logStorageConformance("local:// segments (real FS, small segments)", localLog);

const localLogNoSync: HarnessFactory<LogStorage> = (fn) =>
  withTempDir((dir) =>
    fn({
      open: async () =>
        opened(new SegmentLogStorage(await localFileSystem(), join(dir, "log"), { sync: false })),
    })
  );
logStorageConformance(
  "local:// segments (real FS, raft_sync off, default segments)",
  localLogNoSync,
);

// The Node adapter (node:fs/promises) runs under every runtime; exercise it explicitly too.
const nodeFsLog: HarnessFactory<LogStorage> = (fn) =>
  withTempDir((dir) =>
    fn({
      open: () =>
        opened(
          new SegmentLogStorage(new NodeFileSystem() as FileSystem, join(dir, "log"), {
            maxSegmentSize: 4096,
          }),
        ),
    })
  );
if (detectRuntime() !== "bun") logStorageConformance("segments via the node:fs adapter", nodeFsLog);

const memFsLog: HarnessFactory<LogStorage> = (fn) => {
  const fs = new MemoryFileSystem();
  return fn({
    open: () => opened(new SegmentLogStorage(fs, "/log", { maxSegmentSize: 2048 })),
  });
};
logStorageConformance("segments on the memory FS", memFsLog);

// The open-file budget (`flags.raft_max_open_log_files`) closing the log's idle files after
// every call: each append, truncation and read then reopens them, with reads racing releases.
/** `log`, asking it to release its idle files after each call (queued behind the call). */
function releasingAfterEachCall(log: SegmentLogStorage): LogStorage {
  return new Proxy(log, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function" || prop === "releaseIdleFiles") return value;
      return (...args: unknown[]) => {
        const result = value.apply(target, args);
        target.releaseIdleFiles();
        return result;
      };
    },
  });
}
const releasingLocalLog: HarnessFactory<LogStorage> = (fn) =>
  withTempDir((dir) =>
    fn({
      open: async () =>
        releasingAfterEachCall(
          await opened(
            new SegmentLogStorage(await localFileSystem(), join(dir, "log"), {
              maxSegmentSize: 4096,
            }),
          ),
        ),
    })
  );
logStorageConformance(
  "local:// segments whose idle files are closed after every call",
  releasingLocalLog,
);
const releasingMemFsLog: HarnessFactory<LogStorage> = (fn) => {
  const fs = new MemoryFileSystem();
  return fn({
    open: async () =>
      releasingAfterEachCall(
        await opened(new SegmentLogStorage(fs, "/log", { maxSegmentSize: 2048 })),
      ),
  });
};
logStorageConformance(
  "segments on the memory FS whose idle files are closed after every call",
  releasingMemFsLog,
);

const memoryLog: HarnessFactory<LogStorage> = async (fn) => {
  const name = uniqueName("log");
  try {
    await fn({ open: async () => opened(await createLogStorage(`memory://${name}`)) });
  } finally {
    MemoryLogStorage.destroy(name);
  }
};
logStorageConformance("memory://", memoryLog);

// --- RaftMetaStorage ------------------------------------------------------------------
const localMeta: HarnessFactory<RaftMetaStorage> = (fn) =>
  withTempDir((dir) =>
    fn({ open: async () => opened(await createMetaStorage(`local://${join(dir, "meta")}`)) })
  );
metaStorageConformance("local:// (real FS)", localMeta);

const memFsMeta: HarnessFactory<RaftMetaStorage> = (fn) => {
  const fs = new MemoryFileSystem();
  return fn({ open: () => opened(new LocalRaftMetaStorage(fs, "/meta")) });
};
metaStorageConformance("file on the memory FS", memFsMeta);

const memoryMeta: HarnessFactory<RaftMetaStorage> = async (fn) => {
  const name = uniqueName("meta");
  try {
    await fn({ open: async () => opened(await createMetaStorage(`memory://${name}`)) });
  } finally {
    MemoryRaftMetaStorage.destroy(name);
  }
};
metaStorageConformance("memory://", memoryMeta);

// --- SnapshotStorage ------------------------------------------------------------------
const localSnapshot: HarnessFactory<SnapshotStorage> = (fn) =>
  withTempDir((dir) =>
    fn({ open: async () => opened(await createSnapshotStorage(`local://${join(dir, "snap")}`)) })
  );
snapshotStorageConformance("local:// (real FS)", localSnapshot);

const nodeFsSnapshot: HarnessFactory<SnapshotStorage> = (fn) =>
  withTempDir((dir) =>
    fn({ open: () => opened(new LocalSnapshotStorage(new NodeFileSystem(), join(dir, "snap"))) })
  );
if (detectRuntime() !== "bun") {
  snapshotStorageConformance("directories via the node:fs adapter", nodeFsSnapshot);
}

const memFsSnapshot: HarnessFactory<SnapshotStorage> = (fn) => {
  const fs = new MemoryFileSystem();
  return fn({ open: () => opened(new LocalSnapshotStorage(fs, "/snap")) });
};
snapshotStorageConformance("directories on the memory FS", memFsSnapshot);

const memorySnapshot: HarnessFactory<SnapshotStorage> = (fn) => {
  const name = uniqueName("snap");
  return fn({ open: async () => opened(await createSnapshotStorage(`memory://${name}`)) });
};
snapshotStorageConformance("memory://", memorySnapshot);
