/**
 * The history model of the Jepsen-style tests: every client operation with the process that ran
 * it, its call and return times, its input and its output.
 *
 * An operation ends in one of three outcomes (Knossos/Porcupine vocabulary):
 * - `ok`: it took effect exactly once, somewhere between its call and its return, and `output`
 *   is what it returned;
 * - `fail`: it definitely did not take effect (the server refused it before doing anything);
 * - `info`: unknown (timeout, connection reset): it may have taken effect at any time after its
 *   call, or never. Its `return` is `null` and it has no output.
 *
 * Times are numbers on one clock; `a` precedes `b` in real time iff `a.return < b.call`. The
 * default clock of {@link History} is a logical counter that ticks at every event, which orders
 * the events of one test process exactly.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { History } from "./history.ts";
 *
 * const h = new History<string, number>();
 * const a = h.invoke(1, "get");
 * const b = h.invoke(2, "get");
 * a.ok(0);
 * b.info();
 * const [x, y] = h.operations();
 * assert.equal(x!.outcome, "ok");
 * assert.equal(y!.return, null);
 * assert.deepEqual(History.parse(h.stringify()).operations(), h.operations());
 * ```
 *
 * @module
 */

import { readFile, writeFile } from "node:fs/promises";

/** How an operation ended: took effect (`ok`), did not (`fail`), or unknown (`info`). */
export type Outcome = "ok" | "fail" | "info";

/** One client operation of a history. */
export interface Operation<I = unknown, O = unknown> {
  /** Position of the call in the history (0, 1, 2, ...): unique, stable across save/load. */
  id: number;
  /** The client that ran it; one process runs one operation at a time. */
  process: number;
  /** What was asked. */
  input: I;
  /** When it was invoked. */
  call: number;
  /** When it completed; `null` when the outcome is `info` (unknown). */
  return: number | null;
  /** How it ended. */
  outcome: Outcome;
  /** What it returned; present iff the outcome is `ok`. */
  output?: O;
}

/** Completes one invoked operation; exactly one of its methods may be called, once. */
export interface OpHandle<O> {
  /** The operation took effect and returned `output`. */
  ok(output: O): void;
  /** The operation definitely did not take effect. */
  fail(): void;
  /** The outcome is unknown (timeout, connection reset). */
  info(): void;
}

/** Options of {@link History}. */
export interface HistoryOptions {
  /**
   * Clock of call and return times; must not go backwards. Default: a logical counter that
   * ticks at every event (exact for clients running in the recording process).
   */
  clock?: () => number;
}

const FORMAT = "webraft-history/1";

/**
 * Records a history: clients call {@link History.invoke} before sending a request and complete
 * the handle when the answer (or its absence) is known. Operations never completed count as
 * `info`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { History } from "./history.ts";
 *
 * const h = new History<{ f: "get" }, number>();
 * h.invoke(7, { f: "get" }).ok(3);
 * h.invoke(7, { f: "get" }); // never answered: info
 * assert.deepEqual(h.operations().map((o) => o.outcome), ["ok", "info"]);
 * ```
 */
export class History<I = unknown, O = unknown> {
  #ops: Operation<I, O>[] = [];
  #done: boolean[] = [];
  #clock: () => number;
  #tick = 0;

  /**
   * Creates an empty history.
   *
   * @param options Clock; see {@link HistoryOptions}.
   */
  constructor(options: HistoryOptions = {}) {
    this.#clock = options.clock ?? (() => ++this.#tick);
  }

  /**
   * Records the call of an operation now.
   *
   * @param process The client id.
   * @param input What is asked.
   * @returns The handle to complete when the outcome is known.
   */
  invoke(process: number, input: I): OpHandle<O> {
    const id = this.#ops.length;
    this.#ops.push({ id, process, input, call: this.#clock(), return: null, outcome: "info" });
    this.#done.push(false);
    const finish = (outcome: Outcome, output?: O): void => {
      if (this.#done[id]) throw new Error(`Cannot complete operation ${id} twice`);
      this.#done[id] = true;
      const op = this.#ops[id]!;
      op.outcome = outcome;
      if (outcome !== "info") op.return = this.#clock();
      if (outcome === "ok") op.output = output as O;
    };
    return {
      ok: (output: O) => finish("ok", output),
      fail: () => finish("fail"),
      info: () => finish("info"),
    };
  }

  /**
   * A copy of the operations in call order; pending ones are `info`.
   *
   * @returns The operations.
   */
  operations(): Operation<I, O>[] {
    return this.#ops.map((op) => ({ ...op }));
  }

  /**
   * The history as JSON text (keeps a failing history for replay).
   *
   * @returns JSON with a format tag and the operations.
   */
  stringify(): string {
    return JSON.stringify({ format: FORMAT, ops: this.#ops });
  }

  /**
   * Writes {@link History.stringify} to a file.
   *
   * @param path The file to write.
   */
  async save(path: string): Promise<void> {
    await writeFile(path, this.stringify());
  }

  /**
   * Rebuilds a history from {@link History.stringify} text; every operation is complete.
   *
   * @param text The JSON text.
   * @returns The history.
   * @throws {Error} If the text is not a saved history.
   */
  static parse<I = unknown, O = unknown>(text: string): History<I, O> {
    const data = JSON.parse(text) as { format?: unknown; ops?: unknown };
    if (data.format !== FORMAT || !Array.isArray(data.ops)) {
      throw new Error(`Cannot load history: expected format "${FORMAT}"`);
    }
    const h = new History<I, O>();
    for (const [i, raw] of (data.ops as Operation<I, O>[]).entries()) {
      const op: Operation<I, O> = {
        id: i,
        process: raw.process,
        input: raw.input,
        call: raw.call,
        return: raw.outcome === "info" ? null : raw.return,
        outcome: raw.outcome,
      };
      if (raw.outcome === "ok") op.output = raw.output as O;
      if (!["ok", "fail", "info"].includes(op.outcome) || typeof op.call !== "number") {
        throw new Error(`Cannot load history: operation ${i} is malformed`);
      }
      h.#ops.push(op);
      h.#done.push(true);
    }
    return h;
  }

  /**
   * Reads a history saved by {@link History.save}.
   *
   * @param path The file to read.
   * @returns The history.
   */
  static async load<I = unknown, O = unknown>(path: string): Promise<History<I, O>> {
    return History.parse<I, O>(await readFile(path, "utf8"));
  }
}
