import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import { openClientSocket } from "../../../transports/http/client_socket.ts";
import { serve } from "../../../transports/http/mod.ts";
import { type ServerSocket, upgradeToSocket } from "../../../transports/http/runtime.ts";

/** A served echo WebSocket at /echo. */
async function echoServer() {
  const app = new Hono();
  app.get("/echo", (c) => {
    let socket: ServerSocket | null = null;
    return upgradeToSocket(c, {
      onOpen: (s) => socket = s,
      onMessage(data) {
        if (typeof data !== "string") socket!.send(data);
      },
      onClose() {},
    })!;
  });
  const server = await serve(app, { hostname: "127.0.0.1", port: 0 });
  return { server, endpoint: `127.0.0.1:${server.port}` };
}

function client(endpoint: string, max = 4 * 1024 * 1024) {
  const ws = openClientSocket(endpoint, "/echo", max);
  const got: Array<Uint8Array | string> = [];
  let wake: (() => void) | null = null;
  ws.onmessage = (d) => {
    got.push(d);
    wake?.();
  };
  const closed = new Promise<void>((r) => ws.onclose = r);
  const next = async (): Promise<Uint8Array | string> => {
    while (got.length === 0) await new Promise<void>((r) => wake = r);
    return got.shift()!;
  };
  return { ws, next, closed };
}

describe("client socket", () => {
  it("round-trips messages of every length encoding, in order", async () => {
    const { server, endpoint } = await echoServer();
    const c = client(endpoint);
    const sizes = [0, 1, 125, 126, 1000, 4096, 65535, 65536, 70000, 1024 * 1024];
    // Sending before open is dropped, so echo a probe until the socket is up.
    let up = false;
    while (!up) {
      c.ws.send(new Uint8Array([1]));
      up = await Promise.race([
        c.next().then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), 20)),
      ]);
    }
    for (const n of sizes) {
      const msg = new Uint8Array(n).map((_, i) => (i * 7 + n) & 0xff);
      c.ws.send(msg);
    }
    for (const n of sizes) {
      const got = await c.next();
      assert.ok(got instanceof Uint8Array);
      assert.equal(got.length, n);
      assert.ok(got.every((b, i) => b === ((i * 7 + n) & 0xff)), `payload of ${n} bytes`);
    }
    assert.equal(c.ws.bufferedAmount, 0);
    c.ws.close(1000, "done");
    await c.closed;
    await server.shutdown();
  });

  it("reports the server's close and a refused connection", async () => {
    const { server, endpoint } = await echoServer();
    const c = client(endpoint);
    const ready = client(endpoint); // a second socket shows the server is up before we ask
    while (true) {
      c.ws.send(new Uint8Array([1]));
      if (
        await Promise.race([
          c.next().then(() => true),
          new Promise<boolean>((r) => setTimeout(() => r(false), 20)),
        ])
      ) break;
    }
    ready.ws.close();
    await ready.closed;
    await server.shutdown(); // closes the socket from the server side

    await c.closed;
    const refused = client(endpoint);
    await refused.closed;
  });

  it("closes when the server sends more than the limit", async () => {
    const { server, endpoint } = await echoServer();
    const c = client(endpoint, 2048);
    while (true) {
      c.ws.send(new Uint8Array([1]));
      if (
        await Promise.race([
          c.next().then(() => true),
          new Promise<boolean>((r) => setTimeout(() => r(false), 20)),
        ])
      ) break;
    }
    c.ws.send(new Uint8Array(100_000)); // echoed back: over the client's limit on Deno
    if ("Deno" in globalThis) await c.closed;
    else {
      await c.next(); // Bun's and Node's native clients have their own, larger limits
      c.ws.close();
      await c.closed;
    }
    await server.shutdown();
  });

  it("answers the server's pings (Deno: the server closes a socket that does not)", async (t) => {
    if (!("Deno" in globalThis)) {
      return t.skip("only Deno uses webraft's own client (Bun and Node use their native one)");
    }
    type DenoServe = {
      serve(
        o: object,
        h: (r: Request) => Response,
      ): { shutdown(): Promise<void>; addr: { port: number } };
      upgradeWebSocket(r: Request, o: object): { socket: WebSocket; response: Response };
    };
    const deno = (globalThis as unknown as { Deno: DenoServe }).Deno;
    let serverClosed = false;
    const server = deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
      const { socket, response } = deno.upgradeWebSocket(req, { idleTimeout: 1 });
      socket.onmessage = (e) => socket.send(e.data);
      socket.onclose = () => serverClosed = true;
      return response;
    });
    const c = client(`127.0.0.1:${server.addr.port}`);
    while (true) {
      c.ws.send(new Uint8Array([1]));
      if (
        await Promise.race([
          c.next().then(() => true),
          new Promise<boolean>((r) => setTimeout(() => r(false), 20)),
        ])
      ) break;
    }
    await new Promise((r) => setTimeout(r, 2500)); // two ping rounds
    assert.equal(serverClosed, false);
    c.ws.send(new Uint8Array([2]));
    assert.deepEqual([...(await c.next()) as Uint8Array], [2]);
    c.ws.close();
    await c.closed;
    await server.shutdown();
  });
});
