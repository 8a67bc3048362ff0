/**
 * `MemoryNetwork`: an in-process network for tests, with partitions, one-way cuts, drops,
 * duplicates and delays that apply to frames already in flight.
 *
 * @module
 */

import { clearImmediate, setImmediate } from "node:timers";
import { RaftError, RaftException } from "../../src/errors/status.ts";
import { Prng } from "../../src/util/prng.ts";
import type { CallOptions, Transport, TransportHandler } from "../transport.ts";

/** Options for {@linkcode MemoryNetwork}. */
export interface MemoryNetworkOptions {
  /** Seed for drop, duplicate and delay choices (default 1), so a failing run can be replayed. */
  seed?: number;
}

/** Counters of what the network did, for tests and debugging. */
export interface MemoryNetworkStats {
  /** Frames and calls handed to `send`/`call`. */
  sent: number;
  /** Frames and calls delivered to a handler. */
  delivered: number;
  /** Frames and calls lost to cuts, drops or missing endpoints. */
  dropped: number;
  /** Extra copies delivered by the duplicate fault. */
  duplicated: number;
}

/**
 * An in-process network connecting any number of endpoints.
 *
 * Delivery is always asynchronous (never inside `send`), FIFO per link when no delay is set,
 * and reordered when a delay range is set. A link is checked when a frame is sent **and**
 * when it would be delivered, so a partition made while frames are in flight loses them.
 * A call whose request or response is lost fails with EHOSTUNREACH rather than hanging.
 *
 * @example
 * ```ts
 * import { MemoryNetwork } from "@webraft/raft";
 * import assert from "node:assert/strict";
 *
 * const net = new MemoryNetwork({ seed: 7 });
 * const a = net.transport("127.0.0.1:1");
 * const b = net.transport("127.0.0.1:2");
 * const got: string[] = [];
 * b.listen({
 *   onFrame: (from, frame) => got.push(`${from}:${frame[0]}`),
 *   onCall: (_from, req) => Promise.resolve(req),
 * });
 * net.isolate("127.0.0.1:2");
 * await assert.rejects(a.call("127.0.0.1:2", new Uint8Array([1])));
 * net.heal();
 * a.send("127.0.0.1:2", new Uint8Array([5]));
 * await net.idle();
 * assert.deepEqual(got, ["127.0.0.1:1:5"]);
 * await net.close();
 * ```
 */
export class MemoryNetwork {
  #endpoints = new Map<string, MemoryTransport>();
  #cuts = new Set<string>(); // "from->to"
  #isolated = new Set<string>();
  #dropRate = 0;
  #duplicateRate = 0;
  #delayMin = 0;
  #delayMax = 0;
  #rng: Prng;
  #inFlight = 0;
  #idleWaiters: Array<() => void> = [];
  #timers = new Set<ReturnType<typeof setTimeout>>();
  // Zero-delay deliveries run from one setImmediate per burst: no 1 ms timer clamp per hop.
  #immediate: Array<() => void> = [];
  #immediateHandle: ReturnType<typeof setImmediate> | null = null;
  #closed = false;
  /** What the network has done so far. */
  readonly stats: MemoryNetworkStats = { sent: 0, delivered: 0, dropped: 0, duplicated: 0 };

  /**
   * Creates an empty network with no faults.
   *
   * @param options Seed for the random faults.
   */
  constructor(options: MemoryNetworkOptions = {}) {
    this.#rng = new Prng(options.seed ?? 1);
  }

