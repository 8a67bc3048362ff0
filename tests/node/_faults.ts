/**
 * A `faultmem://` log storage for node tests: the real segment log on a crash-simulating
 * in-memory file system, so a test can inject EIO/ENOSPC into one node's disk
 * (`faultFs.injectFault({ op: "write", path: diskPath(...) })`) or make it slow
 * (`setDiskDelay`).
 */

import type { LogEntry } from "../../src/core/entry.ts";
import { MemoryFileSystem } from "../../storage/fs/memory.ts";
import type { LogStorage } from "../../storage/log/log_storage.ts";
import { SegmentLogStorage } from "../../storage/log/segment_log_storage.ts";
import { registerLogStorage } from "../../storage/uri.ts";

/** The file system behind every `faultmem://` log (paths are unique per cluster). */
export const faultFs: MemoryFileSystem = new MemoryFileSystem();

const delays = new Map<string, number>();

/**
 * Makes every append to logs whose path contains `pathPart` take `ms` longer (0 removes it).
 *
 * @param pathPart Part of the log's path, e.g. from `Cluster.diskPath`.
 * @param ms Extra time per append.
 */
export function setDiskDelay(pathPart: string, ms: number): void {
  if (ms <= 0) delays.delete(pathPart);
  else delays.set(pathPart, ms);
}

function delayFor(path: string): number {
  let ms = 0;
  for (const [part, d] of delays) if (path.includes(part)) ms = Math.max(ms, d);
  return ms;
}

/** A segment log whose appends can be slowed down. */
class SlowLog implements LogStorage {
  readonly #inner: SegmentLogStorage;
  readonly #path: string;
  constructor(inner: SegmentLogStorage, path: string) {
    this.#inner = inner;
    this.#path = path;
  }
  init(): Promise<void> {
    return this.#inner.init();
  }
  firstLogIndex(): number {
    return this.#inner.firstLogIndex();
  }
  lastLogIndex(): number {
    return this.#inner.lastLogIndex();
  }
  getTerm(index: number): number {
    return this.#inner.getTerm(index);
  }
  getEntry(index: number): Promise<LogEntry | null> {
    return this.#inner.getEntry(index);
  }
  getEntries(lo: number, hi: number, maxBytes?: number): Promise<LogEntry[]> {
    return this.#inner.getEntries(lo, hi, maxBytes);
  }
  async appendEntries(entries: readonly LogEntry[]): Promise<number> {
    const ms = delayFor(this.#path);
    if (ms > 0) await new Promise((r) => setTimeout(r, ms));
    return await this.#inner.appendEntries(entries);
  }
  truncatePrefix(firstIndexKept: number): Promise<void> {
    return this.#inner.truncatePrefix(firstIndexKept);
  }
  truncateSuffix(lastIndexKept: number): Promise<void> {
    return this.#inner.truncateSuffix(lastIndexKept);
  }
  reset(nextLogIndex: number): Promise<void> {
    return this.#inner.reset(nextLogIndex);
  }
  configurationEntries(): LogEntry[] {
    return this.#inner.configurationEntries();
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
}

registerLogStorage("faultmem", (path, options) => {
  const dir = `/faultmem/${path}`;
  return new SlowLog(new SegmentLogStorage(faultFs, dir, options), dir);
});
