/**
 * The kv example's replicated state: a map of string keys to string values with a revision
 * counter, the commands that change it (encoded as JSON log entries), and the state machine
 * that applies them and tells watchers about each committed change.
 *
 * @module
 */

import {
  type Closure,
  type Iterator,
  type LeaderChangeContext,
  RaftError,
  type RaftException,
  type SnapshotReader,
  type SnapshotWriter,
  StateMachine,
  Status,
} from "../../mod.ts";

/** A stored value and the revision that last wrote it. */
export interface Entry {
  /** The value. */
  value: string;
  /** The store's revision when this value was written. */
  revision: number;
}

/** A command, as proposed by the leader and applied on every replica. */
export type Command =
  | { op: "put"; key: string; value: string }
  | { op: "delete"; key: string }
  | {
    op: "cas";
    key: string;
    /** Expected current value; null: the key must be absent. */
    expected?: string | null;
    /** Expected current revision; 0: the key must be absent. */
    expectedRevision?: number;
    value: string;
  };

/** What applying a command did, handed back to the proposer's closure. */
export type Outcome =
  | { ok: true; revision: number }
  | { ok: false; current: Entry | null }; // delete of a missing key, or a CAS mismatch

/** A committed change, as watchers see it. */
export type Change =
  | { type: "put"; key: string; value: string; revision: number }
  | { type: "delete"; key: string; revision: number }
  | { type: "reset"; revision: number }; // the map was replaced by a snapshot

/** The proposer's closure: the state machine writes the outcome before running it. */
export class CommandClosure implements Closure {
  /** Filled in by the state machine when it applies the command. */
  outcome: Outcome | null = null;
  readonly #settle: (status: Status, outcome: Outcome | null) => void;

  /** @param settle Called once with the status and the outcome (null when not applied). */
  constructor(settle: (status: Status, outcome: Outcome | null) => void) {
    this.#settle = settle;
  }

  /** Settles the proposal. */
  run(status: Status): void {
    this.#settle(status, this.outcome);
  }
}

/** Encodes a command as a log entry's payload. */
export function encodeCommand(cmd: Command): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(cmd));
}

/** Decodes a log entry's payload; null when it is not a well-formed command. */
export function decodeCommand(bytes: Uint8Array): Command | null {
  let c: unknown;
  try {
    c = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return null;
  }
  if (typeof c !== "object" || c === null) return null;
  const o = c as Record<string, unknown>;
  if (typeof o.key !== "string") return null;
  if (o.op === "delete") return { op: "delete", key: o.key };
  if (typeof o.value !== "string") return null;
  if (o.op === "put") return { op: "put", key: o.key, value: o.value };
  if (o.op !== "cas") return null;
  if (o.expectedRevision !== undefined) {
    if (typeof o.expectedRevision !== "number") return null;
    return { op: "cas", key: o.key, expectedRevision: o.expectedRevision, value: o.value };
  }
  if (o.expected !== null && typeof o.expected !== "string") return null;
  return { op: "cas", key: o.key, expected: o.expected, value: o.value };
}

/** The key-value state machine. */
export class KvStore extends StateMachine {
  readonly #map = new Map<string, Entry>();
  /** Revision of the last change (0: none yet). */
  revision = 0;
  /** The term this node leads in, set by `onLeaderStart`; -1 when not leading. */
  leaderTerm = -1;
  readonly #log: (line: string) => void;
  readonly #listeners = new Set<(change: Change) => void>();
  readonly #shutdownListeners = new Set<() => void>();

  /** @param log Where to write one-line notes. */
  constructor(log: (line: string) => void) {
    super();
    this.#log = log;
  }

  /** The entry of `key`, if any. */
  get(key: string): Entry | null {
    return this.#map.get(key) ?? null;
  }

