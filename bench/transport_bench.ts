/**
 * HTTP transport benchmark: two endpoints in one process on 127.0.0.1, each a Hono app served
 * with `serve`. A sends one-way frames to B over `HttpTransport` (counted at B's `onFrame`), and
 * the same frames go, side by side, over a bare WebSocket (a hono `upgradeWebSocket` route on
 * B's app, one WebSocket message per frame). Both use the same flow control: at most W frames
 * in flight, B acknowledges every W/4 frames with a 12-byte message back (for HttpTransport a
 * frame on B's own socket to A), so the figures are throughput, not drops. Then calls:
 * `call()` with an echo handler against a bare WebSocket echo (request id + payload), with 1
 * and 16 concurrent callers. Each case alternates ours/bare in 4 slices so load changes on a
 * shared machine hit both alike. Prints tables with ours / bare and the process's CPU time per
 * frame (ours / bare, all threads, less moved by other load than the rates); never asserts on
 * time.
 *
 *   npx deno run -A bench/transport_bench.ts [seconds-per-case]
 *   npx bun bench/transport_bench.ts [seconds-per-case]
 */

import process from "node:process";
import { Hono } from "hono";
import type { UpgradeWebSocket, WSContext, WSMessageReceive } from "hono/ws";
import { HttpTransport, mountTransport, serve, type ServeHandle } from "../transports/http/mod.ts";

const seconds = Number(
  (globalThis as { Deno?: { args: string[] } }).Deno?.args[0] ??
    (globalThis as { process?: { argv: string[] } }).process?.argv[2] ?? 2,
);
const runtimeName = "Deno" in globalThis ? "Deno" : "Bun" in globalThis ? "Bun" : "Node";
const SLICES = 4;
const WARMUP_MS = 300;
const DRAIN_MS = 10_000;

// hono/deno touches Deno at import: load the adapter of the runtime we are on.
const { upgradeWebSocket } =
  ("Bun" in globalThis ? await import("hono/bun") : await import("hono/deno")) as {
    upgradeWebSocket: UpgradeWebSocket;
  };

// ------------------------------------------------------------------ endpoints

/** A served app whose transport's endpoint is the real bound port. */
interface Served {
  app: Hono;
  server: ServeHandle;
  endpoint: string;
  t: HttpTransport;
}

async function servedPeer(extraRoutes?: (app: Hono) => void): Promise<Served> {
  const app = new Hono();
  const holder: { t?: HttpTransport } = {};
  mountTransport(app, () => holder.t);
  extraRoutes?.(app);
  const server = await serve(app, { hostname: "127.0.0.1", port: 0 });
  const endpoint = `127.0.0.1:${server.port}`;
  const t = holder.t = new HttpTransport(endpoint);
  return { app, server, endpoint, t };
}

/** Opens `t`'s socket to `to` (calls go by POST until it is open). */
async function connect(t: HttpTransport, to: string): Promise<void> {
  while (t.connectionState(to) !== "open") {
    try {
      await t.call(to, new Uint8Array(1), { timeoutMs: 5000 });
    } catch {
      await new Promise((r) => setTimeout(r, 20)); // peer in backoff: retry shortly
    }
  }
}

// ------------------------------------------------------------------ links under test

/** A one-way frame path A → B with an ack path B → A; the harness sets the callbacks. */
interface FrameLink {
  send(frame: Uint8Array): void;
  /** Frames the sender dropped so far (cumulative). */
  dropped(): number;
  /** B → A: cumulative count of frames received in run `run`. */
  ack(run: number, count: number): void;
  onReceive: (frame: Uint8Array) => void;
  onAck: (ack: { run: number; count: number }) => void;
}

/** A request/response path A → B. */
interface CallLink {
  call(request: Uint8Array): Promise<Uint8Array>;
}

/** An ack: `[run u32][count f64]`; the run number keeps a late ack of a previous run out. */
function ackBytes(run: number, count: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(12);
  const view = new DataView(b.buffer);
  view.setUint32(0, run);
  view.setFloat64(4, count);
  return b;
}

function readAck(data: Uint8Array): { run: number; count: number } {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return { run: view.getUint32(0), count: view.getFloat64(4) };
}

function asBytes(data: unknown): Uint8Array<ArrayBuffer> {
  if (data instanceof Uint8Array) return data as Uint8Array<ArrayBuffer>;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  throw new Error(`Unexpected WebSocket message type ${typeof data}`);
}

