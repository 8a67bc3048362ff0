/**
 * `/flags` and `POST /flags/<name>` through `app.request()`: every flag with value, default,
 * runtime and description in JSON, text and HTML; runtime changes by JSON and by form; bad
 * names, values, bodies and static flags change nothing; with a secret a change needs the CLI's
 * `x-raft-auth` proof and the page is read-only; `setFlag`/`parseFlagValue` directly.
 */

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Hono } from "hono";
import { RaftError, RaftException } from "../../../src/errors/status.ts";
import {
  FLAG_INFO,
  flags,
  parseFlagValue,
  type RaftFlags,
  setFlag,
} from "../../../src/util/flags.ts";
import { AUTH_HEADER, callProof, SharedKey } from "../../../transports/http/auth.ts";
import { addService, type RaftService } from "../../../transports/http/service.ts";
import { HttpCluster, type Member } from "./_http_cluster.ts";

// Taken before any test changes a flag: what `flags` starts with.
const INITIAL: RaftFlags = { ...flags };
const SECRET = "pages-flags-secret-42";

// deno-lint-ignore no-explicit-any
type Json = any;

const json = (value: unknown): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(value),
});

const form = (value: string, accept = "application/json"): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded", accept },
  body: new URLSearchParams({ value }).toString(),
});

/** Runs `body`, then puts every flag back as it was. */
async function restoring(body: () => void | Promise<void>): Promise<void> {
  const saved = { ...flags };
  try {
    await body();
  } finally {
    Object.assign(flags, saved);
  }
}

async function expectError(res: Response, status: number, code: number): Promise<Json> {
  const text = await res.text();
  assert.equal(res.status, status, text);
  const body = JSON.parse(text);
  assert.equal(body.code, code, text);
  assert.equal(typeof body.message, "string");
  return body;
}

const RUNTIME = (Object.keys(FLAG_INFO) as (keyof RaftFlags)[]).filter((k) => FLAG_INFO[k].runtime);
const STATIC = (Object.keys(FLAG_INFO) as (keyof RaftFlags)[]).filter((k) => !FLAG_INFO[k].runtime);

describe("flag metadata", () => {
  it("every flag has metadata whose default is the initial value, within its range", () => {
    assert.deepEqual(Object.keys(FLAG_INFO).sort(), Object.keys(flags).sort());
    for (const [name, info] of Object.entries(FLAG_INFO)) {
      assert.equal(info.default, INITIAL[name as keyof RaftFlags], name);
      assert.ok(info.description.length > 10 && !info.description.includes("\n"), name);
      assert.ok(info.readAt.length > 5, name);
      if (typeof info.default === "number") {
        assert.ok(info.min !== undefined && info.max !== undefined, `${name} has a range`);
        assert.ok(
          info.min! <= info.default && info.default <= info.max!,
          `${name} default in range`,
        );
      }
    }
    assert.ok(RUNTIME.length > 0 && STATIC.length > 0);
    assert.equal(FLAG_INFO.raft_sync.runtime, false, "storages capture raft_sync when created");
    assert.equal(FLAG_INFO.raft_max_segment_size.runtime, false);
  });

  it("setFlag checks type and range, refuses unknown and static flags, and changes nothing then", async () => {
    await restoring(() => {
      const before = { ...flags };
      const cases: [string, unknown, number][] = [
        ["raft_nope", 1, RaftError.ENOENT],
        ["__proto__", 1, RaftError.ENOENT],
        ["raft_leader_batch", 0, RaftError.EINVAL],
        ["raft_leader_batch", 1.5, RaftError.EINVAL],
        ["raft_leader_batch", "12abc", RaftError.EINVAL],
        ["raft_leader_batch", true, RaftError.EINVAL],
        ["raft_leader_batch", null, RaftError.EINVAL],
        ["raft_leader_batch", 2 ** 31, RaftError.EINVAL],
        ["raft_leader_batch", Number.NaN, RaftError.EINVAL],
        ["raft_max_byte_count_per_rpc", 2 * 1024 * 1024, RaftError.EINVAL],
        ["raft_enable_throttle_when_install_snapshot", "yes please", RaftError.EINVAL],
        ["raft_enable_throttle_when_install_snapshot", 1, RaftError.EINVAL],
        ["raft_sync", false, RaftError.EPERM],
        ["raft_max_body_size", 1024, RaftError.EPERM],
      ];
      for (const [name, value, code] of cases) {
        assert.throws(
          () => setFlag(name, value),
          (e: unknown) => e instanceof RaftException && e.code === code,
          `${name} = ${String(value)}`,
        );
      }
      assert.deepEqual({ ...flags }, before);
      assert.equal(setFlag("raft_leader_batch", " 17 "), 17);
      assert.equal(setFlag("raft_enable_throttle_when_install_snapshot", "0"), false);
      assert.equal(parseFlagValue("raft_sync", "true"), true, "parsing a static flag is fine");
      assert.equal(flags.raft_leader_batch, 17);
      assert.equal(flags.raft_enable_throttle_when_install_snapshot, false);
    });
    assert.deepEqual({ ...flags }, INITIAL);
  });
});

