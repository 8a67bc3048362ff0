/**
 * Fuzzing `GET /raft/ws` over real sockets of a live 3-node group with a shared secret: hostile
 * messages before the handshake (garbage, text, mutated or forged AUTH), and after a valid
 * handshake (garbage, truncated or mutated batches, batches of hostile frames and calls). The
 * server either keeps the socket usable (a probe call is answered) or closes it with a
 * documented code; everything it sends is a well-formed message; the group keeps committing.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { encode } from "cbor-x";
import { clientProof, SharedKey } from "../../transports/http/auth.ts";
import { CloseCode } from "../../transports/http/context.ts";
import { checkEndpoint } from "../../transports/http/endpoint.ts";
import {
  decodeBatch,
  decodeHello,
  decodeWelcome,
  encodeAuth,
  encodeBatch,
  type Item,
  ItemKind,
  MsgType,
} from "../../transports/http/wire.ts";
import { encodeMessage } from "../../src/codec/message_codec.ts";
import { DEADLINE_MS, HttpCluster } from "../transports/http/_http_cluster.ts";
import { withDeadline } from "../node/cluster.ts";
import { checkAsync, heapUsed } from "./_fuzz.ts";
import {
  concat,
  mutated,
  nastyValue,
  oddString,
  rawCbor,
  withHostileField,
} from "./_arbitraries.ts";
import { message } from "./_valid.ts";

const SECRET = "fuzz-socket-secret-41d2";
const key = new SharedKey(SECRET);
const FROM_SERVER = new Set<number>([ItemKind.FRAME, ItemKind.RESPONSE, ItemKind.ERROR]);
/** Close codes the server documents for a misbehaving peer. */
const DOCUMENTED_CLOSE = new Set<number>([
  CloseCode.PROTOCOL,
  CloseCode.UNSUPPORTED,
  CloseCode.INVALID,
  CloseCode.TOO_BIG,
  CloseCode.UNAUTHORIZED,
]);
const ME = "127.0.0.1:9";
/** Close codes a client may see instead when the server's close frame races its own sends. */
const ABNORMAL = new Set<number>([0, 1005, 1006]);

/** A client socket that records what the server sends and how it closes. */
class Client {
  readonly ws: WebSocket;
  readonly inbox: (Uint8Array | string)[] = [];
  closeCode: number | null = null;
  closeReason = "";
  readonly closed: Promise<number>;
  #wake: (() => void) | null = null;

  constructor(endpoint: string) {
    this.ws = new WebSocket(`ws://${endpoint}/raft/ws`);
    this.ws.binaryType = "arraybuffer";
    this.ws.onmessage = (e) => {
      this.inbox.push(typeof e.data === "string" ? e.data : new Uint8Array(e.data as ArrayBuffer));
      this.#poke();
    };
    this.closed = new Promise((resolve) => {
      this.ws.onclose = (e) => {
        this.closeCode = e.code;
        this.closeReason = e.reason;
        this.#poke();
        resolve(e.code);
      };
    });
  }

