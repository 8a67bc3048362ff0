/**
 * Fuzzing the client side of the HTTP transport: an `HttpTransport` talks to a hostile server
 * that answers its socket with odd HELLO, WELCOME and batches (unknown ids, odd error codes,
 * garbage, text, early closes) and its `POST /raft/call` with odd statuses and bodies. Every
 * call settles (no hang), with bytes or a RaftException whose code is an error; `send` never
 * throws; closing the transport leaves nothing behind.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Hono } from "hono";
import { serve, type ServeHandle } from "../../transports/http/serve.ts";
import { HttpTransport } from "../../transports/http/http_transport.ts";
import { serverProof, SharedKey } from "../../transports/http/auth.ts";
import {
  type ServerSocket,
  type ServerSocketEvents,
  upgradeToSocket,
} from "../../transports/http/runtime.ts";
import {
  decodeAuth,
  decodeBatch,
  encodeBatch,
  encodeHello,
  encodeWelcome,
  type Item,
  ItemKind,
} from "../../transports/http/wire.ts";
import { RaftException } from "../../src/errors/status.ts";
import { checkAsync } from "./_fuzz.ts";
import { extremeNumber, nastyJson, oddString } from "./_arbitraries.ts";

const SECRET = "fuzz-client-secret";
const key = new SharedKey(SECRET);
const FROM_CLIENT = new Set<number>([ItemKind.FRAME, ItemKind.REQUEST]);

type Greeting = "valid" | "garbage" | "text" | "silent" | "close";
const greeting: fc.Arbitrary<Greeting> = fc.oneof(
  { arbitrary: fc.constant("valid" as const), weight: 6 },
  { arbitrary: fc.constantFrom("garbage" as const, "text" as const, "close" as const), weight: 1 },
  { arbitrary: fc.constant("silent" as const), weight: 1 },
);

/** How the hostile server answers one client batch. */
type Reply =
  | { kind: "respond"; bytes: Uint8Array }
  | { kind: "error"; code: number; message: string }
  | { kind: "wrong-id"; id: number }
  | { kind: "garbage"; bytes: Uint8Array }
  | { kind: "text" }
  | { kind: "close"; code: number }
  | { kind: "silent" };
const reply: fc.Arbitrary<Reply> = fc.oneof(
  fc.record({ kind: fc.constant("respond" as const), bytes: fc.uint8Array({ maxLength: 16 }) }),
  fc.record({ kind: fc.constant("respond" as const), bytes: fc.uint8Array({ maxLength: 16 }) }),
  fc.record({
    kind: fc.constant("error" as const),
    code: fc.oneof(fc.constantFrom(0, -1, 1, 5, 22, 10001, 2 ** 31 - 1, -(2 ** 31)), fc.integer()),
    message: oddString,
  }),
  fc.record({ kind: fc.constant("wrong-id" as const), id: fc.nat() }),
  fc.record({ kind: fc.constant("garbage" as const), bytes: fc.uint8Array({ maxLength: 24 }) }),
  fc.record({ kind: fc.constant("text" as const) }),
  fc.record({
    kind: fc.constant("close" as const),
    code: fc.constantFrom(1000, 1001, 1002, 1007, 1011, 4000, 4401),
  }),
  fc.record({ kind: fc.constant("silent" as const) }),
);

/** How the hostile server answers `POST /raft/call`. */
interface HttpReply {
  status: number;
  body: Uint8Array;
}
const httpReply: fc.Arbitrary<HttpReply> = fc.record({
  status: fc.constantFrom(200, 204, 400, 401, 404, 413, 418, 500, 502, 503),
  body: fc.oneof(
    fc.uint8Array({ maxLength: 24 }),
    fc.record({
      error: fc.oneof(oddString, nastyJson),
      code: fc.oneof(extremeNumber, nastyJson),
      message: nastyJson,
    }, {
      requiredKeys: [],
    }).map((o) => new TextEncoder().encode(JSON.stringify(o))),
  ),
});

interface Script {
  hello: Greeting;
  welcome: Greeting;
  replies: Reply[];
  http: HttpReply;
  /** Calls the client makes (after `send` started a connect). */
  calls: number;
}
const script: fc.Arbitrary<Script> = fc.record({
  hello: greeting,
  welcome: greeting,
  replies: fc.array(reply, { maxLength: 4 }),
  http: httpReply,
  calls: fc.integer({ min: 1, max: 3 }),
});

/** The hostile server's socket, playing `current`'s script. */
let current: Script = {
  hello: "valid",
  welcome: "valid",
  replies: [],
  http: { status: 200, body: new Uint8Array(0) },
  calls: 1,
};
const sockets = new Set<ServerSocket>();

