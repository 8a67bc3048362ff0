// Many groups per process: three bench_server.ts processes (Deno or Bun) that each host N groups
// of the same 3 peers. For each N it measures, from a cold start (empty data directories):
//
// - "all led after": seconds from spawning until every group has a leader (some process answers
//   `L` for it on GET /bench/leaders), and how long each process took to init its N groups
//   (groups start --init_concurrency at a time);
// - memory: RSS (/proc) and JS heap used (process.memoryUsage() after a full GC, asked of the
//   server) once start-up has settled; per idle group = (value at N − value at 1) / (N − 1);
// - idle CPU per process (/proc, % of one core) over --idle_seconds;
// - wire traffic over the same window, from the HttpTransport counters (GET /bench/stats):
//   frames/s and socket messages/s sent per process (and bytes/s);
// - failover: SIGKILL the process that leads the most groups, then the time until every group
//   it led has a new leader on a survivor (polling GET /bench/leaders): all, median, p99.
//
// Never asserts on time. Prints a table (stdout), then one JSON line (stdout, and to --json) that
// also has each process's threads, open fds, heapTotal and NodeManager stats.
//
//   node bench/groups_bench.mjs [flags]
//     --runtime=deno|bun|deno,bun   runtimes, one after the other (default deno)
//     --groups=1,1000               groups per process, one run each; include 1 for per-group
//                                   figures (default 1,1000)
//     --idle_seconds=10             the idle window (default 10)
//     --election_timeout_ms=5000    every group's election timeout (default 5000)
//     --init_concurrency=64         groups a process initialises at a time (default 64)
//     --failover=1                  0 skips the failover trial (default 1)
//     --ready_timeout_s=900         give up a run if not every group is led by then
//     --heap_snapshot_dir=DIR       write a V8 heap snapshot of process 0 per run into DIR
//     --json=FILE                   also write the JSON result to FILE
//     --deno_v8_flags=A,B           more V8 flags for Deno (e.g. --max-semi-space-size=1)
//     --snapshot_interval=3600      seconds between each group's snapshots (default braft's 3600, so
//                                   that no snapshot falls into the idle window)
//     --quiesce                     the idle groups quiesce (NodeOptions.quiesce; all but group 0)
//     --quick                       groups 1,100, idle 3 s, election timeout 1000 ms
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const argv = process.argv.slice(2);
const QUICK = argv.includes("--quick");
const flag = (name, def) =>
  argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? def;
const RUNTIMES = flag("runtime", "deno").split(",");
const GROUPS = flag("groups", QUICK ? "1,100" : "1,1000").split(",").map(Number);
const IDLE_S = Number(flag("idle_seconds", QUICK ? "3" : "10"));
const ELECTION_MS = Number(flag("election_timeout_ms", QUICK ? "1000" : "5000"));
const INIT_CONCURRENCY = Number(flag("init_concurrency", "64"));
const FAILOVER = flag("failover", "1") !== "0";
const READY_TIMEOUT_S = Number(flag("ready_timeout_s", "900"));
const HEAP_DIR = flag("heap_snapshot_dir", "");
const JSON_OUT = flag("json", "");
const DENO_V8_FLAGS = flag("deno_v8_flags", "");
const QUIESCE = argv.includes("--quiesce");
const SNAPSHOT_INTERVAL_S = Number(flag("snapshot_interval", "3600"));

const base = mkdtempSync(join(tmpdir(), "webraft-groups-bench-"));
const started = new Set();
process.on("exit", () => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  rmSync(base, { recursive: true, force: true });
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));
const MiB = (x) => (x / 2 ** 20).toFixed(0);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (s) => console.error(`[groups ${new Date().toISOString().slice(11, 19)}] ${s}`);

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

function procStat(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "latin1"))[1];
  const threads = /Threads:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "latin1"))[1];
  let fds = null;
  try {
    fds = readdirSync(`/proc/${pid}/fd`).length;
  } catch { /* not ours to read */ }
  return {
    cpu: (Number(f[11]) + Number(f[12])) / 100,
    rss: Number(rss) * 1024,
    threads: Number(threads),
    fds,
  };
}

