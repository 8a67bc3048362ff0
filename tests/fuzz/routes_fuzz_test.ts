/**
 * Fuzzing every HTTP route `addService` mounts, through `app.request()` on the apps of a live
 * 3-node group (with a shared secret): `POST /raft/call`, `POST /raft/cli/<verb>`,
 * `GET /raft_stat[/<group>]`, `GET /flags`, `POST /flags/<name>` and `GET /raft/ws` without a
 * server upgrade. Most requests carry a valid proof, so the decoders behind the proof get the
 * hostile bodies. Every answer is a success or a 4xx (503/504 for "try later") with a JSON error
 * body `{ error, code, message }` (HTML for browsers on the page routes), never another 5xx,
 * never an EIO from an unexpected exception, never the secret. Meanwhile and afterwards the group
 * commits, and memory stays bounded.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { encode } from "cbor-x";
import { AUTH_HEADER, callProof, FROM_HEADER, SharedKey } from "../../transports/http/auth.ts";
import { CLI_VERBS } from "../../src/node/cli_service.ts";
import { RaftError } from "../../src/errors/status.ts";
import { FLAG_INFO, flags, setFlag } from "../../src/util/flags.ts";
import { DEADLINE_MS, HttpCluster } from "../transports/http/_http_cluster.ts";
import { withDeadline } from "../node/cluster.ts";
import { checkAsync, heapUsed } from "./_fuzz.ts";
import {
  extremeNumber,
  mutated,
  nastyJson,
  nastyValue,
  oddString,
  rawCbor,
  withHostileField,
} from "./_arbitraries.ts";
import { peerString } from "./_valid.ts";

const SECRET = "fuzz-routes-secret-7f3a9c";
const key = new SharedKey(SECRET);
const wrongKey = new SharedKey("not-the-secret");
const encoder = new TextEncoder();

/** How a request proves the secret. */
type Proof = "good" | "none" | "wrong-key" | "stale" | "garbage";
const proof: fc.Arbitrary<Proof> = fc.oneof(
  { arbitrary: fc.constant("good" as const), weight: 8 },
  {
    arbitrary: fc.constantFrom("none" as const, "wrong-key" as const, "stale" as const),
    weight: 1,
  },
  { arbitrary: fc.constant("garbage" as const), weight: 1 },
);

interface Spec {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Uint8Array | null;
  proof: Proof;
  /** `x-raft-from` to sign with (and send). */
  from: string;
  /** Any odd header to add. */
  extra: [string, string] | null;
}

/** encodeURIComponent, with lone surrogates replaced (it throws on them). */
function pct(v: string): string {
  return encodeURIComponent(v.replace(/[\uD800-\uDFFF]/gu, "\uFFFD"));
}

