/**
 * The npm package as a user gets it: `npm pack` (its `prepack` builds dist/), install the
 * tarball into a scratch project, type-check a consumer against the shipped `.d.ts` files, then
 * import the package by its bare name from Node, Bun and Deno (Deno reading the scratch
 * node_modules through `nodeModulesDir`), each running a 3-node in-process group (`_app.ts`).
 * The tarball's dependencies (hono, cbor-x) install with `--prefer-offline`: from npm's cache when
 * it has them (it does after the repo's own `npm ci`), else from the registry.
 *
 * Packing once is enough, so this runs under Node only and spawns the three runtimes itself; the
 * Deno and Bun runs of scripts/test.mjs skip it.
 */

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const bin = (name: string): string => join(root, "node_modules", ".bin", name);
const g = globalThis as { Deno?: unknown; Bun?: unknown };
const onNode = g.Deno === undefined && g.Bun === undefined;
const STEP_MS = 240_000;

interface Ran {
  code: number | null;
  out: string;
}

/** Runs a command to its end; its output (stdout and stderr) comes back for the assertion. */
function run(
  cmd: string,
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd,
      env: { ...process.env, NO_COLOR: "1", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout!.on("data", (d) => out += d);
    child.stderr!.on("data", (d) => out += d);
    const timer = setTimeout(() => child.kill("SIGKILL"), STEP_MS);
    child.once("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${cmd}: ${e.message}`));
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

async function must(cmd: string, args: string[], cwd: string): Promise<string> {
  const r = await run(cmd, args, cwd);
  assert.equal(r.code, 0, `${cmd} ${args.join(" ")} failed (exit ${r.code}):\n${r.out}`);
  return r.out;
}

test("npm pack installs into a scratch project and runs a group on Node, Bun and Deno", {
  skip: onNode
    ? false
    : "packs once, under the Node run of the suite (it spawns all three runtimes)",
  timeout: 600_000,
}, async () => {
  const tmp = mkdtempSync(join(tmpdir(), "webraft-pack-"));
  try {
    const npm = process.platform === "win32" ? "npm.cmd" : "npm";
    await must(npm, ["pack", "--pack-destination", tmp], root);
    const tarballs = readdirSync(tmp).filter((f) => f.endsWith(".tgz"));
    assert.equal(tarballs.length, 1, `one tarball: ${tarballs}`);

    const app = join(tmp, "app");
    mkdirSync(app);
    writeFileSync(
      join(app, "package.json"),
      JSON.stringify({ name: "scratch", private: true, type: "module" }),
    );
    // Deno: bare specifiers from package.json, resolved in the existing node_modules.
    writeFileSync(join(app, "deno.json"), JSON.stringify({ nodeModulesDir: "manual" }));
    await must(npm, [
      "install",
      "--prefer-offline",
      "--no-audit",
      "--no-fund",
      join(tmp, tarballs[0]!),
    ], app);

    const pkg = join(app, "node_modules", "webraft");
    assert.ok(existsSync(join(pkg, "dist", "mod.js")), "dist/mod.js ships");
    assert.ok(existsSync(join(pkg, "dist", "mod.d.ts")), "dist/mod.d.ts ships");
    assert.ok(!existsSync(join(pkg, "src")), "the TypeScript sources do not ship");
    assert.ok(!existsSync(join(pkg, "tests")), "the tests do not ship");

    copyFileSync(join(here, "_app.ts"), join(app, "app.ts"));
    // The consumer type-checks against the shipped declarations (the `types` conditions).
    writeFileSync(
      join(app, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          // A consumer's usual web globals (Request, AbortSignal, ReadableStream).
          lib: ["ES2023", "DOM"],
          types: [],
          strict: true,
          noEmit: true,
          allowImportingTsExtensions: true,
          skipLibCheck: false,
        },
        files: ["app.ts"],
      }),
    );
    await must(
      bin("node"),
      [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", app],
      app,
    );

    const runs: Array<[string, string[]]> = [
      ["node", [bin("node"), "app.ts"]],
      ["bun", [bin("bun"), "app.ts"]],
      ["deno", [bin("deno"), "run", "-A", "app.ts"]],
    ];
    for (const [name, [cmd, ...args]] of runs) {
      const out = await must(cmd!, args, app);
      assert.match(out, new RegExp(`^OK ${name}$`, "m"), `${name} ran the group:\n${out}`);
    }

    // The bin runs the built CLI in plain Node (the package has no sources to hand to Deno).
    const cli = await must(process.execPath, [
      join(app, "node_modules", ".bin", "webraft"),
      "--help",
    ], app);
    assert.match(cli, /Usage: webraft/);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
