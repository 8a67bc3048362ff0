// Finds the etcd binary, installing Debian's `etcd-server` (3.4) with apt when it is missing and
// we are root. Returns the binary's path, or null with a loud message saying why the etcd column
// will be skipped.
import { execFileSync, spawnSync } from "node:child_process";

function which(name) {
  const r = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : null;
}

function version(bin) {
  try {
    return /etcd Version: (\S+)/.exec(execFileSync(bin, ["--version"], { encoding: "utf8" }))
      ?.[1] ?? "unknown";
  } catch {
    return null;
  }
}

/** @returns {{bin: string, version: string} | null} */
export function ensureEtcd(log = console.error) {
  let bin = process.env.ETCD_BIN ?? which("etcd");
  if (bin === null) {
    const root = typeof process.getuid === "function" && process.getuid() === 0;
    if (!root || which("apt-get") === null) {
      log(loud("etcd is not installed and this is not a root Debian shell (no apt-get as root)"));
      return null;
    }
    log("etcd not found: apt-get install -y etcd-server ...");
    const r = spawnSync("apt-get", ["install", "-y", "etcd-server"], {
      encoding: "utf8",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
    if (r.status !== 0) {
      log(loud(`apt-get install etcd-server failed (${r.status}): ${r.stderr.slice(-500)}`));
      return null;
    }
    bin = which("etcd");
    if (bin === null) {
      log(loud("etcd-server installed but no etcd binary on PATH"));
      return null;
    }
  }
  const v = version(bin);
  if (v === null) {
    log(loud(`${bin} --version failed`));
    return null;
  }
  return { bin, version: v };
}

function loud(why) {
  const bar = "!".repeat(78);
  return `${bar}\n!! ETCD COLUMN SKIPPED: ${why}\n!! Install it (apt-get install etcd-server, or ETCD_BIN=/path/to/etcd) to compare.\n${bar}`;
}