describe("/flags pages (no secret)", () => {
  const c = new HttpCluster();
  let m: Member;

  before(async () => {
    for (let i = 0; i < 3; i++) await c.serveMember();
    for (const x of c.members) await c.startNode(x, c.conf());
    await c.waitLeader();
    m = c.members[0]!;
  });

  after(async () => {
    await c.stopAll();
  });

  it("JSON has every flag with value, default, runtime and description", async () => {
    for (
      const headers of [{}, { accept: "application/json" }]
    ) {
      const path = Object.keys(headers).length === 0 ? "/flags?format=json" : "/flags";
      const res = await m.app.request(path, { headers });
      assert.equal(res.status, 200);
      const body: Json = await res.json();
      assert.deepEqual(Object.keys(body).sort(), Object.keys(flags).sort());
      for (const [name, f] of Object.entries(body) as [keyof RaftFlags, Json][]) {
        assert.equal(f.value, flags[name], name);
        assert.equal(f.default, FLAG_INFO[name].default, name);
        assert.equal(f.runtime, FLAG_INFO[name].runtime, name);
        assert.equal(f.description, FLAG_INFO[name].description, name);
        assert.equal(f.read_at, FLAG_INFO[name].readAt, name);
      }
    }
  });

  it("text has one line per flag; HTML one row per flag and a form per runtime flag", async () => {
    const text = await (await m.app.request("/flags", { headers: { accept: "*/*" } })).text();
    const lines = text.trimEnd().split("\n");
    assert.equal(lines.length, Object.keys(flags).length);
    for (const name of Object.keys(flags) as (keyof RaftFlags)[]) {
      const line = lines.find((l) => l.startsWith(`${name}: `));
      assert.ok(line !== undefined, name);
      assert.ok(line.startsWith(`${name}: ${flags[name]} (default ${FLAG_INFO[name].default}, `));
      assert.ok(line.includes(FLAG_INFO[name].runtime ? "runtime" : "static"));
      assert.ok(line.endsWith(FLAG_INFO[name].description));
    }
    const res = await m.app.request("/flags", { headers: { accept: "text/html" } });
    assert.match(res.headers.get("content-type")!, /text\/html/);
    const page = await res.text();
    for (const name of Object.keys(flags) as (keyof RaftFlags)[]) {
      const row = new RegExp(`<tr data-flag="${name}">(.*?)</tr>`).exec(page);
      assert.ok(row !== null, `no row for ${name}`);
      assert.ok(row[1]!.includes(`<td data-col="value">${flags[name]}</td>`), name);
      assert.ok(row[1]!.includes(`<td data-col="default">${FLAG_INFO[name].default}</td>`));
      assert.ok(
        row[1]!.includes(`<td data-col="runtime">${FLAG_INFO[name].runtime ? "yes" : "no"}`),
      );
      assert.equal(row[1]!.includes(`action="/flags/${name}"`), FLAG_INFO[name].runtime, name);
    }
    assert.doesNotMatch(page, /id="readonly-note"/);
  });

  it("POST changes a runtime flag by JSON or form and answers its new state", async () => {
    await restoring(async () => {
      const name = "raft_do_snapshot_min_index_gap";
      const res = await m.app.request(`/flags/${name}`, json({ value: 7 }));
      assert.equal(res.status, 200);
      const body: Json = await res.json();
      assert.equal(body.name, name);
      assert.equal(body.value, 7);
      assert.equal(body.default, 1);
      assert.equal(body.runtime, true);
      assert.equal(flags.raft_do_snapshot_min_index_gap, 7);
      const viaForm = await m.app.request(`/flags/${name}`, form("9"));
      assert.equal((await viaForm.json()).value, 9);
      assert.equal(flags.raft_do_snapshot_min_index_gap, 9);
      const b = await m.app.request(
        "/flags/raft_enable_throttle_when_install_snapshot",
        json({ value: false }),
      );
      assert.equal((await b.json()).value, false);
      assert.equal(flags.raft_enable_throttle_when_install_snapshot, false);
      const listed: Json = await (await m.app.request("/flags?format=json")).json();
      assert.equal(listed[name].value, 9);
      // A browser form: 303 back to the page, which shows the new value; same-origin is fine.
      const page = await m.app.request(`http://localhost/flags/${name}`, {
        ...form("11", "text/html"),
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          accept: "text/html",
          origin: "http://localhost",
        },
      });
      assert.equal(page.status, 303);
      assert.equal(page.headers.get("location"), "/flags");
      assert.equal(flags.raft_do_snapshot_min_index_gap, 11);
    });
    assert.deepEqual({ ...flags }, INITIAL);
  });

  it("POST with a bad name, value or body, a static flag or another origin changes nothing", async () => {
    await restoring(async () => {
      const before = { ...flags };
      const runtime = "raft_leader_batch";
      await expectError(
        await m.app.request("/flags/raft_nope", json({ value: 1 })),
        404,
        RaftError.ENOENT,
      );
      await expectError(
        await m.app.request("/flags/raft_sync", json({ value: false })),
        400,
        RaftError.EPERM,
      );
      for (const value of [0, -1, 1.5, "x", true, null, [], {}, 2 ** 40]) {
        await expectError(
          await m.app.request(`/flags/${runtime}`, json({ value })),
          400,
          RaftError.EINVAL,
        );
      }
      await expectError(
        await m.app.request(`/flags/${runtime}`, form("abc")),
        400,
        RaftError.EINVAL,
      );
      const raw = (body: string, type: string) => ({
        method: "POST",
        headers: { "content-type": type },
        body,
      });
      for (
        const [body, type] of [
          ["{", "application/json"],
          ["[1]", "application/json"],
          ['{"v": 1}', "application/json"],
          ["other=1", "application/x-www-form-urlencoded"],
          ["value=5", "text/plain"],
        ]
      ) {
        await expectError(
          await m.app.request(`/flags/${runtime}`, raw(body!, type!)),
          400,
          RaftError.EINVAL,
        );
      }
      const huge = await m.app.request(
        `/flags/${runtime}`,
        raw("x".repeat(100_000), "application/json"),
      );
      assert.equal(huge.status, 413);
      await huge.body?.cancel();
      await expectError(
        await m.app.request(`http://localhost/flags/${runtime}`, {
          ...json({ value: 5 }),
          headers: { "content-type": "application/json", origin: "http://evil.example" },
        }),
        403,
        RaftError.EACCES,
      );
      // A browser sees the error on the page, escaped.
      const page = await m.app.request(`/flags/${runtime}`, form("<b>x</b>", "text/html"));
      assert.equal(page.status, 400);
      const html = await page.text();
      assert.ok(!html.includes("<b>x"));
      assert.match(
        html,
        /id="error">Cannot set raft_leader_batch to &quot;&lt;b&gt;x&lt;\/b&gt;&quot;/,
      );
      assert.deepEqual({ ...flags }, before);
    });
  });
});

