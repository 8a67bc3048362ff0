/**
 * The binary WebSocket protocol of the HTTP transport: handshake messages and batches.
 *
 * Every WebSocket message is binary and starts with a type byte:
 *
 * - `HELLO` (server → client) `[0x01][version u8][flags u8][maxMessageBytes u32][challenge 32]`;
 *   flag bit 0: the server requires a shared-secret proof.
 * - `AUTH` (client → server) `[0x02][version u8][maxMessageBytes u32][endpointLen u16]
 *   [endpoint utf8][nonce 32][macLen u8][mac]`: the largest message the client accepts, the
 *   endpoint it speaks for, a nonce the server must answer, and its proof (empty without a
 *   secret).
 * - `WELCOME` (server → client) `[0x03][macLen u8][mac]`: the server accepted; the mac proves
 *   the server knows the secret too (empty without one).
 * - `BATCH` (both ways) `[0x10]` then one or more items:
 *   `FRAME [0x01][len u32][bytes]` and `REQUEST [0x02][id u32][len u32][bytes]` (client →
 *   server), `RESPONSE [0x03][id u32][len u32][bytes]` and
 *   `ERROR [0x04][id u32][code u32][len u32][message utf8]` (server → client).
 *
 * Integers are big-endian. A batch must be consumed exactly: a truncated item, a length past
 * the end, trailing bytes or an unknown kind make the whole message malformed.
 *
 * @module
 */

/** Protocol version carried in HELLO and AUTH. */
export const WIRE_VERSION = 1;
/** Bytes of the server challenge and the client nonce. */
export const NONCE_BYTES = 32;

/** The smallest message limit a HELLO may announce. */
export const MIN_MESSAGE_LIMIT = 1024;

/** Message type bytes. */
export const MsgType = {
  /** Server greeting with the challenge. */
  HELLO: 0x01,
  /** Client identity and proof. */
  AUTH: 0x02,
  /** Server acceptance. */
  WELCOME: 0x03,
  /** A batch of items. */
  BATCH: 0x10,
} as const;

/** Batch item kinds. */
export const ItemKind = {
  /** A one-way frame. */
  FRAME: 0x01,
  /** A call request. */
  REQUEST: 0x02,
  /** A call's response bytes. */
  RESPONSE: 0x03,
  /** A call's failure. */
  ERROR: 0x04,
} as const;

/** One decoded (or to be encoded) batch item. */
export type Item =
  | { kind: typeof ItemKind.FRAME; bytes: Uint8Array }
  | { kind: typeof ItemKind.REQUEST; id: number; bytes: Uint8Array }
  | { kind: typeof ItemKind.RESPONSE; id: number; bytes: Uint8Array }
  | { kind: typeof ItemKind.ERROR; id: number; code: number; message: string };

