import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { MemoryNetwork } from "../../transports/memory/memory_network.ts";
import type { Transport } from "../../transports/transport.ts";
import { RaftError, RaftException } from "../../src/errors/status.ts";

const A = "127.0.0.1:1";
const B = "127.0.0.1:2";
const C = "127.0.0.1:3";

function recorder(
  t: Transport,
  reply: (req: Uint8Array) => Promise<Uint8Array> = (r) => Promise.resolve(r),
) {
  const frames: Array<[string, number]> = [];
  t.listen({
    onFrame: (from, f) => frames.push([from, f[0]!]),
    onCall: (_from, req) => reply(req),
  });
  return frames;
}

const code = (c: number) => (e: unknown) => e instanceof RaftException && e.code === c;

describe("MemoryNetwork", () => {
  it("delivers frames asynchronously and in order per link", async () => {
    const net = new MemoryNetwork();
    const a = net.transport(A);
    const got = recorder(net.transport(B));
    for (let i = 0; i < 50; i++) a.send(B, new Uint8Array([i]));
    assert.equal(got.length, 0, "never delivered inside send");
    await net.idle();
    assert.deepEqual(got.map(([, n]) => n), Array.from({ length: 50 }, (_, i) => i));
    assert.equal(got[0]![0], A);
    await net.close();
  });

  it("answers calls and propagates remote errors as RaftException", async () => {
    const net = new MemoryNetwork();
    const a = net.transport(A);
    recorder(
      net.transport(B),
      (req) =>
        req[0] === 0
          ? Promise.reject(RaftException.of(RaftError.ENOENT, "no such group"))
          : Promise.resolve(req),
    );
    assert.deepEqual(await a.call(B, new Uint8Array([3])), new Uint8Array([3]));
    await assert.rejects(a.call(B, new Uint8Array([0])), code(RaftError.ENOENT));
    await assert.rejects(
      a.call(C, new Uint8Array([1])),
      code(RaftError.EHOSTUNREACH),
      "no such endpoint",
    );
    await net.close();
  });

  it("partition cuts both ways between groups but not inside them", async () => {
    const net = new MemoryNetwork();
    const [a, b, c] = [A, B, C].map((e) => net.transport(e));
    const got = [a, b, c].map((t) => recorder(t!));
    net.partition([A], [B, C]);
    a!.send(B, new Uint8Array([1]));
    b!.send(A, new Uint8Array([2]));
    b!.send(C, new Uint8Array([3]));
    await net.idle();
    assert.deepEqual(got[0], []);
    assert.deepEqual(got[1], []);
    assert.deepEqual(got[2], [[B, 3]]);
    await assert.rejects(a!.call(B, new Uint8Array([1])), code(RaftError.EHOSTUNREACH));
    net.heal();
    a!.send(B, new Uint8Array([4]));
    await net.idle();
    assert.deepEqual(got[1], [[A, 4]]);
    await net.close();
  });

  it("one-way cut and isolate", async () => {
    const net = new MemoryNetwork();
    const [a, b, c] = [A, B, C].map((e) => net.transport(e));
    const got = [a, b, c].map((t) => recorder(t!));
    net.cut(A, B);
    a!.send(B, new Uint8Array([1]));
    b!.send(A, new Uint8Array([2]));
    await net.idle();
    assert.deepEqual(got[1], []);
    assert.deepEqual(got[0], [[B, 2]]);
    net.heal();
    net.isolate(C);
    a!.send(C, new Uint8Array([5]));
    c!.send(B, new Uint8Array([6]));
    await net.idle();
    assert.deepEqual(got[2], []);
    assert.deepEqual(got[1], []);
    await net.close();
  });

  it("faults apply to frames already in flight", async () => {
    const net = new MemoryNetwork();
    net.setDelay(20, 20);
    const a = net.transport(A);
    const got = recorder(net.transport(B));
    a.send(B, new Uint8Array([1]));
    const call = a.call(B, new Uint8Array([2]));
    net.partition([A], [B]); // after sending, before delivery
    await assert.rejects(call, code(RaftError.EHOSTUNREACH));
    await net.idle();
    assert.deepEqual(got, []);
    assert.ok(net.stats.dropped >= 2);
    await net.close();
  });

  it("drop rate loses roughly that share of frames, deterministically per seed", async () => {
    const run = async (seed: number) => {
      const net = new MemoryNetwork({ seed });
      net.setDropRate(0.3);
      const a = net.transport(A);
      const got = recorder(net.transport(B));
      for (let i = 0; i < 1000; i++) a.send(B, new Uint8Array([i & 0xff]));
      await net.idle();
      await net.close();
      return got.length;
    };
    const n = await run(11);
    assert.ok(n > 600 && n < 800, `delivered ${n} of 1000 at 30% loss`);
    assert.equal(await run(11), n, "same seed, same losses");
  });

  it("delay reorders and duplicates add copies", async () => {
    const net = new MemoryNetwork({ seed: 3 });
    net.setDelay(0, 10);
    net.setDuplicateRate(0.5);
    const a = net.transport(A);
    const got = recorder(net.transport(B));
    for (let i = 0; i < 100; i++) a.send(B, new Uint8Array([i]));
    await net.idle();
    assert.ok(got.length > 100, "duplicates delivered");
    const order = got.map(([, n]) => n);
    assert.notDeepEqual(order, [...order].sort((x, y) => x - y), "reordered");
    await net.close();
  });

  it("times out, aborts and fails pending calls on close", async () => {
    const net = new MemoryNetwork();
    const a = net.transport(A);
    recorder(net.transport(B), () => new Promise(() => {})); // never answers
    await assert.rejects(
      a.call(B, new Uint8Array([1]), { timeoutMs: 10 }),
      code(RaftError.ETIMEDOUT),
    );
    const ac = new AbortController();
    const aborted = a.call(B, new Uint8Array([1]), { signal: ac.signal });
    ac.abort();
    await assert.rejects(aborted, code(RaftError.ECANCELED));
    const pending = a.call(B, new Uint8Array([1]));
    await a.close();
    await assert.rejects(pending, code(RaftError.ESHUTDOWN));
    await assert.rejects(a.call(B, new Uint8Array([1])), code(RaftError.ESHUTDOWN));
    assert.notEqual(net.transport(A), a, "a closed endpoint restarts as a new transport");
    await net.close();
  });

  it("rejects bad fault settings and a second listener", async () => {
    const net = new MemoryNetwork();
    assert.throws(() => net.setDropRate(2), RangeError);
    assert.throws(() => net.setDelay(5, 1), RangeError);
    const b = net.transport(B);
    recorder(b);
    assert.throws(() => recorder(b), code(RaftError.EEXIST));
    await net.close();
  });
});
