#!/usr/bin/env node
// Makes sure Debian's chromium is at /usr/bin/chromium for the headless browser test.
// When it is missing and we are root, runs `apt-get install -y chromium` (after `apt-get update`
// if the first attempt fails). Prints what it does. Never fails the run: when chromium cannot be
// installed it says so loudly and exits 0; the browser test then skips itself.
// Usage: node scripts/ensure_chromium.mjs, or import `ensureChromium()` (the browser test
// tests/transports/http/pages_browser_test.ts does, when it loads).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** Where Debian's package puts the browser. */
export const CHROMIUM_PATH = "/usr/bin/chromium";

function apt(args) {
  console.log(`ensure_chromium: $ apt-get ${args.join(" ")}`);
  const result = spawnSync("apt-get", args, {
    stdio: ["ignore", "inherit", "inherit"],
    timeout: 15 * 60_000,
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
  if (result.error) {
    console.log(`ensure_chromium: apt-get could not run: ${result.error.message}`);
    return false;
  }
  return result.status === 0;
}

/**
 * Installs chromium when missing (root only).
 *
 * @returns {{ path: string | null, installed: boolean, why: string }} `path` is null when
 *   chromium is still missing; `why` says what happened.
 */
export function ensureChromium() {
  if (existsSync(CHROMIUM_PATH)) {
    return { path: CHROMIUM_PATH, installed: false, why: `${CHROMIUM_PATH} is present` };
  }
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    return { path: null, installed: false, why: "chromium is missing and we are not root" };
  }
  console.log(`ensure_chromium: ${CHROMIUM_PATH} is missing; installing Debian's chromium`);
  const install = ["install", "-y", "--no-install-recommends", "chromium"];
  if (!apt(install)) {
    apt(["update"]);
    apt(install);
  }
  if (existsSync(CHROMIUM_PATH)) {
    return { path: CHROMIUM_PATH, installed: true, why: "installed with apt-get" };
  }
  return { path: null, installed: false, why: "apt-get did not install chromium" };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { path, why } = ensureChromium();
  if (path === null) {
    console.log(
      `\n!!! ensure_chromium: NO CHROMIUM (${why}); the browser test will be SKIPPED !!!\n`,
    );
  } else {
    console.log(`ensure_chromium: ${why}`);
  }
}
