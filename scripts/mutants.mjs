#!/usr/bin/env node
// `npm run mutants`: the planted-bug harness. Applies each classic Raft bug of
// scripts/mutants/catalog.mjs, one at a time, to a scratch copy of the repository and runs the
// tests that should catch it (core, simulator with its default budget, node; the same files and
// SIM_SEEDS default as `npm test`), stopping a mutant's run at its first failing test. Prints a
// markdown table (caught by which test, after how long) and "N of M mutants caught"; exits
// non-zero unless every mutant was caught. A tool to run when touching the core, not part of CI.
//
// Usage: node scripts/mutants.mjs [--only=name[,name]] [--list] [--runtime=deno|bun]
//   [--jobs=1] [--timeout=15] [--groups=core,sim,node] [--src=<checkout>] [--rev=<commit>]
//   [--out=<file.md>]
//   [--no-baseline] [--keep] [--typecheck]
//   --src      checkout to mutate (default: the repository this script lives in); its tracked
//              and untracked-but-not-ignored files are copied, node_modules is symlinked
//   --rev      mutate this commit of --src's repository instead of its work tree (git archive),
//              e.g. --rev=core to measure a branch without touching its work tree
//   --timeout  minutes per mutant (all groups together); a mutant still running is "timeout"
//   --typecheck  `deno check` each mutated file first; a mutant that does not compile is reported
//              as such (not as caught). `--typecheck --groups=` only checks that mutants compile
//   --list     print the mutants and whether each anchor matches --src, run nothing
import { spawn, spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { MUTANTS } from "./mutants/catalog.mjs";

const here = join(dirname(fileURLToPath(import.meta.url)), "..");
/** Kill functions of the test runs in progress (their process groups), for Ctrl-C. */
const live = new Set();
const GROUPS = { core: "tests/core", sim: "tests/sim", node: "tests/node" };

function parseArgs(argv) {
  const opt = {
    src: here,
    rev: null,
    only: null,
    list: false,
    runtime: "deno",
    jobs: 1,
    timeoutMin: 15,
    groups: ["core", "sim", "node"],
    out: null,
    baseline: true,
    keep: false,
    typecheck: false,
  };
  for (const a of argv) {
    const [k, v] = a.includes("=") ? [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)] : [
      a,
      undefined,
    ];
    if (k === "--src") opt.src = resolve(v);
    else if (k === "--rev") opt.rev = v;
    else if (k === "--only") opt.only = v.split(",").filter((s) => s !== "");
    else if (k === "--list") opt.list = true;
    else if (k === "--runtime") opt.runtime = v;
    else if (k === "--jobs") opt.jobs = Number(v);
    else if (k === "--timeout") opt.timeoutMin = Number(v);
    else if (k === "--groups") opt.groups = v.split(",").filter((s) => s !== "");
    else if (k === "--out") opt.out = resolve(v);
    else if (k === "--no-baseline") opt.baseline = false;
    else if (k === "--keep") opt.keep = true;
    else if (k === "--typecheck") opt.typecheck = true;
    else die(`Cannot parse option "${a}" (see the usage at the top of scripts/mutants.mjs)`);
  }
  if (!["deno", "bun"].includes(opt.runtime)) die(`Unknown runtime "${opt.runtime}"`);
  if (!Number.isInteger(opt.jobs) || opt.jobs < 1) die(`Invalid --jobs "${opt.jobs}"`);
  if (!(opt.timeoutMin > 0)) die(`Invalid --timeout "${opt.timeoutMin}"`);
  for (const g of opt.groups) if (!(g in GROUPS)) die(`Unknown test group "${g}"`);
  if (opt.only !== null) {
    for (const n of opt.only) {
      if (!MUTANTS.some((m) => m.name === n)) die(`Unknown mutant "${n}" (see --list)`);
    }
  }
  return opt;
}

function die(msg) {
  console.error(msg);
  process.exit(2);
}

// ------------------------------------------------------------------ anchors