  #poke(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  /** The next message, or null once closed. */
  async next(): Promise<Uint8Array | string | null> {
    for (;;) {
      if (this.inbox.length > 0) return this.inbox.shift()!;
      if (this.closeCode !== null) return null;
      await new Promise<void>((r) => (this.#wake = r));
    }
  }

  send(msg: Uint8Array | string): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(msg as Uint8Array<ArrayBuffer>);
  }

  close(): Promise<number> {
    if (this.closeCode === null) this.ws.close();
    return this.closed;
  }
}

async function connect(endpoint: string): Promise<{ c: Client; challenge: Uint8Array }> {
  const c = new Client(endpoint);
  const hello = await c.next();
  assert.ok(hello instanceof Uint8Array, "no HELLO");
  const h = decodeHello(hello);
  assert.ok(h.authRequired);
  return { c, challenge: h.challenge };
}

async function authMessage(challenge: Uint8Array, endpoint = ME): Promise<Uint8Array> {
  return encodeAuth({
    maxMessageBytes: 1 << 20,
    endpoint,
    nonce: crypto.getRandomValues(new Uint8Array(32)),
    mac: await clientProof(key, challenge, endpoint),
  });
}

async function handshake(endpoint: string): Promise<Client> {
  const { c, challenge } = await connect(endpoint);
  c.send(await authMessage(challenge));
  const welcome = await c.next();
  assert.ok(welcome instanceof Uint8Array, `no WELCOME (closed ${c.closeCode})`);
  decodeWelcome(welcome);
  return c;
}

/** What to send before the handshake is done (after HELLO). */
type Pre =
  | { kind: "bytes"; bytes: Uint8Array }
  | { kind: "text"; text: string }
  | { kind: "auth"; endpoint: string; mac: "good" | "wrong" | "empty"; mutations: boolean };

const pre: fc.Arbitrary<Pre> = fc.oneof(
  fc.record({
    kind: fc.constant("bytes" as const),
    bytes: fc.oneof(
      fc.uint8Array({ maxLength: 80 }),
      fc.uint8Array({ maxLength: 80 }).map((b) => concat(new Uint8Array([MsgType.AUTH, 1]), b)),
    ),
  }),
  fc.record({ kind: fc.constant("text" as const), text: oddString }),
  fc.record({
    kind: fc.constant("auth" as const),
    endpoint: fc.oneof(fc.constant(ME), oddString, fc.constant("[::1]:1")),
    mac: fc.constantFrom("good" as const, "wrong" as const, "empty" as const),
    mutations: fc.boolean(),
  }),
);

const ROGUE_GROUP = "fuzz-no-such-group";

/** A valid call the server must answer: CLI get_leader on a group it does not serve. */
function probeItem(id: number): Item {
  return {
    kind: ItemKind.REQUEST,
    id,
    bytes: encode({ t: "cli", verb: "get_leader", group_id: ROGUE_GROUP }) as Uint8Array,
  };
}

const frameBytes = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  message.map((m) => encodeMessage(ROGUE_GROUP, m)),
  mutated(message.map((m) => encodeMessage(ROGUE_GROUP, m))),
);
const callBytes = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  rawCbor,
  nastyValue.map((v) => encode(v) as Uint8Array),
  withHostileField({ t: "cli", verb: "list_peers", group_id: ROGUE_GROUP }),
  withHostileField({ t: "get_file", readerId: 1, name: "data", offset: 0, count: 10 }),
);
const item: fc.Arbitrary<Item> = fc.oneof(
  fc.record({ kind: fc.constant(ItemKind.FRAME), bytes: frameBytes }),
  fc.record({
    kind: fc.constant(ItemKind.REQUEST),
    id: fc.integer({ min: 0, max: 999_999 }),
    bytes: callBytes,
  }),
) as fc.Arbitrary<Item>;

/** What to send on an open socket. */
const post: fc.Arbitrary<Uint8Array | string> = fc.oneof(
  { arbitrary: fc.array(item, { minLength: 1, maxLength: 5 }).map(encodeBatch), weight: 10 },
  {
    arbitrary: mutated(fc.array(item, { minLength: 1, maxLength: 3 }).map(encodeBatch)),
    weight: 3,
  },
  { arbitrary: fc.uint8Array({ maxLength: 64 }), weight: 1 },
  {
    arbitrary: fc.array(
      fc.record({ kind: fc.constantFrom(ItemKind.RESPONSE, ItemKind.ERROR), id: fc.nat() }),
      { minLength: 1, maxLength: 2 },
    ).map((xs) =>
      encodeBatch(
        xs.map((x) =>
          x.kind === ItemKind.ERROR
            ? { kind: ItemKind.ERROR, id: x.id, code: 1, message: "x" }
            : { kind: ItemKind.RESPONSE, id: x.id, bytes: new Uint8Array(1) }
        ),
      )
    ),
    weight: 1,
  },
  { arbitrary: oddString, weight: 1 },
);

