/**
 * The fuzz suite's harness: one seed for the whole run (printed; `FUZZ_SEED=<n>` replays it),
 * a scale for the number of runs (`FUZZ_RUNS=<factor>`, default 1: 10 runs ten times as many
 * inputs), a counter of the inputs each target got, and the checks every target shares.
 *
 * A failing property makes fast-check shrink the input and throw with the seed, the replay
 * path and the shrunk counterexample; `check` prefixes the target and the `FUZZ_SEED=` line.
 */

import fc from "fast-check";
import process from "node:process";
import { errorName, RaftException } from "../../src/errors/status.ts";

function envNumber(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new Error(`${name}=${raw} is not a number`);
  return n;
}

/** The seed of this run (32-bit). */
export const SEED: number = (envNumber("FUZZ_SEED") ?? Math.floor(Math.random() * 2 ** 31)) | 0;
/** Multiplies every target's number of runs. */
export const SCALE: number = envNumber("FUZZ_RUNS") ?? 1;

/** The number of runs for a target whose CI budget is `n`. */
export function runs(n: number): number {
  return Math.max(1, Math.round(n * SCALE));
}

interface Totals {
  inputs: number;
  ms: number;
}
// Shared by every fuzz file that runs in this process (both runners load them in one process).
const totals: Totals = ((globalThis as { __webraftFuzz?: Totals }).__webraftFuzz ??= {
  inputs: 0,
  ms: 0,
});

/** Inputs fuzzed so far in this process, over every target. */
export function totalInputs(): number {
  return totals.inputs;
}

function report(target: string, n: number, ms: number): void {
  totals.inputs += n;
  totals.ms += ms;
  console.log(
    `fuzz ${target}: ${n} inputs in ${ms.toFixed(0)} ms (FUZZ_SEED=${SEED}); ` +
      `${totals.inputs} inputs in ${(totals.ms / 1000).toFixed(1)} s so far`,
  );
}

/** Shortens long runs of one value in a printed counterexample (`129 ×5000,`). */
function compressRuns(text: string): string {
  return text.replace(
    /((?:\d+|\w+),)\1{7,}/g,
    (run, one: string) => `${one.slice(0, -1)} ×${run.length / one.length},`,
  );
}

function fail(target: string, e: unknown): never {
  let why = compressRuns(e instanceof Error ? e.message : String(e));
  if (why.length > 6000) why = `${why.slice(0, 6000)}… (${why.length} characters)`;
  throw new Error(
    `fuzz ${target} failed; replay with FUZZ_SEED=${SEED} FUZZ_RUNS=${SCALE}\n${why}`,
    { cause: e },
  );
}

/**
 * Checks `predicate` on `numRuns` inputs from `arb` (a predicate fails by throwing), counting
 * the inputs. A single input that takes longer than `slowMs` fails as a hang.
 */
export function check<T>(
  target: string,
  arb: fc.Arbitrary<T>,
  numRuns: number,
  predicate: (input: T) => void,
  slowMs = 2000,
): void {
  let n = 0;
  const started = performance.now();
  try {
    fc.assert(
      fc.property(arb, (input) => {
        n++;
        const t0 = performance.now();
        predicate(input);
        const took = performance.now() - t0;
        if (took > slowMs) throw new Error(`one input took ${took.toFixed(0)} ms (a hang?)`);
      }),
      { seed: SEED, numRuns: runs(numRuns) },
    );
  } catch (e) {
    fail(target, e);
  }
  report(target, n, performance.now() - started);
}

/** {@linkcode check} for an async predicate; an input taking longer than `slowMs` fails. */
export async function checkAsync<T>(
  target: string,
  arb: fc.Arbitrary<T>,
  numRuns: number,
  predicate: (input: T) => Promise<void>,
  slowMs = 10_000,
): Promise<void> {
  let n = 0;
  const started = performance.now();
  try {
    await fc.assert(
      fc.asyncProperty(arb, async (input) => {
        n++;
        let timer: ReturnType<typeof setTimeout> | undefined;
        const hang = new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`one input took over ${slowMs} ms (a hang?)`)),
            slowMs,
          );
        });
        try {
          await Promise.race([predicate(input), hang]);
        } finally {
          clearTimeout(timer);
        }
      }),
      { seed: SEED, numRuns: runs(numRuns) },
    );
  } catch (e) {
    fail(target, e);
  }
  report(target, n, performance.now() - started);
}

/** Describes an error for a failure message: its class, code and message. */
export function describeError(e: unknown): string {
  if (e instanceof RaftException) return `RaftException ${errorName(e.code)} (${e.message})`;
  if (e instanceof Error) return `${e.constructor.name}: ${e.message}`;
  return `a thrown ${typeof e}: ${String(e)}`;
}

/**
 * Runs `decode`; it must return (and `validate` must accept the value) or throw an error that
 * `allowed` accepts. Anything else fails, naming what was thrown.
 */
export function expectOnly<T>(
  decode: () => T,
  allowed: (e: unknown) => boolean,
  what: string,
  validate: (value: T) => void = () => {},
): T | undefined {
  let value: T;
  try {
    value = decode();
  } catch (e) {
    if (allowed(e)) return undefined;
    throw new Error(`${what} threw ${describeError(e)}, which it does not document`);
  }
  validate(value);
  return value;
}

/** Async {@linkcode expectOnly}. */
export async function expectOnlyAsync<T>(
  run: () => Promise<T>,
  allowed: (e: unknown) => boolean,
  what: string,
): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await run() };
  } catch (e) {
    if (allowed(e)) return { ok: false, error: e };
    throw new Error(`${what} threw ${describeError(e)}, which it does not document`);
  }
}

/** An `allowed` predicate: a RaftException with one of `codes`. */
export function raftError(...codes: number[]): (e: unknown) => boolean {
  return (e) => e instanceof RaftException && codes.includes(e.code);
}

/** An `allowed` predicate: an instance of `type` (exactly that class or a subclass). */
export function instanceOf(
  type: abstract new (...args: never[]) => unknown,
): (e: unknown) => boolean {
  return (e) => e instanceof type;
}

/** A memory reading to compare before and after (heap, in bytes). */
export function heapUsed(): number {
  return process.memoryUsage().heapUsed;
}
