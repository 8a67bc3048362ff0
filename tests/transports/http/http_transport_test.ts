import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import { RaftError, RaftException } from "../../../src/errors/status.ts";
import { httpCall, HttpTransport, serve } from "../../../transports/http/mod.ts";
import { bytes, connect, freePort, isCode, startPeer, until } from "./_helpers.ts";

describe("HttpTransport frames", () => {
  it("carries frames both ways between two served apps, naming the sender", async () => {
    const a = await startPeer();
    const b = await startPeer();
    await connect(a.t, b.endpoint);
    await connect(b.t, a.endpoint);
    a.t.send(b.endpoint, bytes(1, 2, 3));
    b.t.send(a.endpoint, bytes(9));
    await b.waitFrames(1);
    await a.waitFrames(1);
    assert.deepEqual(b.frames.map((f) => [f.from, [...f.frame]]), [[a.endpoint, [1, 2, 3]]]);
    assert.deepEqual(a.frames.map((f) => [f.from, [...f.frame]]), [[b.endpoint, [9]]]);
    await a.stop();
    await b.stop();
  });

  it("holds frames while the socket opens and sends them, in order, once it is open", async () => {
    const a = await startPeer();
    const b = await startPeer();
    a.t.send(b.endpoint, bytes(1));
    a.t.send(b.endpoint, bytes(2));
    assert.equal(a.t.connectionState(b.endpoint), "connecting");
    await b.waitFrames(2);
    assert.deepEqual(b.frames.map((f) => f.frame[0]), [1, 2]);
    assert.equal(a.t.stats.framesDropped, 0);
    await a.stop();
    await b.stop();
  });

  it("drops frames to a peer known down (in backoff)", async () => {
    const a = await startPeer();
    const b = await startPeer();
    const to = b.endpoint;
    await b.stop();
    a.t.send(to, bytes(1)); // held while connecting, dropped when the connect fails
    await until(() => a.t.connectionState(to) === "backoff", "the link to back off");
    assert.equal(a.t.stats.framesDropped, 1);
    a.t.send(to, bytes(2));
    assert.equal(a.t.stats.framesDropped, 2);
    await a.stop();
  });

  it("coalesces the frames of one event-loop turn into one WebSocket message, in order", async () => {
    const a = await startPeer();
    const b = await startPeer();
    await connect(a.t, b.endpoint);
    const sentBefore = a.t.stats.messagesSent;
    const recvBefore = b.t.stats.messagesReceived;
    for (let i = 0; i < 100; i++) a.t.send(b.endpoint, bytes(i));
    await b.waitFrames(100);
    assert.equal(a.t.stats.messagesSent - sentBefore, 1);
    assert.equal(b.t.stats.messagesReceived - recvBefore, 1);
    assert.deepEqual(b.frames.map((f) => f.frame[0]), Array.from({ length: 100 }, (_, i) => i));
    await a.stop();
    await b.stop();
  });

  it("splits a batch so that no message exceeds the receiver's limit", async () => {
    const a = await startPeer();
    const b = await startPeer({ options: { maxMessageBytes: 4096 } });
    await connect(a.t, b.endpoint);
    const recvBefore = b.t.stats.messagesReceived;
    const dropped = a.t.stats.framesDropped;
    for (let i = 0; i < 20; i++) a.t.send(b.endpoint, new Uint8Array(1000).fill(i));
    a.t.send(b.endpoint, new Uint8Array(5000)); // alone over the limit: dropped
    await b.waitFrames(20);
    assert.ok(b.t.stats.messagesReceived - recvBefore >= 5, "at least 5 messages of <= 4 KiB");
    assert.equal(b.t.stats.oversize, 0);
    assert.deepEqual(b.frames.map((f) => f.frame[999]), Array.from({ length: 20 }, (_, i) => i));
    assert.equal(a.t.stats.framesDropped - dropped, 1);
    await a.stop();
    await b.stop();
  });

  it("drops frames instead of buffering past maxBufferedBytes", async () => {
    const a = await startPeer({ options: { maxBufferedBytes: 2000 } });
    const b = await startPeer();
    await connect(a.t, b.endpoint);
    const dropped = a.t.stats.framesDropped;
    for (let i = 0; i < 10; i++) a.t.send(b.endpoint, new Uint8Array(600));
    assert.equal(a.t.stats.framesDropped - dropped, 7, "3 frames of 605 bytes fit in 2000");
    await b.waitFrames(3);
    await a.stop();
    await b.stop();
  });
});

