#!/usr/bin/env node
// `prestart` / `pretest`: runs `npm ci` when the dependencies are not installed yet, so that
// `npm start` and `npm test` each work alone on a fresh clone. Does nothing otherwise.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const needed = ["deno", "bun", "node"].map((b) => join(root, "node_modules", ".bin", b))
  .concat(["hono", "typescript"].map((p) => join(root, "node_modules", p, "package.json")));
const missing = needed.filter((p) => !existsSync(p));
if (missing.length > 0) {
  console.error(`Dependencies are not installed (missing ${missing[0]}): running npm ci`);
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const r = spawnSync(npm, ["ci"], { cwd: root, stdio: "inherit" });
  if (r.status !== 0) {
    console.error(`npm ci failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`})`);
    process.exit(r.status || 1);
  }
}
