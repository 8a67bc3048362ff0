#!/usr/bin/env node
// `npm start`: a local 3-node counter cluster (examples/counter) as three processes, two on
// Deno and one on Bun, plus the counter client with live progress. Ctrl-C (or --duration N)
// stops the client, then the nodes (SIGTERM, SIGKILL after a grace period), and exits 0.
//
// Usage: npm start [-- --duration N] [--port_base 8100] [--data_dir ./data] [--threads 3]
//        [--election_timeout_ms 1000] [--clean]
import { spawn } from "node:child_process";
import { mkdirSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
/** A path as the user would type it from here: relative when below the current directory. */
const shortPath = (p) => {
  const rel = relative(process.cwd(), p);
  return rel === "" ? "." : rel.startsWith("..") ? p : rel;
};
const bin = (name) => join(root, "node_modules", ".bin", name);
const HOST = "127.0.0.1";
const RUNTIMES = ["deno", "deno", "bun"];
const GRACE_MS = 10_000;
const LEADER_DEADLINE_MS = 90_000;

const USAGE = `Usage: npm start [-- flags]   (or: node scripts/start.mjs [flags])

  --duration N              stop after N seconds (default 0: until Ctrl-C)
  --port_base P             nodes listen on P, P+1, P+2 (default 8100)
  --data_dir DIR            node data and logs under DIR (default ./data)
  --threads N               client request loops (default 3)
  --election_timeout_ms MS  the nodes' election timeout (default 1000)
  --clean                   delete the nodes' data first (the counter starts from 0)`;

function parseArgs(argv) {
  const o = {
    duration: 0,
    port_base: 8100,
    data_dir: join(root, "data"),
    threads: 3,
    election_timeout_ms: 1000,
    clean: false,
  };
  const numeric = new Set(["duration", "port_base", "threads", "election_timeout_ms"]);
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z_]+)(?:=(.*))?$/s.exec(argv[i]);
    if (argv[i] === "--help" || argv[i] === "-h") {
      console.log(USAGE);
      process.exit(0);
    }
    if (m === null || !(m[1] in o)) usageError(`Unknown argument "${argv[i]}"`);
    const name = m[1];
    if (name === "clean") {
      o.clean = m[2] === undefined || m[2] === "true";
      continue;
    }
    const raw = m[2] ?? argv[++i];
    if (raw === undefined) usageError(`--${name} needs a value`);
    if (numeric.has(name)) {
      const n = Number(raw);
      if (raw.trim() === "" || !Number.isFinite(n) || n < 0) {
        usageError(`--${name} expects a non-negative number, got "${raw}"`);
      }
      o[name] = n;
    } else o[name] = resolve(raw);
  }
  if (!Number.isInteger(o.port_base) || o.port_base < 1 || o.port_base + 2 > 65535) {
    usageError(`--port_base must be an integer from 1 to 65533, got ${o.port_base}`);
  }
  if (!Number.isInteger(o.threads) || o.threads < 1) usageError("--threads must be at least 1");
  return o;
}

function usageError(message) {
  console.error(`npm start: ${message}\n\n${USAGE}`);
  process.exit(2);
}

/** Resolves with null when HOST:port can be bound, else with the error code. */
function probePort(port) {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", (e) => resolve(e.code ?? String(e)));
    srv.listen({ host: HOST, port, exclusive: true }, () => srv.close(() => resolve(null)));
  });
}

const opts = parseArgs(process.argv.slice(2));
const ports = [0, 1, 2].map((i) => opts.port_base + i);
const conf = ports.map((p) => `${HOST}:${p}:0`).join(",");
const children = []; // { name, child, exited }
let stopping = null;

function spawnChild(name, cmd, args, stdio) {
  const child = spawn(cmd, args, {
    cwd: root,
    stdio,
    // Own process group: Ctrl-C reaches only this script, which stops the client first and
    // then the nodes, in order.
    detached: true,
    env: { ...process.env, NO_COLOR: "1" },
  });
  const entry = { name, child, code: null };
  entry.exited = new Promise((resolve) =>
    child.once("exit", (code, signal) => {
      entry.code = code ?? signal;
      resolve();
    })
  );
  child.once("error", (e) => console.error(`${name}: cannot start ${cmd}: ${e.message}`));
  children.push(entry);
  return entry;
}

function alive(entry) {
  return entry.child.exitCode === null && entry.child.signalCode === null;
}

async function terminate(entry, signal = "SIGTERM") {
  if (!alive(entry)) return;
  try {
    entry.child.kill(signal);
  } catch { /* already gone */ }
  let timer;
  const grace = new Promise((resolve) => timer = setTimeout(resolve, GRACE_MS, "timeout"));
  const r = await Promise.race([entry.exited, grace]);
  clearTimeout(timer);
  if (r === "timeout" && alive(entry)) {
    console.error(`${entry.name} (pid ${entry.child.pid}) did not stop in ${GRACE_MS} ms: SIGKILL`);
    entry.child.kill("SIGKILL");
    await entry.exited;
  }
}

