// Cluster benchmark, webraft side by side with etcd (issue 13): a 3-member group as three real
// processes on loopback — webraft on Deno, webraft on Bun (bench/bench_server.ts: a state machine
// that does no work, raft_sync on), and etcd 3.4 (fsync on, its JSON gateway) — driven by one
// separate load process (bench/load_gen.mjs) in the same run, plus leader failover and the disk's
// raw write+fdatasync rate. Prints tables and writes bench/out/<timestamp>.json. Never asserts on
// time; not part of the tests or CI.
//
//   npm run bench [-- --quick]            (or: deno task bench [--quick]; node bench/cluster_bench.mjs)
//
// Options: --quick (256 B × {1, 64, 256}, 3 s per cell, 5 failover trials; about 2 minutes),
// --systems=deno,bun,etcd, --sizes=16,256,4096, --conc=1,16,64,256, --seconds=N (per cell),
// --trials=N (failover), --election_timeout_ms=N (both systems; default 1000), --no-failover,
// --failover-only (no load cells: `--failover-only --trials=5` takes about a minute).
import { spawn } from "node:child_process";
import {
  closeSync,
  fdatasyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { createServer } from "node:net";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureEtcd } from "./ensure_etcd.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const CLK_TCK = 100; // Linux USER_HZ

// ---------------------------------------------------------------- options

const argv = process.argv.slice(2);
const flag = (name) => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const quick = argv.includes("--quick");
const list = (s) => s.split(",").map((x) => x.trim()).filter((x) => x !== "");
const SYSTEMS = list(flag("systems") ?? "deno,bun,etcd");
const FAILOVER_ONLY = argv.includes("--failover-only");
const SIZES = FAILOVER_ONLY
  ? []
  : list(flag("sizes") ?? (quick ? "256" : "16,256,4096")).map(Number);
const CONC = list(flag("conc") ?? (quick ? "1,64,256" : "1,16,64,256")).map(Number);
const SECONDS = Number(flag("seconds") ?? (quick ? 3 : 5));
const WARMUP = quick ? 1 : 2;
const TRIALS = Number(flag("trials") ?? (quick ? 5 : 20));
const ELECTION_MS = Number(flag("election_timeout_ms") ?? 1000);
const FAILOVER = !argv.includes("--no-failover");

const base = mkdtempSync(join(tmpdir(), "webraft-cluster-bench-"));
const started = new Set(); // every child we spawned, killed by PID on exit
process.on("exit", () => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  rmSync(base, { recursive: true, force: true });
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));

const log = (s) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${s}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- helpers

async function freePorts(n) {
  const servers = await Promise.all(
    Array.from({ length: n }, () =>
      new Promise((resolve, reject) => {
        const s = createServer();
        s.once("error", reject);
        s.listen(0, "127.0.0.1", () => resolve(s));
      })),
  );
  const ports = servers.map((s) => s.address().port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** utime+stime of a live process, seconds (null once it is gone). */
function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // fields 14 and 15 of stat(5)
  } catch {
    return null;
  }
}

function spawnLogged(cmd, args, opts = {}) {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...opts });
  started.add(child);
  child.out = "";
  child.err = "";
  child.stdout.on("data", (d) => child.out = (child.out + d).slice(-200_000));
  child.stderr.on("data", (d) => child.err = (child.err + d).slice(-200_000));
  child.exited = new Promise((r) => child.once("exit", (code, sig) => r(code ?? sig)));
  child.exited.then(() => started.delete(child));
  return child;
}

const alive = (c) => c.exitCode === null && c.signalCode === null;

async function until(what, probe, ms = 60_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

async function post(port, path, body, timeoutMs = 2000) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: "POST",
    body,
    signal: AbortSignal.timeout(timeoutMs),
  });
  return { status: res.status, text: await res.text() };
}

// ---------------------------------------------------------------- systems

/** A webraft group of three bench_server.ts processes on one runtime. */
class WebraftGroup {
  constructor(runtime) {
    this.runtime = runtime;
    this.name = `webraft-${runtime}`;
    this.kind = "webraft";
    this.path = "/put";
  }

