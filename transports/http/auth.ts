/**
 * Shared-secret proofs (HMAC-SHA256 through WebCrypto) for peer sockets and HTTP calls.
 * The secret itself is imported into a non-extractable `CryptoKey` and never kept as text.
 *
 * @module
 */

import { concatBytes } from "../../src/bytes/concat.ts";

const encoder = new TextEncoder();

/**
 * Header carrying an HTTP call's proof when the cluster has a secret:
 * `v1 <unix ms> <hex HMAC-SHA256(secret, "webraft/call/1\0" ‖ ms ‖ "\0" ‖ from ‖ "\0" ‖ body)>`.
 *
 * @example Without it, a server with a secret answers 401
 * ```ts
 * import { Hono } from "hono";
 * import { AUTH_HEADER, HttpTransport, mountTransport } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const app = new Hono();
 * const t = new HttpTransport("127.0.0.1:8100", { secret: "s3cret" });
 * t.listen({ onFrame() {}, onCall: (_from, req) => Promise.resolve(req) });
 * mountTransport(app, t);
 * const res = await app.request("/raft/call", { method: "POST", body: new Uint8Array([1]) });
 * assert.equal(res.status, 401);
 * assert.equal((await res.json()).error, "EACCES");
 * assert.equal(AUTH_HEADER, "x-raft-auth");
 * await t.close();
 * ```
 */
export const AUTH_HEADER = "x-raft-auth";
/**
 * Header naming the caller's endpoint (`host:port`); non-peers send none.
 *
 * @example
 * ```ts
 * import { FROM_HEADER } from "./mod.ts";
 * import assert from "node:assert/strict";
 * assert.equal(FROM_HEADER, "x-raft-from");
 * ```
 */
export const FROM_HEADER = "x-raft-from";

/** A shared secret, ready to sign and verify. */
export class SharedKey {
  #key: Promise<CryptoKey>;

  /**
   * Imports the secret.
   *
   * @param secret The shared secret (any non-empty string).
   */
  constructor(secret: string) {
    this.#key = crypto.subtle.importKey(
      "raw",
      encoder.encode(secret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign", "verify"],
    );
  }

  /**
   * HMAC-SHA256 over the concatenation of `parts`.
   *
   * @param parts Byte strings, concatenated in order.
   * @returns The 32-byte mac.
   */
  async sign(...parts: Uint8Array[]): Promise<Uint8Array> {
    return new Uint8Array(await crypto.subtle.sign("HMAC", await this.#key, concatBytes(parts)));
  }

  /**
   * Whether `mac` is the HMAC of `parts` (constant-time comparison by WebCrypto).
   *
   * @param mac The claimed mac.
   * @param parts Byte strings, concatenated in order.
   * @returns `true` when it matches.
   */
  async verify(mac: Uint8Array, ...parts: Uint8Array[]): Promise<boolean> {
    if (mac.length !== 32) return false;
    return await crypto.subtle.verify(
      "HMAC",
      await this.#key,
      mac as Uint8Array<ArrayBuffer>,
      concatBytes(parts),
    );
  }

  /** Keeps the secret out of logs and inspection. */
  toJSON(): string {
    return "[SharedKey]";
  }
}

const WS_CLIENT = encoder.encode("webraft/ws-client/1\0");
const WS_SERVER = encoder.encode("webraft/ws-server/1\0");
const CALL = encoder.encode("webraft/call/1\0");
const SEP = new Uint8Array([0]);

/**
 * The client's proof on a peer socket: HMAC(secret, label ‖ challenge ‖ endpoint).
 *
 * @param key The shared key.
 * @param challenge The server's challenge.
 * @param endpoint The endpoint the client announces.
 * @returns The mac.
 */
export function clientProof(
  key: SharedKey,
  challenge: Uint8Array,
  endpoint: string,
): Promise<Uint8Array> {
  return key.sign(WS_CLIENT, challenge, encoder.encode(endpoint));
}

/**
 * Checks a client's socket proof.
 *
 * @param key The shared key.
 * @param mac The client's mac.
 * @param challenge The challenge this server sent.
 * @param endpoint The endpoint the client announced.
 * @returns Whether it is valid.
 */
export function verifyClientProof(
  key: SharedKey,
  mac: Uint8Array,
  challenge: Uint8Array,
  endpoint: string,
): Promise<boolean> {
  return key.verify(mac, WS_CLIENT, challenge, encoder.encode(endpoint));
}

/**
 * The server's proof on a peer socket: HMAC(secret, label ‖ client nonce ‖ challenge).
 *
 * @param key The shared key.
 * @param nonce The client's nonce.
 * @param challenge The server's challenge.
 * @returns The mac.
 */
export function serverProof(
  key: SharedKey,
  nonce: Uint8Array,
  challenge: Uint8Array,
): Promise<Uint8Array> {
  return key.sign(WS_SERVER, nonce, challenge);
}

/**
 * Checks the server's socket proof.
 *
 * @param key The shared key.
 * @param mac The server's mac.
 * @param nonce The nonce this client sent.
 * @param challenge The server's challenge.
 * @returns Whether it is valid.
 */
export function verifyServerProof(
  key: SharedKey,
  mac: Uint8Array,
  nonce: Uint8Array,
  challenge: Uint8Array,
): Promise<boolean> {
  return key.verify(mac, WS_SERVER, nonce, challenge);
}

function callParts(timestamp: string, from: string, body: Uint8Array): Uint8Array[] {
  return [CALL, encoder.encode(timestamp), SEP, encoder.encode(from), SEP, body];
}

/**
 * The `x-raft-auth` header value for an HTTP call.
 *
 * @param key The shared key.
 * @param from The caller's endpoint ("" for non-peers).
 * @param body The request bytes.
 * @param now The current time in ms.
 * @returns The header value.
 */
export async function callProof(
  key: SharedKey,
  from: string,
  body: Uint8Array,
  now: number = Date.now(),
): Promise<string> {
  const ts = String(Math.floor(now));
  const mac = await key.sign(...callParts(ts, from, body));
  return `v1 ${ts} ${toHex(mac)}`;
}

/**
 * Checks an HTTP call's `x-raft-auth` header.
 *
 * @param key The shared key.
 * @param header The header value, if any.
 * @param from The caller's endpoint header ("" when absent).
 * @param body The request bytes.
 * @param windowMs How far the timestamp may be from now.
 * @param now The current time in ms.
 * @returns `null` when valid, else why not.
 */
export async function verifyCallProof(
  key: SharedKey,
  header: string | null | undefined,
  from: string,
  body: Uint8Array,
  windowMs: number,
  now: number = Date.now(),
): Promise<string | null> {
  if (header == null) return `Missing ${AUTH_HEADER} header`;
  const m = /^v1 (\d{1,16}) ([0-9a-f]{64})$/.exec(header);
  if (m === null) return `Malformed ${AUTH_HEADER} header`;
  const ts = Number(m[1]);
  if (Math.abs(now - ts) > windowMs) return `Stale ${AUTH_HEADER} timestamp`;
  const ok = await key.verify(fromHex(m[2]!), ...callParts(m[1]!, from, body));
  return ok ? null : `Wrong ${AUTH_HEADER} proof`;
}

function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
