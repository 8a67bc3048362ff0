/**
 * Which snapshot file names may travel between nodes: a name a leader lists (or a follower
 * asks for) must stay inside the snapshot directory once joined to it, on any file system.
 *
 * @module
 */

import { RaftError, RaftException } from "../errors/status.ts";
import { SNAPSHOT_META_FILE } from "../../storage/snapshot/local_snapshot_storage.ts";

/** Longest name accepted (as `parseFileRequest`). */
export const MAX_SNAPSHOT_FILE_NAME = 4096;

/**
 * Says why `name` cannot be a snapshot file name copied between nodes, or `null` when it can.
 *
 * Refused: non-strings, empty or over-long names, absolute paths (`/x`, `C:x`), backslashes,
 * NUL, empty, `.` or `..` segments, and the storage's own meta file (`__raft_snapshot_meta`).
 *
 * @param name The candidate name.
 * @returns The reason it is unsafe, or `null`.
 * @example
 * ```ts
 * import { unsafeSnapshotFileName } from "./snapshot_file_name.ts";
 * import assert from "node:assert/strict";
 * assert.equal(unsafeSnapshotFileName("data/part-1"), null);
 * assert.match(unsafeSnapshotFileName("../etc/passwd")!, /\.\./);
 * ```
 * @internal
 */
export function unsafeSnapshotFileName(name: unknown): string | null {
  if (typeof name !== "string") return "it is not a string";
  if (name.length === 0) return "it is empty";
  if (name.length > MAX_SNAPSHOT_FILE_NAME) {
    return `it is longer than ${MAX_SNAPSHOT_FILE_NAME} characters`;
  }
  if (name.includes("\0")) return "it contains NUL";
  if (name.includes("\\")) return "it contains a backslash";
  if (name.startsWith("/") || /^[A-Za-z]:/.test(name)) return "it is an absolute path";
  for (const part of name.split("/")) {
    if (part === "") return "it has an empty path segment";
    if (part === "." || part === "..") return `it has a "${part}" path segment`;
  }
  if (name === SNAPSHOT_META_FILE) return "it is the snapshot's internal meta file";
  return null;
}

/**
 * Checks a whole list of names from a leader before anything is written: every name safe,
 * no duplicates, and no name that is also a directory of another (`a` and `a/b`).
 *
 * @param names The names in the leader's order.
 * @throws {RaftException} EINVAL naming the first bad name.
 * @example
 * ```ts
 * import { checkSnapshotFileNames } from "./snapshot_file_name.ts";
 * import assert from "node:assert/strict";
 * checkSnapshotFileNames(["data", "parts/1"]);
 * assert.throws(() => checkSnapshotFileNames(["data", "data"]), /twice/);
 * ```
 * @internal
 */
export function checkSnapshotFileNames(names: readonly unknown[]): void {
  const seen = new Set<string>();
  for (const name of names) {
    const why = unsafeSnapshotFileName(name);
    if (why !== null) throw badList(`file name ${JSON.stringify(name)} is unsafe: ${why}`);
    if (seen.has(name as string)) throw badList(`file "${name}" is listed twice`);
    seen.add(name as string);
  }
  for (const name of seen) {
    for (let i = name.indexOf("/"); i > 0; i = name.indexOf("/", i + 1)) {
      const dir = name.slice(0, i);
      if (seen.has(dir)) throw badList(`"${dir}" is both a file and the directory of "${name}"`);
    }
  }
}

function badList(why: string): RaftException {
  return RaftException.of(RaftError.EINVAL, `Cannot copy snapshot from the leader: ${why}`);
}