function tail(file, lines = 15) {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

async function stopAll(code) {
  stopping ??= (async () => {
    const client = children.find((c) => c.name === "client");
    if (client !== undefined) await terminate(client, "SIGINT"); // prints its summary
    const value = await getCounter(ports).catch(() => null);
    if (value !== null) console.log(`Counter value: ${value.value} (read on ${value.port})`);
    console.log("Stopping the nodes...");
    await Promise.all(children.filter((c) => c !== client).map((c) => terminate(c)));
    for (const c of children) {
      if (c.name !== "client") console.log(`  ${c.name} (pid ${c.child.pid}) exited: ${c.code}`);
    }
    process.exit(code);
  })();
  return await stopping;
}

/** The leader's `GET /counter`, or throws when no node answers 200. */
async function getCounter(ps) {
  for (const port of ps) {
    try {
      const res = await fetch(`http://${HOST}:${port}/counter`, {
        signal: AbortSignal.timeout(2000),
      });
      const body = await res.json();
      if (res.status === 200 && body.success === true) return { port, value: body.value };
    } catch { /* not up yet, or not the leader */ }
  }
  throw new Error("no leader");
}

async function main() {
  for (const port of ports) {
    const err = await probePort(port);
    if (err !== null) {
      console.error(
        err === "EADDRINUSE"
          ? `Port ${port} is busy: something already listens on ${HOST}:${port}. ` +
            `Stop it, or pick other ports: npm start -- --port_base ${opts.port_base + 10}`
          : `Cannot listen on ${HOST}:${port}: ${err}`,
      );
      process.exit(1);
    }
  }
  if (opts.clean) rmSync(opts.data_dir, { recursive: true, force: true });
  mkdirSync(opts.data_dir, { recursive: true });
  console.log(
    `Starting a 3-node counter cluster (group Counter), data under ${shortPath(opts.data_dir)}/`,
  );

  const logs = [];
  for (const [i, port] of ports.entries()) {
    const runtime = RUNTIMES[i];
    const server = join("examples", "counter", "server.ts");
    const args = [
      ...(runtime === "deno" ? ["run", "-A", server] : [server]),
      `--port=${port}`,
      `--conf=${conf}`,
      `--data_path=${join(opts.data_dir, String(port))}`,
      `--election_timeout_ms=${opts.election_timeout_ms}`,
    ];
    const log = join(opts.data_dir, `${port}.log`);
    logs.push(log);
    const fd = openSync(log, "a");
    const entry = spawnChild(`node ${port}`, bin(runtime), args, ["ignore", fd, fd]);
    console.log(
      `  node ${port} on ${runtime.padEnd(4)} pid ${entry.child.pid}  ` +
        `http://${HOST}:${port}/raft_stat   log ${shortPath(log)}`,
    );
    entry.exited.then(() => {
      if (stopping === null) {
        console.error(`\nnode ${port} exited unexpectedly (${entry.code}); its log:\n${tail(log)}`);
        if (entry.code === 98) console.error(`Port ${port} is busy: try --port_base`);
        void stopAll(1);
      }
    });
  }

  console.log("Waiting for a leader...");
  const deadline = Date.now() + LEADER_DEADLINE_MS;
  let leader;
  for (;;) {
    leader = await getCounter(ports).catch(() => null);
    if (leader !== null) break;
    if (Date.now() > deadline) {
      console.error(`No leader after ${LEADER_DEADLINE_MS / 1000} s; the nodes' logs:`);
      for (const log of logs) console.error(`--- ${log}\n${tail(log)}`);
      return await stopAll(1);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  console.log(`Leader: ${HOST}:${leader.port}, counter value ${leader.value}`);
  console.log(
    `Client: ${opts.threads} threads of fetch_add, ` +
      (opts.duration > 0 ? `for ${opts.duration} s` : "Ctrl-C to stop"),
  );
  const client = spawnChild("client", bin("deno"), [
    "run",
    "-A",
    join("examples", "counter", "client.ts"),
    `--conf=${conf}`,
    `--threads=${opts.threads}`,
    `--duration=${opts.duration}`,
  ], ["ignore", "inherit", "inherit"]);
  console.log(`  client pid ${client.child.pid}`);
  await client.exited;
  const failed = client.code !== 0 && stopping === null;
  await stopAll(failed ? 1 : 0);
}

for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    if (stopping !== null) return;
    console.log(`\n${sig}: stopping`);
    void stopAll(0);
  });
}
// Last resort if this script dies from an error: leave no child behind.
process.on("exit", () => {
  for (const c of children) if (alive(c)) c.child.kill("SIGKILL");
});
main().catch((e) => {
  console.error(e);
  void stopAll(1);
});