async function get(port, path, init) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    ...init,
    signal: AbortSignal.timeout(30_000),
  });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${await res.text()}`);
  return path.startsWith("/bench/leaders") || path.startsWith("/bench/heap_snapshot")
    ? res.text()
    : res.json();
}
/** The answer, or null while the server is not up (or too busy to answer in time). */
const tryGet = (port, path) => get(port, path).catch(() => null);

const quantile = (xs, q) => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

async function run(runtime, groups) {
  const ports = await freePorts(3);
  const conf = ports.map((p) => `127.0.0.1:${p}:0`).join(",");
  const dir = mkdtempSync(join(base, `${runtime}-${groups}-`));
  const t0 = performance.now();
  const procs = ports.map((port, i) => {
    const server = join(ROOT, "bench", "bench_server.ts");
    const args = [
      `--port=${port}`,
      `--conf=${conf}`,
      `--data_path=${join(dir, String(i))}`,
      `--election_timeout_ms=${ELECTION_MS}`,
      `--groups=${groups}`,
      `--init_concurrency=${INIT_CONCURRENCY}`,
      `--snapshot_interval=${SNAPSHOT_INTERVAL_S}`,
      ...(QUIESCE ? ["--quiesce"] : []),
    ];
    const child = spawn(
      join(ROOT, "node_modules", ".bin", runtime),
      runtime === "deno"
        ? [
          "run",
          "-A",
          `--v8-flags=--expose-gc${DENO_V8_FLAGS === "" ? "" : `,${DENO_V8_FLAGS}`}`,
          server,
          ...args,
        ]
        : [server, ...args],
      { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, NO_COLOR: "1" } },
    );
    started.add(child);
    child.port = port;
    child.err = "";
    child.stderr.on("data", (d) => {
      if (child.err.length < 4000) child.err += String(d);
    });
    child.exited = new Promise((r) => child.once("exit", r));
    return child;
  });
  const fail = (why) => {
    throw new Error(`${runtime} ${groups} groups: ${why}; stderr of process 0: ${procs[0].err}`);
  };

  // Cold start: until every group is led somewhere.
  const deadline = Date.now() + READY_TIMEOUT_S * 1000;
  let led = 0;
  let lastProgress = t0;
  for (;;) {
    if (Date.now() > deadline) fail(`only ${led} groups led after ${READY_TIMEOUT_S} s`);
    if (procs.some((p) => p.exitCode !== null)) fail("a process exited");
    const views = await Promise.all(procs.map((p) => tryGet(p.port, "/bench/leaders")));
    led = 0;
    for (let g = 0; g < groups; g++) if (views.some((v) => v?.[g] === "L")) led++;
    if (led === groups) break;
    if (performance.now() - lastProgress > 15_000) {
      lastProgress = performance.now();
      const st = await Promise.all(procs.map((p) => tryGet(p.port, "/bench/stats")));
      log(
        `${groups} groups, ${((lastProgress - t0) / 1000).toFixed(0)} s: ${led} led; initialised ${
          st.map((x) => x?.initialized ?? "?").join(" / ")
        }; RSS ${procs.map((p) => MiB(procStat(p.pid).rss)).join(" / ")} MiB; load ${
          loadavg()[0].toFixed(1)
        }`,
      );
    }
    await sleep(groups >= 5000 ? 1000 : 250);
  }
  const readyS = (performance.now() - t0) / 1000;
  const initS = [];
  for (const p of procs) {
    for (;;) { // init is done before every group is led, unless a process is far behind
      const st = await tryGet(p.port, "/bench/stats");
      if (st?.initMs != null) {
        initS.push(st.initMs / 1000);
        break;
      }
      if (Date.now() > deadline) fail("init did not finish");
      await sleep(250);
    }
  }
  log(
    `${groups} groups: all led after ${readyS.toFixed(1)} s (init ${
      initS.map((s) => s.toFixed(1)).join(" / ")
    } s)`,
  );
  await sleep(2 * ELECTION_MS); // let start-up work (first snapshots aside) settle
  let quiescedAfterS = null;
  if (QUIESCE && groups > 1) {
    // A group quiesces after an election timeout of idleness; wait until every idle group has.
    const until = Date.now() + 6 * ELECTION_MS + 60_000;
    for (;;) {
      const st = await Promise.all(procs.map((p) => get(p.port, "/bench/stats")));
      if (st.every((s) => s.quiesced >= groups - 1)) {
        quiescedAfterS = (performance.now() - t0) / 1000;
        break;
      }
      if (Date.now() > until) {
        log(`not every idle group quiesced: ${st.map((s) => s.quiesced).join(" / ")}`);
        break;
      }
      await sleep(500);
    }
  }

  // Idle window.
  const gcd = await Promise.all(procs.map((p) => get(p.port, "/bench/gc", { method: "POST" })));
  const before = procs.map((p) => procStat(p.pid));
  const statsBefore = await Promise.all(procs.map((p) => get(p.port, "/bench/stats")));
  const tw = performance.now();
  await sleep(IDLE_S * 1000);
  const after = procs.map((p) => procStat(p.pid));
  const statsAfter = await Promise.all(procs.map((p) => get(p.port, "/bench/stats")));
  const windowS = (performance.now() - tw) / 1000;
  const rate = (key) =>
    statsAfter.map((s, i) => (s.transport[key] - statsBefore[i].transport[key]) / windowS);
  const r = {
    runtime,
    groups,
    readyS,
    initS,
    rss: after.map((a) => a.rss),
    threads: after.map((a) => a.threads),
    fds: after.map((a) => a.fds),
    heapTotal: gcd.map((s) => s.memoryUsage.heapTotal),
    heapUsed: gcd.map((s) => s.memoryUsage.heapUsed),
    external: gcd.map((s) => s.memoryUsage.external),
    gcExposed: gcd.every((s) => s.gc),
    cpuPercentOfCore: after.map((a, i) => ((a.cpu - before[i].cpu) / IDLE_S) * 100),
    framesOutPerS: rate("framesSent"),
    messagesOutPerS: rate("messagesSent"),
    bytesOutPerS: rate("bytesSent"),
    framesInPerS: rate("framesReceived"),
    heartbeatFramesOutPerS: statsAfter.map((s, i) =>
      (s.manager.heartbeatFramesOut - statsBefore[i].manager.heartbeatFramesOut) / windowS
    ),
    quiescedAfterS,
    quiescedPerProcess: statsAfter.map((s) => s.quiesced),
    leadersPerProcess: statsAfter.map((s) => s.leaders),
    manager: statsAfter.map((s) => s.manager),
    loadIdle: loadavg()[0],
  };
  if (HEAP_DIR !== "") {
    mkdirSync(HEAP_DIR, { recursive: true });
    const path = resolve(HEAP_DIR, `${runtime}-${groups}.heapsnapshot`);
    await get(procs[0].port, `/bench/heap_snapshot?path=${encodeURIComponent(path)}`, {
      method: "POST",
    });
    r.heapSnapshot = path;
  }

  // Failover: kill the process leading the most groups.
  if (FAILOVER) {
    const views = await Promise.all(procs.map((p) => get(p.port, "/bench/leaders")));
    const counts = views.map((v) => v.split("").filter((c) => c === "L").length);
    const victim = counts.indexOf(Math.max(...counts));
    const orphans = [];
    for (let g = 0; g < groups; g++) if (views[victim][g] === "L") orphans.push(g);
    const survivors = procs.filter((_, i) => i !== victim);
    const tk = performance.now();
    procs[victim].kill("SIGKILL");
    const recovered = new Map(); // group → seconds after the kill
    const limit = Date.now() + 60_000 + 20 * ELECTION_MS;
    while (recovered.size < orphans.length && Date.now() < limit) {
      const vs = await Promise.all(survivors.map((p) => tryGet(p.port, "/bench/leaders")));
      const now = (performance.now() - tk) / 1000;
      for (const g of orphans) {
        if (!recovered.has(g) && vs.some((v) => v?.[g] === "L")) recovered.set(g, now);
      }
      await sleep(100);
    }
    const times = [...recovered.values()];
    r.failover = {
      killed: victim,
      groupsLed: orphans.length,
      recovered: recovered.size,
      allS: recovered.size === orphans.length ? Math.max(0, ...times) : null,
      medianS: quantile(times, 0.5),
      p99S: quantile(times, 0.99),
      load: loadavg()[0],
    };
    log(
      `${groups} groups: killed process ${victim} (led ${orphans.length}); ${recovered.size} re-led, all after ${
        r.failover.allS?.toFixed(2) ?? "-"
      } s`,
    );
  }

  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill("SIGTERM");
  await Promise.race([Promise.all(procs.map((p) => p.exited)), sleep(30_000)]);
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
  return r;
}

const results = [];
for (const runtime of RUNTIMES) {
  for (const g of GROUPS) {
    log(`${runtime}: 3 processes × ${g} groups`);
    results.push(await run(runtime, g));
  }
}

const range = (xs, f, unit = "") => {
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  return f(lo) === f(hi) ? `${f(lo)}${unit}` : `${f(lo)}–${f(hi)}${unit}`;
};
const KiB = (x) => (x / 1024).toFixed(1);
const fix = (d) => (x) => x.toFixed(d);
const int = (x) => Math.round(x).toLocaleString("en-US");
console.log(
  "| Runtime | groups/process | quiesce | all led after | all quiesced after | init | RSS | RSS/group | heap used | heap/group | idle CPU (% core) | frames out/s | heartbeat frames out/s | socket msgs out/s | failover: all re-led | median | p99 |",
);
console.log(
  "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
);
for (const r of results) {
  const one = results.find((x) => x.runtime === r.runtime && x.groups === 1);
  const per = (key) =>
    one === undefined || r.groups === 1
      ? ""
      : range(r[key].map((x, i) => (x - one[key][i]) / (r.groups - 1)), KiB, " KiB");
  const f = r.failover;
  console.log(
    `| ${r.runtime} | ${int(r.groups)} | ${QUIESCE ? "on" : "off"} | ${r.readyS.toFixed(1)} s | ${
      r.quiescedAfterS === null ? "" : `${r.quiescedAfterS.toFixed(1)} s`
    } | ${range(r.initS, fix(1), " s")} | ${range(r.rss, MiB, " MiB")} | ${per("rss")} | ${
      range(r.heapUsed, MiB, " MiB")
    } | ${per("heapUsed")} | ${range(r.cpuPercentOfCore, fix(1))} | ${
      range(r.framesOutPerS, int)
    } | ${range(r.heartbeatFramesOutPerS, int)} | ${range(r.messagesOutPerS, int)} | ${
      f === undefined
        ? ""
        : f.allS === null
        ? `${f.recovered}/${f.groupsLed} only`
        : `${f.allS.toFixed(2)} s (${int(f.groupsLed)})`
    } | ${f?.medianS?.toFixed(2) ?? ""} | ${f?.p99S?.toFixed(2) ?? ""} |`,
  );
}
const json = JSON.stringify({
  electionTimeoutMs: ELECTION_MS,
  quiesce: QUIESCE,
  snapshotIntervalS: SNAPSHOT_INTERVAL_S,
  idleSeconds: IDLE_S,
  initConcurrency: INIT_CONCURRENCY,
  denoV8Flags: DENO_V8_FLAGS,
  load: loadavg(),
  results,
});
if (JSON_OUT !== "") {
  mkdirSync(dirname(resolve(JSON_OUT)), { recursive: true });
  writeFileSync(JSON_OUT, json + "\n");
}
console.log(json);
process.exit(0);