/** A message that does not follow the protocol; `message` says what was wrong. */
export class WireError extends Error {
  /**
   * Creates the error.
   *
   * @param message What was wrong.
   */
  constructor(message: string) {
    super(message);
    this.name = "WireError";
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Fixed bytes in front of an item's payload, by kind. */
function headerBytes(kind: number): number {
  switch (kind) {
    case ItemKind.FRAME:
      return 5;
    case ItemKind.REQUEST:
    case ItemKind.RESPONSE:
      return 9;
    default:
      return 13;
  }
}

/**
 * Encoded size of an item inside a batch (without the batch's type byte).
 *
 * @param item The item.
 * @returns Bytes.
 */
export function itemSize(item: Item): number {
  const payload = item.kind === ItemKind.ERROR
    ? encoder.encode(item.message).length
    : item.bytes.length;
  return headerBytes(item.kind) + payload;
}

/**
 * Encodes items as one BATCH message.
 *
 * @param items The items, in order.
 * @returns The message bytes.
 */
export function encodeBatch(items: readonly Item[]): Uint8Array {
  const parts: Array<{ item: Item; payload: Uint8Array }> = [];
  let size = 1;
  for (const item of items) {
    const payload = item.kind === ItemKind.ERROR ? encoder.encode(item.message) : item.bytes;
    parts.push({ item, payload });
    size += headerBytes(item.kind) + payload.length;
  }
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out[0] = MsgType.BATCH;
  let at = 1;
  for (const { item, payload } of parts) {
    out[at++] = item.kind;
    if (item.kind !== ItemKind.FRAME) {
      view.setUint32(at, item.id);
      at += 4;
    }
    if (item.kind === ItemKind.ERROR) {
      view.setUint32(at, item.code >>> 0);
      at += 4;
    }
    view.setUint32(at, payload.length);
    at += 4;
    out.set(payload, at);
    at += payload.length;
  }
  return out;
}

/**
 * Decodes a BATCH message. Payloads are views into `msg` (no copy).
 *
 * @param msg The whole message, type byte included.
 * @param allowed The item kinds this side may receive.
 * @returns The items, in order.
 * @throws {WireError} If the message is not a well-formed batch of allowed items.
 */
export function decodeBatch(msg: Uint8Array, allowed: ReadonlySet<number>): Item[] {
  if (msg[0] !== MsgType.BATCH) throw new WireError(`Expected a batch, got type ${msg[0]}`);
  if (msg.length < 2) throw new WireError("Empty batch");
  const view = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  const items: Item[] = [];
  let at = 1;
  while (at < msg.length) {
    const kind = msg[at]!;
    if (!allowed.has(kind)) throw new WireError(`Unexpected item kind ${kind} at byte ${at}`);
    const header = headerBytes(kind);
    if (at + header > msg.length) {
      throw new WireError(`Truncated item header at byte ${at}`);
    }
    const id = kind === ItemKind.FRAME ? 0 : view.getUint32(at + 1);
    const code = kind === ItemKind.ERROR ? view.getUint32(at + 5) : 0;
    const len = view.getUint32(at + header - 4);
    const start = at + header;
    if (len > msg.length - start) {
      throw new WireError(
        `Item at byte ${at} declares ${len} bytes but only ${msg.length - start} follow`,
      );
    }
    const payload = msg.subarray(start, start + len);
    switch (kind) {
      case ItemKind.FRAME:
        items.push({ kind, bytes: payload });
        break;
      case ItemKind.REQUEST:
      case ItemKind.RESPONSE:
        items.push({ kind, id, bytes: payload });
        break;
      default: {
        let message: string;
        try {
          message = decoder.decode(payload);
        } catch {
          throw new WireError(`Error message at byte ${at} is not UTF-8`);
        }
        items.push({ kind: ItemKind.ERROR, id, code: code | 0, message });
      }
    }
    at = start + len;
  }
  return items;
}

/** A decoded HELLO. */
export interface Hello {
  /** The server requires a secret proof. */
  authRequired: boolean;
  /** Largest message the server accepts. */
  maxMessageBytes: number;
  /** Random bytes the client must sign. */
  challenge: Uint8Array;
}

/**
 * Encodes a HELLO.
 *
 * @param hello Its fields.
 * @returns The message.
 */
export function encodeHello(hello: Hello): Uint8Array {
  const out = new Uint8Array(7 + NONCE_BYTES);
  out[0] = MsgType.HELLO;
  out[1] = WIRE_VERSION;
  out[2] = hello.authRequired ? 1 : 0;
  new DataView(out.buffer).setUint32(3, hello.maxMessageBytes);
  out.set(hello.challenge, 7);
  return out;
}

/**
 * Decodes a HELLO.
 *
 * @param msg The message.
 * @returns Its fields.
 * @throws {WireError} If malformed or of another version.
 */
export function decodeHello(msg: Uint8Array): Hello {
  if (msg[0] !== MsgType.HELLO || msg.length !== 7 + NONCE_BYTES) {
    throw new WireError("Malformed HELLO");
  }
  if (msg[1] !== WIRE_VERSION) throw new WireError(`Unsupported protocol version ${msg[1]}`);
  const maxMessageBytes = new DataView(msg.buffer, msg.byteOffset, msg.byteLength).getUint32(3);
  if (maxMessageBytes < MIN_MESSAGE_LIMIT) {
    throw new WireError(`HELLO announces a message limit of ${maxMessageBytes} bytes`);
  }
  return {
    authRequired: (msg[2]! & 1) !== 0,
    maxMessageBytes,
    challenge: msg.slice(7),
  };
}

/** A decoded AUTH. */
export interface Auth {
  /** Largest message the client accepts (the server sizes its response batches by it). */
  maxMessageBytes: number;
  /** The endpoint the client speaks for. */
  endpoint: string;
  /** Random bytes the server signs in WELCOME. */
  nonce: Uint8Array;
  /** The client's proof (empty without a secret). */
  mac: Uint8Array;
}

/** Bytes of AUTH before the endpoint: type, version, maxMessageBytes u32, endpointLen u16. */
const AUTH_HEAD = 8;

/**
 * Encodes an AUTH.
 *
 * @param auth Its fields.
 * @returns The message.
 */
export function encodeAuth(auth: Auth): Uint8Array {
  const ep = encoder.encode(auth.endpoint);
  const out = new Uint8Array(AUTH_HEAD + ep.length + NONCE_BYTES + 1 + auth.mac.length);
  const view = new DataView(out.buffer);
  out[0] = MsgType.AUTH;
  out[1] = WIRE_VERSION;
  view.setUint32(2, auth.maxMessageBytes);
  view.setUint16(6, ep.length);
  out.set(ep, AUTH_HEAD);
  out.set(auth.nonce, AUTH_HEAD + ep.length);
  out[AUTH_HEAD + ep.length + NONCE_BYTES] = auth.mac.length;
  out.set(auth.mac, AUTH_HEAD + 1 + ep.length + NONCE_BYTES);
  return out;
}

/**
 * Decodes an AUTH.
 *
 * @param msg The message.
 * @returns Its fields.
 * @throws {WireError} If malformed or of another version.
 */
export function decodeAuth(msg: Uint8Array): Auth {
  if (msg[0] !== MsgType.AUTH || msg.length < AUTH_HEAD + 1) throw new WireError("Malformed AUTH");
  if (msg[1] !== WIRE_VERSION) throw new WireError(`Unsupported protocol version ${msg[1]}`);
  const view = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  const maxMessageBytes = view.getUint32(2);
  if (maxMessageBytes < MIN_MESSAGE_LIMIT) {
    throw new WireError(`AUTH announces a message limit of ${maxMessageBytes} bytes`);
  }
  const epLen = view.getUint16(6);
  const macAt = AUTH_HEAD + epLen + NONCE_BYTES;
  if (msg.length < macAt + 1 || msg.length !== macAt + 1 + msg[macAt]!) {
    throw new WireError("Malformed AUTH: lengths do not add up");
  }
  let endpoint: string;
  try {
    endpoint = decoder.decode(msg.subarray(AUTH_HEAD, AUTH_HEAD + epLen));
  } catch {
    throw new WireError("Malformed AUTH: endpoint is not UTF-8");
  }
  return {
    maxMessageBytes,
    endpoint,
    nonce: msg.slice(AUTH_HEAD + epLen, macAt),
    mac: msg.slice(macAt + 1),
  };
}

/**
 * Encodes a WELCOME.
 *
 * @param mac The server's proof (empty without a secret).
 * @returns The message.
 */
export function encodeWelcome(mac: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + mac.length);
  out[0] = MsgType.WELCOME;
  out[1] = mac.length;
  out.set(mac, 2);
  return out;
}

/**
 * Decodes a WELCOME.
 *
 * @param msg The message.
 * @returns The server's proof.
 * @throws {WireError} If malformed.
 */
export function decodeWelcome(msg: Uint8Array): Uint8Array {
  if (msg[0] !== MsgType.WELCOME || msg.length < 2 || msg.length !== 2 + msg[1]!) {
    throw new WireError("Malformed WELCOME");
  }
  return msg.slice(2);
}
