/**
 * The storage URI registry (braft's `new_instance(uri)`): `local://path`, `memory://name`
 * and user-registered schemes, separately for log, meta and snapshot storage.
 *
 * @module
 */

import { RaftError, RaftException } from "../src/errors/status.ts";
import { localFileSystem } from "./fs/detect.ts";
import { sharedMemoryFileSystem } from "./fs/memory.ts";
import type { LogStorage, LogStorageOptions } from "./log/log_storage.ts";
import { MemoryLogStorage } from "./log/memory_log_storage.ts";
import { SegmentLogStorage } from "./log/segment_log_storage.ts";
import {
  LocalRaftMetaStorage,
  MemoryRaftMetaStorage,
  type MetaStorageOptions,
  type RaftMetaStorage,
} from "./meta/meta_storage.ts";
import {
  LocalSnapshotStorage,
  type SnapshotStorageOptions,
} from "./snapshot/local_snapshot_storage.ts";
import type { SnapshotStorage } from "./snapshot/snapshot.ts";

/** A parsed storage URI. */
export interface StorageUri {
  /** The scheme, e.g. `"local"`. */
  scheme: string;
  /** Everything after `://`, with whitespace removed (as braft). */
  path: string;
}

/**
 * Parses `scheme://parameters`, stripping all whitespace from the parameters (as braft).
 *
 * @param uri The URI.
 * @returns Scheme and path.
 * @throws {RaftException} EINVAL when the URI has no scheme or an empty path.
 *
 * @example
 * ```ts
 * import { parseStorageUri } from "./uri.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(parseStorageUri("local:// /data/log"), { scheme: "local", path: "/data/log" });
 * ```
 */
export function parseStorageUri(uri: string): StorageUri {
  const m = /^\s*([A-Za-z][A-Za-z0-9+.-]*):\/\/(.*)$/s.exec(uri);
  const path = m?.[2]?.replace(/\s+/g, "") ?? "";
  if (!m || path.length === 0) {
    throw RaftException.of(
      RaftError.EINVAL,
      `Cannot parse storage uri "${uri}": expected scheme://path`,
    );
  }
  return { scheme: m[1]!.toLowerCase(), path };
}

/** Builds a log storage for a URI path (the part after `scheme://`). */
export type LogStorageFactory = (
  path: string,
  options: LogStorageOptions,
) => LogStorage | Promise<LogStorage>;
/** Builds a meta storage for a URI path. */
export type MetaStorageFactory = (
  path: string,
  options: MetaStorageOptions,
) => RaftMetaStorage | Promise<RaftMetaStorage>;
/** Builds a snapshot storage for a URI path. */
export type SnapshotStorageFactory = (
  path: string,
  options: SnapshotStorageOptions,
) => SnapshotStorage | Promise<SnapshotStorage>;

const logFactories = new Map<string, LogStorageFactory>([
  ["local", async (path, options) => new SegmentLogStorage(await localFileSystem(), path, options)],
  ["memory", (path) => new MemoryLogStorage(path)],
]);
const metaFactories = new Map<string, MetaStorageFactory>([
  [
    "local",
    async (path, options) => new LocalRaftMetaStorage(await localFileSystem(), path, options),
  ],
  ["memory", (path) => new MemoryRaftMetaStorage(path)],
]);
const snapshotFactories = new Map<string, SnapshotStorageFactory>([
  [
    "local",
    async (path, options) =>
      new LocalSnapshotStorage(options.fs ?? await localFileSystem(), path, options),
  ],
  [
    "memory",
    (path, options) =>
      new LocalSnapshotStorage(
        sharedMemoryFileSystem(),
        `/memory-snapshot/${encodeURIComponent(path)}`,
        options,
      ),
  ],
]);

function checkScheme(scheme: string): string {
  if (!/^[A-Za-z][A-Za-z0-9+.-]*$/.test(scheme)) {
    throw RaftException.of(
      RaftError.EINVAL,
      `Cannot register storage scheme "${scheme}": invalid name`,
    );
  }
  return scheme.toLowerCase();
}

