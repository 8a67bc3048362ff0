// Test helpers: a served app with a transport on a real port, raw sockets, waiting on events.
import { Hono } from "hono";
import {
  HttpTransport,
  type HttpTransportOptions,
  mountTransport,
  serve,
  type ServeHandle,
} from "../../../transports/http/mod.ts";
import { RaftException } from "../../../src/errors/status.ts";

export type CallHandler = (from: string, req: Uint8Array) => Promise<Uint8Array>;

/** A served app with a listening transport whose endpoint is the real bound port. */
export interface Peer {
  app: Hono;
  server: ServeHandle;
  endpoint: string;
  t: HttpTransport;
  frames: Array<{ from: string; frame: Uint8Array }>;
  calls: Array<{ from: string; req: Uint8Array }>;
  /** Resolves once at least `n` frames arrived. */
  waitFrames(n: number): Promise<void>;
  stop(): Promise<void>;
}

export interface PeerOptions {
  options?: HttpTransportOptions;
  onCall?: CallHandler;
  hostname?: string;
  port?: number;
  app?: Hono;
}

export async function startPeer(opts: PeerOptions = {}): Promise<Peer> {
  const app = opts.app ?? new Hono();
  const holder: { t?: HttpTransport } = {};
  mountTransport(app, () => holder.t);
  const hostname = opts.hostname ?? "127.0.0.1";
  const server = await serve(app, { hostname, port: opts.port ?? 0 });
  const endpoint = `${hostname.includes(":") ? `[${hostname}]` : hostname}:${server.port}`;
  const t = holder.t = new HttpTransport(endpoint, opts.options ?? {});
  const frames: Peer["frames"] = [];
  const calls: Peer["calls"] = [];
  let waiters: Array<() => void> = [];
  const onCall = opts.onCall ?? ((_from, req) => Promise.resolve(req));
  t.listen({
    onFrame(from, frame) {
      if (frame.length === 0) return; // connect()'s probe
      frames.push({ from, frame });
      const w = waiters;
      waiters = [];
      for (const wake of w) wake();
    },
    onCall(from, req) {
      calls.push({ from, req });
      return onCall(from, req);
    },
  });
  const transport = t;
  return {
    app,
    server,
    endpoint,
    t: transport,
    frames,
    calls,
    async waitFrames(n) {
      while (frames.length < n) await new Promise<void>((r) => waiters.push(r));
    },
    async stop() {
      await transport.close();
      await server.shutdown();
    },
  };
}

/** Polls `cond` on a short timer until true; fails after `ms` (generous: the machine is loaded). */
export async function until(cond: () => boolean, what: string, ms = 20000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Makes `from`'s socket to `to` open (a send starts the connect). */
export async function connect(from: HttpTransport, to: string): Promise<void> {
  from.send(to, new Uint8Array(0));
  await until(() => from.connectionState(to) === "open", `a socket to ${to}`);
}

export const isCode = (code: number) => (e: unknown): boolean => {
  if (e instanceof RaftException && e.code === code) return true;
  throw new Error(`Expected code ${code}, got ${e instanceof Error ? e.message : String(e)}`);
};

/** A raw client WebSocket recording messages and the close. */
export interface RawSocket {
  ws: WebSocket;
  messages: Uint8Array[];
  nextMessage(): Promise<Uint8Array>;
  closed: Promise<{ code: number; reason: string }>;
}

export async function rawSocket(endpoint: string): Promise<RawSocket> {
  const ws = new WebSocket(`ws://${endpoint}/raft/ws`);
  ws.binaryType = "arraybuffer";
  const messages: Uint8Array[] = [];
  let waiters: Array<() => void> = [];
  ws.onmessage = (e) => {
    messages.push(new Uint8Array(e.data as ArrayBuffer));
    const w = waiters;
    waiters = [];
    for (const wake of w) wake();
  };
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.onclose = (e) => resolve({ code: e.code, reason: e.reason });
  });
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error("raw socket failed"));
  });
  let read = 0;
  return {
    ws,
    messages,
    async nextMessage() {
      while (messages.length <= read) await new Promise<void>((r) => waiters.push(r));
      return messages[read++]!;
    },
    closed,
  };
}

/** A port that was free a moment ago (served and shut down). */
export async function freePort(): Promise<number> {
  const server = await serve(new Hono(), { hostname: "127.0.0.1", port: 0 });
  const port = server.port;
  await server.shutdown();
  return port;
}

export const bytes = (...xs: number[]): Uint8Array<ArrayBuffer> => new Uint8Array(xs);
