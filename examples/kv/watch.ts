/**
 * `GET /kv/watch?prefix=` as a server-sent-events stream: one event per committed change whose
 * key starts with the prefix, in apply order, from the state machine of the node serving it.
 * A watcher that falls `MAX_QUEUED` events behind is sent an `overflow` event and closed; every
 * watcher is closed when the node shuts down.
 *
 * @module
 */

import type { Change, KvStore } from "./store.ts";

/** Events a watcher may have queued unread before it is disconnected. */
export const MAX_QUEUED = 1024;

/** How long shutdown lets the runtimes write the streams' last bytes. */
const FLUSH_MS = 100;

const encoder = new TextEncoder();

function frame(event: string, data: unknown, id?: number): Uint8Array {
  const idLine = id === undefined ? "" : `id: ${id}\n`;
  return encoder.encode(`${idLine}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

/** The open watch streams of one server, so shutdown can end them. */
export class WatchHub {
  /** Each open stream's closer and a promise settled once its client read the last frame. */
  readonly #open = new Map<() => void, Promise<void>>();
  readonly #store: KvStore;
  #closed = false;
  #closing: Promise<void> | null = null;

  /** @param store The state machine whose changes are streamed. */
  constructor(store: KvStore) {
    this.#store = store;
    store.onClose(() => void this.closeAll());
  }

  /** Open watch streams. */
  get size(): number {
    return this.#open.size;
  }

  /** A `text/event-stream` response streaming the changes under `prefix`. */
  respond(prefix: string): Response {
    // Frames wait here, not in the stream's queue (high water mark 0): the source hands one
    // over per read, so it knows when the client has read the last one.
    const queue: Uint8Array[] = this.#closed
      ? [] // shutting down: an empty stream
      : [frame("hello", { revision: this.#store.revision, prefix })];
    let ended = this.#closed;
    let wake: (() => void) | null = null;
    let drained!: () => void;
    const read = new Promise<void>((r) => drained = r);
    const poke = (): void => {
      wake?.();
      wake = null;
    };
    const finish = (last?: Uint8Array): void => {
      if (ended) return;
      ended = true;
      unsubscribe();
      if (last !== undefined) queue.push(last);
      poke();
    };
    const close = (): void => finish(frame("shutdown", {}));
    const unsubscribe = this.#store.subscribe((change: Change) => {
      if (change.type !== "reset" && !change.key.startsWith(prefix)) return;
      if (queue.length >= MAX_QUEUED) {
        finish(frame("overflow", { revision: change.revision }));
      } else {
        queue.push(frame(change.type, change, change.revision));
        poke();
      }
    });
    if (ended) unsubscribe();
    this.#open.set(close, read);
    void read.then(() => this.#open.delete(close));
    const body = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        while (queue.length === 0 && !ended) await new Promise<void>((r) => wake = r);
        const next = queue.shift();
        if (next !== undefined) return controller.enqueue(next);
        controller.close();
        drained();
      },
      cancel: () => {
        finish();
        queue.length = 0;
        drained();
      },
    }, { highWaterMark: 0 });
    return new Response(body, {
      headers: {
        "content-type": "text/event-stream",
        "cache-control": "no-cache",
        "x-accel-buffering": "no",
      },
    });
  }

  /**
   * Ends every stream (a `shutdown` event, then the end of the body) and resolves once their
   * clients read to the end, or after `graceMs` (a client that stopped reading). Calling it
   * again returns the same promise.
   */
  closeAll(graceMs = 2000): Promise<void> {
    return this.#closing ??= (async () => {
      this.#closed = true;
      const reads = [...this.#open].map(([close, read]) => (close(), read));
      if (reads.length === 0) return;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.all(reads),
        new Promise((r) => timer = setTimeout(r, graceMs)),
      ]);
      clearTimeout(timer);
      // The runtime has taken the last chunk but writes it to the socket asynchronously, and
      // has no event for that: a short flush window before the caller closes the connections.
      await new Promise((r) => setTimeout(r, FLUSH_MS));
    })();
  }
}