describe("HttpTransport calls", () => {
  it("multiplexes many calls in flight on one socket", async () => {
    const b = await startPeer({
      onCall: async (_from, req) => {
        await new Promise((r) => setTimeout(r, req[0]! % 7));
        return bytes(req[0]!, req[1]!, 42);
      },
    });
    const a = await startPeer();
    await connect(a.t, b.endpoint);
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) => a.t.call(b.endpoint, bytes(i % 256, i >> 8))),
    );
    results.forEach((r, i) => assert.deepEqual([...r], [i % 256, i >> 8, 42]));
    assert.equal(a.t.stats.callsSent, 300);
    assert.equal(a.t.stats.callsHttp, 0);
    assert.equal(b.calls[0]!.from, a.endpoint);
    await a.stop();
    await b.stop();
  });

  it("re-throws the receiver's RaftException code and message; other errors become EIO", async () => {
    const b = await startPeer({
      onCall: (_from, req) =>
        req[0] === 1
          ? Promise.reject(RaftException.of(RaftError.EPERM, "Not leader"))
          : Promise.reject(new TypeError("boom")),
    });
    const a = await startPeer();
    for (const via of ["http", "socket"]) {
      if (via === "socket") await connect(a.t, b.endpoint);
      const e1 = await a.t.call(b.endpoint, bytes(1)).catch((e) => e);
      assert.ok(e1 instanceof RaftException, via);
      assert.equal(e1.code, RaftError.EPERM, via);
      assert.equal(e1.status.message, "Not leader", via);
      const e2 = await a.t.call(b.endpoint, bytes(2)).catch((e) => e);
      assert.equal(e2.code, RaftError.EIO, via);
      assert.match(e2.message, /boom/, via);
    }
    // The first call went by HTTP; it also started the connect, so the second one may not.
    assert.ok(a.t.stats.callsHttp >= 1);
    assert.ok(a.t.stats.callsSent >= 2);
    await a.stop();
    await b.stop();
  });

  it("times out and aborts calls, on the socket and by HTTP", async () => {
    const release: Array<() => void> = [];
    const b = await startPeer({
      onCall: () => new Promise((resolve) => release.push(() => resolve(bytes(0)))),
    });
    const a = await startPeer();
    for (const via of ["http", "socket"]) {
      if (via === "socket") await connect(a.t, b.endpoint);
      await assert.rejects(
        a.t.call(b.endpoint, bytes(1), { timeoutMs: 30 }),
        isCode(RaftError.ETIMEDOUT),
      );
      const ac = new AbortController();
      const p = a.t.call(b.endpoint, bytes(1), { signal: ac.signal });
      ac.abort();
      await assert.rejects(p, isCode(RaftError.ECANCELED));
      await assert.rejects(
        a.t.call(b.endpoint, bytes(1), { signal: AbortSignal.abort() }),
        isCode(RaftError.ECANCELED),
      );
    }
    await until(() => release.length >= 3, "calls to reach the handler");
    for (const r of release) r();
    await a.stop();
    await b.stop();
  });

  it("answers EBUSY past maxInflightCalls on one socket", async () => {
    const release: Array<() => void> = [];
    const b = await startPeer({
      options: { maxInflightCalls: 2 },
      onCall: () => new Promise((resolve) => release.push(() => resolve(bytes(1)))),
    });
    const a = await startPeer();
    await connect(a.t, b.endpoint);
    const first = [a.t.call(b.endpoint, bytes(0)), a.t.call(b.endpoint, bytes(0))];
    await assert.rejects(a.t.call(b.endpoint, bytes(0)), isCode(RaftError.EBUSY));
    for (const r of release) r();
    assert.equal((await Promise.all(first)).length, 2);
    const again = a.t.call(b.endpoint, bytes(0)); // room again
    await until(() => release.length === 3, "the next call to reach the handler");
    release[2]!();
    assert.deepEqual([...await again], [1]);
    await a.stop();
    await b.stop();
  });

  it("fails pending calls with ESHUTDOWN on close and refuses new ones", async () => {
    const b = await startPeer({ onCall: () => new Promise(() => {}) });
    const a = await startPeer();
    await connect(a.t, b.endpoint);
    const p = a.t.call(b.endpoint, bytes(1));
    await until(() => b.calls.length === 1, "the call to arrive");
    await a.t.close();
    await assert.rejects(p, isCode(RaftError.ESHUTDOWN));
    await assert.rejects(a.t.call(b.endpoint, bytes(1)), isCode(RaftError.ESHUTDOWN));
    a.t.send(b.endpoint, bytes(1)); // never throws
    await a.server.shutdown();
    await b.stop();
  });

  it("fails the calls on a lost socket with EHOSTUNREACH", async () => {
    const b = await startPeer({ onCall: () => new Promise(() => {}) });
    const a = await startPeer();
    await connect(a.t, b.endpoint);
    const p = a.t.call(b.endpoint, bytes(1));
    await until(() => b.calls.length === 1, "the call to arrive");
    await b.server.shutdown();
    await assert.rejects(p, isCode(RaftError.EHOSTUNREACH));
    await b.t.close();
    await a.stop();
  });
});

