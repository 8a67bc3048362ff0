/**
 * The one place where the runtime is detected: picks the {@linkcode FileSystem} adapter for
 * Deno, Bun or Node.
 *
 * @module
 */

import type { FileSystem } from "./file_system.ts";
import { BunFileSystem } from "./bun.ts";
import { NodeFileSystem } from "./node.ts";

/** The runtimes webraft knows. */
export type RuntimeName = "deno" | "bun" | "node";

/**
 * Which runtime this is: `globalThis.Deno`, then `globalThis.Bun`, else Node.
 *
 * @returns The runtime name.
 *
 * @example
 * ```ts
 * import { detectRuntime } from "./detect.ts";
 * import assert from "node:assert/strict";
 * assert.ok(["deno", "bun", "node"].includes(detectRuntime()));
 * ```
 */
export function detectRuntime(): RuntimeName {
  const g = globalThis as { Deno?: unknown; Bun?: unknown };
  if (g.Deno !== undefined) return "deno";
  if (g.Bun !== undefined) return "bun";
  return "node";
}

let cached: FileSystem | undefined;

/**
 * The real file system of the current runtime (created once, then shared).
 *
 * @returns The adapter.
 *
 * @example
 * ```ts
 * import { detectRuntime, localFileSystem } from "./detect.ts";
 * import assert from "node:assert/strict";
 * const fs = await localFileSystem();
 * assert.equal(fs.kind, detectRuntime());
 * ```
 */
export async function localFileSystem(): Promise<FileSystem> {
  if (cached) return cached;
  const runtime = detectRuntime();
  if (runtime === "deno") {
    // Loaded lazily so that Bun and Node never evaluate a module that mentions `Deno`.
    const { DenoFileSystem } = await import("./deno.ts");
    cached = new DenoFileSystem();
  } else if (runtime === "bun") {
    cached = new BunFileSystem();
  } else {
    cached = new NodeFileSystem();
  }
  return cached;
}
