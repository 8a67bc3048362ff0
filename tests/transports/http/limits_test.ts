import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import type { UpgradeWebSocket, WSContext, WSMessageReceive } from "hono/ws";
import { RaftError } from "../../../src/errors/status.ts";
import { httpCall, serve } from "../../../transports/http/mod.ts";
import {
  decodeHello,
  decodeWelcome,
  encodeAuth,
  encodeBatch,
  ItemKind,
} from "../../../transports/http/wire.ts";
import { bytes, connect, isCode, type Peer, rawSocket, startPeer } from "./_helpers.ts";

/** A raw socket past the handshake (server without secret), announcing `endpoint`. */
async function handshaken(b: Peer, endpoint = "127.0.0.1:9") {
  const raw = await rawSocket(b.endpoint);
  decodeHello(await raw.nextMessage());
  raw.ws.send(
    encodeAuth({
      maxMessageBytes: 1 << 20,
      endpoint,
      nonce: new Uint8Array(32),
      mac: new Uint8Array(0),
    }),
  );
  decodeWelcome(await raw.nextMessage());
  return raw;
}

/** The peer still works for a real transport afterwards. */
async function stillServes(b: Peer): Promise<void> {
  const a = await startPeer();
  await connect(a.t, b.endpoint);
  const n = b.frames.length;
  a.t.send(b.endpoint, bytes(77));
  await b.waitFrames(n + 1);
  assert.deepEqual([...b.frames.at(-1)!.frame], [77]);
  assert.deepEqual([...await a.t.call(b.endpoint, bytes(5))], [5]);
  await a.stop();
}

const frame = encodeBatch([{ kind: ItemKind.FRAME, bytes: bytes(1, 2, 3) }]);

function mutated(edit: (m: Uint8Array, v: DataView) => Uint8Array): Uint8Array {
  const m = frame.slice();
  return edit(m, new DataView(m.buffer));
}