describe("/flags with a secret", () => {
  let app: Hono;
  let service: RaftService;
  const key = new SharedKey(SECRET);

  before(() => {
    app = new Hono();
    service = addService(app, "127.0.0.1:0", { secret: SECRET });
  });

  after(async () => {
    await service.close();
  });

  it("POST needs the CLI's x-raft-auth proof over the body; the page is read-only", async () => {
    await restoring(async () => {
      const path = "/flags/raft_leader_batch";
      const body = new TextEncoder().encode(JSON.stringify({ value: 64 }));
      const post = (headers: Record<string, string>): Promise<Response> =>
        Promise.resolve(app.request(path, {
          method: "POST",
          headers: { "content-type": "application/json", ...headers },
          body,
        }));
      await expectError(await post({}), 401, RaftError.EACCES);
      const wrong = await callProof(new SharedKey("not-it"), "", body);
      await expectError(await post({ [AUTH_HEADER]: wrong }), 401, RaftError.EACCES);
      const otherBody = await callProof(key, "", new TextEncoder().encode('{"value": 65}'));
      await expectError(await post({ [AUTH_HEADER]: otherBody }), 401, RaftError.EACCES);
      const stale = await callProof(key, "", body, Date.now() - 10 * 60_000);
      await expectError(await post({ [AUTH_HEADER]: stale }), 401, RaftError.EACCES);
      assert.equal(flags.raft_leader_batch, INITIAL.raft_leader_batch);
      // Unknown names are not revealed to callers without the secret either.
      await expectError(
        await app.request("/flags/raft_nope", { method: "POST", body: "{}" }),
        401,
        RaftError.EACCES,
      );
      const ok = await post({ [AUTH_HEADER]: await callProof(key, "", body) });
      assert.equal(ok.status, 200);
      assert.equal((await ok.json()).value, 64);
      assert.equal(flags.raft_leader_batch, 64);
      const page = await (await app.request("/flags", { headers: { accept: "text/html" } })).text();
      assert.doesNotMatch(page, /<form/);
      assert.match(page, /id="readonly-note"/);
      assert.ok(!page.includes(SECRET));
    });
    assert.deepEqual({ ...flags }, INITIAL);
  });
});
