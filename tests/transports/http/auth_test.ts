import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { inspect } from "node:util";
import { RaftError } from "../../../src/errors/status.ts";
import { AUTH_HEADER, httpCall, HttpTransport } from "../../../transports/http/mod.ts";
import { callProof, SharedKey } from "../../../transports/http/auth.ts";
import { decodeHello, encodeAuth, encodeBatch, ItemKind } from "../../../transports/http/wire.ts";
import { bytes, connect, isCode, rawSocket, startPeer, until } from "./_helpers.ts";

const SECRET = "correct horse battery staple";

describe("HttpTransport with a shared secret", () => {
  it("works when both sides know the secret (socket and HTTP)", async () => {
    const a = await startPeer({ options: { secret: SECRET } });
    const b = await startPeer({ options: { secret: SECRET } });
    assert.deepEqual([...await a.t.call(b.endpoint, bytes(1))], [1], "by HTTP");
    await connect(a.t, b.endpoint);
    a.t.send(b.endpoint, bytes(2));
    await b.waitFrames(1);
    assert.equal(b.frames[0]!.from, a.endpoint);
    assert.deepEqual([...await a.t.call(b.endpoint, bytes(3))], [3], "on the socket");
    assert.deepEqual([...await httpCall(b.endpoint, bytes(4), { secret: SECRET })], [4]);
    assert.equal(a.t.stats.rejectedAuth + b.t.stats.rejectedAuth, 0);
    await a.stop();
    await b.stop();
  });

  it("refuses a peer with the wrong secret: socket closed, 401 by HTTP, handler sees nothing", async () => {
    const b = await startPeer({ options: { secret: SECRET } });
    const a = new HttpTransport("127.0.0.1:1", { secret: "wrong", backoffMinMs: 10 });
    a.send(b.endpoint, bytes(1));
    await until(() => b.t.stats.rejectedAuth >= 1, "the server to refuse the socket");
    await until(() => a.connectionState(b.endpoint) !== "connecting", "the client to see it");
    assert.notEqual(a.connectionState(b.endpoint), "open");
    await assert.rejects(
      httpCall(b.endpoint, bytes(1), { secret: "wrong" }),
      isCode(RaftError.EACCES),
    );
    await assert.rejects(httpCall(b.endpoint, bytes(1)), isCode(RaftError.EACCES));
    assert.equal(b.frames.length, 0);
    assert.equal(b.calls.length, 0);
    await a.close();
    await b.stop();
  });

  it("closes a raw socket whose AUTH has no or a wrong proof with 4401", async () => {
    const b = await startPeer({ options: { secret: SECRET } });
    for (const mac of [new Uint8Array(0), new Uint8Array(32).fill(7)]) {
      const raw = await rawSocket(b.endpoint);
      const hello = decodeHello(await raw.nextMessage());
      assert.equal(hello.authRequired, true);
      raw.ws.send(
        encodeAuth({
          maxMessageBytes: 1 << 20,
          endpoint: "127.0.0.1:9",
          nonce: new Uint8Array(32),
          mac,
        }),
      );
      raw.ws.send(encodeBatch([{ kind: ItemKind.FRAME, bytes: bytes(1) }])); // must not arrive
      const closed = await raw.closed;
      assert.equal(closed.code, 4401);
      assert.equal(raw.messages.length, 1, "no WELCOME");
    }
    assert.equal(b.t.stats.rejectedAuth, 2);
    assert.equal(b.frames.length, 0);
    await b.stop();
  });

  it("a client without the secret, or a server without one, is refused before anything flows", async () => {
    const b = await startPeer({ options: { secret: SECRET } });
    const open = await startPeer(); // no secret
    const a = new HttpTransport("127.0.0.1:1", { backoffMinMs: 10 });
    a.send(b.endpoint, bytes(1));
    await until(() => a.stats.rejectedAuth === 1, "the client to give up (server wants a secret)");
    const s = new HttpTransport("127.0.0.1:2", { secret: SECRET, backoffMinMs: 10 });
    s.send(open.endpoint, bytes(1));
    await until(() => s.stats.rejectedAuth === 1, "the client to refuse a server without secret");
    assert.equal(b.frames.length + open.frames.length, 0);
    await a.close();
    await s.close();
    await b.stop();
    await open.stop();
  });

  it("refuses HTTP calls with a stale, malformed or mismatched proof", async () => {
    const b = await startPeer({ options: { secret: SECRET, authWindowMs: 1000 } });
    const key = new SharedKey(SECRET);
    const post = (headers: Record<string, string>, body = bytes(1)) =>
      fetch(`http://${b.endpoint}/raft/call`, { method: "POST", headers, body });
    const cases: Array<Record<string, string>> = [
      {},
      { [AUTH_HEADER]: "garbage" },
      { [AUTH_HEADER]: await callProof(key, "", bytes(1), Date.now() - 60000) },
      { [AUTH_HEADER]: await callProof(key, "", bytes(2)) }, // signed another body
      { [AUTH_HEADER]: await callProof(key, "127.0.0.1:5", bytes(1)) }, // another caller
    ];
    for (const headers of cases) {
      const res = await post(headers);
      assert.equal(res.status, 401, JSON.stringify(headers));
      const json = await res.json();
      assert.equal(json.error, "EACCES");
      assert.ok(!JSON.stringify(json).includes(SECRET));
    }
    const ok = await post({ [AUTH_HEADER]: await callProof(key, "", bytes(1)) });
    assert.equal(ok.status, 200);
    assert.equal(b.calls.length, 1);
    await b.stop();
  });

  it("never shows the secret in stats, JSON, inspection or errors", async () => {
    const b = await startPeer({ options: { secret: SECRET } });
    const err = await httpCall(b.endpoint, bytes(1), { secret: "other" }).catch((e) => e);
    for (
      const text of [
        JSON.stringify(b.t),
        JSON.stringify(b.t.stats),
        inspect(b.t, { showHidden: true, depth: 10 }),
        String(err),
        inspect(err, { depth: 10 }),
      ]
    ) {
      assert.ok(!text.includes(SECRET), text);
      assert.ok(!text.includes('other"'), text);
    }
    await b.stop();
  });

  it("closes a socket that does not finish the handshake in time", async () => {
    const b = await startPeer({ options: { handshakeTimeoutMs: 50 } });
    const raw = await rawSocket(b.endpoint);
    assert.equal((await raw.closed).code, 4408);
    await b.stop();
  });
});