/** A and B with HttpTransport, plus B's bare WebSocket routes. */
interface Setup {
  a: Served;
  b: Served;
  ours: FrameLink;
  oursCall: CallLink;
  bare: FrameLink;
  bareCall: CallLink;
  stop(): Promise<void>;
}

async function setup(): Promise<Setup> {
  // Bare receiver callbacks, bound to the link objects once they exist.
  const bareServer: { onReceive: (f: Uint8Array) => void; ws: WSContext | null } = {
    onReceive: () => {},
    ws: null,
  };
  const rawOpen = (ws: WSContext): void => {
    // Deno's socket would hand Blobs; HttpTransport asks for ArrayBuffers too. (hono/bun wants
    // Bun's default, Buffers, and passes their exact ArrayBuffer on.)
    if (runtimeName === "Deno") (ws.raw as { binaryType: string }).binaryType = "arraybuffer";
  };
  const b = await servedPeer((app) => {
    app.get(
      "/bare",
      upgradeWebSocket(() => ({
        onOpen(_e: Event, ws: WSContext) {
          rawOpen(ws);
          bareServer.ws = ws;
        },
        onMessage(e: MessageEvent<WSMessageReceive>) {
          bareServer.onReceive(asBytes(e.data));
        },
      })),
    );
    app.get(
      "/bare-call",
      upgradeWebSocket(() => ({
        onOpen(_e: Event, ws: WSContext) {
          rawOpen(ws);
        },
        onMessage(e: MessageEvent<WSMessageReceive>, ws: WSContext) {
          ws.send(asBytes(e.data)); // echo: [id u32][payload]
        },
      })),
    );
  });
  const a = await servedPeer();

  // HttpTransport: frames A → B, acks B → A as frames, calls echo.
  const ours: FrameLink = {
    send: (frame) => a.t.send(b.endpoint, frame),
    dropped: () => a.t.stats.framesDropped,
    ack: (run, count) => b.t.send(a.endpoint, ackBytes(run, count)),
    onReceive: () => {},
    onAck: () => {},
  };
  b.t.listen({
    onFrame: (_from, frame) => ours.onReceive(frame),
    onCall: (_from, req) => Promise.resolve(req),
  });
  a.t.listen({
    onFrame: (_from, frame) => ours.onAck(readAck(frame)),
    onCall: (_from, req) => Promise.resolve(req),
  });
  await connect(a.t, b.endpoint);
  await connect(b.t, a.endpoint);
  const oursCall: CallLink = {
    call: (req) => a.t.call(b.endpoint, req, { timeoutMs: 30_000 }),
  };

  // Bare WebSocket: frames client → server, acks server → client on the same socket.
  const frameWs = await openClient(`ws://${b.endpoint}/bare`);
  const bare: FrameLink = {
    send: (frame) => frameWs.send(frame),
    dropped: () => 0,
    ack: (run, count) => bareServer.ws!.send(ackBytes(run, count)),
    onReceive: () => {},
    onAck: () => {},
  };
  bareServer.onReceive = (f) => bare.onReceive(f);
  frameWs.onmessage = (e) => bare.onAck(readAck(asBytes(e.data)));

  const callWs = await openClient(`ws://${b.endpoint}/bare-call`);
  const pending = new Map<number, (b: Uint8Array) => void>();
  let nextId = 0;
  callWs.onmessage = (e) => {
    const msg = asBytes(e.data);
    const id = new DataView(msg.buffer, msg.byteOffset, 4).getUint32(0);
    const resolve = pending.get(id);
    pending.delete(id);
    resolve?.(msg.subarray(4));
  };
  const bareCall: CallLink = {
    call(req) {
      const id = nextId = (nextId + 1) >>> 0;
      const msg = new Uint8Array(4 + req.length);
      new DataView(msg.buffer).setUint32(0, id);
      msg.set(req, 4);
      return new Promise((resolve) => {
        pending.set(id, resolve);
        callWs.send(msg);
      });
    },
  };

  return {
    a,
    b,
    ours,
    oursCall,
    bare,
    bareCall,
    async stop() {
      frameWs.close();
      callWs.close();
      await a.t.close();
      await b.t.close();
      await a.server.shutdown();
      await b.server.shutdown();
    },
  };
}

async function openClient(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error(`Cannot open ${url}`));
  });
  return ws;
}

// ------------------------------------------------------------------ harness

