// Shared helpers for the storage tests (not a test file itself).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChunkChain } from "../../src/bytes/chunk_chain.ts";
import { Configuration } from "../../src/conf/configuration.ts";
import { EntryType, type LogEntry } from "../../src/core/entry.ts";
import { RaftException } from "../../src/errors/status.ts";

/** Runs `fn` with a fresh directory under the OS temp dir, removed afterwards. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "webraft-storage-"));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Deterministic payload for an index: length and bytes derived from it. */
export function payloadFor(index: number, size?: number): Uint8Array {
  const n = size ?? (index * 7919) % 300;
  const out = new Uint8Array(n);
  for (let k = 0; k < n; k++) out[k] = (index * 31 + k * 7) & 0xff;
  return out;
}

/** A DATA entry with the deterministic payload. */
export function dataEntry(index: number, term: number, size?: number): LogEntry {
  return { index, term, type: EntryType.DATA, data: ChunkChain.from(payloadFor(index, size)) };
}

/** A CONFIGURATION entry. */
export function confEntry(index: number, term: number, peers: string, oldPeers?: string): LogEntry {
  return {
    index,
    term,
    type: EntryType.CONFIGURATION,
    data: new ChunkChain(),
    conf: oldPeers
      ? { peers: Configuration.parse(peers), oldPeers: Configuration.parse(oldPeers) }
      : { peers: Configuration.parse(peers) },
  };
}

/** Entries `[from, to]` with `term`. */
export function dataEntries(from: number, to: number, term: number): LogEntry[] {
  const out: LogEntry[] = [];
  for (let i = from; i <= to; i++) out.push(dataEntry(i, term));
  return out;
}

/** Asserts that `promise` rejects with a RaftException of `code`; returns it. */
export async function rejectsWith(promise: Promise<unknown>, code: number): Promise<RaftException> {
  try {
    await promise;
  } catch (e) {
    if (!(e instanceof RaftException)) throw new Error(`expected RaftException, got ${String(e)}`);
    if (e.status.code !== code) {
      throw new Error(`expected code ${code}, got ${e.status.toString()}`);
    }
    return e;
  }
  throw new Error(`expected rejection with code ${code}, but it resolved`);
}

/** Whether an entry equals the expected one (index, term, type, payload or conf). */
export function sameEntry(a: LogEntry | null | undefined, b: LogEntry): boolean {
  if (!a) return false;
  if (a.index !== b.index || a.term !== b.term || a.type !== b.type) return false;
  if (b.type === EntryType.CONFIGURATION) {
    return !!a.conf && a.conf.peers.equals(b.conf!.peers) &&
      (a.conf.oldPeers ?? new Configuration()).equals(b.conf!.oldPeers ?? new Configuration());
  }
  return a.data.equals(b.data);
}
