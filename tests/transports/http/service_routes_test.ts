/**
 * Every route `addService` mounts gets bad input (garbage, truncated and mutated frames, wrong
 * field types, huge declared lengths, missing or wrong secret, unknown group or peer) through
 * `app.request()` and through real sockets; each answer has the right status and a JSON error,
 * the secret never shows, and the group still commits afterwards.
 */

import assert from "node:assert/strict";
import { encode } from "cbor-x";
import { after, before, describe, it } from "node:test";
import { Hono } from "hono";
import { encodeMessage } from "../../../src/codec/message_codec.ts";
import { RaftError } from "../../../src/errors/status.ts";
import { NodeManager } from "../../../src/node/node_manager.ts";
import { AUTH_HEADER, callProof, SharedKey } from "../../../transports/http/auth.ts";
import { HttpTransport } from "../../../transports/http/http_transport.ts";
import { addService } from "../../../transports/http/service.ts";
import { serve } from "../../../transports/http/serve.ts";
import { waitFor } from "../../node/cluster.ts";
import { DEADLINE_MS, HttpCluster, type Member } from "./_http_cluster.ts";

const SECRET = "routes-test-secret-0123456789";
const key = new SharedKey(SECRET);

async function signed(_path: string, body: Uint8Array, type: string): Promise<RequestInit> {
  return {
    method: "POST",
    headers: { "content-type": type, [AUTH_HEADER]: await callProof(key, "", body) },
    body: body as Uint8Array<ArrayBuffer>,
  };
}

async function expectError(res: Response, status: number, code?: number): Promise<void> {
  const text = await res.text();
  assert.equal(res.status, status, text);
  const body = JSON.parse(text) as { error: string; code: number; message: string };
  assert.equal(typeof body.error, "string");
  assert.equal(typeof body.message, "string");
  if (code !== undefined) assert.equal(body.code, code, text);
  assert.ok(!text.includes(SECRET), "the secret leaked into an error");
}

