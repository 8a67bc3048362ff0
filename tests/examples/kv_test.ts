/**
 * The kv example (examples/kv) as three real processes, one each on Deno, Bun and Node: put,
 * get, delete through the leader; followers answer 503 with a redirect; linearizable reads from
 * another client; compare-and-set (one winner among concurrent ones); a watch stream on a
 * follower sees the committed changes in order; the survivors of a SIGKILLed leader keep
 * serving with the data intact; bad input is refused; SIGTERM exits 0.
 */

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { Change, KvStore } from "../../examples/kv/store.ts";
import { MAX_QUEUED, WatchHub } from "../../examples/kv/watch.ts";
import { bin, freePorts, ROOT, until } from "./_counter_cluster.ts";

const SERVER = join(ROOT, "examples", "kv", "server.ts");
const RUNTIMES = ["deno", "bun", "node"] as const;
type Runtime = typeof RUNTIMES[number];

class KvServer {
  readonly child: ChildProcess;
  readonly exited: Promise<number | string>;
  readonly runtime: Runtime;
  readonly port: number;
  stderr = "";

  constructor(runtime: Runtime, port: number, args: string[]) {
    this.runtime = runtime;
    this.port = port;
    const cmd = runtime === "deno" ? ["run", "-A", SERVER, ...args] : [SERVER, ...args];
    this.child = spawn(bin(runtime), cmd, {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: "1" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    this.child.stderr!.on("data", (d) => this.stderr += d);
    this.exited = new Promise((resolve) =>
      this.child.once("exit", (code, signal) => resolve(code ?? signal ?? -1))
    );
  }

  get endpoint(): string {
    return `127.0.0.1:${this.port}`;
  }

  alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async ready(): Promise<void> {
    await until(`${this.runtime} kv server ${this.port} to start`, () => {
      if (!this.alive()) throw new Error(`server ${this.port} exited: ${this.stderr}`);
      return Promise.resolve(this.stderr.includes("serving http://") ? true : null);
    });
  }

  /** SIGTERM, SIGKILL after 15 s; resolves with the exit code or signal. */
  async stop(): Promise<number | string> {
    if (this.alive()) this.child.kill("SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((r) => timer = setTimeout(r, 15_000, "late"));
    const r = await Promise.race([this.exited, late]);
    clearTimeout(timer);
    if (r !== "late") return r;
    this.child.kill("SIGKILL");
    return await this.exited;
  }
}

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

async function call(
  endpoint: string,
  method: string,
  path: string,
  body?: string,
): Promise<Answer> {
  const res = await fetch(`http://${endpoint}${path}`, {
    method,
    ...(body === undefined ? {} : { body }),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: await res.json() as Record<string, unknown> };
}

/** A watch stream's parsed events, as they arrive. */
class Watch {
  readonly events: { event: string; data: Record<string, unknown> }[] = [];
  readonly #abort = new AbortController();
  readonly done: Promise<void>;
  /** Why the stream failed, unless closed by `close()`. */
  error: unknown = null;

  constructor(endpoint: string, prefix: string) {
    this.done = (async () => {
      const res = await fetch(
        `http://${endpoint}/kv/watch?prefix=${encodeURIComponent(prefix)}`,
        { signal: this.#abort.signal },
      );
      assert.equal(res.headers.get("content-type"), "text/event-stream");
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        buf += value;
        let end;
        while ((end = buf.indexOf("\n\n")) >= 0) {
          const frame = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const event = /^event: (.*)$/m.exec(frame)?.[1] ?? "message";
          const data = JSON.parse(/^data: (.*)$/m.exec(frame)?.[1] ?? "null");
          this.events.push({ event, data });
        }
      }
    })().catch((e) => {
      if (!this.#abort.signal.aborted) this.error = e;
    });
  }

  async waitFor(n: number, what: string): Promise<void> {
    await until(`${n} watch events (${what})`, () => {
      if (this.events.length >= n) return Promise.resolve(true);
      if (this.error !== null) throw this.error;
      return Promise.resolve(null);
    });
  }

  async close(): Promise<void> {
    this.#abort.abort();
    await this.done;
  }
}

test("kv example: a Deno, a Bun and a Node server replicate, watch, fail over", {
  timeout: 180_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), "kv-test-"));
  const servers: KvServer[] = [];
  let watch: Watch | null = null;
  let watch2: Watch | null = null;
  try {
    let conf = "";
    const spawnAt = (rt: Runtime, port: number): KvServer =>
      new KvServer(rt, port, [
        `--port=${port}`,
        `--conf=${conf}`,
        `--data_path=${join(dir, String(port))}`,
        "--election_timeout_ms=1000",
        "--snapshot_interval=1",
      ]);
    for (let attempt = 0;; attempt++) {
      const ports = await freePorts(3);
      conf = ports.map((p) => `127.0.0.1:${p}:0`).join(",");
      servers.length = 0;
      RUNTIMES.forEach((rt, i) => servers.push(spawnAt(rt, ports[i]!)));
      try {
        await Promise.all(servers.map((s) => s.ready()));
        break;
      } catch (e) {
        await Promise.all(servers.map((s) => s.stop()));
        if (attempt >= 3 || !servers.some((s) => s.child.exitCode === 98)) throw e;
      }
    }

    const leaderAmong = (among: KvServer[]) =>
      until("a leader answering GET /kv/", async () => {
        for (const s of among) {
          if (!s.alive()) continue;
          const r = await call(s.endpoint, "GET", "/kv/probe").catch(() => null);
          if (r?.status === 404) return s;
        }
        return null;
      });
    const leader = await leaderAmong(servers);
    const followers = servers.filter((s) => s !== leader);

    // A watch on a follower, before any change.
    watch = new Watch(followers[0]!.endpoint, "w/");
    await watch.waitFor(1, "hello");
    assert.equal(watch.events[0]!.event, "hello");
    // One on the other follower too, to see it end cleanly on its runtime at shutdown.
    watch2 = new Watch(followers[1]!.endpoint, "");
    await watch2.waitFor(1, "hello");

    // Put, get, delete through the leader.
    const p1 = await call(leader.endpoint, "PUT", "/kv/w%2Fa", "one");
    assert.equal(p1.status, 200, JSON.stringify(p1.body));
    const r1 = p1.body.revision as number;
    const p2 = await call(leader.endpoint, "PUT", "/kv/other", "not watched");
    assert.equal(p2.status, 200);
    const p3 = await call(leader.endpoint, "PUT", "/kv/w%2Fb", "two ✓");
    assert.equal(p3.status, 200);
    assert.ok((p3.body.revision as number) > (p2.body.revision as number));
    assert.ok((p2.body.revision as number) > r1);
    // Linearizable read from another client (a new connection).
    const g = await call(leader.endpoint, "GET", "/kv/w%2Fb");
    assert.deepEqual(g, {
      status: 200,
      body: { key: "w/b", value: "two ✓", revision: p3.body.revision },
    });
    const d = await call(leader.endpoint, "DELETE", "/kv/w%2Fa");
    assert.equal(d.status, 200);
    assert.equal((await call(leader.endpoint, "DELETE", "/kv/w%2Fa")).status, 404);
    assert.equal((await call(leader.endpoint, "GET", "/kv/w%2Fa")).status, 404);

    // Followers redirect to the leader (once they know it).
    for (const f of followers) {
      const r = await until(`${f.runtime} follower to know the leader`, async () => {
        const a = await call(f.endpoint, "GET", "/kv/w%2Fb");
        return a.body.redirect === null ? null : a;
      });
      assert.deepEqual(r, { status: 503, body: { redirect: leader.endpoint } });
      const w = await call(f.endpoint, "PUT", "/kv/x", "y");
      assert.equal(w.status, 503);
    }

    // Compare-and-set: by value, by revision, and concurrent ones on the same key.
    const c1 = await call(leader.endpoint, "POST", "/kv/c/cas", '{"expected":null,"value":"v1"}');
    assert.equal(c1.status, 200, JSON.stringify(c1.body));
    const c2 = await call(leader.endpoint, "POST", "/kv/c/cas", '{"expected":null,"value":"v2"}');
    assert.equal(c2.status, 409);
    assert.deepEqual(c2.body.current, { value: "v1", revision: c1.body.revision });
    const c3 = await call(
      leader.endpoint,
      "POST",
      "/kv/c/cas",
      JSON.stringify({ expectedRevision: c1.body.revision, value: "v3" }),
    );
    assert.equal(c3.status, 200);
    const racing = await Promise.all(
      ["a", "b", "c", "d"].map((v) =>
        call(leader.endpoint, "POST", "/kv/c/cas", JSON.stringify({ expected: "v3", value: v }))
      ),
    );
    assert.deepEqual(racing.map((r) => r.status).sort(), [200, 409, 409, 409]);
    const winner = ["a", "b", "c", "d"][racing.findIndex((r) => r.status === 200)];
    assert.equal((await call(leader.endpoint, "GET", "/kv/c")).body.value, winner);

    // Bad input.
    const bad = [
      await call(leader.endpoint, "POST", "/kv/c/cas", "not json"),
      await call(leader.endpoint, "POST", "/kv/c/cas", '{"value":"x"}'),
      await call(leader.endpoint, "POST", "/kv/c/cas", '{"expected":1,"value":"x"}'),
      await call(leader.endpoint, "POST", "/kv/c/cas", '{"expected":null,"value":7}'),
      await call(leader.endpoint, "GET", `/kv/${"k".repeat(2000)}`),
    ];
    assert.deepEqual(bad.map((b) => b.status), [400, 400, 400, 400, 400]);
    const big = await call(leader.endpoint, "PUT", "/kv/big", "x".repeat(70_000));
    assert.equal(big.status, 413);
    const utf = await fetch(`http://${leader.endpoint}/kv/bin`, {
      method: "PUT",
      body: new Uint8Array([0xff, 0xfe]),
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(utf.status, 400);
    await utf.body?.cancel();

    // The follower's watch saw the changes under w/, in order.
    await watch.waitFor(4, "put w/a, put w/b, delete w/a");
    assert.deepEqual(watch.events.slice(1, 4), [
      { event: "put", data: { type: "put", key: "w/a", value: "one", revision: r1 } },
      {
        event: "put",
        data: { type: "put", key: "w/b", value: "two ✓", revision: p3.body.revision },
      },
      { event: "delete", data: { type: "delete", key: "w/a", revision: d.body.revision } },
    ]);

    // SIGKILL the leader: the survivors elect one, keep the data and serve.
    leader.child.kill("SIGKILL");
    await leader.exited;
    const next = await leaderAmong(followers);
    assert.deepEqual((await call(next.endpoint, "GET", "/kv/w%2Fb")).body.value, "two ✓");
    assert.deepEqual((await call(next.endpoint, "GET", "/kv/c")).body.value, winner);
    const after = await call(next.endpoint, "PUT", "/kv/w%2Fc", "after");
    assert.equal(after.status, 200);
    assert.ok((after.body.revision as number) > (d.body.revision as number));
    if (followers[0]!.alive()) {
      await watch.waitFor(5, "put w/c after the failover");
      assert.deepEqual(watch.events[4], {
        event: "put",
        data: { type: "put", key: "w/c", value: "after", revision: after.body.revision },
      });
    }

    // Each survivor saves a snapshot (every second while there are new entries).
    for (const f of followers) {
      const snapshots = join(dir, String(f.port), "snapshot");
      await until(`a snapshot of ${f.runtime}`, () => {
        try {
          return Promise.resolve(
            readdirSync(snapshots).some((name) => name.startsWith("snapshot_")) || null,
          );
        } catch {
          return Promise.resolve(null); // not created yet
        }
      });
    }

    // SIGTERM: every survivor exits 0 (the open watch is ended, not waited for).
    // (Deno's child_process reports a child that exits 0 from its SIGTERM handler as killed by
    // SIGTERM: the "stopped" line, logged just before exit(0), tells a clean stop apart.)
    const codes = await Promise.all(followers.map((s) => s.stop()));
    for (const [i, s] of followers.entries()) {
      assert.ok([0, "SIGTERM"].includes(codes[i]!), `${s.runtime} exited ${codes[i]}`);
      assert.match(s.stderr, /\] stopped\n/, s.stderr);
    }
    for (const [i, w] of [watch, watch2].entries()) {
      await w.done;
      assert.equal(
        w.events.at(-1)?.event,
        "shutdown",
        `${followers[i]!.runtime}: ${JSON.stringify(w.events)} ${w.error}`,
      );
    }

    // Restarted, they load their snapshots and serve the same data.
    for (const [i, f] of followers.entries()) {
      const again = spawnAt(f.runtime, f.port);
      servers[servers.indexOf(f)] = again;
      followers[i] = again;
    }
    await Promise.all(followers.map((s) => s.ready()));
    for (const f of followers) assert.match(f.stderr, /loaded snapshot: \d+ keys, revision \d+/);
    const back = await leaderAmong(followers);
    assert.deepEqual((await call(back.endpoint, "GET", "/kv/w%2Fc")).body, {
      key: "w/c",
      value: "after",
      revision: after.body.revision,
    });
    assert.equal((await call(back.endpoint, "GET", "/kv/c")).body.value, winner);
    assert.equal((await call(back.endpoint, "GET", "/kv/w%2Fa")).status, 404);
  } finally {
    await watch?.close();
    await watch2?.close();
    await Promise.all(servers.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A stand-in for the store: what WatchHub uses of it. */
function fakeStore() {
  const listeners = new Set<(c: Change) => void>();
  return {
    revision: 0,
    subscribe(fn: (c: Change) => void) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    onClose: () => () => {},
    emit(c: Change) {
      for (const fn of listeners) fn(c);
    },
    get listeners() {
      return listeners.size;
    },
  };
}

async function readAll(body: ReadableStream<Uint8Array>): Promise<string> {
  let text = "";
  for await (const chunk of body.pipeThrough(new TextDecoderStream())) text += chunk;
  return text;
}

test("a watcher that stops reading is sent overflow and closed, not buffered without bound", async () => {
  const store = fakeStore();
  const hub = new WatchHub(store as unknown as KvStore);
  const res = hub.respond("k");
  assert.equal(store.listeners, 1);
  for (let r = 1; r <= MAX_QUEUED + 10; r++) {
    store.emit({ type: "put", key: "k", value: "v", revision: r });
  }
  assert.equal(store.listeners, 0, "unsubscribed at the overflow");
  const frames = (await readAll(res.body!)).split("\n\n").filter((f) => f !== "");
  assert.equal(frames.length, 1 + (MAX_QUEUED - 1) + 1); // hello, the queued puts, overflow
  assert.match(frames.at(-1)!, /^event: overflow\ndata: \{"revision":1024\}$/);
  assert.equal(hub.size, 0);
  await hub.closeAll();
});

test("a watcher that disconnects is unsubscribed; closeAll ends the others", async () => {
  const store = fakeStore();
  const hub = new WatchHub(store as unknown as KvStore);
  const gone = hub.respond("");
  const stays = hub.respond("a/");
  await gone.body!.cancel();
  assert.equal(store.listeners, 1);
  store.emit({ type: "put", key: "b", value: "x", revision: 1 }); // not under a/
  store.emit({ type: "delete", key: "a/1", revision: 2 });
  const text = readAll(stays.body!);
  await hub.closeAll();
  assert.equal(
    (await text).replace(/^event: hello\n.*\n\n/, ""),
    'id: 2\nevent: delete\ndata: {"type":"delete","key":"a/1","revision":2}\n\n' +
      "event: shutdown\ndata: {}\n\n",
  );
  assert.equal(store.listeners, 0);
  assert.equal(hub.size, 0);
  const late = await readAll(hub.respond("").body!);
  assert.equal(late, "", "a stream opened after closeAll ends at once");
});
