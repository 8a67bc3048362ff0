// Charts of a cluster_bench JSON output, rendered to SVG with vega-lite → vega (headless, no
// canvas): throughput and p99 against concurrency (webraft on Deno and Bun vs etcd, one panel per
// entry size) and the failover distribution.
//
//   node bench/charts.mjs [bench/out/<timestamp>.json] [out-dir]   (default: newest file, bench/charts)
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Renders the charts of `result` into `outDir`; returns the files written. */
export async function renderCharts(result, outDir) {
  const vega = await import("vega");
  const vl = await import("vega-lite");
  mkdirSync(outDir, { recursive: true });
  const title = `${result.date.slice(0, 16).replace("T", " ")} UTC, ${result.machine.cores} cores` +
    `, etcd ${result.etcdVersion ?? "skipped"}`;
  const cells = result.cells.map((c) => ({
    system: c.system,
    size: `${c.size} B`,
    concurrency: c.concurrency,
    rps: Math.round(c.rps),
    p99: c.p99,
  }));
  const sizeOrder = [...new Set(result.cells.map((c) => c.size))].sort((a, b) => a - b)
    .map((s) => `${s} B`);
  const line = (field, label, scaleType) => ({
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: { text: `${label} against concurrency`, subtitle: title },
    data: { values: cells },
    facet: { column: { field: "size", type: "ordinal", sort: sizeOrder, title: "entry size" } },
    spec: {
      width: 220,
      height: 200,
      mark: { type: "line", point: true },
      encoding: {
        x: { field: "concurrency", type: "quantitative", scale: { type: "log", base: 2 } },
        y: { field, type: "quantitative", title: label, scale: { type: scaleType } },
        color: { field: "system", type: "nominal" },
      },
    },
  });
  const trials = Object.entries(result.failover ?? {}).flatMap(([system, f]) =>
    f.trials.map((t) => ({ system, ms: Math.round(t.ms) }))
  );
  const failover = {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: {
      text:
        `Leader SIGKILL → first committed write (election timeout ${result.options.electionTimeoutMs} ms)`,
      subtitle: `${title}; ticks: trials, diamond: median`,
    },
    data: { values: trials },
    width: 500,
    height: 140,
    layer: [
      {
        mark: { type: "tick", thickness: 2 },
        encoding: {
          x: { field: "ms", type: "quantitative", title: "ms", scale: { zero: true } },
          y: { field: "system", type: "nominal" },
          color: { field: "system", type: "nominal", legend: null },
        },
      },
      {
        mark: { type: "point", shape: "diamond", size: 120, filled: true, color: "black" },
        encoding: {
          x: { aggregate: "median", field: "ms", type: "quantitative" },
          y: { field: "system", type: "nominal" },
        },
      },
    ],
  };
  const specs = { "throughput.svg": line("rps", "requests/s", "linear") };
  specs["p99.svg"] = line("p99", "p99 latency (ms)", "log");
  if (trials.length > 0) specs["failover.svg"] = failover;
  const written = [];
  for (const [name, spec] of Object.entries(specs)) {
    const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: "none" });
    writeFileSync(join(outDir, name), await view.toSVG());
    view.finalize();
    written.push(join(outDir, name));
  }
  return written;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const outRoot = join(ROOT, "bench", "out");
  const file = process.argv[2] ??
    join(outRoot, readdirSync(outRoot).filter((f) => f.endsWith(".json")).sort().at(-1));
  const files = await renderCharts(
    JSON.parse(readFileSync(file, "utf8")),
    process.argv[3] ?? join(ROOT, "bench", "charts"),
  );
  console.log(files.join("\n"));
}