/**
 * Registers (or replaces) the log storage behind `scheme://`.
 *
 * @param scheme The scheme, e.g. `"rocks"`.
 * @param factory Builds a storage for a URI path.
 *
 * @example
 * ```ts
 * import { createLogStorage, registerLogStorage } from "./uri.ts";
 * import { MemoryLogStorage } from "./log/memory_log_storage.ts";
 * import assert from "node:assert/strict";
 * registerLogStorage("mine", (path) => new MemoryLogStorage(`mine-${path}`));
 * assert.ok(await createLogStorage("mine://x") instanceof MemoryLogStorage);
 * ```
 */
export function registerLogStorage(scheme: string, factory: LogStorageFactory): void {
  logFactories.set(checkScheme(scheme), factory);
}

/**
 * Registers (or replaces) the meta storage behind `scheme://`.
 *
 * @param scheme The scheme.
 * @param factory Builds a storage for a URI path.
 */
export function registerMetaStorage(scheme: string, factory: MetaStorageFactory): void {
  metaFactories.set(checkScheme(scheme), factory);
}

/**
 * Registers (or replaces) the snapshot storage behind `scheme://`.
 *
 * @param scheme The scheme.
 * @param factory Builds a storage for a URI path.
 */
export function registerSnapshotStorage(scheme: string, factory: SnapshotStorageFactory): void {
  snapshotFactories.set(checkScheme(scheme), factory);
}

function lookup<T>(
  kind: string,
  factories: Map<string, T>,
  uri: string,
): { factory: T; path: string } {
  const { scheme, path } = parseStorageUri(uri);
  const factory = factories.get(scheme);
  if (!factory) {
    throw RaftException.of(
      RaftError.EINVAL,
      `Cannot create ${kind} storage for "${uri}": unknown scheme "${scheme}" (known: ${
        [...factories.keys()].join(", ")
      })`,
    );
  }
  return { factory, path };
}

/**
 * Creates (but does not `init()`) the log storage for a URI.
 *
 * @param uri `local://dir`, `memory://name` or a registered scheme.
 * @param options Overrides of `flags`.
 * @returns The storage.
 * @throws {RaftException} EINVAL for a malformed URI or an unknown scheme.
 *
 * @example
 * ```ts
 * import { createLogStorage } from "./uri.ts";
 * import assert from "node:assert/strict";
 * const log = await createLogStorage("memory://doc-log");
 * await log.init();
 * assert.equal(log.lastLogIndex(), 0);
 * ```
 */
export async function createLogStorage(
  uri: string,
  options: LogStorageOptions = {},
): Promise<LogStorage> {
  const { factory, path } = lookup("log", logFactories, uri);
  return await factory(path, options);
}

/**
 * Creates (but does not `init()`) the meta storage for a URI.
 *
 * @param uri `local://dir`, `memory://name` or a registered scheme.
 * @param options Overrides of `flags`.
 * @returns The storage.
 * @throws {RaftException} EINVAL for a malformed URI or an unknown scheme.
 */
export async function createMetaStorage(
  uri: string,
  options: MetaStorageOptions = {},
): Promise<RaftMetaStorage> {
  const { factory, path } = lookup("meta", metaFactories, uri);
  return await factory(path, options);
}

/**
 * Creates (but does not `init()`) the snapshot storage for a URI.
 *
 * @param uri `local://dir`, `memory://name` or a registered scheme.
 * @param options Overrides of `flags`.
 * @returns The storage.
 * @throws {RaftException} EINVAL for a malformed URI or an unknown scheme.
 */
export async function createSnapshotStorage(
  uri: string,
  options: SnapshotStorageOptions = {},
): Promise<SnapshotStorage> {
  const { factory, path } = lookup("snapshot", snapshotFactories, uri);
  return await factory(path, options);
}
