#!/usr/bin/env node
// `npm test`: static checks, then the same node:test suite under Deno, Bun and Node (the
// `node` devDependency, a Node that strips TypeScript types; the system Node only runs this
// script). Prints one final line "N passed, N failed" summing all three runtimes; exits
// non-zero on failure.
// Usage: node scripts/test.mjs [--only=deno|bun|node] [--skip-static] [test paths...]
import { spawn } from "node:child_process";
import { statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", name);
const args = process.argv.slice(2);
const only = args.find((a) => a.startsWith("--only="))?.slice(7);
const skipStatic = args.includes("--skip-static");
const paths = args.filter((a) => !a.startsWith("--"));
const testPaths = paths.length > 0 ? paths : ["tests/"];
const runs = (name) => only === undefined || only === name;
if (only !== undefined && !["deno", "bun", "node"].includes(only)) {
  console.error(`Unknown --only=${only}: expected deno, bun or node`);
  process.exit(2);
}
// The simulator checks the runtime-independent core; Deno and Bun run its full 10,000 seeds,
// Node (the same V8 as Deno) a fifth of them to keep CI short. SIM_SEEDS, when set, applies to
// all three.
const NODE_SIM_SEEDS = "2000";

// The published entry points (deno.json "exports"), linted together for JSDoc and slow types.
const ENTRYPOINTS = [
  "mod.ts",
  "src/bytes/mod.ts",
  "src/conf/mod.ts",
  "src/core/mod.ts",
  "storage/mod.ts",
];
// With the whole suite, every JSDoc @example and the README's code blocks run too (`--doc`).
const DOC_PATHS = ["README.md", "mod.ts", "src/", "storage/", "transports/"];

let passed = 0;
let failed = 0;

function run(cmd, cmdArgs, { capture = false, env = {} } = {}) {
  return new Promise((resolve) => {
    const started = Date.now();
    console.log(`\n$ ${[cmd.replace(root + "/", ""), ...cmdArgs].join(" ")}`);
    const child = spawn(cmd, cmdArgs, {
      cwd: root,
      env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0", ...env },
      stdio: capture ? ["ignore", "pipe", "pipe"] : "inherit",
    });
    let out = "";
    if (capture) {
      child.stdout.on("data", (d) => {
        out += d;
        process.stdout.write(d);
      });
      child.stderr.on("data", (d) => {
        out += d;
        process.stderr.write(d);
      });
    }
    child.on("close", (code, signal) => {
      console.log(`(exit ${code ?? signal} after ${((Date.now() - started) / 1000).toFixed(1)} s)`);
      resolve({ code: code ?? 1, out });
    });
  });
}

async function staticCheck(name, cmd, cmdArgs) {
  const { code } = await run(cmd, cmdArgs);
  if (code === 0) passed++;
  else {
    failed++;
    console.log(`FAILED static check: ${name}`);
  }
}

function lastMatch(text, re) {
  let m = null;
  for (const hit of text.matchAll(re)) m = hit;
  return m;
}

if (!skipStatic && runs("deno")) {
  await staticCheck("deno check", bin("deno"), ["check", "."]);
  await staticCheck("deno lint", bin("deno"), ["lint"]);
  await staticCheck("deno fmt --check", bin("deno"), ["fmt", "--check"]);
  await staticCheck("deno doc --lint", bin("deno"), ["doc", "--lint", ...ENTRYPOINTS]);
  // The JSR package: slow types, documented exports, what ships (deno.json "publish").
  await staticCheck("deno publish --dry-run", bin("deno"), [
    "publish",
    "--dry-run",
    "--allow-dirty",
  ]);
}

if (runs("deno")) {
  const docArgs = paths.length > 0 ? [] : ["--doc", ...DOC_PATHS];
  const { code, out } = await run(bin("deno"), ["test", "-A", ...docArgs, ...testPaths], {
    capture: true,
  });
  const m = lastMatch(out, /(\d+) passed(?: \((\d+) steps?\))? \| (\d+) failed/g);
  if (m) {
    passed += Number(m[1]);
    failed += Number(m[3]);
  }
  if (code !== 0 && (!m || Number(m[3]) === 0)) failed++; // crashed without a count
  console.log(`deno: ${m ? `${m[1]} passed, ${m[3]} failed` : "no summary"}`);
}

if (runs("bun")) {
  const { code, out } = await run(bin("bun"), [
    "test",
    "--timeout",
    "600000",
    ...testPaths.map((p) => p.startsWith(".") ? p : `./${p}`),
  ], {
    capture: true,
  });
  const p = lastMatch(out, /^\s*(\d+) pass\s*$/gm);
  const f = lastMatch(out, /^\s*(\d+) fail\s*$/gm);
  if (p) passed += Number(p[1]);
  if (f) failed += Number(f[1]);
  if (code !== 0 && (!f || Number(f[1]) === 0)) failed++;
  console.log(`bun: ${p ? p[1] : "?"} passed, ${f ? f[1] : "?"} failed`);
}

if (runs("node")) {
  // node --test takes files and globs: a directory becomes every *_test.ts under it.
  const patterns = testPaths.map((p) => {
    let dir = false;
    try {
      dir = statSync(join(root, p)).isDirectory();
    } catch { /* a glob or a missing path: node reports it */ }
    return dir ? `${p.replace(/\/+$/, "")}/**/*_test.ts` : p;
  });
  const { code, out } = await run(bin("node"), [
    "--test",
    "--test-reporter=spec",
    "--test-timeout=600000",
    // Most files wait on timers and sockets, not the CPU: two at a time on 2 cores.
    "--test-concurrency=2",
    ...patterns,
  ], {
    capture: true,
    env: process.env.SIM_SEEDS ? {} : { SIM_SEEDS: NODE_SIM_SEEDS },
  });
  // The spec reporter ends with "ℹ tests N", "ℹ pass N", "ℹ fail N", "ℹ cancelled N", ...
  const count = (word) => {
    const m = lastMatch(out, new RegExp(`^\u2139 ${word} (\\d+)\\s*$`, "gm"));
    return m ? Number(m[1]) : null;
  };
  const p = count("pass");
  const f = count("fail");
  const c = count("cancelled");
  const bad = (f ?? 0) + (c ?? 0); // a cancelled test (timeout, crashed file) did not pass
  if (p !== null) passed += p;
  failed += bad;
  if (code !== 0 && bad === 0) failed++;
  console.log(`node: ${p ?? "?"} passed, ${f === null ? "?" : bad} failed`);
}

console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