function hostileEvents(): ServerSocketEvents {
  const s = current;
  let socket: ServerSocket | null = null;
  let phase: "hello" | "open" = "hello";
  let challenge = new Uint8Array(32);
  let replyAt = 0;
  const greet = (g: Greeting, valid: () => Uint8Array | Promise<Uint8Array>): void => {
    if (socket === null) return;
    if (g === "garbage") socket.send(new Uint8Array([0x42, 1, 2, 3]));
    else if (g === "text") (socket as unknown as { send(x: string): void }).send("hello?");
    else if (g === "close") socket.close(4000, "go away");
    else if (g === "valid") {
      const sock = socket;
      Promise.resolve(valid()).then((m) => sock.send(m), () => {});
    }
  };
  return {
    onOpen(ws) {
      socket = ws;
      sockets.add(ws);
      challenge = crypto.getRandomValues(new Uint8Array(32));
      greet(
        s.hello,
        () => encodeHello({ authRequired: true, maxMessageBytes: 1 << 20, challenge }),
      );
    },
    onMessage(data) {
      if (socket === null || typeof data === "string") return;
      if (phase === "hello") {
        phase = "open";
        let nonce: Uint8Array;
        try {
          nonce = decodeAuth(data).nonce;
        } catch {
          return socket.close(1007, "bad auth");
        }
        greet(s.welcome, async () => encodeWelcome(await serverProof(key, nonce, challenge)));
        return;
      }
      let items: Item[];
      try {
        items = decodeBatch(data, FROM_CLIENT);
      } catch {
        return socket.close(1007, "bad batch");
      }
      const ids = items.flatMap((it) => it.kind === ItemKind.REQUEST ? [it.id] : []);
      if (ids.length === 0) return;
      const r = s.replies[replyAt++] ?? { kind: "respond", bytes: new Uint8Array([7]) };
      const batch = (make: (id: number) => Item): Uint8Array => encodeBatch(ids.map(make));
      switch (r.kind) {
        case "respond":
          return socket.send(batch((id) => ({ kind: ItemKind.RESPONSE, id, bytes: r.bytes })));
        case "error":
          return socket.send(
            batch((id) => ({ kind: ItemKind.ERROR, id, code: r.code, message: r.message })),
          );
        case "wrong-id":
          return socket.send(
            encodeBatch([{ kind: ItemKind.RESPONSE, id: r.id, bytes: new Uint8Array(1) }]),
          );
        case "garbage":
          return socket.send(r.bytes);
        case "text":
          return (socket as unknown as { send(x: string): void }).send("oops");
        case "close":
          return socket.close(r.code, "scripted");
        case "silent":
          return;
      }
    },
    onClose() {
      if (socket !== null) sockets.delete(socket);
    },
  };
}

describe("fuzz: HttpTransport against a hostile server", () => {
  let server: ServeHandle;
  let endpoint = "";

  before(async () => {
    const app = new Hono();
    app.get(
      "/raft/ws",
      (c) => upgradeToSocket(c, hostileEvents()) ?? new Response(null, { status: 501 }),
    );
    app.post("/raft/call", async (c) => {
      await c.req.arrayBuffer();
      const { status, body } = current.http;
      return new Response(status === 204 ? null : body as Uint8Array<ArrayBuffer>, { status });
    });
    server = await serve(app, { hostname: "127.0.0.1", port: 0 });
    endpoint = `127.0.0.1:${server.port}`;
  });

  after(async () => {
    for (const s of sockets) s.close(1001, "done");
    await server.shutdown();
  });

  it("every call settles with bytes or a RaftException error; send never throws", async () => {
    const outcomes = { ok: 0, failed: 0 };
    await checkAsync("HttpTransport client", script, 100, async (s) => {
      current = s;
      const t = new HttpTransport("127.0.0.1:1", {
        secret: SECRET,
        connectTimeoutMs: 150,
        backoffMinMs: 5,
        backoffMaxMs: 20,
      });
      try {
        t.send(endpoint, new Uint8Array([1, 2, 3])); // starts the connect
        for (let i = 0; i < s.calls; i++) {
          try {
            const res = await t.call(endpoint, new Uint8Array([i]), { timeoutMs: 150 });
            assert.ok(res instanceof Uint8Array);
            outcomes.ok++;
          } catch (e) {
            assert.ok(e instanceof RaftException, `a call failed with ${String(e)}`);
            assert.notEqual(e.code, 0, "a call failed with an OK status");
            outcomes.failed++;
          }
          if (i === 0) {
            // let the socket finish (or fail) its handshake so later calls may use it
            const deadline = Date.now() + 300;
            while (t.connectionState(endpoint) === "connecting" && Date.now() < deadline) {
              await new Promise((r) => setTimeout(r, 5));
            }
          }
          t.send(endpoint, new Uint8Array([9]));
        }
      } finally {
        await t.close();
      }
    }, 15_000);
    console.log(`client: ${outcomes.ok} calls answered, ${outcomes.failed} refused`);
  });
});
