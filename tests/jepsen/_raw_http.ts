/**
 * One HTTP request over a plain loopback socket (`Connection: close`), telling apart the three
 * things a fault-test client must know: an answer, a refusal before anything was sent, and a
 * request whose fate is unknown (sent, then reset or timed out). `fetch` hides that line, and
 * under Deno a fetch queued on a frozen (SIGSTOPped) process did not honour its timeout.
 *
 * @module
 */

import { connect } from "node:net";

/** What became of a request. */
export type RawResult =
  | { kind: "answer"; status: number; body: Record<string, unknown> }
  /** The connection was never established: nothing was sent. */
  | { kind: "refused"; why: string }
  /** Sent (or partly sent), then no complete answer: it may have been acted on. */
  | { kind: "lost"; why: string };

/**
 * Sends one request to 127.0.0.1:`port` and reads the whole answer.
 *
 * @param port The port.
 * @param method GET or POST.
 * @param path The path.
 * @param body A JSON body for POST.
 * @param timeoutMs Gives up after this long without the answer.
 * @returns The result; never rejects.
 */
export function rawRequest(
  port: number,
  method: "GET" | "POST",
  path: string,
  body: string | null,
  timeoutMs: number,
): Promise<RawResult> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let sent = false;
    let data = "";
    let settled = false;
    const finish = (r: RawResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(
      () =>
        finish(
          sent
            ? { kind: "lost", why: `no answer in ${timeoutMs} ms` }
            : { kind: "refused", why: `no connection in ${timeoutMs} ms` },
        ),
      timeoutMs,
    );
    socket.setEncoding("utf8");
    socket.on("connect", () => {
      sent = true;
      const payload = body ?? "";
      socket.write(
        `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n` +
          (body === null
            ? ""
            : `Content-Type: application/json\r\nContent-Length: ${
              Buffer.byteLength(payload)
            }\r\n`) +
          `\r\n${payload}`,
      );
    });
    socket.on("data", (d) => data += d);
    socket.on("error", (e) => {
      const why = `${e.message}`;
      finish(sent ? { kind: "lost", why } : { kind: "refused", why });
    });
    socket.on("close", () => {
      if (!sent) return finish({ kind: "refused", why: "closed before connecting" });
      const m = /^HTTP\/1\.1 (\d{3})[^]*?\r\n\r\n([^]*)$/.exec(data);
      if (m === null) {
        return finish({ kind: "lost", why: `incomplete answer: ${data.slice(0, 200)}` });
      }
      const text = /^[0-9a-f]+\r\n/i.test(m[2]!) ? dechunk(m[2]!) : m[2]!;
      try {
        finish({
          kind: "answer",
          status: Number(m[1]),
          body: JSON.parse(text) as Record<string, unknown>,
        });
      } catch {
        finish({ kind: "lost", why: `bad JSON: ${text.slice(0, 200)}` });
      }
    });
  });
}

function dechunk(text: string): string {
  let out = "";
  let rest = text;
  for (;;) {
    const m = /^([0-9a-f]+)\r\n/i.exec(rest);
    if (m === null) return out;
    const size = parseInt(m[1]!, 16);
    if (size === 0) return out;
    out += rest.slice(m[0].length, m[0].length + size);
    rest = rest.slice(m[0].length + size + 2);
  }
}
