#!/usr/bin/env node
// `npm test`: static checks, then the same node:test suite under Deno and under Bun.
// Prints one final line "N passed, N failed" summing both runtimes; exits non-zero on failure.
// Usage: node scripts/test.mjs [--only=deno|bun] [--skip-static] [test paths...]
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", name);
const args = process.argv.slice(2);
const only = args.find((a) => a.startsWith("--only="))?.slice(7);
const skipStatic = args.includes("--skip-static");
const paths = args.filter((a) => !a.startsWith("--"));
const testPaths = paths.length > 0 ? paths : ["tests/"];

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

function run(cmd, cmdArgs, { capture = false } = {}) {
  return new Promise((resolve) => {
    const started = Date.now();
    console.log(`\n$ ${[cmd.replace(root + "/", ""), ...cmdArgs].join(" ")}`);
    const child = spawn(cmd, cmdArgs, {
      cwd: root,
      env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" },
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

if (!skipStatic && only !== "bun") {
  await staticCheck("deno check", bin("deno"), ["check", "."]);
  await staticCheck("deno lint", bin("deno"), ["lint"]);
  await staticCheck("deno fmt --check", bin("deno"), ["fmt", "--check"]);
  await staticCheck("deno doc --lint", bin("deno"), ["doc", "--lint", ...ENTRYPOINTS]);
}

if (only !== "bun") {
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

if (only !== "deno") {
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

console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
