#!/usr/bin/env node
// `webraft`: the npm bin entry. In the npm package (dist/ without src/) it runs the built CLI in
// this Node. In a checkout (even one with a build in dist/), where Node cannot run the TypeScript
// tool, it runs src/cli/main.ts with the project's Deno (node_modules/.bin/deno), else its Bun,
// else a deno or bun on PATH; argv passes through, signals are forwarded, the exit status comes
// back.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const main = join(root, "src", "cli", "main.ts");
const suffix = process.platform === "win32" ? ".cmd" : "";

/** The runtime command and its arguments before the user's. */
function runtime() {
  const local = (name) => join(root, "node_modules", ".bin", name + suffix);
  const denoArgs = ["run", "-A", "--quiet", "--config", join(root, "deno.json"), main];
  if (existsSync(local("deno"))) return [local("deno"), denoArgs];
  if (existsSync(local("bun"))) return [local("bun"), [main]];
  if (process.env.WEBRAFT_RUNTIME === "bun") return ["bun", [main]];
  return ["deno", denoArgs];
}

const built = join(root, "dist", "src", "cli", "main.js");
if (existsSync(built) && !existsSync(join(root, "src"))) {
  const { run } = await import(pathToFileURL(built).href);
  const out = await run(process.argv.slice(2), process.env);
  for (const line of out.stdout) console.log(line);
  for (const line of out.stderr) console.error(line);
  process.exit(out.code);
}

const [cmd, args] = runtime();
const child = spawn(cmd, [...args, ...process.argv.slice(2)], {
  stdio: "inherit",
  shell: process.platform === "win32",
});
const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"];
const forward = (signal) => child.kill(signal);
for (const s of SIGNALS) process.on(s, forward);
child.on("error", (e) => {
  console.error(`webraft: cannot start ${cmd}: ${e.message} (install deno or bun)`);
  process.exit(1);
});
child.on("exit", (code, signal) => {
  for (const s of SIGNALS) process.off(s, forward);
  if (signal !== null) process.kill(process.pid, signal);
  else process.exit(code ?? 1);
});