  /** Calls `fn` with every committed change applied from now on; returns the unsubscriber. */
  subscribe(fn: (change: Change) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Calls `fn` once when the state machine shuts down. */
  onClose(fn: () => void): () => void {
    this.#shutdownListeners.add(fn);
    return () => this.#shutdownListeners.delete(fn);
  }

  /** Applies one command: deterministic on every replica. */
  #execute(cmd: Command): Outcome {
    const current = this.#map.get(cmd.key) ?? null;
    if (cmd.op === "delete") {
      if (current === null) return { ok: false, current: null };
      this.#map.delete(cmd.key);
      this.#emit({ type: "delete", key: cmd.key, revision: ++this.revision });
      return { ok: true, revision: this.revision };
    }
    if (cmd.op === "cas") {
      const matches = cmd.expectedRevision !== undefined
        ? (current?.revision ?? 0) === cmd.expectedRevision
        : (current?.value ?? null) === cmd.expected;
      if (!matches) return { ok: false, current };
    }
    const revision = ++this.revision;
    this.#map.set(cmd.key, { value: cmd.value, revision });
    this.#emit({ type: "put", key: cmd.key, value: cmd.value, revision });
    return { ok: true, revision };
  }

  #emit(change: Change): void {
    for (const fn of this.#listeners) fn(change);
  }

  override onApply(iter: Iterator): void {
    for (; iter.valid(); iter.next()) {
      const cmd = decodeCommand(iter.data().toUint8Array());
      const done = iter.done();
      if (cmd === null) {
        this.#log(`skipping a malformed entry at index ${iter.index()}`);
        done?.run(new Status(RaftError.EINVAL, "Malformed kv command"));
        continue;
      }
      const outcome = this.#execute(cmd);
      if (done instanceof CommandClosure) done.outcome = outcome;
      done?.run(Status.OK());
    }
  }

  override async onSnapshotSave(writer: SnapshotWriter, done: Closure): Promise<void> {
    // Captured synchronously: the state at the snapshot's index.
    const text = JSON.stringify({
      revision: this.revision,
      entries: [...this.#map].map(([k, e]) => [k, e.value, e.revision]),
    });
    try {
      await writer.writeFile("data", new TextEncoder().encode(text));
      done.run(Status.OK());
    } catch (e) {
      this.#log(`snapshot save failed: ${errorText(e)}`);
      done.run(new Status(RaftError.EIO, `Cannot save the kv snapshot: ${errorText(e)}`));
    }
  }

  override async onSnapshotLoad(reader: SnapshotReader): Promise<void> {
    const text = new TextDecoder().decode(await reader.readFile("data"));
    const snap = JSON.parse(text) as { revision?: unknown; entries?: unknown };
    if (typeof snap.revision !== "number" || !Array.isArray(snap.entries)) {
      throw new Error(`Snapshot file "data" does not hold a kv map: "${text.slice(0, 40)}"`);
    }
    const map = new Map<string, Entry>();
    for (const e of snap.entries as unknown[]) {
      if (
        !Array.isArray(e) || typeof e[0] !== "string" || typeof e[1] !== "string" ||
        typeof e[2] !== "number"
      ) throw new Error(`Snapshot file "data" holds a bad entry: ${JSON.stringify(e)}`);
      map.set(e[0], { value: e[1], revision: e[2] });
    }
    this.#map.clear();
    for (const [k, v] of map) this.#map.set(k, v);
    this.revision = snap.revision;
    this.#emit({ type: "reset", revision: this.revision });
    this.#log(`loaded snapshot: ${map.size} keys, revision ${this.revision}`);
  }

  override onLeaderStart(term: number): void {
    this.leaderTerm = term;
    this.#log(`became leader in term ${term} (revision ${this.revision})`);
  }

  override onLeaderStop(status: Status): void {
    this.leaderTerm = -1;
    this.#log(`stopped leading: ${status}`);
  }

  override onStartFollowing(ctx: LeaderChangeContext): void {
    this.#log(`following ${ctx.leaderId} in term ${ctx.term}`);
  }

  override onError(error: RaftException): void {
    this.#log(`ERROR: ${error.message}`);
  }

  override onShutdown(): void {
    for (const fn of [...this.#shutdownListeners]) fn();
    this.#shutdownListeners.clear();
    this.#log("state machine shut down");
  }
}

/** The message of an error or anything thrown. */
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
