/**
 * The outgoing WebSocket, the same on every runtime. Bun and Node use their native `WebSocket`
 * (Node's is undici's, which writes each frame at once with Nagle off: a few-KiB message
 * round-trips in well under a millisecond on loopback). Deno's native client leaves Nagle's
 * algorithm on and writes a frame's header and payload apart, so a message of a few KiB waits
 * for the peer's delayed ACK (about 40 ms per message); on Deno this module therefore speaks
 * the client side of RFC 6455 itself over `Deno.connect` with `setNoDelay(true)`.
 *
 * @module
 */

import { runtime } from "./runtime.ts";
import { closeSocket } from "./close_socket.ts";
import { concatBytes } from "../../src/bytes/concat.ts";

/** An outgoing WebSocket as the peer link uses it. */
export interface ClientSocket {
  /** Bytes queued but not yet written. */
  readonly bufferedAmount: number;
  /** A message arrived (binary as bytes, text as a string). */
  onmessage: ((data: Uint8Array | string) => void) | null;
  /** The socket closed or failed (called once). */
  onclose: (() => void) | null;
  /** Sends one binary message (dropped once closing). */
  send(data: Uint8Array): void;
  /** Closes the socket. */
  close(code?: number, reason?: string): void;
}

/**
 * Opens a WebSocket to `ws://endpoint/path`.
 *
 * @param endpoint `host:port` or `[v6]:port`.
 * @param path The path, e.g. `/raft/ws`.
 * @param maxMessageBytes Incoming messages above this close the socket (Deno client).
 * @returns The socket, connecting.
 */
export function openClientSocket(
  endpoint: string,
  path: string,
  maxMessageBytes: number,
): ClientSocket {
  if (runtime === "deno") return new DenoClientSocket(endpoint, path, maxMessageBytes);
  return nativeSocket(`ws://${endpoint}${path}`);
}

function nativeSocket(url: string): ClientSocket {
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  let closed = false;
  const socket: ClientSocket = {
    get bufferedAmount() {
      return ws.bufferedAmount;
    },
    onmessage: null,
    onclose: null,
    send(data) {
      try {
        ws.send(data as Uint8Array<ArrayBuffer>);
      } catch { /* closing */ }
    },
    close(code, reason) {
      closeSocket(ws, code, reason);
    },
  };
  ws.onmessage = (e: MessageEvent) =>
    socket.onmessage?.(typeof e.data === "string" ? e.data : new Uint8Array(e.data as ArrayBuffer));
  ws.onclose = () => {
    if (closed) return;
    closed = true;
    socket.onclose?.();
  };
  ws.onerror = () => {}; // a close event follows
  return socket;
}

interface DenoConn {
  setNoDelay(noDelay?: boolean): void;
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
}
interface DenoNet {
  connect(options: { hostname: string; port: number }): Promise<DenoConn>;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const MAX_HEADER_BYTES = 16 * 1024;
const encoder = new TextEncoder();

function base64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/** The client side of RFC 6455 over a TCP connection with Nagle off. */
class DenoClientSocket implements ClientSocket {
  onmessage: ((data: Uint8Array | string) => void) | null = null;
  onclose: (() => void) | null = null;
  #conn: DenoConn | null = null;
  #open = false;
  #closed = false;
  #queue: Uint8Array[] = [];
  #buffered = 0;
  #writing = false;
  #maxMessageBytes: number;

  constructor(endpoint: string, path: string, maxMessageBytes: number) {
    this.#maxMessageBytes = maxMessageBytes;
    this.#run(endpoint, path).catch(() => this.#finish());
  }

  get bufferedAmount(): number {
    return this.#buffered;
  }

