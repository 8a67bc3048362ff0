/**
 * A tiny gflags-style command-line parser for the counter example (no dependencies):
 * `--name=value`, `--name value`, and for booleans `--name`, `--name=true|false`, `--noname`.
 * Unknown flags, missing values and malformed numbers are usage errors.
 *
 * @module
 */

/** One flag's declaration. */
export interface FlagSpec {
  /** `string`, `int` (a safe integer), `number` or `bool`. */
  type: "string" | "int" | "number" | "bool";
  /** Value when the flag is absent. */
  default: string | number | boolean;
  /** One line for the usage text. */
  help: string;
}

/** A usage error: the message says what was wrong. */
export class UsageError extends Error {
  /** @param message What was wrong. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The parsed values, keyed by flag name. */
export type FlagValues<S extends Record<string, FlagSpec>> = {
  [K in keyof S]: S[K]["type"] extends "bool" ? boolean
    : S[K]["type"] extends "string" ? string
    : number;
};

/**
 * Parses `argv` against `spec`.
 *
 * @param argv The arguments (without the runtime and script).
 * @param spec The flags.
 * @returns Every flag's value (defaults filled in).
 * @throws {UsageError} On an unknown flag, a positional argument, a missing or bad value.
 *
 * @example
 * ```ts
 * import { parseFlags } from "./args.ts";
 * import assert from "node:assert/strict";
 *
 * const v = parseFlags(["--port=8100", "--check_term"], {
 *   port: { type: "int", default: 0, help: "port" },
 *   check_term: { type: "bool", default: false, help: "check term" },
 * });
 * assert.deepEqual(v, { port: 8100, check_term: true });
 * ```
 */
export function parseFlags<S extends Record<string, FlagSpec>>(
  argv: readonly string[],
  spec: S,
): FlagValues<S> {
  const out: Record<string, string | number | boolean> = {};
  for (const [name, s] of Object.entries(spec)) out[name] = s.default;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const m = /^--?([A-Za-z0-9_]+)(?:=(.*))?$/s.exec(arg);
    if (m === null) {
      throw new UsageError(`Unexpected argument "${arg}" (flags look like --name=value)`);
    }
    let name = m[1]!;
    let raw = m[2];
    let s = spec[name];
    if (s === undefined && name.startsWith("no") && spec[name.slice(2)]?.type === "bool") {
      if (raw !== undefined) throw new UsageError(`--${name} takes no value`);
      name = name.slice(2);
      s = spec[name]!;
      raw = "false";
    }
    if (s === undefined) {
      throw new UsageError(
        `Unknown flag --${name} (known: ${Object.keys(spec).map((k) => `--${k}`).join(", ")})`,
      );
    }
    if (s.type === "bool") {
      if (raw === undefined) raw = "true";
      if (raw !== "true" && raw !== "false") {
        throw new UsageError(`--${name} expects true or false, got "${raw}"`);
      }
      out[name] = raw === "true";
      continue;
    }
    if (raw === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`--${name} needs a value`);
      raw = argv[++i]!;
    }
    if (s.type === "string") {
      out[name] = raw;
      continue;
    }
    const n = raw.trim() === "" ? NaN : Number(raw);
    if (s.type === "int" ? !Number.isSafeInteger(n) : !Number.isFinite(n)) {
      throw new UsageError(
        `--${name} expects ${s.type === "int" ? "an integer" : "a number"}, got "${raw}"`,
      );
    }
    out[name] = n;
  }
  return out as FlagValues<S>;
}

/**
 * The usage text: one line per flag with its default.
 *
 * @param command How the program is run.
 * @param spec The flags.
 * @returns The text.
 */
export function usage(command: string, spec: Record<string, FlagSpec>): string {
  const lines = [`Usage: ${command} [flags]`, "", "Flags:"];
  for (const [name, s] of Object.entries(spec)) {
    const def = s.type === "string" ? JSON.stringify(s.default) : String(s.default);
    lines.push(`  --${name.padEnd(22)} ${s.help} (default ${def})`);
  }
  return lines.join("\n");
}
