// Validation shared by the log storages' appendEntries (internal).
import { EntryType, type LogEntry } from "../../src/core/entry.ts";
import { RaftError, RaftException } from "../../src/errors/status.ts";

/**
 * Checks that `entries` continue a log ending at `last` (term `lastTerm`): contiguous
 * indexes, non-decreasing integer terms, known types, and `conf` on CONFIGURATION entries.
 *
 * @param entries The batch.
 * @param last The log's last index.
 * @param lastTerm The term of that entry (0 when none).
 * @throws {RaftException} EINVAL naming the first bad entry.
 */
export function checkAppend(entries: readonly LogEntry[], last: number, lastTerm: number): void {
  let prevTerm = lastTerm;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const problem = e.index !== last + 1 + i
      ? `expected index ${last + 1 + i}`
      : !Number.isSafeInteger(e.term) || e.term < prevTerm
      ? `term ${e.term} is not an integer at least the previous term ${prevTerm}`
      : e.type !== EntryType.NO_OP && e.type !== EntryType.DATA &&
          e.type !== EntryType.CONFIGURATION
      ? `unknown entry type ${e.type}`
      : e.type === EntryType.CONFIGURATION && !e.conf
      ? "a CONFIGURATION entry needs conf"
      : undefined;
    if (problem) {
      throw RaftException.of(RaftError.EINVAL, `Cannot append log entry ${e.index}: ${problem}`);
    }
    prevTerm = e.term;
  }
}