  async start() {
    this.ports = await freePorts(3);
    this.dir = mkdtempSync(join(base, `${this.runtime}-`));
    this.conf = this.ports.map((p) => `127.0.0.1:${p}:0`).join(",");
    this.members = this.ports.map((_, i) => this.spawn(i));
    await until(
      `${this.name} to serve`,
      () => this.members.every((m) => m.err.includes("serving http://")),
    );
    await this.leader();
  }

  spawn(i) {
    const bin = join(ROOT, "node_modules", ".bin", this.runtime);
    const server = join(ROOT, "bench", "bench_server.ts");
    const args = [
      `--port=${this.ports[i]}`,
      `--conf=${this.conf}`,
      `--data_path=${join(this.dir, String(i))}`,
      `--election_timeout_ms=${ELECTION_MS}`,
    ];
    const child = spawnLogged(
      bin,
      this.runtime === "deno" ? ["run", "-A", server, ...args] : [server, ...args],
      {
        cwd: ROOT,
        env: { ...process.env, NO_COLOR: "1" },
      },
    );
    child.port = this.ports[i];
    return child;
  }

  async restart(i) {
    this.members[i] = this.spawn(i);
    await until(
      `${this.name} member ${i} to serve again`,
      () => this.members[i].err.includes("serving http://"),
    );
  }

  async stat(m) {
    const res = await fetch(`http://127.0.0.1:${m.port}/raft_stat/Bench?format=json`, {
      headers: { accept: "application/json" },
      signal: AbortSignal.timeout(5000),
    });
    const body = await res.json();
    return body.nodes?.[0] ?? body;
  }

  /** Waits until member `i` has applied what the leader had committed when this was called. */
  async caughtUp(i) {
    const leader = await this.leader();
    const target = (await this.stat(leader)).last_committed_index;
    await until(`${this.name} member ${i} to catch up to ${target}`, async () => {
      const st = await this.stat(this.members[i]).catch(() => null);
      return st !== null && st.known_applied_index >= target;
    }, 300_000);
  }

  /** The member that accepts a write (200 to POST /put). */
  async leader() {
    return await until(`${this.name} leader`, async () => {
      for (const m of this.members) {
        if (!alive(m)) continue;
        const r = await post(m.port, "/put", "x", 5000).catch(() => null);
        if (r?.status === 200) return m;
      }
      return null;
    });
  }