  /**
   * The transport for `endpoint`, created on first use. Asking again returns the same one
   * until it is closed; after that a fresh one is created (a restarted process).
   *
   * @param endpoint `host:port`.
   * @returns The endpoint's transport.
   * @throws {RaftException} ESHUTDOWN if the network is closed.
   */
  transport(endpoint: string): Transport {
    if (this.#closed) throw RaftException.of(RaftError.ESHUTDOWN, "MemoryNetwork is closed");
    let t = this.#endpoints.get(endpoint);
    if (t === undefined) {
      t = new MemoryTransport(this, endpoint);
      this.#endpoints.set(endpoint, t);
    }
    return t;
  }

  /**
   * Cuts every link between the two groups, both ways. Links inside a group stay up.
   *
   * @param groupA Endpoints on one side.
   * @param groupB Endpoints on the other side.
   */
  partition(groupA: readonly string[], groupB: readonly string[]): void {
    for (const a of groupA) {
      for (const b of groupB) {
        this.#cuts.add(`${a}->${b}`);
        this.#cuts.add(`${b}->${a}`);
      }
    }
  }

  /**
   * Cuts the link from `from` to `to` only (a one-way failure).
   *
   * @param from Sender endpoint.
   * @param to Receiver endpoint.
   */
  cut(from: string, to: string): void {
    this.#cuts.add(`${from}->${to}`);
  }

  /**
   * Cuts `endpoint` off from every other endpoint, both ways.
   *
   * @param endpoint The endpoint to isolate.
   */
  isolate(endpoint: string): void {
    this.#isolated.add(endpoint);
  }

  /** Restores every link (partitions, cuts, isolations). Drop rate and delay are kept. */
  heal(): void {
    this.#cuts.clear();
    this.#isolated.clear();
  }

  /**
   * Loses each frame (and each call leg) with probability `p`.
   *
   * @param p Probability in `[0, 1]`.
   * @throws {RangeError} If `p` is outside `[0, 1]`.
   */
  setDropRate(p: number): void {
    this.#dropRate = checkProbability(p, "drop rate");
  }

  /**
   * Delivers each one-way frame twice with probability `p`.
   *
   * @param p Probability in `[0, 1]`.
   * @throws {RangeError} If `p` is outside `[0, 1]`.
   */
  setDuplicateRate(p: number): void {
    this.#duplicateRate = checkProbability(p, "duplicate rate");
  }

  /**
   * Delays each delivery by a random time in `[minMs, maxMs]` (which also reorders frames).
   *
   * @param minMs Minimum delay.
   * @param maxMs Maximum delay.
   * @throws {RangeError} If the range is invalid.
   */
  setDelay(minMs: number, maxMs: number = minMs): void {
    if (!(minMs >= 0 && maxMs >= minMs && Number.isFinite(maxMs))) {
      throw new RangeError(`Cannot set delay [${minMs}, ${maxMs}]: expected 0 <= min <= max`);
    }
    this.#delayMin = minMs;
    this.#delayMax = maxMs;
  }

  /**
   * Whether a frame from `from` can reach `to` right now (ignoring random drops).
   *
   * @param from Sender endpoint.
   * @param to Receiver endpoint.
   * @returns `true` when the link is up.
   */
  linkUp(from: string, to: string): boolean {
    if (from === to) return true;
    return !this.#isolated.has(from) && !this.#isolated.has(to) &&
      !this.#cuts.has(`${from}->${to}`);
  }

  /**
   * Resolves once nothing is in flight (useful after a burst of sends in a test).
   *
   * @returns A promise that resolves when the network is quiet.
   */
  idle(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Closes every endpoint and cancels every pending delivery. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    if (this.#immediateHandle !== null) clearImmediate(this.#immediateHandle);
    this.#immediateHandle = null;
    this.#immediate = [];
    for (const t of [...this.#endpoints.values()]) await t.close();
    this.#inFlight = 0;
    this.#wakeIdle();
  }

  /** @internal Forgets a closed endpoint. */
  _forget(t: MemoryTransport): void {
    if (this.#endpoints.get(t.endpoint) === t) this.#endpoints.delete(t.endpoint);
  }

  /**
   * @internal Carries one leg (frame, request or response) from `from` to `to`, applying faults.
   * `deliver` runs at the receiver if the leg arrives; `lost` runs otherwise.
   */
  _carry(
    from: string,
    to: string,
    deliver: (receiver: MemoryTransport) => void,
    lost: () => void,
    kind: "frame" | "request" | "response",
  ): void {
    this.stats.sent++;
    if (this.#closed || !this.linkUp(from, to) || this.#rng.chance(this.#dropRate)) {
      this.stats.dropped++;
      this.#later(0, lost);
      return;
    }
    const copies =
      kind === "frame" && this.#duplicateRate > 0 && this.#rng.chance(this.#duplicateRate) ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    for (let i = 0; i < copies; i++) {
      const delay = this.#delayMax > 0
        ? this.#delayMin + this.#rng.next() * (this.#delayMax - this.#delayMin)
        : 0;
      this.#later(delay, () => {
        const receiver = this.#endpoints.get(to);
        // Faults apply to frames in flight: check the link again at delivery time.
        // A response needs only a live caller; a frame or request needs a listener.
        const ready = receiver !== undefined &&
          (kind === "response" ? !receiver.closed : receiver.listening);
        if (!ready || !this.linkUp(from, to)) {
          this.stats.dropped++;
          if (i === 0) lost();
          return;
        }
        this.stats.delivered++;
        deliver(receiver!);
      });
    }
  }

  #later(delayMs: number, fn: () => void): void {
    this.#inFlight++;
    const run = (): void => {
      this.#inFlight--;
      try {
        fn();
      } finally {
        if (this.#inFlight === 0) this.#wakeIdle();
      }
    };
    if (delayMs <= 0) {
      this.#immediate.push(run);
      this.#immediateHandle ??= setImmediate(() => this.#flushImmediate());
      return;
    }
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      run();
    }, delayMs);
    this.#timers.add(timer);
  }