/** Percent-encodes a path segment the way a client might (or not at all). */
const segment = (s: fc.Arbitrary<string>) =>
  fc.tuple(s.filter((v) => v !== "" && v !== "." && v !== ".."), fc.boolean()).map((
    [v, enc],
  ) => enc ? pct(v) : v.replace(/[^A-Za-z0-9._~!$&'()*+,;=:@-]/g, "_"));

const headerValue = fc.oneof(
  fc.string({ unit: "binary-ascii", maxLength: 40 }).map((s) => s.replace(/[\r\n\0]/g, " ")),
  fc.constantFrom("", " ", "text/html", "application/json", "*/*", "websocket", "0", "-1"),
);
const extraHeader: fc.Arbitrary<[string, string] | null> = fc.option(
  fc.tuple(
    fc.constantFrom(
      "accept",
      "content-type",
      "content-length",
      "origin",
      "upgrade",
      "connection",
      "x-raft-from",
      "sec-websocket-key",
    ),
    headerValue,
  ),
  { nil: null },
);

/** The group under test (set once the cluster runs). */
let GROUP = "";
let PEERS: string[] = [];

const groupOrOther = fc.oneof(
  fc.constant("fuzz-no-such-group"),
  oddString,
);

/** A CLI call body as CBOR for /raft/call (read-only verbs only on the live group). */
const cliCall = fc.oneof(
  // (GROUP and PEERS are read when a value is generated, after the cluster started)
  fc.tuple(fc.constantFrom("get_leader", "list_peers"), fc.option(fc.nat({ max: 2 })))
    .map(([verb, peer]) => ({
      t: "cli",
      verb,
      group_id: GROUP,
      ...(peer === null ? {} : { peer_id: PEERS[peer] }),
    })),
  fc.tuple(fc.constantFrom(...CLI_VERBS), groupOrOther, peerString, fc.array(peerString)).map((
    [verb, g, p, ps],
  ) => ({ t: "cli", verb, group_id: g, peer_id: p, leader_id: p, new_peers: ps })),
);

const fileCall = fc.record({
  t: fc.constantFrom("snapshot_files", "get_file"),
  readerId: fc.oneof(fc.nat(), extremeNumber),
  name: fc.oneof(fc.constant("data"), oddString),
  offset: fc.oneof(fc.nat(), extremeNumber),
  count: fc.oneof(fc.nat({ max: 1 << 20 }), extremeNumber),
});

const callBody: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  rawCbor,
  nastyValue.map((v) => encode(v) as Uint8Array),
  cliCall.chain((c) => fc.oneof(withHostileField(c), fc.constant(encode(c) as Uint8Array))),
  mutated(cliCall.map((c) => encode(c) as Uint8Array)),
  fileCall.chain((c) => fc.oneof(withHostileField(c), fc.constant(encode(c) as Uint8Array))),
  fc.dictionary(oddString, nastyValue, { maxKeys: 3 }).map((d) =>
    encode({ t: "cli", verb: "get_leader", ...d }) as Uint8Array
  ),
);

const jsonBody: fc.Arbitrary<Uint8Array> = fc.oneof(
  { arbitrary: nastyJson.map((v) => encoder.encode(JSON.stringify(v) ?? "")), weight: 3 },
  {
    arbitrary: fc.record({
      group_id: fc.oneof(groupOrOther, nastyJson),
      peer_id: fc.oneof(peerString, oddString, nastyJson),
      leader_id: fc.oneof(peerString, oddString, nastyJson),
      new_peers: fc.oneof(fc.array(peerString), oddString, nastyJson),
      old_peers: fc.oneof(fc.array(peerString), nastyJson),
    }, { requiredKeys: [] }).map((o) => encoder.encode(JSON.stringify(o))),
    weight: 3,
  },
  { arbitrary: fc.uint8Array({ maxLength: 40 }), weight: 1 },
  {
    arbitrary: fc.nat({ max: 3000 }).map((d) => encoder.encode("[".repeat(d) + "]".repeat(d))),
    weight: 1,
  },
);

const format = fc.option(
  fc.oneof(fc.constantFrom("html", "json", "text"), oddString),
  { nil: null, freq: 2 },
);
const accept = fc.option(
  fc.oneof(
    fc.constantFrom(
      "text/html",
      "application/json;q=0.5, text/html;q=0.9",
      "application/json;q=NaN",
      "constructor",
      "__proto__",
      "text/plain;q=1e999",
    ),
    headerValue,
  ),
  { nil: null },
);

function withQuery(path: string, fmt: string | null, extra = ""): string {
  const q = [fmt === null ? "" : `format=${pct(fmt)}`, extra].filter((s) => s);
  return q.length === 0 ? path : `${path}?${q.join("&")}`;
}

const flagName = fc.oneof(
  fc.constantFrom(...Object.keys(FLAG_INFO)),
  oddString,
  fc.constantFrom("toString", "constructor", "__proto__"),
);
const flagBody = fc.oneof(
  fc.tuple(fc.oneof(nastyJson, extremeNumber.map((n) => n)), fc.boolean()).map(([v, wrap]) =>
    encoder.encode(JSON.stringify(wrap ? { value: v } : v) ?? "null")
  ),
  fc.oneof(oddString, extremeNumber.map(String)).map((v) => encoder.encode(`value=${pct(v)}`)),
  fc.uint8Array({ maxLength: 32 }),
  fc.constant(encoder.encode('{"value": {"toString": 1}}')),
);

const spec: fc.Arbitrary<Spec> = fc.oneof(
  // POST /raft/call
  {
    arbitrary: fc.record({
      body: callBody,
      proof,
      from: fc.oneof(
        { arbitrary: fc.constant(""), weight: 6 },
        { arbitrary: fc.oneof(oddString, peerString), weight: 1 },
      ),
      extra: extraHeader,
    }).map((r): Spec => ({
      method: "POST",
      path: "/raft/call",
      headers: { "content-type": "application/octet-stream" },
      ...r,
    })),
    weight: 8,
  },
  // POST /raft/cli/<verb>
  {
    arbitrary: fc.record({
      verb: fc.oneof(
        { arbitrary: fc.constantFrom(...CLI_VERBS), weight: 4 },
        { arbitrary: segment(oddString), weight: 1 },
      ),
      body: jsonBody,
      proof,
      extra: extraHeader,
    }).map((r): Spec => ({
      method: "POST",
      path: `/raft/cli/${r.verb}`,
      headers: { "content-type": "application/json" },
      body: r.body,
      proof: r.proof,
      from: "",
      extra: r.extra,
    })),
    weight: 6,
  },
  // GET /raft_stat, /raft_stat/<group>
  {
    arbitrary: fc.record({
      group: fc.option(fc.oneof(segment(oddString), fc.constant("__GROUP__")), { nil: null }),
      format,
      accept,
      refresh: fc.option(fc.oneof(extremeNumber.map(String), oddString), { nil: null }),
      extra: extraHeader,
    }).map((r): Spec => ({
      method: "GET",
      path: withQuery(
        r.group === null ? "/raft_stat" : `/raft_stat/${r.group}`,
        r.format,
        r.refresh === null ? "" : `refresh=${pct(r.refresh)}`,
      ),
      headers: r.accept === null ? {} : { accept: r.accept },
      body: null,
      proof: "none",
      from: "",
      extra: r.extra,
    })),
    weight: 3,
  },
  // GET /flags
  {
    arbitrary: fc.record({ format, accept, extra: extraHeader }).map((r): Spec => ({
      method: "GET",
      path: withQuery("/flags", r.format),
      headers: r.accept === null ? {} : { accept: r.accept },
      body: null,
      proof: "none",
      from: "",
      extra: r.extra,
    })),
    weight: 1,
  },
  // POST /flags/<name>
  {
    arbitrary: fc.record({
      name: segment(flagName),
      format,
      type: fc.constantFrom(
        "application/json",
        "application/x-www-form-urlencoded",
        "",
        "text/plain",
        "application/json; charset=utf-8",
      ),
      body: flagBody,
      proof,
      extra: extraHeader,
    }).map((r): Spec => ({
      method: "POST",
      path: withQuery(`/flags/${r.name}`, r.format),
      headers: r.type === "" ? {} : { "content-type": r.type },
      body: r.body,
      proof: r.proof,
      from: "",
      extra: r.extra,
    })),
    weight: 3,
  },
  // GET /raft/ws without a server to upgrade it
  {
    arbitrary: fc.record({ upgrade: fc.boolean(), extra: extraHeader }).map((r): Spec => ({
      method: "GET",
      path: "/raft/ws",
      headers: r.upgrade
        ? { upgrade: "websocket", connection: "Upgrade", "sec-websocket-version": "13" }
        : {},
      body: null,
      proof: "none",
      from: "",
      extra: r.extra,
    })),
    weight: 1,
  },
);

async function buildRequest(s: Spec): Promise<{ path: string; init: RequestInit }> {
  const headers = new Headers();
  for (const [k, v] of Object.entries(s.headers)) headers.set(k, v);
  const body = s.body ?? new Uint8Array(0);
  if (s.from !== "") {
    try {
      headers.set(FROM_HEADER, s.from);
    } catch {
      // not a valid header value: send none
    }
  }
  const signedFrom = headers.get(FROM_HEADER) ?? "";
  if (s.proof === "good") headers.set(AUTH_HEADER, await callProof(key, signedFrom, body));
  if (s.proof === "wrong-key") {
    headers.set(AUTH_HEADER, await callProof(wrongKey, signedFrom, body));
  }
  if (s.proof === "stale") {
    headers.set(AUTH_HEADER, await callProof(key, signedFrom, body, Date.now() - 3_600_000));
  }
  if (s.proof === "garbage") headers.set(AUTH_HEADER, `v1 ${Date.now()} ${"0".repeat(64)}`);
  if (s.extra !== null) {
    try {
      headers.set(s.extra[0], s.extra[1]);
    } catch {
      // an invalid header value: skip it
    }
  }
  const path = s.path.replace("__GROUP__", encodeURIComponent(GROUP));
  return {
    path,
    init: {
      method: s.method,
      headers,
      ...(s.body === null ? {} : { body: s.body as Uint8Array<ArrayBuffer> }),
    },
  };
}

/** Statuses a route may answer with. */
function allowedStatus(path: string, status: number): boolean {
  if (status === 200 || status === 303) return true;
  if (status === 101 && !path.startsWith("/raft/ws")) return false;
  // (through app.request, Deno's upgradeWebSocket answers 101 for a socket that never opens)
  if (path.startsWith("/raft/ws")) return [101, 400, 426, 501, 503].includes(status);
  return [400, 401, 403, 404, 409, 413, 503, 504].includes(status);
}

const stats = { byStatus: new Map<number, number>() };

async function checkResponse(s: Spec, path: string, res: Response): Promise<void> {
  const bytes = new Uint8Array(await res.arrayBuffer());
  const text = new TextDecoder().decode(bytes);
  stats.byStatus.set(res.status, (stats.byStatus.get(res.status) ?? 0) + 1);
  const what = `${s.method} ${path} -> ${res.status} ${text.slice(0, 300)}`;
  assert.ok(allowedStatus(path, res.status), `unexpected status: ${what}`);
  assert.ok(!text.includes(SECRET), `the secret leaked: ${what}`);
  const type = res.headers.get("content-type") ?? "";
  if (type.startsWith("text/html")) {
    // whatever the request carried (group names, flag names, values) comes back escaped
    assert.ok(!/<script|<img/i.test(text), `markup from the request in a page: ${what}`);
  }
  if (res.status >= 400) {
    if (type.startsWith("text/html")) {
      // the page routes answer browsers with an HTML error page
      assert.ok(/^\/(raft_stat|flags)/.test(path), `HTML error from ${what}`);
      return;
    }
    assert.ok(type.startsWith("application/json"), `error without a JSON body: ${what}`);
    const body = JSON.parse(text) as { error?: unknown; code?: unknown; message?: unknown };
    assert.equal(typeof body.error, "string", what);
    assert.equal(typeof body.code, "number", what);
    assert.equal(typeof body.message, "string", what);
    assert.notEqual(body.code, RaftError.EIO, `an unexpected exception became EIO: ${what}`);
    return;
  }
  if (path.startsWith("/raft/cli/") || type.startsWith("application/json")) {
    const body = JSON.parse(text) as unknown;
    assert.ok(typeof body === "object" && body !== null, what);
  }
}

describe("fuzz: the HTTP routes of addService on a live 3-node group", () => {
  const c = new HttpCluster({ secret: SECRET });
  const savedFlags = { ...flags };
  let applied = 0;
  let applyFailed = 0;
  let stop = false;
  let applier: Promise<void> = Promise.resolve();

  before(async () => {
    for (let i = 0; i < 3; i++) await c.serveMember();
    for (const m of c.members) await c.startNode(m, c.conf());
    await c.waitLeader();
    GROUP = c.group;
    PEERS = c.members.map((m) => String(m.peer));
    // The group keeps committing while it is being fuzzed.
    applier = (async () => {
      while (!stop) {
        const leader = c.nodes().find((n) => n.isLeader());
        if (leader !== undefined) {
          try {
            await leader.applyAsync(encoder.encode(`during ${applied}`));
            applied++;
          } catch {
            applyFailed++;
          }
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
  });

  after(async () => {
    stop = true;
    await applier;
    for (const [name, value] of Object.entries(savedFlags)) {
      (flags as unknown as Record<string, unknown>)[name] = value;
    }
    const leader = await c.waitLeader();
    await withDeadline(leader.applyAsync(encoder.encode("after fuzzing")), DEADLINE_MS, "apply");
    await c.ensureSame();
    await c.stopAll();
  });

  it("every answer is a success or a 4xx with a JSON error, and the group keeps committing", async () => {
    const heapBefore = heapUsed();
    const arb = fc.tuple(spec, fc.nat({ max: 2 }));
    await checkAsync("HTTP routes", arb, 20000, async ([s, member]) => {
      const m = c.members[member]!;
      const { path, init } = await buildRequest(s);
      const res = await m.app.request(path, init);
      await checkResponse(s, path, res);
      if (s.path.startsWith("/flags/") && (res.status === 200 || res.status === 303)) {
        // a proven flag change took effect: put the flag back for the group's sake
        for (const [name, value] of Object.entries(savedFlags)) {
          if ((flags as unknown as Record<string, unknown>)[name] !== value) {
            setFlag(name, value);
          }
        }
      }
    });
    console.log(
      `routes: statuses ${JSON.stringify(Object.fromEntries(stats.byStatus))}; ` +
        `${applied} entries committed during fuzzing (${applyFailed} refused)`,
    );
    const grown = heapUsed() - heapBefore;
    assert.ok(grown < 200 * 1024 * 1024, `heap grew by ${(grown / 1048576).toFixed(0)} MiB`);
    assert.ok(applied > 0, "nothing committed while fuzzing");
    // And afterwards: every node applies a new entry. The applier stops first, or an entry it
    // commits after the leader's applied index is read makes the logs differ for a moment.
    stop = true;
    await applier;
    const leader = await c.waitLeader();
    await withDeadline(leader.applyAsync(encoder.encode("after routes")), DEADLINE_MS, "apply");
    await c.ensureSame();
  });

  it("regression: a flag value whose toString is not a function is a 400 EINVAL", async () => {
    const body = encoder.encode('{"value": {"toString": 1}}');
    const res = await c.members[0]!.app.request("/flags/raft_leader_batch", {
      method: "POST",
      headers: {
        "content-type": "application/json",
        [AUTH_HEADER]: await callProof(key, "", body),
      },
      body,
    });
    assert.equal(res.status, 400);
    assert.equal((await res.json()).code, RaftError.EINVAL);
  });
});