describe("HttpTransport limits and malformed input", () => {
  it("closes a socket with 1009 for a message over maxMessageBytes, and keeps serving", async () => {
    const b = await startPeer({ options: { maxMessageBytes: 4096 } });
    const raw = await handshaken(b);
    raw.ws.send(new Uint8Array(4097));
    assert.equal((await raw.closed).code, 1009);
    assert.equal(b.t.stats.oversize, 1);
    await stillServes(b);
    await b.stop();
  });

  it("sizes response batches by the caller's limit; a response too large fails the call", async () => {
    const b = await startPeer({
      onCall: (_f, req) => Promise.resolve(new Uint8Array(req[0]! * 1000)),
    });
    const a = await startPeer({ options: { maxMessageBytes: 4096 } });
    await connect(a.t, b.endpoint);
    const small = await Promise.all([3, 3, 3, 3].map((n) => a.t.call(b.endpoint, bytes(n))));
    assert.deepEqual(small.map((r) => r.length), [3000, 3000, 3000, 3000]);
    await assert.rejects(a.t.call(b.endpoint, bytes(5)), isCode(RaftError.EINVAL));
    assert.equal(a.t.connectionState(b.endpoint), "open", "the socket survives");
    assert.equal(a.t.stats.malformed + a.t.stats.oversize, 0);
    await a.stop();
    await b.stop();
  });

  it("answers 413 for a POST body over the limit (declared or streamed)", async () => {
    const b = await startPeer({ options: { maxMessageBytes: 4096 } });
    const res = await fetch(`http://${b.endpoint}/raft/call`, {
      method: "POST",
      body: new Uint8Array(5000),
    });
    assert.equal(res.status, 413);
    const json = await res.json();
    assert.equal(json.error, "EINVAL");
    assert.match(json.message, /5000 bytes exceeds the limit of 4096/);
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 10; i++) c.enqueue(new Uint8Array(1000));
        c.close();
      },
    });
    const streamed = await fetch(`http://${b.endpoint}/raft/call`, {
      method: "POST",
      body: stream,
      duplex: "half",
    } as RequestInit);
    assert.equal(streamed.status, 413);
    await streamed.body?.cancel();
    await assert.rejects(httpCall(b.endpoint, new Uint8Array(5000)), isCode(RaftError.EINVAL));
    assert.equal(b.calls.length, 0);
    assert.ok(b.t.stats.oversize >= 3);
    await stillServes(b);
    await b.stop();
  });

  it("closes the socket for malformed, truncated or mutated messages; the handler sees nothing", async () => {
    const b = await startPeer();
    const bad: Array<[string, Uint8Array | string, number]> = [
      ["text", "hello", 1003],
      ["unknown type", bytes(0x7f, 1, 2), 1007],
      ["empty batch", bytes(0x10), 1007],
      ["unknown item kind", mutated((m) => (m[1] = 9, m)), 1007],
      ["response kind from a client", mutated((m) => (m[1] = ItemKind.RESPONSE, m)), 1007],
      ["huge declared length", mutated((m, v) => (v.setUint32(2, 0xffffffff), m)), 1007],
      ["length past the end", mutated((m, v) => (v.setUint32(2, 4), m)), 1007],
      ["truncated", frame.subarray(0, frame.length - 1), 1007],
      ["truncated header", frame.subarray(0, 3), 1007],
      ["trailing byte", new Uint8Array([...frame, 1]), 1007],
    ];
    for (const [what, msg, code] of bad) {
      const raw = await handshaken(b);
      raw.ws.send(msg);
      assert.equal((await raw.closed).code, code, what);
    }
    assert.equal(b.frames.length, 0);
    assert.equal(b.t.stats.malformed, bad.length);
    // Garbage instead of AUTH, and an AUTH with a bad endpoint.
    for (
      const msg of [
        bytes(0xff, 0, 1),
        encodeAuth({
          maxMessageBytes: 1 << 20,
          endpoint: "not an endpoint",
          nonce: new Uint8Array(32),
          mac: bytes(),
        }),
        frame,
      ]
    ) {
      const raw = await rawSocket(b.endpoint);
      await raw.nextMessage();
      raw.ws.send(msg);
      assert.equal((await raw.closed).code, 1007);
    }
    assert.equal(b.frames.length, 0);
    await stillServes(b);
    await b.stop();
  });

  it("answers 400/426 for bad HTTP input and keeps serving", async () => {
    const b = await startPeer();
    const res = await fetch(`http://${b.endpoint}/raft/call`, {
      method: "POST",
      headers: { "x-raft-from": "not an endpoint" },
      body: bytes(1),
    });
    assert.equal(res.status, 400);
    const json = await res.json();
    assert.equal(json.error, "EINVAL");
    assert.match(json.message, /x-raft-from/);
    const get = await fetch(`http://${b.endpoint}/raft/ws`);
    assert.equal(get.status, 426);
    await get.body?.cancel();
    assert.equal(b.calls.length, 0);
    await stillServes(b);
    await b.stop();
  });

  it("a frame pipelined behind AUTH arrives once the socket is accepted", async () => {
    const b = await startPeer();
    const raw = await rawSocket(b.endpoint);
    await raw.nextMessage();
    raw.ws.send(
      encodeAuth({
        maxMessageBytes: 1 << 20,
        endpoint: "127.0.0.1:9",
        nonce: new Uint8Array(32),
        mac: bytes(),
      }),
    );
    raw.ws.send(frame);
    await b.waitFrames(1);
    assert.equal(b.frames[0]!.from, "127.0.0.1:9");
    raw.ws.close();
    await raw.closed;
    await b.stop();
  });

  it("the user's own WebSocket route works next to raft's, and shutdown closes it", async () => {
    // hono/deno touches Deno at import: load the adapter of the runtime we are on.
    const { upgradeWebSocket: upgrade } = (
      "Deno" in globalThis
        ? await import("hono/deno")
        : "Bun" in globalThis
        ? await import("hono/bun")
        : await import("@hono/node-server")
    ) as { upgradeWebSocket: UpgradeWebSocket };
    const app = new Hono();
    app.get(
      "/echo",
      upgrade(() => ({
        onMessage(e: MessageEvent<WSMessageReceive>, ws: WSContext) {
          ws.send(typeof e.data === "string" ? e.data : "binary");
        },
      })),
    );
    const b = await startPeer({ app });
    const ws = new WebSocket(`ws://${b.endpoint}/echo`);
    await new Promise((r) => ws.onopen = r);
    const closed = new Promise<number>((r) => ws.onclose = (e) => r(e.code));
    const echoed = new Promise((r) => ws.onmessage = (e) => r(e.data));
    ws.send("ping");
    assert.equal(await echoed, "ping");
    await stillServes(b);
    await b.stop();
    await closed;
  });

  it("serve refuses a bad port", async () => {
    await assert.rejects(
      serve(new Hono(), { hostname: "127.0.0.1", port: 70000 }),
      isCode(RaftError.EINVAL),
    );
  });
});