function escapeRegExp(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** `find` as a regex: exact, except that a run of whitespace matches any run of whitespace. */
function anchorRegExp(find) {
  const parts = find.trim().split(/\s+/).map(escapeRegExp);
  return new RegExp(parts.join("\\s+"), "g");
}

/**
 * Applies a mutant's edits to file contents.
 * @returns {{ ok: true, files: Map<string,string> } | { ok: false, why: string }}
 */
function applyMutant(m, read) {
  const files = new Map();
  for (const e of m.edits) {
    const text = files.get(e.file) ?? read(e.file);
    if (text === null) return { ok: false, why: `file ${e.file} not found` };
    const finds = Array.isArray(e.find) ? e.find : [e.find];
    let hit = null;
    for (const find of finds) {
      const hits = [...text.matchAll(anchorRegExp(find))];
      if (hits.length > 1) {
        return {
          ok: false,
          why: `anchor ambiguous (${hits.length} matches) in ${e.file}: "${find}"`,
        };
      }
      if (hits.length === 1) {
        hit = hits[0];
        break;
      }
    }
    if (hit === null) {
      const quoted = finds.map((f) => `"${f}"`).join(" or ");
      return { ok: false, why: `anchor not found in ${e.file}: ${quoted}` };
    }
    const replacement = e.replace.replaceAll("$&", hit[0]);
    files.set(
      e.file,
      text.slice(0, hit.index) + replacement + text.slice(hit.index + hit[0].length),
    );
  }
  return { ok: true, files };
}

function readFrom(root) {
  return (rel) => {
    const p = join(root, rel);
    return existsSync(p) ? readFileSync(p, "utf8") : null;
  };
}

// ------------------------------------------------------------------ scratch copies

function gitFiles(src) {
  const r = spawnSync("git", [
    "-C",
    src,
    "ls-files",
    "-z",
    "--cached",
    "--others",
    "--exclude-standard",
  ], {
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) die(`Cannot list the files of ${src}: ${r.stderr.trim()}`);
  return r.stdout.split("\0").filter((f) => f !== "" && f !== "node_modules");
}

function gitOut(src, args) {
  const r = spawnSync("git", ["-C", src, ...args], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** Reads `path` at commit `rev` (null when absent). */
function readAtRev(src, rev) {
  return (rel) => {
    const r = spawnSync("git", ["-C", src, "show", `${rev}:${rel}`], {
      encoding: "utf8",
      maxBuffer: 64 * 1024 * 1024,
    });
    return r.status === 0 ? r.stdout : null;
  };
}

function revision(src, rev) {
  if (rev !== null) {
    const sha = gitOut(src, ["rev-parse", "--short", `${rev}^{commit}`]);
    if (sha === null) die(`Unknown revision "${rev}" in ${src}`);
    return `${rev} @ ${sha}`;
  }
  const head = gitOut(src, ["rev-parse", "--short", "HEAD"]);
  const branch = gitOut(src, ["rev-parse", "--abbrev-ref", "HEAD"]);
  const dirty = gitOut(src, [
    "--no-optional-locks",
    "status",
    "--porcelain",
    "--untracked-files=no",
  ]);
  const at = `${branch} @ ${head}`;
  return dirty === "" ? at : `${at} (with uncommitted changes)`;
}

function makeScratch(src, rev, files) {
  const dir = mkdtempSync(join(tmpdir(), "webraft-mutants-"));
  if (rev !== null) {
    const tar = spawnSync("git", ["-C", src, "archive", "--format=tar", rev], {
      maxBuffer: 1024 * 1024 * 1024,
    });
    if (tar.status !== 0) die(`Cannot archive ${rev} of ${src}: ${tar.stderr}`);
    const x = spawnSync("tar", ["-x", "-C", dir], { input: tar.stdout });
    if (x.status !== 0) die(`Cannot unpack ${rev} into ${dir}: ${x.stderr}`);
  }
  for (const f of files) {
    const from = join(src, f);
    let st;
    try {
      st = statSync(from);
    } catch {
      continue; // deleted in the work tree
    }
    if (!st.isFile()) continue;
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    copyFileSync(from, join(dir, f));
  }
  const nm = join(src, "node_modules");
  if (!existsSync(nm)) die(`No node_modules in ${src} (run npm ci there)`);
  symlinkSync(realpathSync(nm), join(dir, "node_modules"));
  return dir;
}

// ------------------------------------------------------------------ running tests

function testCommand(runtime, root, path) {
  const bin = join(root, "node_modules", ".bin", runtime);
  if (runtime === "deno") return [bin, ["test", "-A", "--no-check", "--fail-fast", path]];
  return [bin, ["test", "--bail", "--timeout", "600000", `./${path}`]];
}

/** Environment of `npm test`'s defaults: no simulator budget overrides. */
function testEnv() {
  const env = { ...process.env, NO_COLOR: "1" };
  delete env.FORCE_COLOR;
  for (const k of ["SIM_SEED", "SIM_SEEDS", "SIM_SEED_BASE"]) delete env[k];
  return env;
}

/**
 * Runs one test group; resolves at its exit (or when `deadline` passes, killing it).
 * @returns {Promise<{ failed: boolean, timedOut: boolean, test: string|null, file: string|null,
 *   failedAt: number|null, tail: string }>}
 */
function runGroup(runtime, root, path, deadline, t0) {
  return new Promise((resolveRun) => {
    const [cmd, args] = testCommand(runtime, root, path);
    const child = spawn(cmd, args, {
      cwd: root,
      env: testEnv(),
      stdio: ["ignore", "pipe", "pipe"],
      detached: true, // own process group, so a timeout kills the runtime and its children
    });
    let file = null;
    let test = null;
    let failedAt = null;
    let timedOut = false;
    let buf = "";
    const tail = [];
    let parent = null;
    const kill = () => {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    };
    live.add(kill);
    const onLine = (raw) => {
      const line = raw.replace(new RegExp(String.fromCharCode(27) + "\\[[0-9;]*m", "g"), "");
      tail.push(line);
      if (tail.length > 40) tail.shift();
      if (test !== null) return;
      const running = /^running \d+ tests? from (\S+)/.exec(line); // deno
      if (running) file = running[1];
      const header = /^(\S.*?) \.\.\.$/.exec(line); // deno: a test with steps starts
      if (header) parent = header[1];
      const deno = /^(\s*)(.*?) \.\.\. FAILED\b/.exec(line);
      const bun = /^\(fail\) (.*?)(?: \[[\d.]+m?s\])?$/.exec(line.trim());
      if (deno) {
        test = deno[1] !== "" && parent !== null ? `${parent} > ${deno[2].trim()}` : deno[2].trim();
      } else if (bun) test = bun[1].trim();
      if (test !== null) {
        // Stop at the first failure: a runner's fail-fast stops only between top-level tests,
        // and a failing simulator step would otherwise run every remaining seed.
        failedAt = Date.now() - t0;
        kill();
      }
      const bunFile = /^(tests\/\S+_test\.ts):$/.exec(line.trim());
      if (bunFile && test === null) file = bunFile[1];
    };
    const onData = (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    const timer = setTimeout(() => {
      if (test !== null) return;
      timedOut = true;
      kill();
    }, Math.max(0, deadline - Date.now()));
    child.on("close", (code) => {
      clearTimeout(timer);
      live.delete(kill);
      if (buf !== "") onLine(buf);
      const failed = test !== null || (!timedOut && code !== 0);
      if (failed && test === null) {
        // a crash or load error rather than a failing test
        test = `(exit ${code}) ${tail.filter((l) => /error/i.test(l)).at(-1)?.trim() ?? ""}`;
        failedAt = Date.now() - t0;
      }
      resolveRun({ failed, timedOut, test, file, failedAt, tail: tail.join("\n") });
    });
  });
}

async function runTests(opt, root, log) {
  const t0 = Date.now();
  const deadline = t0 + opt.timeoutMin * 60_000;
  for (const g of opt.groups) {
    const r = await runGroup(opt.runtime, root, GROUPS[g], deadline, t0);
    if (r.timedOut) return { status: "timeout", group: g, elapsed: Date.now() - t0, tail: r.tail };
    if (r.failed) {
      return {
        status: "caught",
        group: g,
        test: r.test,
        file: r.file,
        failedAt: r.failedAt,
        elapsed: Date.now() - t0,
        tail: r.tail,
      };
    }
    log(`  ${g}: passed (${secs(Date.now() - t0)} so far)`);
  }
  return { status: "missed", elapsed: Date.now() - t0 };
}

function secs(ms) {
  return `${(ms / 1000).toFixed(1)} s`;
}

// ------------------------------------------------------------------ main

const opt = parseArgs(process.argv.slice(2));
const selected = opt.only === null ? MUTANTS : MUTANTS.filter((m) => opt.only.includes(m.name));
const rev = revision(opt.src, opt.rev);
const srcRead = opt.rev === null ? readFrom(opt.src) : readAtRev(opt.src, opt.rev);

if (opt.list) {
  console.log(`Mutants for ${opt.src} (${rev}):`);
  for (const m of selected) {
    const a = applyMutant(m, srcRead);
    const files = [...new Set(m.edits.map((e) => e.file))].join(", ");
    console.log(`- ${m.name} [${files}]: ${m.bug}${a.ok ? "" : `\n    ${a.why}`}`);
  }
  process.exit(0);
}

const log = (s) => console.log(s);
const files = opt.rev === null ? gitFiles(opt.src) : [];
const scratches = [];
for (let j = 0; j < Math.min(opt.jobs, Math.max(1, selected.length)); j++) {
  scratches.push(makeScratch(opt.src, opt.rev, files));
}
log(
  `Source: ${opt.src} (${rev}); runtime ${opt.runtime}; groups ${opt.groups.join(",")}; ` +
    `timeout ${opt.timeoutMin} min per mutant; scratch ${scratches.join(", ")}`,
);

let aborted = false;
process.on("SIGINT", () => {
  aborted = true;
  for (const kill of live) kill();
});

if (opt.baseline) {
  log("Baseline (unmutated) …");
  const b = await runTests(opt, scratches[0], log);
  if (aborted) {
    if (!opt.keep) { for (const d of scratches) rmSync(d, { recursive: true, force: true }); }
    process.exit(130);
  }
  if (b.status !== "missed") {
    log(`Baseline ${b.status === "timeout" ? "timed out" : `failed: ${b.group}: ${b.test}`}`);
    if (b.tail) log(b.tail);
    log("The unmutated tests must pass before mutants mean anything; stopping.");
    if (!opt.keep) { for (const d of scratches) rmSync(d, { recursive: true, force: true }); }
    process.exit(2);
  }
  log(`Baseline passed in ${secs(b.elapsed)}`);
}

const results = new Map();
let next = 0;
async function worker(root) {
  const rootRead = readFrom(root);
  while (!aborted && next < selected.length) {
    const m = selected[next++];
    const a = applyMutant(m, rootRead);
    if (!a.ok) {
      results.set(m.name, { status: "anchor", why: a.why });
      log(`${m.name}: ANCHOR — ${a.why}`);
      continue;
    }
    const originals = new Map([...a.files.keys()].map((f) => [f, rootRead(f)]));
    for (const [f, text] of a.files) writeFileSync(join(root, f), text);
    log(`${m.name}: running …`);
    try {
      if (opt.typecheck) {
        const bin = join(root, "node_modules", ".bin", "deno");
        const c = spawnSync(bin, ["check", ...a.files.keys()], {
          cwd: root,
          encoding: "utf8",
          env: testEnv(),
        });
        if (c.status !== 0) {
          const why = (c.stderr + c.stdout).split("\n").filter((l) => /error/i.test(l))[0] ?? "";
          results.set(m.name, { status: "compile", why: why.trim() });
          log(`${m.name}: DOES NOT COMPILE — ${why.trim()}`);
          continue;
        }
      }
      const r = await runTests(opt, root, (s) => log(`[${m.name}] ${s.trim()}`));
      if (aborted) break; // interrupted: the run was killed, its result means nothing
      results.set(m.name, r);
      if (r.status === "caught") {
        log(`${m.name}: CAUGHT by ${r.group}: ${r.test} after ${secs(r.failedAt)}`);
      } else if (r.status === "timeout") {
        log(`${m.name}: TIMEOUT after ${secs(r.elapsed)} (in ${r.group})`);
      } else log(`${m.name}: MISSED (all groups passed in ${secs(r.elapsed)})`);
    } finally {
      for (const [f, text] of originals) writeFileSync(join(root, f), text);
    }
  }
}
await Promise.all(scratches.map((d) => worker(d)));
if (!opt.keep) { for (const d of scratches) rmSync(d, { recursive: true, force: true }); }

// ------------------------------------------------------------------ report

const cell = (s) => String(s).replace(/\|/g, "\\|").replace(/\s+/g, " ");
const lines = [
  `Planted-bug harness: ${opt.runtime}, groups ${opt.groups.join(", ")}, ` +
  `timeout ${opt.timeoutMin} min per mutant; source ${rev}`,
  "",
  "| Mutant | Bug | Result | First failing test | Time to first failure |",
  "| ------ | --- | ------ | ------------------ | --------------------- |",
];
let caught = 0;
let ran = 0;
for (const m of selected) {
  const r = results.get(m.name);
  let result;
  let test = "";
  let time = "";
  if (r === undefined) result = "not run (interrupted)";
  else if (r.status === "anchor") result = `**anchor**: ${r.why}`;
  else if (r.status === "compile") result = `**does not compile**: ${r.why}`;
  else if (r.status === "caught") {
    caught++;
    result = "caught";
    test = `${r.group}: ${r.test}${
      r.file ? ` (${r.file.replace(/^(file:\/\/)?.*?(tests\/)/, "$2")})` : ""
    }`;
    time = secs(r.failedAt ?? r.elapsed);
  } else if (r.status === "timeout") {
    result = `**timeout** (in ${r.group})`;
    time = `> ${secs(r.elapsed)}`;
  } else {
    result = "**MISSED**";
    time = `(all passed in ${secs(r.elapsed)})`;
  }
  if (r !== undefined && r.status !== "anchor" && r.status !== "compile") ran++;
  lines.push(
    `| ${cell(m.name)} | ${cell(m.bug)} | ${cell(result)} | ${cell(test)} | ${cell(time)} |`,
  );
}
lines.push(
  "",
  `${caught} of ${selected.length} mutants caught` +
    (ran < selected.length ? ` (${selected.length - ran} not run)` : ""),
);
const report = lines.join("\n");
console.log(`\n${report}`);
if (opt.out !== null) writeFileSync(opt.out, report + "\n");
process.exit(caught === selected.length ? 0 : 1);