interface FrameResult {
  frames: number;
  bytes: number;
  ms: number;
  drops: number;
  stalled: boolean;
  /** Process CPU time (all threads) while sending, in µs. */
  cpuUs: number;
}

let runs = 0;

/** Sends frames of `size` with at most `window` in flight for `ms`, then drains. */
function runFrames(
  link: FrameLink,
  size: number,
  window: number,
  ms: number,
): Promise<FrameResult> {
  const run = ++runs;
  const ackEvery = Math.max(1, Math.floor(window / 4));
  const frame = new Uint8Array(size).fill(0x5a);
  const drops0 = link.dropped();
  let sent = 0;
  let acked = 0;
  let received = 0;
  let bytes = 0;
  let running = true;
  let countedFrames = 0;
  let countedBytes = 0;
  const dropped = (): number => link.dropped() - drops0;
  const pump = (): void => {
    // At most one window per turn, so a sender that drops everything cannot spin.
    for (let i = 0; i < window && running && sent - dropped() - acked < window; i++) {
      link.send(frame);
      sent++;
    }
  };
  return new Promise<FrameResult>((resolve) => {
    let drainTimer: ReturnType<typeof setTimeout> | undefined;
    const finish = (stalled: boolean): void => {
      if (drainTimer !== undefined) clearTimeout(drainTimer);
      link.onReceive = () => {};
      link.onAck = () => {};
      resolve({
        frames: countedFrames,
        bytes: countedBytes,
        ms: elapsed,
        drops: dropped(),
        stalled,
        cpuUs,
      });
    };
    let elapsed = 0;
    let cpuUs = 0;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    link.onReceive = (f) => {
      received++;
      bytes += f.length;
      if (received % ackEvery === 0) link.ack(run, received);
      if (!running && received >= sent - dropped()) finish(false);
    };
    link.onAck = (ack) => {
      if (ack.run !== run) return;
      acked = Math.max(acked, ack.count);
      pump();
    };
    setTimeout(() => {
      running = false;
      elapsed = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      cpuUs = cpu.user + cpu.system;
      countedFrames = received;
      countedBytes = bytes;
      if (received >= sent - dropped()) return finish(false);
      drainTimer = setTimeout(() => finish(true), DRAIN_MS);
    }, ms);
    pump();
  });
}

interface CallResult {
  calls: number;
  ms: number;
  latencies: number[];
}

async function runCalls(
  link: CallLink,
  concurrency: number,
  size: number,
  ms: number,
): Promise<CallResult> {
  const req = new Uint8Array(size).fill(0x33);
  const latencies: number[] = [];
  const t0 = performance.now();
  const end = t0 + ms;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      const t = performance.now();
      await link.call(req);
      latencies.push(performance.now() - t);
    }
  }));
  return { calls: latencies.length, ms: performance.now() - t0, latencies };
}

// ------------------------------------------------------------------ cases and table

const fmt = (n: number, digits = 0): string =>
  n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
const kib = (n: number): string => n >= 1024 ? `${n / 1024} KiB` : `${n} B`;
const pct = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;

/** Frames in flight: 4 MiB worth, between 16 and 4096. */
function windowFor(size: number): number {
  return Math.max(16, Math.min(4096, Math.floor(4 * 1024 * 1024 / size)));
}

async function frameCase(s: Setup, size: number): Promise<string> {
  const window = windowFor(size);
  const sliceMs = seconds * 1000 / SLICES;
  await runFrames(s.ours, size, window, WARMUP_MS);
  await runFrames(s.bare, size, window, WARMUP_MS);
  const total = { ours: zeroFrames(), bare: zeroFrames() };
  const msgs0 = s.a.t.stats.messagesSent;
  const sent0 = s.a.t.stats.framesSent;
  for (let i = 0; i < SLICES; i++) {
    // ABBA order so neither side always runs first in a slice pair.
    const order: Array<"ours" | "bare"> = i % 2 === 0 ? ["ours", "bare"] : ["bare", "ours"];
    for (const which of order) add(total[which], await runFrames(s[which], size, window, sliceMs));
  }
  const framesPerMsg = (s.a.t.stats.framesSent - sent0) / (s.a.t.stats.messagesSent - msgs0);
  const rate = (r: FrameResult) => r.frames / (r.ms / 1000);
  const cpuPerFrame = (r: FrameResult) => r.cpuUs / Math.max(1, r.frames);
  const mbs = (r: FrameResult) => r.bytes / (r.ms / 1000) / 1e6;
  const stalled = total.ours.stalled || total.bare.stalled ? " (stalled)" : "";
  return `| ${`${kib(size)} frames, window ${window}`.padEnd(28)} | ${
    fmt(rate(total.ours)).padStart(9)
  } | ${fmt(mbs(total.ours), 1).padStart(6)} | ${fmt(rate(total.bare)).padStart(9)} | ${
    fmt(mbs(total.bare), 1).padStart(6)
  } | ${`${fmt(100 * rate(total.ours) / rate(total.bare))} %`.padStart(9)} | ${
    fmt(framesPerMsg, 1).padStart(10)
  } | ${`${fmt(cpuPerFrame(total.ours), 2)} / ${fmt(cpuPerFrame(total.bare), 2)}`.padStart(13)} | ${
    String(total.ours.drops).padStart(5)
  }${stalled} |`;
}

