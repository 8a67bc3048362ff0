#!/usr/bin/env node
// `npm run build` (and `prepack`): emits the npm package's ESM JavaScript and `.d.ts` files into
// dist/ with `tsc`, from the same sources Deno and Bun run. Relative `.ts` import specifiers
// become `.js` (`rewriteRelativeImportExtensions`). The Deno file-system adapter names the
// `Deno` namespace, so the build type-checks against the declarations `deno types` prints,
// beside Node's. Exits non-zero on any compiler error (nothing is emitted then).
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", name);
const work = join(root, ".tmp", "build");
const dist = join(root, "dist");

// The package's entry points (package.json "exports"), plus the `webraft` CLI the bin runs.
const ENTRYPOINTS = [
  "mod.ts",
  "src/bytes/mod.ts",
  "src/conf/mod.ts",
  "src/core/mod.ts",
  "storage/mod.ts",
  "src/cli/main.ts",
];

function must(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: "utf8", ...options });
  if (r.status !== 0) {
    process.stderr.write(r.stdout ?? "");
    process.stderr.write(r.stderr ?? "");
    console.error(`build: ${cmd} ${args.join(" ")} failed (${r.error?.message ?? r.status})`);
    process.exit(1);
  }
  return r.stdout;
}

rmSync(dist, { recursive: true, force: true });
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

// `deno types` prints the Deno runtime's declarations, web APIs included.
const denoTypes = must(bin("deno"), ["types"], { env: { ...process.env, NO_COLOR: "1" } });
writeFileSync(join(work, "deno.d.ts"), denoTypes);
// `ws` (an optional dependency, loaded only on Node) ships no types; node_server.ts declares the
// slice it uses.
writeFileSync(join(work, "ws.d.ts"), 'declare module "ws";\n');

const tsconfig = {
  compilerOptions: {
    target: "ES2022",
    module: "NodeNext",
    moduleResolution: "NodeNext",
    lib: ["ES2023"],
    types: ["node"],
    typeRoots: [join(root, "node_modules", "@types")],
    rootDir: root,
    outDir: dist,
    declaration: true,
    allowImportingTsExtensions: true,
    rewriteRelativeImportExtensions: true,
    skipLibCheck: true,
    noEmitOnError: true,
    // The same strictness as deno.json.
    strict: true,
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
    noImplicitOverride: true,
    useUnknownInCatchVariables: true,
    noFallthroughCasesInSwitch: true,
    erasableSyntaxOnly: true,
    verbatimModuleSyntax: true,
  },
  files: [join(work, "deno.d.ts"), join(work, "ws.d.ts"), ...ENTRYPOINTS.map((p) => join(root, p))],
};
const config = join(work, "tsconfig.json");
writeFileSync(config, JSON.stringify(tsconfig, null, 2));

const out = spawnSync(process.execPath, [
  join(root, "node_modules", "typescript", "bin", "tsc"),
  "-p",
  config,
], {
  cwd: root,
  stdio: "inherit",
});
if (out.status !== 0) {
  console.error(`build: tsc failed (${out.error?.message ?? `exit ${out.status}`})`);
  process.exit(1);
}
// tsc rewrites the specifiers in the JavaScript only; the declarations keep `./x.ts`, which a
// consumer's compiler would look for beside them. Point them at the emitted `./x.js`.
const RELATIVE_TS = /((?:from|import)\s*\(?\s*)(["'])(\.{1,2}\/[^"']*?)\.ts\2/g;
for (const file of readdirSync(dist, { recursive: true })) {
  if (!file.endsWith(".d.ts")) continue;
  const path = join(dist, file);
  const text = readFileSync(path, "utf8");
  const fixed = text.replace(RELATIVE_TS, "$1$2$3.js$2");
  if (fixed !== text) writeFileSync(path, fixed);
}
rmSync(work, { recursive: true, force: true });
console.log(`build: wrote ${dist}`);