describe("fuzz: raw WebSocket messages to /raft/ws", () => {
  const c = new HttpCluster({ secret: SECRET });
  let endpoint = "";
  const closes = new Map<number, number>();
  /** Messages the fuzzed server refused (each one closes the socket that sent it). */
  const refused = (): number => {
    const st = c.members[1]!.service.transport!.stats;
    return st.malformed + st.oversize + st.rejectedAuth;
  };
  /**
   * A close is documented, or abnormal (Deno's client reports 0 when the server closes while
   * the client is still sending) right after the server refused a message for a documented
   * reason.
   */
  const checkClose = (client: Client, refusedBefore: number): void => {
    const code = client.closeCode!;
    closes.set(code, (closes.get(code) ?? 0) + 1);
    if (DOCUMENTED_CLOSE.has(code)) return;
    assert.ok(
      ABNORMAL.has(code) && refused() > refusedBefore,
      `closed with undocumented code ${code} (${client.closeReason})`,
    );
  };

  before(async () => {
    for (let i = 0; i < 3; i++) await c.serveMember();
    for (const m of c.members) await c.startNode(m, c.conf());
    await c.waitLeader();
    endpoint = `127.0.0.1:${c.members[1]!.server.port}`;
  });

  after(async () => {
    const leader = await c.waitLeader();
    await withDeadline(leader.applyAsync(new TextEncoder().encode("after")), DEADLINE_MS, "apply");
    await c.ensureSame();
    await c.stopAll();
  });

  it("an AUTH with a 5,000-byte endpoint is refused with INVALID at once (the close reason quoting it is cut to 123 bytes; found by seed 974499855)", async () => {
    const { c: client, challenge } = await connect(endpoint);
    const refusedBefore = refused();
    client.send(await authMessage(challenge, "x".repeat(5000)));
    // Before the fix the server's close threw on the long reason and did nothing: the socket
    // stayed open and this waited for ever.
    assert.equal(await withDeadline(client.next(), 10_000, "the close"), null);
    assert.equal(client.closeCode, CloseCode.INVALID);
    assert.ok(new TextEncoder().encode(client.closeReason).length <= 123);
    assert.match(client.closeReason, /^Invalid endpoint "x+/);
    assert.ok(refused() > refusedBefore);
  });

  it("before the handshake: WELCOME for a valid AUTH, else a documented close", async () => {
    await checkAsync(
      "WebSocket/before-handshake",
      fc.array(pre, { minLength: 1, maxLength: 3 }),
      400,
      async (steps) => {
        const refusedBefore = refused();
        const { c: client, challenge } = await connect(endpoint);
        let expectWelcome = false;
        for (const step of steps) {
          if (step.kind === "bytes") client.send(step.bytes);
          else if (step.kind === "text") client.send(step.text);
          else {
            const good = await authMessage(challenge, step.endpoint);
            let msg = good;
            if (step.mac === "wrong") msg = await authMessage(new Uint8Array(32), step.endpoint);
            if (step.mac === "empty") {
              msg = encodeAuth({
                maxMessageBytes: 1 << 20,
                endpoint: step.endpoint,
                nonce: new Uint8Array(32),
                mac: new Uint8Array(0),
              });
            }
            if (step.mutations) msg = concat(msg.subarray(0, msg.length - 1));
            client.send(msg);
            expectWelcome = step.mac === "good" && !step.mutations &&
              checkEndpoint(step.endpoint) === null;
          }
          break; // the first message decides (AUTH or close); later ones test pipelining
        }
        for (const step of steps.slice(1)) {
          if (step.kind === "text") client.send(step.text);
          else if (step.kind === "bytes") client.send(step.bytes);
          else client.send(await authMessage(challenge, step.endpoint));
        }
        const reply = await client.next();
        if (reply instanceof Uint8Array && reply[0] === MsgType.WELCOME) {
          assert.ok(expectWelcome, "WELCOME without a valid proof");
          decodeWelcome(reply);
        } else {
          assert.equal(reply, null, "an unexpected message before the handshake");
          if (expectWelcome) {
            // only a text message pipelined behind the AUTH may close it first
            assert.ok(
              client.closeCode === CloseCode.UNSUPPORTED && steps.some((s) => s.kind === "text"),
              `a valid AUTH was refused (close ${client.closeCode})`,
            );
          }
          checkClose(client, refusedBefore);
        }
        await client.close();
      },
    );
  });

  it("after the handshake: the socket stays usable or closes with a documented code", async () => {
    const heapBefore = heapUsed();
    let client = await handshake(endpoint);
    let probeId = 1_000_000;
    let reconnects = 0;
    await checkAsync(
      "WebSocket/after-handshake",
      fc.array(post, { minLength: 1, maxLength: 5 }),
      // (Deno's WebSocket client waits out Nagle + delayed ACK on back-to-back small sends)
      500,
      async (msgs) => {
        if (client.closeCode !== null) {
          client = await handshake(endpoint);
          reconnects++;
        }
        const refusedBefore = refused();
        for (const m of msgs) client.send(m);
        const id = ++probeId;
        client.send(encodeBatch([probeItem(id)]));
        for (;;) {
          const reply = await client.next();
          if (reply === null) {
            checkClose(client, refusedBefore);
            return;
          }
          assert.ok(reply instanceof Uint8Array, "the server sent text");
          const items = decodeBatch(reply, FROM_SERVER); // always well formed
          for (const it of items) {
            if (it.kind === ItemKind.ERROR) {
              assert.notEqual(it.code, 5, /* EIO */ `an unexpected exception: ${it.message}`);
            }
          }
          const answer = items.find((it) => it.kind !== ItemKind.FRAME && it.id === id);
          if (answer !== undefined) {
            assert.equal(answer.kind, ItemKind.ERROR); // ENOENT: no such group here
            return;
          }
        }
      },
    );
    await client.close();
    console.log(
      `sockets: closes by code ${JSON.stringify(Object.fromEntries(closes))}, ` +
        `${reconnects} reconnects`,
    );
    const grown = heapUsed() - heapBefore;
    assert.ok(grown < 200 * 1024 * 1024, `heap grew by ${(grown / 1048576).toFixed(0)} MiB`);
  });
});
