// WebSocket close reasons fitted to the protocol's 123 bytes, and a close that never throws.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  closeSocket,
  fitCloseReason,
  MAX_CLOSE_REASON_BYTES,
} from "../../../transports/http/close_socket.ts";

const bytes = (s: string): number => new TextEncoder().encode(s).length;

describe("fitCloseReason", () => {
  it("keeps a reason that fits, and cuts a longer one at a character boundary", () => {
    assert.equal(fitCloseReason(""), "");
    assert.equal(fitCloseReason("Handshake timed out"), "Handshake timed out");
    const exact = "y".repeat(MAX_CLOSE_REASON_BYTES);
    assert.equal(fitCloseReason(exact), exact);
    for (const unit of ["x", "é", "漢", "😀"]) {
      for (const n of [40, 41, 42, 61, 62, 123, 124, 5000]) {
        const reason = unit.repeat(n);
        const fitted = fitCloseReason(reason);
        assert.ok(
          bytes(fitted) <= MAX_CLOSE_REASON_BYTES,
          `${unit} × ${n}: ${bytes(fitted)} bytes`,
        );
        if (bytes(reason) <= MAX_CLOSE_REASON_BYTES) assert.equal(fitted, reason);
        else {
          assert.ok(fitted.endsWith("…"));
          const kept = fitted.slice(0, -1);
          assert.ok(reason.startsWith(kept), "a prefix of whole characters");
          assert.equal(kept.length % unit.length, 0, "no half surrogate pair");
          assert.ok(
            bytes(kept) + bytes(unit) + 3 > MAX_CLOSE_REASON_BYTES,
            "cut no earlier than needed",
          );
        }
      }
    }
  });
});

describe("closeSocket", () => {
  it("closes with the fitted reason, else without it, else plainly, and never throws", () => {
    const calls: unknown[][] = [];
    const strict = {
      close(...args: unknown[]) {
        calls.push(args);
        if (args.length === 2 && bytes(args[1] as string) > MAX_CLOSE_REASON_BYTES) {
          throw new SyntaxError("reason too long");
        }
      },
    };
    closeSocket(strict, 1007, "x".repeat(500));
    assert.equal(calls.length, 1, "one close, with a reason that fits");
    assert.equal(calls[0]![0], 1007);

    const picky: unknown[][] = [];
    closeSocket(
      {
        close(...args: unknown[]) {
          picky.push(args);
          if (args.length > 0) throw new Error("only a plain close");
        },
      },
      4000,
      "why",
    );
    assert.deepEqual(picky, [[4000, "why"], [4000], []]);

    closeSocket(
      {
        close() {
          throw new Error("already closing");
        },
      },
      1000,
      "bye",
    ); // does not throw
    const plain: unknown[][] = [];
    closeSocket({ close: (...args: unknown[]) => void plain.push(args) });
    assert.deepEqual(plain, [[]]);
  });
});