describe("HttpTransport reconnects", () => {
  it("fails fast while a peer is down, then reconnects and delivers once it is up", async () => {
    const port = await freePort();
    const to = `127.0.0.1:${port}`;
    const a = new HttpTransport("127.0.0.1:1", { backoffMinMs: 20, backoffMaxMs: 200 });
    // No socket yet: the call goes by HTTP and cannot connect.
    await assert.rejects(
      a.call(to, bytes(1), { timeoutMs: 10000 }),
      isCode(RaftError.EHOSTUNREACH),
    );
    await until(() => a.stats.connectFailures >= 1, "the connect to fail");
    // Known down: fails fast without touching the network.
    const before = a.stats.callsFailedFast;
    let fastFailed = false;
    while (!fastFailed) {
      const e = await a.call(to, bytes(1), { timeoutMs: 10000 }).catch((e) => e);
      assert.equal(e.code, RaftError.EHOSTUNREACH);
      fastFailed = a.stats.callsFailedFast > before;
    }
    // Up again on the same port: the next sends reconnect.
    const b = await startPeer({ port });
    assert.equal(b.endpoint, to);
    while (b.frames.length === 0) {
      a.send(to, bytes(5));
      await Promise.race([b.waitFrames(1), new Promise((r) => setTimeout(r, 20))]);
    }
    assert.deepEqual([...b.frames[0]!.frame], [5]);
    assert.equal(b.frames[0]!.from, "127.0.0.1:1");
    assert.deepEqual([...await a.call(to, bytes(3))], [3]);
    // The server restarts: the socket is lost and comes back (a reconnect).
    await b.stop();
    const b2 = await startPeer({ port });
    while (b2.frames.length === 0) {
      a.send(to, bytes(6));
      await Promise.race([b2.waitFrames(1), new Promise((r) => setTimeout(r, 20))]);
    }
    assert.ok(a.stats.reconnects >= 1);
    await a.close();
    await b2.stop();
  });

  it("a dead peer that nobody sends to costs nothing after its backoff", async () => {
    const port = await freePort();
    const to = `127.0.0.1:${port}`;
    const a = new HttpTransport("127.0.0.1:1", { backoffMinMs: 10, backoffMaxMs: 20 });
    a.send(to, bytes(1));
    await until(() => a.stats.connectFailures === 1, "the connect to fail");
    // Nothing was sent during the backoff: the link goes idle (no timer, no retry).
    await until(() => a.connectionState(to) === "idle", "the link to go idle");
    assert.equal(a.stats.connectFailures, 1);
    await a.close();
  });
});

describe("HttpTransport over HTTP", () => {
  it("answers httpCall from a non-peer (empty from) and reports errors as JSON", async () => {
    const b = await startPeer({
      onCall: (_from, req) =>
        req[0] === 0
          ? Promise.reject(RaftException.of(RaftError.EBUSY, "Doing another change"))
          : Promise.resolve(req.map((x) => x * 2)),
    });
    assert.deepEqual([...await httpCall(b.endpoint, bytes(4, 5))], [8, 10]);
    assert.equal(b.calls[0]!.from, "");
    await assert.rejects(httpCall(b.endpoint, bytes(0)), isCode(RaftError.EBUSY));
    const res = await fetch(`http://${b.endpoint}/raft/call`, { method: "POST", body: bytes(0) });
    assert.equal(res.status, 503); // EBUSY: try later (httpStatusOf)
    assert.deepEqual(await res.json(), {
      error: "EBUSY",
      code: RaftError.EBUSY,
      message: "Doing another change",
    });
    // curl-style raw POST works too.
    const ok = await fetch(`http://${b.endpoint}/raft/call`, { method: "POST", body: bytes(1) });
    assert.deepEqual([...new Uint8Array(await ok.arrayBuffer())], [2]);
    await b.stop();
  });

  it("httpCall times out and aborts", async () => {
    const release: Array<() => void> = [];
    const b = await startPeer({
      onCall: () => new Promise((resolve) => release.push(() => resolve(bytes(0)))),
    });
    await assert.rejects(
      httpCall(b.endpoint, bytes(1), { timeoutMs: 30 }),
      isCode(RaftError.ETIMEDOUT),
    );
    const ac = new AbortController();
    const p = httpCall(b.endpoint, bytes(1), { signal: ac.signal });
    await until(() => release.length === 2, "the call to arrive");
    ac.abort();
    await assert.rejects(p, isCode(RaftError.ECANCELED));
    for (const r of release) r();
    await b.stop();
  });

  it("httpCall to a closed port is EHOSTUNREACH; bad endpoints are EINVAL", async () => {
    const port = await freePort();
    await assert.rejects(httpCall(`127.0.0.1:${port}`, bytes(1)), isCode(RaftError.EHOSTUNREACH));
    await assert.rejects(httpCall("no port", bytes(1)), isCode(RaftError.EINVAL));
    const a = new HttpTransport("127.0.0.1:1");
    await assert.rejects(a.call("nope", bytes(1)), isCode(RaftError.EINVAL));
    a.send("nope", bytes(1));
    assert.equal(a.stats.framesDropped, 1);
    await a.close();
  });
});

