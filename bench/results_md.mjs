// Markdown tables of a cluster_bench JSON output, for bench/RESULTS.md.
//
//   node bench/results_md.mjs [bench/out/<timestamp>.json]   (default: the newest)
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const outRoot = join(dirname(fileURLToPath(import.meta.url)), "out");
const file = process.argv[2] ??
  join(outRoot, readdirSync(outRoot).filter((f) => f.endsWith(".json")).sort().at(-1));
const r = JSON.parse(readFileSync(file, "utf8"));
const n = (x, d = 0) =>
  x === null || x === undefined
    ? "-"
    : x.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });

const systems = [...new Set(r.cells.map((c) => c.system))];
const keys = [...new Set(r.cells.map((c) => `${c.size}|${c.concurrency}`))];
const cell = (s, k) => r.cells.find((c) => c.system === s && `${c.size}|${c.concurrency}` === k);

console.log(
  `Run ${r.date}, \`${r.command}\`, etcd ${r.etcdVersion ?? "not run"}; raw write+fdatasync ${
    r.disk.map((d) => `${d.size} B ${n(d.perSecond)}/s`).join(", ")
  } at the start${
    r.diskEnd
      ? `, ${r.diskEnd.map((d) => `${d.size} B ${n(d.perSecond)}/s`).join(", ")} at the end`
      : ""
  }.\n`,
);
console.log(
  "| size × clients | " + systems.map((s) => `${s} req/s | p50 / p99 / p99.9 ms`).join(" | ") +
    " | load |",
);
console.log("| --- | " + systems.map(() => "---: | ---:").join(" | ") + " | ---: |");
for (const k of keys) {
  const [size, conc] = k.split("|");
  const cs = systems.map((s) => cell(s, k));
  const load = Math.max(...cs.filter(Boolean).map((c) => c.load));
  console.log(
    `| ${size} B × ${conc} | ` +
      cs.map((c) =>
        c === undefined
          ? "- | -"
          : `${n(c.rps)} | ${n(c.p50, 2)} / ${n(c.p99, 1)} / ${n(c.p999, 1)}`
      ).join(" | ") + ` | ${n(load, 1)} |`,
  );
}
const webraft = systems.filter((s) => s !== "etcd");
if (systems.includes("etcd")) {
  console.log(
    "\n| size × clients | " +
      webraft.map((s) => `${s} / etcd req/s | p50 | p99`).join(" | ") + " |",
  );
  console.log("| --- | " + webraft.map(() => "---: | ---: | ---:").join(" | ") + " |");
  for (const k of keys) {
    const [size, conc] = k.split("|");
    const e = cell("etcd", k);
    console.log(
      `| ${size} B × ${conc} | ` + webraft.map((s) => {
        const c = cell(s, k);
        return c === undefined || e === undefined
          ? "- | - | -"
          : `${n(c.rps / e.rps, 2)}× | ${n(c.p50 / e.p50, 2)}× | ${n(c.p99 / e.p99, 2)}×`;
      }).join(" | ") + " |",
    );
  }
}
console.log(
  "\n| size × clients | " +
    systems.map((s) => `${s} CPU s leader / followers / client | µs server CPU per write`).join(
      " | ",
    ) + " |",
);
console.log("| --- | " + systems.map(() => "---: | ---:").join(" | ") + " |");
for (const k of keys) {
  const [size, conc] = k.split("|");
  console.log(
    `| ${size} B × ${conc} | ` + systems.map((s) => {
      const c = cell(s, k);
      if (c === undefined) return "- | -";
      const [l, f1, f2, cl] = c.cpu.map((x) => n(x.seconds, 2));
      return `${l} / ${f1}, ${f2} / ${cl} | ${n(c.serverCpuUsPerReq)}`;
    }).join(" | ") + " |",
  );
}
if (Object.keys(r.failover ?? {}).length > 0) {
  console.log(
    `\n| failover, election timeout ${r.options.electionTimeoutMs} ms | trials | median ms | worst ms | best ms | median timer fired / leader started ms |`,
  );
  console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
  for (const [s, f] of Object.entries(r.failover)) {
    console.log(
      `| ${s} | ${f.trials.length} | ${n(f.median)} | ${n(f.worst)} | ${n(f.best)} | ${
        f.medianLeaderStart === null || f.medianLeaderStart === undefined
          ? "-"
          : `${n(f.medianTimerFired)} / ${n(f.medianLeaderStart)}`
      } |`,
    );
  }
}