  #flushImmediate(): void {
    this.#immediateHandle = null;
    const batch = this.#immediate;
    this.#immediate = [];
    for (const run of batch) run();
  }

  #wakeIdle(): void {
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const wake of waiters) wake();
  }
}

function checkProbability(p: number, what: string): number {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`Cannot set ${what} ${p}: expected 0 <= p <= 1`);
  return p;
}

function unreachable(to: string): RaftException {
  return RaftException.of(
    RaftError.EHOSTUNREACH,
    `Cannot reach "${to}": link down or message lost`,
  );
}

/** One endpoint of a {@linkcode MemoryNetwork}. */
class MemoryTransport implements Transport {
  readonly endpoint: string;
  #net: MemoryNetwork;
  #handler: TransportHandler | null = null;
  #pending = new Set<(e: RaftException) => void>();
  #closed = false;

  constructor(net: MemoryNetwork, endpoint: string) {
    this.#net = net;
    this.endpoint = endpoint;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get listening(): boolean {
    return this.#handler !== null && !this.#closed;
  }

  listen(handler: TransportHandler): void {
    if (this.#handler !== null) {
      throw RaftException.of(
        RaftError.EEXIST,
        `Endpoint "${this.endpoint}" already has a listener`,
      );
    }
    this.#handler = handler;
  }

  send(to: string, frame: Uint8Array): void {
    if (this.#closed) return;
    this.#net._carry(
      this.endpoint,
      to,
      (r) => r.#handler?.onFrame(this.endpoint, frame),
      () => {},
      "frame",
    );
  }

  call(to: string, request: Uint8Array, options: CallOptions = {}): Promise<Uint8Array> {
    if (this.#closed) {
      return Promise.reject(
        RaftException.of(RaftError.ESHUTDOWN, `Endpoint "${this.endpoint}" is closed`),
      );
    }
    return new Promise<Uint8Array>((resolve, reject) => {
      let settled = false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const finish = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        if (timer !== undefined) clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
        this.#pending.delete(fail);
        fn();
      };
      const fail = (e: RaftException): void => finish(() => reject(e));
      const onAbort = (): void =>
        fail(RaftException.of(RaftError.ECANCELED, `Call to "${to}" was aborted`));
      if (options.signal?.aborted) return onAbort();
      options.signal?.addEventListener("abort", onAbort);
      if (options.timeoutMs !== undefined) {
        timer = setTimeout(
          () =>
            fail(
              RaftException.of(
                RaftError.ETIMEDOUT,
                `Call to "${to}" timed out after ${options.timeoutMs} ms`,
              ),
            ),
          options.timeoutMs,
        );
      }
      this.#pending.add(fail);
      this.#net._carry(
        this.endpoint,
        to,
        (receiver) => {
          const handler = receiver.#handler!;
          let reply: Promise<Uint8Array>;
          try {
            reply = handler.onCall(this.endpoint, request);
          } catch (e) {
            reply = Promise.reject(e);
          }
          reply.then(
            (response) =>
              this.#net._carry(
                to,
                this.endpoint,
                () => finish(() => resolve(response)),
                () => fail(unreachable(to)),
                "response",
              ),
            (e: unknown) =>
              this.#net._carry(
                to,
                this.endpoint,
                () => fail(asRaftException(e)),
                () => fail(unreachable(to)),
                "response",
              ),
          );
        },
        () => fail(unreachable(to)),
        "request",
      );
    });
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#handler = null;
    for (const fail of [...this.#pending]) {
      fail(RaftException.of(RaftError.ESHUTDOWN, `Endpoint "${this.endpoint}" was closed`));
    }
    this.#net._forget(this);
    return Promise.resolve();
  }
}

function asRaftException(e: unknown): RaftException {
  if (e instanceof RaftException) return e;
  return RaftException.of(
    RaftError.EIO,
    `Remote call failed: ${e instanceof Error ? e.message : String(e)}`,
  );
}
