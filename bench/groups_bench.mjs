// Many groups, idle: three bench_server.ts processes (Deno or Bun) that each host N groups of the
// same 3 peers; once every group has a leader, the processes' RSS and CPU over an idle window.
// Memory per group is (RSS with N groups − RSS with 1 group) / (N − 1). The baseline for the
// multi-raft issue. Never asserts on time.
//
//   node bench/groups_bench.mjs [--runtime=deno|bun] [--groups=1,1000] [--idle_seconds=10]
//                               [--election_timeout_ms=5000]
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const argv = process.argv.slice(2);
const flag = (name, def) =>
  argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? def;
const RUNTIME = flag("runtime", "deno");
const GROUPS = flag("groups", "1,1000").split(",").map(Number);
const IDLE_S = Number(flag("idle_seconds", "10"));
const ELECTION_MS = Number(flag("election_timeout_ms", "5000"));

const base = mkdtempSync(join(tmpdir(), "webraft-groups-bench-"));
const started = new Set();
process.on("exit", () => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  rmSync(base, { recursive: true, force: true });
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));
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
  return { cpu: (Number(f[11]) + Number(f[12])) / 100, rss: Number(rss) * 1024 };
}

async function run(groups) {
  const ports = await freePorts(3);
  const conf = ports.map((p) => `127.0.0.1:${p}:0`).join(",");
  const dir = mkdtempSync(join(base, `${groups}-`));
  const t0 = performance.now();
  const procs = ports.map((port, i) => {
    const server = join(ROOT, "bench", "bench_server.ts");
    const args = [
      `--port=${port}`,
      `--conf=${conf}`,
      `--data_path=${join(dir, String(i))}`,
      `--election_timeout_ms=${ELECTION_MS}`,
      `--groups=${groups}`,
    ];
    const child = spawn(
      join(ROOT, "node_modules", ".bin", RUNTIME),
      RUNTIME === "deno" ? ["run", "-A", server, ...args] : [server, ...args],
      { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, NO_COLOR: "1" } },
    );
    started.add(child);
    child.leaders = 0;
    child.err = "";
    child.stderr.on("data", (d) => {
      const text = String(d);
      child.leaders += text.split("event leader_start").length - 1;
      if (child.err.length < 4000) child.err += text;
    });
    child.exited = new Promise((r) => child.once("exit", r));
    return child;
  });
  const deadline = Date.now() + 600_000;
  while (procs.reduce((s, p) => s + p.leaders, 0) < groups) {
    if (Date.now() > deadline || procs.some((p) => p.exitCode !== null)) {
      throw new Error(
        `${groups} groups: only ${procs.reduce((s, p) => s + p.leaders, 0)} leaders; ${
          procs[0].err
        }`,
      );
    }
    await sleep(100);
  }
  const readyS = (performance.now() - t0) / 1000;
  await sleep(2 * ELECTION_MS); // let start-up work (first snapshots aside) settle
  const before = procs.map((p) => procStat(p.pid));
  await sleep(IDLE_S * 1000);
  const after = procs.map((p) => procStat(p.pid));
  const r = {
    groups,
    readyS,
    rss: after.map((a) => a.rss),
    cpuPercentOfCore: after.map((a, i) => ((a.cpu - before[i].cpu) / IDLE_S) * 100),
    leadersPerProcess: procs.map((p) => p.leaders),
    load: loadavg()[0],
  };
  for (const p of procs) p.kill("SIGTERM");
  await Promise.race([Promise.all(procs.map((p) => p.exited)), sleep(30_000)]);
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
  return r;
}

const results = [];
for (const g of GROUPS) {
  log(`${RUNTIME}: 3 processes × ${g} groups`);
  const r = await run(g);
  results.push(r);
  log(
    `${g} groups: all led after ${r.readyS.toFixed(1)} s; RSS ${
      r.rss.map((x) => (x / 2 ** 20).toFixed(0)).join(" / ")
    } MiB; idle CPU ${
      r.cpuPercentOfCore.map((x) => x.toFixed(1)).join(" / ")
    } % of a core; leaders ${r.leadersPerProcess.join("/")}; load ${r.load.toFixed(2)}`,
  );
}
const one = results.find((r) => r.groups === 1);
for (const r of results) {
  if (one === undefined || r.groups === 1) continue;
  const perGroup = r.rss.map((x, i) => (x - one.rss[i]) / (r.groups - 1));
  console.log(
    `${RUNTIME} ${r.groups} groups per process: ${
      perGroup.map((x) => (x / 1024).toFixed(1)).join(" / ")
    } KiB RSS per group; idle CPU ${
      r.cpuPercentOfCore.map((x) => x.toFixed(1)).join(" / ")
    } % of a core per process (election timeout ${ELECTION_MS} ms)`,
  );
}
console.log(
  JSON.stringify({
    runtime: RUNTIME,
    electionTimeoutMs: ELECTION_MS,
    idleSeconds: IDLE_S,
    results,
  }),
);
process.exit(0);
