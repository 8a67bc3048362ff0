/**
 * Coalescing: items queued for one socket in the same event-loop turn leave as one batch
 * message (split so that none exceeds the receiver's limit), flushed on a macrotask.
 *
 * @module
 */

import { clearImmediate, setImmediate } from "node:timers";
import { encodeBatch, type Item, ItemKind, itemSize } from "./wire.ts";

/** Something with queued items to write. */
export interface Flushable {
  /** Writes everything queued. Must not throw. */
  flush(): void;
}

/** Runs `flush()` of every scheduled target once, on the next macrotask. */
export class FlushScheduler {
  #dirty = new Set<Flushable>();
  #handle: ReturnType<typeof setImmediate> | null = null;

  /**
   * Flushes `target` on the next macrotask (once, however often it is scheduled).
   *
   * @param target The target.
   */
  schedule(target: Flushable): void {
    this.#dirty.add(target);
    this.#handle ??= setImmediate(() => this.#run());
  }

  /** Forgets every scheduled target and cancels the macrotask. */
  cancel(): void {
    if (this.#handle !== null) clearImmediate(this.#handle);
    this.#handle = null;
    this.#dirty.clear();
  }

  #run(): void {
    this.#handle = null;
    const dirty = [...this.#dirty];
    this.#dirty.clear();
    for (const target of dirty) target.flush();
  }
}

/** The items queued for one socket. */
export class Outbox {
  #items: Item[] = [];
  #bytes = 0;

  /** Encoded bytes queued (without batch type bytes). */
  get bytes(): number {
    return this.#bytes;
  }

  /** Number of queued items. */
  get length(): number {
    return this.#items.length;
  }

  /**
   * Queues an item.
   *
   * @param item The item.
   * @param size Its `itemSize`, if already known.
   */
  push(item: Item, size: number = itemSize(item)): void {
    this.#items.push(item);
    this.#bytes += size;
  }

  /**
   * Takes every queued item as batch messages of at most `maxMessageBytes` each. An item too
   * large to fit any message alone is not packed: it goes to `tooBig`.
   *
   * @param maxMessageBytes The receiver's limit.
   * @param tooBig Called for each item that cannot be sent.
   * @returns The messages, in order, and how many frames they hold.
   */
  drain(
    maxMessageBytes: number,
    tooBig: (item: Item) => void,
  ): { messages: Uint8Array[]; frames: number } {
    const items = this.#items;
    this.#items = [];
    this.#bytes = 0;
    const messages: Uint8Array[] = [];
    let group: Item[] = [];
    let size = 1;
    let frames = 0;
    for (const item of items) {
      const n = itemSize(item);
      if (1 + n > maxMessageBytes) {
        tooBig(item);
        continue;
      }
      if (size + n > maxMessageBytes) {
        messages.push(encodeBatch(group));
        group = [];
        size = 1;
      }
      group.push(item);
      size += n;
      if (item.kind === ItemKind.FRAME) frames++;
    }
    if (group.length > 0) messages.push(encodeBatch(group));
    return { messages, frames };
  }

  /**
   * Takes every queued item without encoding (when the socket went away).
   *
   * @returns The items.
   */
  discard(): Item[] {
    const items = this.#items;
    this.#items = [];
    this.#bytes = 0;
    return items;
  }
}
