// The benchmark's load generator (a separate Node process started by bench/cluster_bench.mjs):
// C loops, each on its own keep-alive TCP connection, each sending one HTTP/1.1 POST and waiting
// for its answer before the next (no pipelining). A hand-written client on node:net: the request
// bytes are built once per loop and the answer parser reads only the status line and
// Content-Length (or a chunked body's end), so the client costs as little CPU as we can make it.
//
//   node bench/load_gen.mjs '<json>'
//     {"host":"127.0.0.1","port":8100,"path":"/put","kind":"webraft"|"etcd","size":256,
//      "concurrency":64,"seconds":5,"warmup":1}
//
// Prints one JSON line: {ok, errors, seconds, rps, p50, p99, p999, max, mean} (latencies in ms),
// counted only after the warm-up. Never asserts on time.
import { connect } from "node:net";
import { Histogram } from "./histogram.mjs";

const opts = JSON.parse(process.argv[2] ?? "{}");
const { host = "127.0.0.1", port, path = "/put", kind = "webraft", size = 256 } = opts;
const concurrency = opts.concurrency ?? 1;
const seconds = opts.seconds ?? 5;
const warmup = opts.warmup ?? 1;

/** The request one loop sends again and again (etcd: a fixed key per loop, value of `size` B). */
function requestBytes(loop) {
  const value = Buffer.alloc(size, 0x61 + (loop % 26));
  let body;
  if (kind === "etcd") {
    const key = Buffer.from(`bench/${loop}`).toString("base64");
    body = Buffer.from(`{"key":"${key}","value":"${value.toString("base64")}"}`);
  } else {
    body = value;
  }
  const head = `POST ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\n` +
    `Content-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, "latin1"), body]);
}

/**
 * The length of the first complete HTTP answer in `buf` and its status, or null if more bytes
 * are needed.
 */
function parseAnswer(buf) {
  const end = buf.indexOf("\r\n\r\n");
  if (end < 0) return null;
  const head = buf.toString("latin1", 0, end);
  const status = Number(head.slice(9, 12));
  const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  if (cl !== null) {
    const total = end + 4 + Number(cl[1]);
    return buf.length >= total ? { status, length: total } : null;
  }
  if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
    const last = buf.indexOf("\r\n0\r\n\r\n", end);
    if (last >= 0) return { status, length: last + 7 };
    if (buf.indexOf("0\r\n\r\n", end + 4) === end + 4) return { status, length: end + 9 };
    return null;
  }
  return { status, length: end + 4 };
}

const hist = new Histogram();
let ok = 0;
let errors = 0;
let firstError = null;
let measuring = false;
let stopping = false;

function loop(i) {
  return new Promise((resolve) => {
    const req = requestBytes(i);
    const socket = connect({ host, port, noDelay: true });
    let buf = Buffer.alloc(0);
    let sentAt = 0;
    const send = () => {
      if (stopping) {
        socket.end();
        return resolve();
      }
      sentAt = performance.now();
      socket.write(req);
    };
    socket.on("connect", send);
    socket.on("data", (d) => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      const a = parseAnswer(buf);
      if (a === null) return;
      buf = buf.subarray(a.length);
      const ms = performance.now() - sentAt;
      if (measuring) {
        if (a.status === 200) {
          ok++;
          hist.record(ms);
        } else {
          errors++;
          firstError ??= `HTTP ${a.status}`;
        }
      }
      send();
    });
    socket.on("error", (e) => {
      errors++;
      firstError ??= String(e.message);
      resolve();
    });
    socket.on("close", () => resolve());
  });
}

const loops = Array.from({ length: concurrency }, (_, i) => loop(i));
await new Promise((r) => setTimeout(r, warmup * 1000));
measuring = true;
const cpu0 = process.cpuUsage();
process.stdout.write("measuring\n");
const start = performance.now();
await new Promise((r) => setTimeout(r, seconds * 1000));
measuring = false;
const cpu1 = process.cpuUsage(cpu0);
const elapsed = (performance.now() - start) / 1000;
stopping = true;
await Promise.race([Promise.all(loops), new Promise((r) => setTimeout(r, 10_000))]);
console.log(JSON.stringify({
  ok,
  errors,
  firstError,
  seconds: elapsed,
  rps: ok / elapsed,
  p50: hist.percentile(50),
  p99: hist.percentile(99),
  p999: hist.percentile(99.9),
  max: hist.max,
  mean: hist.mean(),
  clientCpu: (cpu1.user + cpu1.system) / 1e6,
}));
process.exit(0);
