/**
 * A hand-driven network of cores for protocol scenario tests: every Ready is persisted at
 * once, messages queue until a test delivers (or drops) them.
 *
 * @module
 */

import { ChunkChain } from "../../src/bytes/chunk_chain.ts";
import { Configuration } from "../../src/conf/configuration.ts";
import { type ConfigurationPayload, EntryType, type LogEntry } from "../../src/core/entry.ts";
import { MemoryCoreStorage, RaftCore, type RaftCoreOptions } from "../../src/core/mod.ts";
import type { Message, ReadState, Ready } from "../../src/core/types.ts";
import { Prng } from "../../src/util/prng.ts";

/** Peer key of node `i` (1-based). */
export function key(i: number): string {
  return `n${i}:1:0`;
}

/**
 * Builds a log from a list of terms: entry 1 is a CONFIGURATION entry with `conf`, the
 * rest are DATA entries named by index and term.
 *
 * @param terms Term of each entry, index 1 first.
 * @param conf The membership in entry 1.
 * @returns The entries.
 */
export function logOf(terms: readonly number[], conf: ConfigurationPayload): LogEntry[] {
  return terms.map((term, i) =>
    i === 0
      ? { index: 1, term, type: EntryType.CONFIGURATION, data: new ChunkChain(), conf }
      : { index: i + 1, term, type: EntryType.DATA, data: ChunkChain.from(`${i + 1}@${term}`) }
  );
}

/** A network of cores driven by hand. */
export class ManualNet {
  /** Cores by key. */
  readonly cores: Map<string, RaftCore> = new Map();
  /** Storage by key. */
  readonly storages: Map<string, MemoryCoreStorage> = new Map();
  /** Messages sent and not yet delivered. */
  queue: Message[] = [];
  /** Applied entries per node. */
  readonly applied: Map<string, LogEntry[]> = new Map();
  /** Read states per node. */
  readonly reads: Map<string, ReadState[]> = new Map();
  /** Every Ready handed out, per node (for ordering checks). */
  readonly readies: Map<string, Ready[]> = new Map();
  /** Keys in order. */
  readonly ids: string[];
  readonly #opts: Partial<RaftCoreOptions>;
  readonly #seed: number;

  /**
   * @param n Number of nodes (all voters unless `init` preloads another membership).
   * @param opts Core options for all nodes.
   * @param init Optional storage preloading per node.
   * @param seed PRNG seed.
   */
  constructor(
    n: number,
    opts: Partial<RaftCoreOptions> = {},
    init?: (id: string, s: MemoryCoreStorage) => void,
    seed = 1,
  ) {
    this.ids = Array.from({ length: n }, (_, i) => key(i + 1));
    this.#opts = opts;
    this.#seed = seed;
    for (const id of this.ids) {
      const s = new MemoryCoreStorage();
      init?.(id, s);
      this.storages.set(id, s);
      this.applied.set(id, []);
      this.reads.set(id, []);
      this.readies.set(id, []);
      this.#start(id);
    }
  }

  #start(id: string): void {
    const s = this.storages.get(id)!;
    this.cores.set(
      id,
      new RaftCore({
        electionTick: 10,
        heartbeatTick: 1,
        ...this.#opts,
        id,
        storage: s,
        prng: new Prng(this.#seed * 31 + this.ids.indexOf(id)),
        initialConf: { peers: new Configuration(this.ids) },
      }),
    );
  }

  /**
   * @param id Node key.
   * @returns Its core.
   */
  core(id: string): RaftCore {
    return this.cores.get(id)!;
  }

  /**
   * Replaces a node's core by a fresh one over the same storage (crash + restart: everything
   * persisted survives, in-memory state does not).
   *
   * @param id Node key.
   */
  restart(id: string): void {
    this.queue = this.queue.filter((m) => m.to !== id && m.from !== id);
    this.#start(id);
  }

  /** Processes every pending Ready of every node (persisting at once). */
  drain(): void {
    let again = true;
    while (again) {
      again = false;
      for (const [id, c] of this.cores) {
        while (c.hasReady()) {
          again = true;
          const rd = c.ready();
          this.readies.get(id)!.push(rd);
          const s = this.storages.get(id)!;
          this.queue.push(...rd.messages);
          if (rd.snapshot !== undefined) s.applySnapshot(rd.snapshot);
          s.append(rd.entries);
          if (rd.hardState !== undefined) s.setHardState(rd.hardState);
          this.queue.push(...rd.messagesAfterPersist);
          this.applied.get(id)!.push(...rd.committedEntries);
          this.reads.get(id)!.push(...rd.readStates);
          c.advance(rd);
        }
      }
    }
  }

  /**
   * Delivers queued messages matching `filter` (others stay queued).
   *
   * @param filter Which to deliver (default all).
   * @returns How many were delivered.
   */
  deliver(filter: (m: Message) => boolean = () => true): number {
    const now = this.queue;
    this.queue = [];
    let n = 0;
    for (const m of now) {
      if (!filter(m)) {
        this.queue.push(m);
        continue;
      }
      n++;
      this.cores.get(m.to)?.step(m);
    }
    this.drain();
    return n;
  }

  /**
   * Drops queued messages matching `filter`.
   *
   * @param filter Which to drop (default all).
   */
  drop(filter: (m: Message) => boolean = () => true): void {
    this.queue = this.queue.filter((m) => !filter(m));
  }

  /**
   * Delivers until quiet, dropping messages to or from `down` nodes.
   *
   * @param down Nodes that are cut off.
   */
  stabilize(down: readonly string[] = []): void {
    this.drain();
    for (let i = 0; i < 1000 && this.queue.length > 0; i++) {
      this.drop((m) => down.includes(m.to) || down.includes(m.from));
      this.deliver();
    }
  }

  /**
   * Elects `id`: it campaigns (pre-vote, then vote) and the network stabilizes.
   *
   * @param id Node key.
   * @param down Nodes cut off.
   */
  elect(id: string, down: readonly string[] = []): void {
    this.core(id).campaign();
    this.stabilize(down);
  }

  /**
   * Ticks every live node `n` times, stabilizing after each tick.
   *
   * @param n Ticks.
   * @param down Nodes cut off (not ticked).
   */
  tick(n: number, down: readonly string[] = []): void {
    for (let i = 0; i < n; i++) {
      for (const [id, c] of this.cores) if (!down.includes(id)) c.tick();
      this.stabilize(down);
    }
  }

  /**
   * @param id Node key.
   * @returns The terms of its log, index 1 first (compacted entries as 0).
   */
  terms(id: string): number[] {
    const c = this.core(id);
    const out: number[] = [];
    for (let i = 1; i <= c.lastIndex(); i++) out.push(c.termAt(i) ?? 0);
    return out;
  }
}
