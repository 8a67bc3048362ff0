/**
 * Per-follower replication progress (probe / replicate / snapshot) and the in-flight window.
 *
 * @module
 */

import { invariant } from "../util/_assert.ts";

/** Replication state of one follower. */
export type ProgressState = "probe" | "replicate" | "snapshot";

/**
 * A bounded window of in-flight AppendEntries (their last indexes and payload bytes).
 */
export class Inflights {
  #last: number[] = [];
  #bytes: number[] = [];
  #head = 0;
  #totalBytes = 0;
  readonly #maxCount: number;
  readonly #maxBytes: number;

  /**
   * @param maxCount Maximum messages in flight.
   * @param maxBytes Maximum payload bytes in flight (0 = unlimited).
   */
  constructor(maxCount: number, maxBytes: number) {
    this.#maxCount = maxCount;
    this.#maxBytes = maxBytes;
  }

  /** Messages in flight. */
  get count(): number {
    return this.#last.length - this.#head;
  }

  /** Whether no more messages may be sent. */
  full(): boolean {
    return this.count >= this.#maxCount ||
      (this.#maxBytes > 0 && this.#totalBytes >= this.#maxBytes);
  }

  /**
   * Records a message.
   *
   * @param last Its last entry index.
   * @param bytes Its payload size.
   */
  add(last: number, bytes: number): void {
    this.#last.push(last);
    this.#bytes.push(bytes);
    this.#totalBytes += bytes;
  }

  /**
   * Frees the messages whose last index is ≤ `index`.
   *
   * @param index Acknowledged index.
   */
  freeTo(index: number): void {
    while (this.#head < this.#last.length && this.#last[this.#head]! <= index) {
      this.#totalBytes -= this.#bytes[this.#head]!;
      this.#head++;
    }
    if (this.#head > 64 && this.#head * 2 > this.#last.length) {
      this.#last = this.#last.slice(this.#head);
      this.#bytes = this.#bytes.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Empties the window. */
  reset(): void {
    this.#last = [];
    this.#bytes = [];
    this.#head = 0;
    this.#totalBytes = 0;
  }
}

/**
 * The leader's view of one follower.
 *
 * Invariants: `match < next`; in `snapshot` state `pendingSnapshot > 0`.
 */
export class Progress {
  /** Highest index known to be replicated (persisted) on the follower. */
  match = 0;
  /** Next index to send. */
  next: number;
  /** Replication state. */
  state: ProgressState = "probe";
  /** Index of the snapshot being installed (snapshot state). */
  pendingSnapshot = 0;
  /** In probe state: one probe is outstanding. */
  probeSent = false;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /** Core tick of the last response. */
  lastRespTick = 0;
  /** Core tick of the last acknowledgement that advanced `match`. */
  lastAckTick = 0;
  /** Core tick of the last AppendEntries with entries or probe sent. */
  lastSendTick = 0;
  /** Commit index carried by the last AppendEntries sent. */
  sentCommit = 0;
  /** Highest echoed `sentTick` (leader lease). */
  ackedSentTick = -Infinity;
  /** Highest echoed read-index round. */
  readSeq = 0;
  /** The follower reported readonly mode. */
  readonly = false;
  /**
   * braft `_readonly_index`: while the follower is readonly, no DATA entry at or after this
   * index is sent (configuration entries are, and move it on); 0 when not readonly.
   */
  readonlyIndex = 0;
  /** In-flight window. */
  readonly inflights: Inflights;

  /**
   * @param next First index to send.
   * @param maxInflight Window size in messages.
   * @param maxInflightBytes Window size in bytes.
   */
  constructor(next: number, maxInflight: number, maxInflightBytes: number) {
    this.next = next;
    this.inflights = new Inflights(maxInflight, maxInflightBytes);
  }

  /** Enters probe state (one empty-or-batch AppendEntries at a time). */
  becomeProbe(): void {
    if (this.state === "snapshot") {
      const pending = this.pendingSnapshot;
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.next = this.match + 1;
    }
    this.state = "probe";
    this.pendingSnapshot = 0;
    this.probeSent = false;
    this.inflights.reset();
  }

  /** Enters replicate state (pipelined AppendEntries). */
  becomeReplicate(): void {
    this.state = "replicate";
    this.next = this.match + 1;
    this.pendingSnapshot = 0;
    this.probeSent = false;
    this.inflights.reset();
  }

  /**
   * Enters snapshot state.
   *
   * @param index The snapshot's last index.
   */
  becomeSnapshot(index: number): void {
    this.state = "snapshot";
    this.pendingSnapshot = index;
    this.probeSent = false;
    this.inflights.reset();
  }

  /**
   * Records an acknowledgement.
   *
   * @param index Acknowledged index.
   * @returns Whether `match` grew.
   */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /**
   * Handles a rejection of the AppendEntries at `rejected`.
   *
   * @param rejected The rejected prevLogIndex.
   * @param hint The index to retry from minus one (from the conflict hint).
   * @returns `false` if the rejection was stale.
   */
  maybeDecrTo(rejected: number, hint: number): boolean {
    if (this.state === "replicate") {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, hint + 1), this.match + 1, 1);
    this.probeSent = false;
    invariant(this.match < this.next, "progress match < next");
    return true;
  }

  /** Whether sending must wait. */
  paused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent;
      case "replicate":
        return this.inflights.full();
      case "snapshot":
        return true;
    }
  }
}