describe("serve", () => {
  it("keeps the user's own routes working next to raft's", async () => {
    const app = new Hono();
    app.get("/hello", (c) => c.text("hi"));
    app.post("/echo", async (c) => c.text(await c.req.text()));
    const b = await startPeer({ app });
    assert.equal(await (await fetch(`http://${b.endpoint}/hello`)).text(), "hi");
    const echo = await fetch(`http://${b.endpoint}/echo`, { method: "POST", body: "x" });
    assert.equal(await echo.text(), "x");
    assert.equal((await fetch(`http://${b.endpoint}/nothing`)).status, 404);
    assert.deepEqual([...await httpCall(b.endpoint, bytes(7))], [7]);
    await b.stop();
  });

  it("shutdown closes peer sockets and frees the port for a second serve", async () => {
    const a = await startPeer();
    const b = await startPeer();
    await connect(a.t, b.endpoint);
    await until(() => b.t.stats.openInbound === 1, "the inbound socket");
    const port = b.server.port;
    await b.server.shutdown();
    await until(() => a.t.stats.openOutbound === 0, "the client to see the close");
    const again = await serve(new Hono().get("/", (c) => c.text("again")), {
      hostname: "127.0.0.1",
      port,
    });
    assert.equal(again.port, port);
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), "again");
    await again.shutdown();
    await b.t.close();
    await a.stop();
  });

  it("shuts down when its signal aborts", async () => {
    const ac = new AbortController();
    const app = new Hono().get("/", (c) => c.text("x"));
    const server = await serve(app, { hostname: "127.0.0.1", port: 0, signal: ac.signal });
    ac.abort();
    await server.shutdown(); // the same shutdown the signal started
    const again = await serve(app, { hostname: "127.0.0.1", port: server.port });
    await again.shutdown();
  });

  it("refuses to mount on an app already served", async () => {
    const { isServing, mountTransport } = await import("../../../transports/http/mod.ts");
    const app = new Hono();
    const server = await serve(app, { hostname: "127.0.0.1", port: 0 });
    assert.equal(isServing(app), true);
    const t = new HttpTransport("127.0.0.1:1");
    assert.throws(() => mountTransport(app, t), isCode(RaftError.EPERM));
    await server.shutdown();
    assert.equal(isServing(app), false);
    await t.close();
  });

  it("works over IPv6 [::1] when the machine has it", async (t) => {
    let probe;
    try {
      probe = await serve(new Hono(), { hostname: "::1", port: 0 });
    } catch (e) {
      t.skip(`IPv6 ::1 is not available here: ${e instanceof Error ? e.message : e}`);
      return;
    }
    await probe.shutdown();
    const a = await startPeer({ hostname: "::1" });
    const b = await startPeer({ hostname: "::1" });
    assert.match(b.endpoint, /^\[::1\]:\d+$/);
    await connect(a.t, b.endpoint);
    a.t.send(b.endpoint, bytes(6));
    await b.waitFrames(1);
    assert.equal(b.frames[0]!.from, a.endpoint);
    assert.deepEqual([...await a.t.call(b.endpoint, bytes(2))], [2]);
    assert.deepEqual([...await httpCall(b.endpoint, bytes(3))], [3]);
    await a.stop();
    await b.stop();
  });
});