function zeroFrames(): FrameResult {
  return { frames: 0, bytes: 0, ms: 0, drops: 0, stalled: false, cpuUs: 0 };
}

function add(into: FrameResult, r: FrameResult): void {
  into.frames += r.frames;
  into.bytes += r.bytes;
  into.ms += r.ms;
  into.drops += r.drops;
  into.cpuUs += r.cpuUs;
  into.stalled ||= r.stalled;
}

async function callCase(s: Setup, concurrency: number, size: number): Promise<string> {
  const sliceMs = seconds * 1000 / SLICES;
  await runCalls(s.oursCall, concurrency, size, WARMUP_MS);
  await runCalls(s.bareCall, concurrency, size, WARMUP_MS);
  const total = {
    ours: { calls: 0, ms: 0, latencies: [] as number[] },
    bare: { calls: 0, ms: 0, latencies: [] as number[] },
  };
  for (let i = 0; i < SLICES; i++) {
    const order: Array<"ours" | "bare"> = i % 2 === 0 ? ["ours", "bare"] : ["bare", "ours"];
    for (const which of order) {
      const r = await runCalls(
        which === "ours" ? s.oursCall : s.bareCall,
        concurrency,
        size,
        sliceMs,
      );
      total[which].calls += r.calls;
      total[which].ms += r.ms;
      for (const l of r.latencies) total[which].latencies.push(l);
    }
  }
  const cell = (r: CallResult): string => {
    const sorted = r.latencies.sort((x, y) => x - y);
    return `${fmt(r.calls / (r.ms / 1000)).padStart(8)} | ${
      fmt(pct(sorted, 0.5), 3).padStart(6)
    } | ${fmt(pct(sorted, 0.99), 3).padStart(6)}`;
  };
  const ratio = (total.ours.calls / total.ours.ms) / (total.bare.calls / total.bare.ms);
  return `| ${`${kib(size)} calls, ${concurrency} concurrent`.padEnd(28)} | ${cell(total.ours)} | ${
    cell(total.bare)
  } | ${`${fmt(100 * ratio)} %`.padStart(9)} |`;
}

console.log(
  `webraft HTTP transport benchmark (${runtimeName}), 127.0.0.1, both endpoints in one process, ${seconds} s per case (${SLICES} alternating slices each side)\n`,
);
const s = await setup();
console.log(
  `| ${
    "Case".padEnd(28)
  } |  frames/s |   MB/s | bare f/s  |   MB/s | ours/bare | frames/msg | CPU µs/frame  | drops |`,
);
console.log(
  `| ${
    "-".repeat(28)
  } | --------: | -----: | --------: | -----: | --------: | ---------: | ------------: | ----: |`,
);
for (const size of [64, 1024, 64 * 1024]) console.log(await frameCase(s, size));
console.log(
  `\n| ${
    "Case".padEnd(28)
  } |  calls/s | p50 ms | p99 ms | bare c/s | p50 ms | p99 ms | ours/bare |`,
);
console.log(
  `| ${"-".repeat(28)} | -------: | -----: | -----: | -------: | -----: | -----: | --------: |`,
);
for (const [c, size] of [[1, 64], [16, 64], [1, 4096]] as const) {
  console.log(await callCase(s, c, size));
}
const st = s.a.t.stats;
console.log(
  `\nA's stats: ${st.framesSent} frames in ${st.messagesSent} messages, ${st.framesDropped} dropped, ${st.callsSent} calls on the socket, ${st.callsHttp} by POST, ${st.reconnects} reconnects`,
);
await s.stop();
