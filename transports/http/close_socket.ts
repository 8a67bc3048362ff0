/**
 * Closing a WebSocket whatever the reason's length: the protocol allows at most 123 bytes of
 * UTF-8 in a close reason, and runtimes throw on a longer one (Deno a `SyntaxError`). A close
 * that throws closes nothing, so a socket refused with a long reason (an error message quoting
 * what a peer sent) would stay open, and its peer would wait.
 *
 * @module
 */

/** The most UTF-8 bytes a WebSocket close reason may have (RFC 6455, 5.5). */
export const MAX_CLOSE_REASON_BYTES = 123;

const encoder = new TextEncoder();

/**
 * `reason` cut to at most {@linkcode MAX_CLOSE_REASON_BYTES} bytes of UTF-8, at a character
 * boundary, with "…" when cut.
 *
 * @example
 * ```ts
 * import { fitCloseReason } from "./close_socket.ts";
 * import assert from "node:assert/strict";
 * assert.equal(fitCloseReason("Handshake timed out"), "Handshake timed out");
 * assert.ok(new TextEncoder().encode(fitCloseReason("x".repeat(500))).length <= 123);
 * ```
 *
 * @param reason Any text.
 * @returns A reason every runtime accepts.
 */
export function fitCloseReason(reason: string): string {
  if (reason.length <= MAX_CLOSE_REASON_BYTES / 3) return reason; // ≤ 3 bytes per UTF-16 unit
  if (encoder.encode(reason).length <= MAX_CLOSE_REASON_BYTES) return reason;
  const budget = MAX_CLOSE_REASON_BYTES - 3; // "…" is 3 bytes
  let bytes = 0;
  let end = 0;
  for (const ch of reason) {
    const n = encoder.encode(ch).length;
    if (bytes + n > budget) break;
    bytes += n;
    end += ch.length;
  }
  return `${reason.slice(0, end)}…`;
}

/**
 * Closes `socket` with `code` and `reason` (fitted), falling back to a close without a reason,
 * then without a code; never throws (a socket already closing refuses another close).
 *
 * @example
 * ```ts
 * import { closeSocket } from "./close_socket.ts";
 * const calls: unknown[][] = [];
 * closeSocket({ close: (...args: unknown[]) => void calls.push(args) }, 1008, "no");
 * ```
 *
 * @param socket A WebSocket (any runtime's).
 * @param code The close code (none: a plain close).
 * @param reason Why, for the peer (cut to fit).
 */
export function closeSocket(
  socket: { close(code?: number, reason?: string): void },
  code?: number,
  reason?: string,
): void {
  if (code !== undefined) {
    try {
      if (reason === undefined) socket.close(code);
      else socket.close(code, fitCloseReason(reason));
      return;
    } catch { /* try without the reason */ }
    try {
      socket.close(code);
      return;
    } catch { /* try a plain close */ }
  }
  try {
    socket.close();
  } catch { /* already closing */ }
}