describe("addService routes under bad input", () => {
  const c = new HttpCluster({ secret: SECRET });
  let target: Member;

  before(async () => {
    for (let i = 0; i < 3; i++) await c.serveMember();
    for (const m of c.members) await c.startNode(m, c.conf());
    await c.waitLeader();
    target = c.members[0]!;
  });

  after(async () => {
    // Whatever was thrown at it, the group still commits and agrees.
    const leader = await c.waitLeader();
    await leader.applyAsync(new TextEncoder().encode("still alive"));
    await c.ensureSame();
    await c.stopAll();
  });

  it("POST /raft/call: no secret or a wrong one is 401, and nothing runs", async () => {
    const req = encode({ t: "cli", verb: "get_leader", group_id: c.group }) as Uint8Array<
      ArrayBuffer
    >;
    await expectError(
      await target.app.request("/raft/call", { method: "POST", body: req }),
      401,
      RaftError.EACCES,
    );
    const wrong = await callProof(new SharedKey("not-the-secret"), "", req);
    await expectError(
      await target.app.request("/raft/call", {
        method: "POST",
        headers: { [AUTH_HEADER]: wrong },
        body: req,
      }),
      401,
    );
    await expectError(
      await target.app.request("/raft/call", {
        method: "POST",
        headers: { [AUTH_HEADER]: "v1 garbage" },
        body: req,
      }),
      401,
    );
  });

  it("POST /raft/call: garbage, wrong types and unknown names are 400/404", async () => {
    const cases: Array<[unknown, number]> = [
      [new Uint8Array([0xff, 0x00, 0x13]), 400], // not CBOR
      [encode(42), 400],
      [encode({ t: 5 }), 400],
      [encode({ t: "nope" }), 400],
      [{ t: "cli", verb: "get_leader", group_id: 7 }, 400],
      [{ t: "cli", verb: "add_peer", group_id: "x", peer_id: ["a"] }, 400],
      [{ t: "cli", verb: "explode", group_id: "x" }, 400],
      [{ t: "cli", verb: "get_leader", group_id: "no-such-group" }, 404],
      [{ t: "cli", verb: "get_leader", group_id: "G", peer_id: "127.0.0.1:1:0" }, 404],
      [{ t: "get_file", readerId: "x", name: "a", offset: 0, count: 1 }, 400],
      [{ t: "get_file", readerId: 1, name: "../../etc/passwd", offset: 0, count: 1 }, 404],
      [{ t: "get_file", readerId: 1, name: "a", offset: -1, count: 1 }, 400],
      [{ t: "get_file", readerId: 1, name: "a", offset: 0, count: 2 ** 40 }, 400],
      [{ t: "snapshot_files", readerId: 123456 }, 404],
    ];
    for (const [body, status] of cases) {
      const bytes = body instanceof Uint8Array ? body : encode(body) as Uint8Array;
      const res = await target.app.request(
        "/raft/call",
        await signed("/raft/call", bytes, "application/octet-stream"),
      );
      await expectError(res, status);
    }
  });

  it("POST /raft/call: an oversize body is 413, by declared length and by actual bytes", async () => {
    const huge = new Uint8Array(4 * 1024 * 1024);
    await expectError(
      await target.app.request("/raft/call", await signed("/raft/call", huge, "x/y")),
      413,
    );
    const declared = await target.app.request("/raft/call", {
      method: "POST",
      headers: { "content-length": String(2 ** 40) },
      body: new Uint8Array(10),
    });
    assert.ok([400, 413].includes(declared.status), `status ${declared.status}`);
    await declared.body?.cancel();
  });

  it("POST /raft/cli/<verb>: secret, JSON, field types, verbs and groups are checked", async () => {
    const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
    const path = (verb: string) => `/raft/cli/${verb}`;
    await expectError(
      await target.app.request(path("get_leader"), {
        method: "POST",
        body: json({ group_id: c.group }),
      }),
      401,
    );
    const cases: Array<[string, Uint8Array, number]> = [
      ["get_leader", new TextEncoder().encode("{not json"), 400],
      ["get_leader", new Uint8Array([0xc3, 0x28]), 400], // not UTF-8
      ["get_leader", json([1, 2]), 400],
      ["get_leader", json({ group_id: 5 }), 400],
      ["get_leader", json({ group_id: "no-such-group" }), 404],
      ["add_peer", json({ group_id: c.group, peer_id: "not a peer" }), 400],
      ["explode", json({ group_id: c.group }), 404],
    ];
    for (const [verb, body, status] of cases) {
      await expectError(
        await target.app.request(path(verb), await signed(path(verb), body, "application/json")),
        status,
      );
    }
    const ok = await target.app.request(
      path("get_leader"),
      await signed(path("get_leader"), json({ group_id: c.group }), "application/json"),
    );
    assert.equal(ok.status, 200);
    const leader = await c.waitLeader();
    assert.equal((await ok.json()).leader_id, leader.nodeId().toString());
  });

  it("GET /raft/ws without an upgrade is refused; /raft_stat and /flags never show the secret", async () => {
    const ws = await target.app.request("/raft/ws");
    assert.ok(ws.status >= 400, `status ${ws.status}`);
    await ws.body?.cancel();
    await expectError(await target.app.request("/raft_stat/no-such-group"), 404);
    for (const path of ["/raft_stat", `/raft_stat/${c.group}`, "/flags"]) {
      const res = await target.app.request(path);
      const text = await res.text();
      assert.equal(res.status, 200, path);
      assert.ok(!text.includes(SECRET), `${path} shows the secret`);
    }
    const stat = await (await target.app.request(`/raft_stat/${c.group}?format=json`)).json();
    assert.equal(stat.nodes[0].peer_id, target.peer.toString());
  });

  it("garbage, truncated, mutated and oversize raft frames over a real socket are dropped", async () => {
    const manager = NodeManager.existing(target.service.transport!)!;
    const before = manager.stats.malformed;
    const rogue = new HttpTransport("127.0.0.1:1", { secret: SECRET });
    try {
      const good = encodeMessage(c.group, {
        type: "TimeoutNow",
        from: "127.0.0.1:1:0",
        to: target.peer.toString(),
        term: 1,
      });
      const truncated = good.subarray(0, good.byteLength - 3);
      const mutated = good.slice();
      mutated[good.byteLength - 2]! ^= 0xff;
      const hugeHeader = good.slice();
      new DataView(hugeHeader.buffer).setUint32(1, 0xfffffff0);
      const frames = [
        new Uint8Array([1, 2, 3]),
        new Uint8Array(0),
        truncated,
        mutated,
        hugeHeader,
        encode({ g: c.group, m: { type: "AppendEntries", from: 1 } }) as Uint8Array,
      ];
      // Frames sent before the socket is open are dropped: open it first (a call does).
      await rogue.call(
        target.peer.endpoint,
        encode({ t: "cli", verb: "get_leader", group_id: c.group }) as Uint8Array,
        { timeoutMs: DEADLINE_MS },
      );
      await waitFor(
        () => rogue.connectionState(target.peer.endpoint) === "open" || undefined,
        DEADLINE_MS,
        "the rogue peer's socket to open",
      );
      for (const f of frames) rogue.send(target.peer.endpoint, f);
      await waitFor(
        () => manager.stats.malformed >= before + 5 || undefined,
        DEADLINE_MS,
        "the bad frames to arrive and be counted",
      );
      // A frame far over the limit closes the sender's socket (1009) and is not delivered.
      rogue.send(target.peer.endpoint, new Uint8Array(8 * 1024 * 1024));
      await waitFor(
        () => target.service.transport!.stats.oversize > 0 || undefined,
        DEADLINE_MS,
        "the oversize frame to be refused",
      );
    } finally {
      await rogue.close();
    }
  });

  it("a peer without the secret cannot deliver frames", async () => {
    const manager = NodeManager.existing(target.service.transport!)!;
    const rejected = target.service.transport!.stats.rejectedAuth;
    const beforeMalformed = manager.stats.malformed;
    const beforeUnknown = manager.stats.unknownTarget;
    const intruder = new HttpTransport("127.0.0.1:2", { secret: "wrong-secret" });
    try {
      intruder.send(target.peer.endpoint, new Uint8Array([1, 2, 3]));
      await waitFor(
        () => target.service.transport!.stats.rejectedAuth > rejected || undefined,
        DEADLINE_MS,
        "the intruder's socket to be refused",
      );
      assert.equal(manager.stats.malformed, beforeMalformed);
      assert.equal(manager.stats.unknownTarget, beforeUnknown);
    } finally {
      await intruder.close();
    }
  });

  it("addService after serve is an error; a node without a service gets a clear error", async () => {
    const app = new Hono();
    const server = await serve(app, { hostname: "127.0.0.1", port: 0 });
    try {
      assert.throws(() => addService(app, 0), /already being served/);
    } finally {
      await server.shutdown();
    }
    const { Node } = await import("../../../src/node/node.ts");
    const { MockFsm } = await import("../../node/cluster.ts");
    const node = new Node("orphan", "127.0.0.1:1:0");
    await assert.rejects(
      node.init({
        fsm: new MockFsm(),
        logUri: "memory://orphan/log",
        raftMetaUri: "memory://orphan/m",
      }),
      /addService/,
    );
  });
});
