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

const encoder = new TextEncoder();

function frame(event: string, data: unknown, id?: number): Uint8Array {
  const idLine = id === undefined ? "" : `id: ${id}\n`;
  return encoder.encode(`${idLine}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

/** The open watch streams of one server, so shutdown can end them. */
export class WatchHub {
  readonly #closers = new Set<() => void>();
  readonly #store: KvStore;
  #closed = false;

  /** @param store The state machine whose changes are streamed. */
  constructor(store: KvStore) {
    this.#store = store;
    store.onClose(() => this.closeAll());
  }

  /** Open watch streams. */
  get size(): number {
    return this.#closers.size;
  }

  /** A `text/event-stream` response streaming the changes under `prefix`. */
  respond(prefix: string): Response {
    let cleanup = (): void => {};
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        if (this.#closed) {
          controller.close();
          return;
        }
        let done = false;
        const finish = (last?: Uint8Array): void => {
          if (done) return;
          done = true;
          unsubscribe();
          this.#closers.delete(close);
          try {
            if (last !== undefined) controller.enqueue(last);
            controller.close();
          } catch { /* the client went away already */ }
        };
        const close = (): void => finish(frame("shutdown", {}));
        const unsubscribe = this.#store.subscribe((change: Change) => {
          if (change.type !== "reset" && !change.key.startsWith(prefix)) return;
          if ((controller.desiredSize ?? 0) <= 0) {
            finish(frame("overflow", { revision: change.revision }));
            return;
          }
          controller.enqueue(frame(change.type, change, change.revision));
        });
        this.#closers.add(close);
        cleanup = () => finish();
        // A first frame, so the client sees the headers and knows where the stream starts.
        controller.enqueue(frame("hello", { revision: this.#store.revision, prefix }));
      },
      cancel: () => cleanup(),
    }, new CountQueuingStrategy({ highWaterMark: MAX_QUEUED }));
    return new Response(body, {
      headers: {
        "content-type": "text/event-stream",
        "cache-control": "no-cache",
        "x-accel-buffering": "no",
      },
    });
  }

  /** Ends every stream (a `shutdown` event, then the end of the body). */
  closeAll(): void {
    this.#closed = true;
    for (const close of [...this.#closers]) close();
  }
}