  send(data: Uint8Array): void {
    if (!this.#open || this.#closed) return;
    this.#write(frame(0x2, data));
  }

  close(code?: number, reason?: string): void {
    if (this.#closed) return;
    if (this.#open && this.#conn !== null) {
      const body = new Uint8Array(code === undefined ? 0 : 2 + encoder.encode(reason ?? "").length);
      if (code !== undefined) {
        new DataView(body.buffer).setUint16(0, code);
        body.set(encoder.encode(reason ?? ""), 2);
      }
      this.#open = false;
      this.#write(frame(0x8, body.subarray(0, 125)), true);
      return;
    }
    this.#finish();
  }

  async #run(endpoint: string, path: string): Promise<void> {
    const m = /^\[?(.*?)\]?:(\d+)$/.exec(endpoint)!;
    const deno = (globalThis as unknown as { Deno: DenoNet }).Deno;
    const conn = await deno.connect({ hostname: m[1]!, port: Number(m[2]) });
    if (this.#closed) {
      conn.close();
      return;
    }
    this.#conn = conn;
    conn.setNoDelay(true);
    const key = base64(crypto.getRandomValues(new Uint8Array(16)));
    await writeAll(
      conn,
      encoder.encode(
        `GET ${path} HTTP/1.1\r\nHost: ${endpoint}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      ),
    );
    const reader = new Reader(conn);
    const head = await reader.readHead();
    const expected = base64(
      new Uint8Array(await crypto.subtle.digest("SHA-1", encoder.encode(key + GUID))),
    );
    const lines = head.split("\r\n");
    const accept = lines.find((l) => /^sec-websocket-accept:/i.test(l))?.split(":")[1]?.trim();
    if (!/^HTTP\/1\.1 101 /.test(lines[0] ?? "") || accept !== expected) {
      throw new Error("WebSocket upgrade refused");
    }
    if (this.#closed) return;
    this.#open = true;
    let parts: Uint8Array[] = [];
    let partsBytes = 0;
    let partsOp = 0;
    for (;;) {
      const b0 = await reader.take(2);
      const fin = (b0[0]! & 0x80) !== 0;
      const op = b0[0]! & 0x0f;
      if ((b0[1]! & 0x80) !== 0 || (b0[0]! & 0x70) !== 0) throw new Error("Bad frame");
      let len = b0[1]! & 0x7f;
      if (len === 126) len = new DataView((await reader.take(2)).buffer).getUint16(0);
      else if (len === 127) {
        const v = new DataView((await reader.take(8)).buffer);
        if (v.getUint32(0) !== 0) throw new Error("Frame too large");
        len = v.getUint32(4);
      }
      if (op >= 0x8) {
        if (len > 125 || !fin) throw new Error("Bad control frame");
        const body = await reader.take(len);
        if (op === 0x8) return this.#onCloseFrame();
        if (op === 0x9) this.#write(frame(0xa, body));
        continue;
      }
      if (partsBytes + len > this.#maxMessageBytes) {
        this.close(1009, "Message too big");
        return;
      }
      if (op !== 0) partsOp = op;
      parts.push(await reader.take(len));
      partsBytes += len;
      if (!fin) continue;
      const data = parts.length === 1 ? parts[0]! : concatBytes(parts);
      parts = [];
      partsBytes = 0;
      if (this.#closed) return;
      this.onmessage?.(partsOp === 0x1 ? new TextDecoder().decode(data) : data);
    }
  }

  #onCloseFrame(): void {
    if (this.#open) {
      this.#open = false;
      this.#write(frame(0x8, new Uint8Array(0)), true);
    } else this.#finish();
  }

  #write(bytes: Uint8Array, thenClose = false): void {
    this.#queue.push(bytes);
    this.#buffered += bytes.length;
    if (thenClose) this.#queue.push(new Uint8Array(0)); // marker: close after this
    if (!this.#writing) void this.#pump();
  }

  async #pump(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#queue.length > 0 && this.#conn !== null) {
        const chunk = this.#queue.shift()!;
        if (chunk.length === 0) return this.#finish();
        await writeAll(this.#conn, chunk);
        this.#buffered -= chunk.length;
      }
    } catch {
      this.#finish();
    } finally {
      this.#writing = false;
    }
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#open = false;
    this.#queue = [];
    this.#buffered = 0;
    try {
      this.#conn?.close();
    } catch { /* already closed */ }
    this.#conn = null;
    this.onclose?.();
  }
}

async function writeAll(conn: DenoConn, bytes: Uint8Array): Promise<void> {
  let at = 0;
  while (at < bytes.length) at += await conn.write(bytes.subarray(at));
}

/** A masked client frame: header, mask key and payload in one buffer (one write). */
function frame(op: number, payload: Uint8Array): Uint8Array {
  const n = payload.length;
  const ext = n < 126 ? 0 : n < 65536 ? 2 : 8;
  // Pad in front so that the payload starts 4-byte aligned in the buffer (word-wise XOR).
  const pad = (4 - ((2 + ext + 4) & 3)) & 3;
  const out = new Uint8Array(pad + 2 + ext + 4 + n).subarray(pad);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out[0] = 0x80 | op;
  if (ext === 0) out[1] = 0x80 | n;
  else if (ext === 2) {
    out[1] = 0x80 | 126;
    view.setUint16(2, n);
  } else {
    out[1] = 0x80 | 127;
    view.setUint32(2, Math.floor(n / 2 ** 32));
    view.setUint32(6, n >>> 0);
  }
  const maskAt = 2 + ext;
  crypto.getRandomValues(out.subarray(maskAt, maskAt + 4));
  const mask = out.subarray(maskAt, maskAt + 4);
  const start = maskAt + 4;
  out.set(payload, start);
  // XOR four bytes at a time where the body is aligned, then the tail.
  const mask32 = view.getUint32(maskAt, LITTLE_ENDIAN);
  const words = new Uint32Array(out.buffer, out.byteOffset + start, n >>> 2);
  for (let w = 0; w < words.length; w++) words[w]! ^= mask32;
  let i = words.length * 4;
  for (; i < n; i++) out[start + i]! ^= mask[i & 3]!;
  return out;
}

/** Buffered reads from the connection. */
class Reader {
  #conn: DenoConn;
  #buf = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;

  constructor(conn: DenoConn) {
    this.#conn = conn;
  }

  async #fill(): Promise<void> {
    if (this.#start > 0 && this.#start === this.#end) this.#start = this.#end = 0;
    if (this.#end === this.#buf.length) {
      const bigger = new Uint8Array(Math.max(this.#buf.length, (this.#end - this.#start) * 2));
      bigger.set(this.#buf.subarray(this.#start, this.#end));
      this.#end -= this.#start;
      this.#start = 0;
      this.#buf = bigger;
    }
    const n = await this.#conn.read(this.#buf.subarray(this.#end));
    if (n === null) throw new Error("Connection closed");
    this.#end += n;
  }

  /** The HTTP response head, up to the blank line. */
  async readHead(): Promise<string> {
    for (;;) {
      const text = new TextDecoder().decode(this.#buf.subarray(this.#start, this.#end));
      const at = text.indexOf("\r\n\r\n");
      if (at >= 0) {
        this.#start += encoder.encode(text.slice(0, at + 4)).length;
        return text.slice(0, at);
      }
      if (this.#end - this.#start > MAX_HEADER_BYTES) throw new Error("Response head too large");
      await this.#fill();
    }
  }

  /** Exactly `n` bytes (a copy the caller owns). */
  async take(n: number): Promise<Uint8Array> {
    if (this.#buf.length - this.#start < n) {
      const bigger = new Uint8Array(n + 64 * 1024);
      bigger.set(this.#buf.subarray(this.#start, this.#end));
      this.#end -= this.#start;
      this.#start = 0;
      this.#buf = bigger;
    }
    while (this.#end - this.#start < n) await this.#fill();
    const out = this.#buf.slice(this.#start, this.#start + n);
    this.#start += n;
    return out;
  }
}