  async stop() {
    for (const m of this.members) if (alive(m)) m.kill("SIGTERM");
    const grace = sleep(10_000);
    await Promise.race([Promise.all(this.members.map((m) => m.exited)), grace]);
    for (const m of this.members) if (alive(m)) m.kill("SIGKILL");
    await Promise.all(this.members.map((m) => m.exited));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Three etcd members on loopback (fsync on: etcd's default), written through /v3/kv/put. */
class EtcdGroup {
  constructor(etcd) {
    this.etcd = etcd;
    this.name = "etcd";
    this.kind = "etcd";
    this.path = "/v3/kv/put";
  }

  async start() {
    const ports = await freePorts(6);
    this.ports = ports.slice(0, 3);
    this.peerPorts = ports.slice(3);
    this.dir = mkdtempSync(join(base, "etcd-"));
    this.cluster = this.peerPorts.map((p, i) => `m${i}=http://127.0.0.1:${p}`).join(",");
    this.members = this.ports.map((_, i) => this.spawn(i, "new"));
    await until("etcd members to answer", async () => {
      for (const m of this.members) if ((await this.status(m)) === null) return false;
      return true;
    });
    await this.leader();
  }

  spawn(i, state) {
    const c = `http://127.0.0.1:${this.ports[i]}`;
    const p = `http://127.0.0.1:${this.peerPorts[i]}`;
    const child = spawnLogged(this.etcd.bin, [
      `--name=m${i}`,
      `--data-dir=${join(this.dir, `m${i}`)}`,
      `--listen-client-urls=${c}`,
      `--advertise-client-urls=${c}`,
      `--listen-peer-urls=${p}`,
      `--initial-advertise-peer-urls=${p}`,
      `--initial-cluster=${this.cluster}`,
      `--initial-cluster-state=${state}`,
      "--initial-cluster-token=webraft-bench",
      `--election-timeout=${ELECTION_MS}`,
      `--heartbeat-interval=${Math.max(10, Math.round(ELECTION_MS / 10))}`,
      "--quota-backend-bytes=8589934592",
      "--logger=zap",
      // with --failover-only, its raft's "became candidate/leader" lines split the trials
      `--log-level=${FAILOVER_ONLY ? "info" : "error"}`,
    ]);
    child.port = this.ports[i];
    return child;
  }

  async restart(i) {
    this.members[i] = this.spawn(i, "existing");
    await until(
      `etcd member ${i} to answer again`,
      async () => (await this.status(this.members[i])) !== null,
    );
  }

  async status(m) {
    if (!alive(m)) return null;
    const r = await post(m.port, "/v3/maintenance/status", "{}", 2000).catch(() => null);
    if (r?.status !== 200) return null;
    const s = JSON.parse(r.text);
    return { id: s.header?.member_id, leader: s.leader };
  }

  /** Waits until member `i` has applied what the leader had when this was called. */
  async caughtUp(i) {
    const leader = await this.leader();
    const st = await post(leader.port, "/v3/maintenance/status", "{}", 5000);
    const target = Number(JSON.parse(st.text).raftIndex);
    await until(`etcd member ${i} to catch up to ${target}`, async () => {
      const r = await post(this.members[i].port, "/v3/maintenance/status", "{}", 2000)
        .catch(() => null);
      return r?.status === 200 && Number(JSON.parse(r.text).raftAppliedIndex) >= target;
    }, 300_000);
  }

  async leader() {
    return await until("etcd leader", async () => {
      for (const m of this.members) {
        const s = await this.status(m);
        if (s !== null && s.leader !== undefined && s.leader === s.id) {
          const w = await post(m.port, this.path, putBody(0, 8), 5000).catch(() => null);
          if (w?.status === 200) return m;
        }
      }
      return null;
    });
  }

  async stop() {
    for (const m of this.members) if (alive(m)) m.kill("SIGTERM");
    await Promise.race([Promise.all(this.members.map((m) => m.exited)), sleep(10_000)]);
    for (const m of this.members) if (alive(m)) m.kill("SIGKILL");
    await Promise.all(this.members.map((m) => m.exited));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function putBody(i, size) {
  const v = Buffer.alloc(size, 0x61).toString("base64");
  return `{"key":"${Buffer.from(`failover/${i}`).toString("base64")}","value":"${v}"}`;
}

// ---------------------------------------------------------------- load cells

/** One load cell: the load process against `leader`, CPU of every process over the window. */
async function runCell(group, leader, size, concurrency) {
  const gen = spawnLogged(process.execPath, [
    join(ROOT, "bench", "load_gen.mjs"),
    JSON.stringify({
      port: leader.port,
      path: group.path,
      kind: group.kind,
      size,
      concurrency,
      seconds: SECONDS,
      warmup: WARMUP,
    }),
  ]);
  await until(
    "load generator to start",
    () => gen.out.includes("measuring\n") || !alive(gen),
    60_000,
  );
  const before = group.members.map((m) => cpuSeconds(m.pid));
  await gen.exited;
  const after = group.members.map((m) => cpuSeconds(m.pid));
  const line = gen.out.split("\n").find((l) => l.startsWith("{"));
  if (line === undefined) throw new Error(`load generator failed: ${gen.err}`);
  const r = JSON.parse(line);
  r.cpu = group.members.map((m, i) => ({
    role: m === leader ? "leader" : "follower",
    seconds: after[i] === null || before[i] === null ? null : after[i] - before[i],
  }));
  r.cpu.sort((a, b) => (a.role === "leader" ? 0 : 1) - (b.role === "leader" ? 0 : 1));
  const serverCpu = r.cpu.reduce((sum, x) => sum + (x.seconds ?? 0), 0);
  r.serverCpuUsPerReq = r.ok === 0 ? null : (serverCpu / r.ok) * 1e6;
  r.cpu.push({ role: "client", seconds: r.clientCpu });
  r.load = loadavg()[0];
  return r;
}

// ---------------------------------------------------------------- failover

/**
 * SIGKILL the leader while one client writes in a loop; the time from the kill to the first
 * write that succeeds afterwards (sent after the kill) through whichever member answers.
 */
async function failoverTrial(group, trial) {
  const leader = await group.leader();
  const idx = group.members.indexOf(leader);
  let stop = false;
  let writes = 0;
  const body = group.kind === "etcd" ? putBody(trial, 256) : Buffer.alloc(256, 0x62);
  // light load: one client writing back to back to the leader
  const background = (async () => {
    while (!stop) {
      await post(leader.port, group.path, body, 1000).then(() => writes++, () => sleep(5));
    }
  })();
  await sleep(300);
  const killedAt = performance.now();
  const killedEpoch = Date.now();
  leader.kill("SIGKILL");
  // Probes: every 10 ms a new write to each surviving member, each waiting up to 5 s (no cap
  // that held writes could fill), so the figure does not depend on a client's timeout or retry
  // policy (an etcd follower holds a write while there is no leader and forwards it once there
  // is one; a webraft follower refuses it at once with 503, so the new leader is found by the
  // next probe, at most 10 ms after it can commit).
  const others = group.members.filter((m) => m !== leader);
  const probes = { sent: 0, refused: 0, failed: 0 };
  const { took, winner, sentAt } = await new Promise((resolve, reject) => {
    let done = false;
    let inflight = 0;
    const giveUp = setTimeout(() => {
      done = true;
      reject(new Error(`${group.name}: no write succeeded within 60 s of killing the leader`));
    }, 60_000);
    const tick = () => {
      if (done) return;
      for (const m of others) {
        if (inflight >= 2000) break;
        inflight++;
        probes.sent++;
        const sent = performance.now() - killedAt;
        post(m.port, group.path, body, 5000).then((r) => {
          if (r.status !== 200) probes.refused++;
          else if (!done) {
            done = true;
            clearTimeout(giveUp);
            resolve({ took: performance.now() - killedAt, winner: m, sentAt: sent });
          }
        }, () => probes.failed++).finally(() => inflight--);
      }
      setTimeout(tick, 10);
    };
    tick();
  });
  stop = true;
  await background;
  // webraft members log when their election timer fired and when one started leading
  const events = (name) =>
    others.flatMap((m) => [...m.err.matchAll(new RegExp(`event ${name} (\\d+)`, "g"))])
      .map((x) => Number(x[1]) - killedEpoch).filter((ms) => ms >= 0).sort((a, b) => a - b);
  // etcd (info log): its raft's state changes, with zap's ISO 8601 timestamps
  const etcdEvents = (what) =>
    others.flatMap((m) => [
      ...m.err.matchAll(
        new RegExp(`"ts":"([^"]+)"[^\n]*became ${what} at term`, "g"),
      ),
    ]).map((x) => Date.parse(x[1]) - killedEpoch).filter((ms) => ms >= 0).sort((a, b) => a - b);
  const detectedMs = group.kind === "etcd"
    ? (etcdEvents("(?:pre-)?candidate")[0] ?? null)
    : (events("stop_following")[0] ?? null);
  const electedMs = group.kind === "etcd"
    ? (etcdEvents("leader")[0] ?? null)
    : (events("leader_start")[0] ?? null);
  await leader.exited;
  await group.restart(idx);
  await group.caughtUp(idx); // the next kill must not leave a member that is still catching up
  return {
    ms: took,
    detectedMs,
    electedMs,
    // the successful probe: when it was sent (after the kill) and to which member
    probeSentMs: sentAt,
    winner: group.members.indexOf(winner),
    probes,
    writesBefore: writes,
    load: loadavg()[0],
  };
}

// ---------------------------------------------------------------- disk

function rawFsync(size, secs = 2) {
  const file = join(base, `raw_${size}`);
  const fd = openSync(file, "w");
  const buf = Buffer.alloc(size, 7);
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < secs * 1000) {
    writeSync(fd, buf);
    fdatasyncSync(fd);
    n++;
  }
  const s = (performance.now() - start) / 1000;
  closeSync(fd);
  rmSync(file);
  return { size, perSecond: n / s, load: loadavg()[0] };
}

// ---------------------------------------------------------------- main

const fmt = (x, d = 2) =>
  x === null || x === undefined
    ? "-"
    : x.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
const fmt0 = (x) => fmt(x, 0);

const result = {
  date: new Date().toISOString(),
  machine: {
    cores: cpus().length,
    cpu: cpus()[0]?.model,
    memGiB: totalmem() / 2 ** 30,
    node: process.version,
  },
  options: {
    quick,
    systems: SYSTEMS,
    sizes: SIZES,
    concurrency: CONC,
    seconds: SECONDS,
    warmup: WARMUP,
    trials: TRIALS,
    electionTimeoutMs: ELECTION_MS,
  },
  command: `node bench/cluster_bench.mjs ${argv.join(" ")}`.trim(),
  disk: [],
  cells: [],
  failover: {},
};

log(`base dir ${base}; load average ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
result.disk.push(rawFsync(256), rawFsync(4096));
for (const d of result.disk) {
  log(`raw write+fdatasync ${d.size} B: ${fmt0(d.perSecond)}/s (load ${d.load.toFixed(2)})`);
}

const groups = [];
for (const s of SYSTEMS) {
  if (s === "deno" || s === "bun") groups.push(new WebraftGroup(s));
  else if (s === "etcd") {
    const etcd = ensureEtcd(log);
    if (etcd !== null) {
      result.etcdVersion = etcd.version;
      groups.push(new EtcdGroup(etcd));
    }
  } else throw new Error(`unknown system ${s} (deno, bun, etcd)`);
}

for (const g of groups) {
  log(`${g.name}: starting 3 members`);
  await g.start();
  try {
    for (const size of SIZES) {
      for (const c of CONC) {
        const leader = await g.leader();
        const r = await runCell(g, leader, size, c);
        result.cells.push({ system: g.name, size, concurrency: c, ...r });
        log(
          `${g.name} ${size} B × ${c}: ${fmt0(r.rps)} req/s, p50 ${fmt(r.p50)} p99 ${
            fmt(r.p99)
          } p99.9 ${fmt(r.p999)} ms, errors ${r.errors}, cpu ${
            r.cpu.map((x) => fmt(x.seconds)).join("/")
          } s, load ${r.load.toFixed(2)}`,
        );
      }
    }
    if (FAILOVER) {
      const trials = [];
      for (let t = 0; t < TRIALS; t++) {
        const r = await failoverTrial(g, t);
        trials.push(r);
        const split = r.electedMs === null
          ? ""
          : ` (timer fired ${fmt0(r.detectedMs)} ms, leader ${fmt0(r.electedMs)} ms)`;
        const probe = ` (the write that succeeded was sent at ${
          fmt0(r.probeSentMs)
        } ms; ${r.probes.refused} probes refused, ${r.probes.failed} failed, of ${r.probes.sent})`;
        log(
          `${g.name} failover ${t + 1}/${TRIALS}: ${fmt0(r.ms)} ms${split}${probe} (load ${
            r.load.toFixed(2)
          })`,
        );
      }
      const ms = trials.map((t) => t.ms).sort((a, b) => a - b);
      const split = (k) => {
        const xs = trials.map((t) => t[k]).filter((x) => x !== null);
        return xs.length === 0 ? null : median(xs);
      };
      result.failover[g.name] = {
        trials,
        median: median(ms),
        worst: ms[ms.length - 1],
        best: ms[0],
        medianTimerFired: split("detectedMs"),
        medianLeaderStart: split("electedMs"),
        medianProbeSent: split("probeSentMs"),
        // per trial, then the median: timer fired → leader started → first write committed
        medianElection: perTrial(trials, (t) => t.electedMs - t.detectedMs),
        medianFirstWrite: perTrial(trials, (t) => t.ms - t.electedMs),
      };
    }
  } finally {
    await g.stop();
  }
}

// the disk's rate moves with other jobs: measure it again at the end of the run
result.diskEnd = [rawFsync(256), rawFsync(4096)];

/** The median of `f` over the trials whose events were both seen. */
function perTrial(trials, f) {
  const xs = trials.filter((t) => t.detectedMs !== null && t.electedMs !== null).map(f);
  return xs.length === 0 ? null : median(xs);
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? null : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// ---------------------------------------------------------------- report

const pad = (s, n) => String(s).padStart(n);
console.log(
  `\n# webraft vs etcd, ${result.date}, ${result.machine.cores} cores, etcd ${
    result.etcdVersion ?? "not run"
  }`,
);
console.log(
  `raw write+fdatasync: ${
    result.disk.map((d) => `${d.size} B ${fmt0(d.perSecond)}/s`).join(", ")
  } at the start, ${
    result.diskEnd.map((d) => `${d.size} B ${fmt0(d.perSecond)}/s`).join(", ")
  } at the end\n`,
);
console.log(
  [
    "system",
    "size",
    "conc",
    "req/s",
    "p50 ms",
    "p99 ms",
    "p99.9 ms",
    "err",
    "cpu s L/F/F/client",
    "load",
  ].map((h, i) => i < 1 ? h.padEnd(14) : pad(h, i === 8 ? 24 : 9)).join(" "),
);
for (const c of result.cells) {
  console.log([
    c.system.padEnd(14),
    pad(c.size, 9),
    pad(c.concurrency, 9),
    pad(fmt0(c.rps), 9),
    pad(fmt(c.p50), 9),
    pad(fmt(c.p99), 9),
    pad(fmt(c.p999), 9),
    pad(c.errors, 9),
    pad(c.cpu.map((x) => fmt(x.seconds, 1)).join("/"), 24),
    pad(fmt0(c.serverCpuUsPerReq), 11),
    pad(c.load.toFixed(2), 9),
  ].join(" "));
}
const etcdCells = result.cells.filter((c) => c.system === "etcd");
if (etcdCells.length > 0) {
  console.log("\nratios webraft / etcd (throughput ×, p50 ×: below 1 is faster)");
  for (const c of result.cells.filter((c) => c.system !== "etcd")) {
    const e = etcdCells.find((x) => x.size === c.size && x.concurrency === c.concurrency);
    if (e === undefined) continue;
    c.vsEtcd = { rps: c.rps / e.rps, p50: c.p50 / e.p50, p99: c.p99 / e.p99 };
    console.log(
      `${c.system.padEnd(14)} ${pad(c.size, 5)} B × ${pad(c.concurrency, 3)}: req/s ${
        fmt(c.vsEtcd.rps)
      }×, p50 ${fmt(c.vsEtcd.p50)}×, p99 ${fmt(c.vsEtcd.p99)}×`,
    );
  }
}
if (Object.keys(result.failover).length > 0) {
  console.log(
    `\nfailover (SIGKILL leader → first write committed), election timeout ${ELECTION_MS} ms, ${TRIALS} trials`,
  );
  for (const [name, f] of Object.entries(result.failover)) {
    const split = f.medianLeaderStart === null
      ? ""
      : ` (medians: election timer fired ${fmt0(f.medianTimerFired)} ms, leader started ${
        fmt0(f.medianLeaderStart)
      } ms after the kill; per trial: election ${fmt0(f.medianElection)} ms, first write ${
        fmt0(f.medianFirstWrite)
      } ms after the leader started)`;
    console.log(
      `${name.padEnd(14)} median ${fmt0(f.median)} ms, worst ${fmt0(f.worst)} ms, best ${
        fmt0(f.best)
      } ms${split}`,
    );
  }
}
const outDir = join(ROOT, "bench", "out");
mkdirSync(outDir, { recursive: true });
const outFile = join(outDir, `${result.date.replace(/[:.]/g, "-")}.json`);
writeFileSync(outFile, JSON.stringify(result, null, 2) + "\n");
console.log(`\nJSON: ${outFile}`);
try {
  const { renderCharts } = await import("./charts.mjs");
  const files = await renderCharts(result, outFile.replace(/\.json$/, "-charts"));
  console.log(`charts: ${files.join(", ")}`);
} catch (e) {
  console.log(`charts not rendered (${e.message}); npm install brings vega + vega-lite`);
}
process.exit(0);
