// Kill -9 crash test on the real file system of the runtime running the tests: a child of the
// same runtime appends with raft_sync on and reports each acknowledged index; the parent
// SIGKILLs it at random moments (seeded), reopens the log and checks that every
// acknowledged entry is present and intact. Then a flipped byte in a closed segment must be
// detected. CRASH_KILLS (default 50) and CRASH_SEED override the defaults.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { RaftError } from "../../src/errors/status.ts";
import { Prng } from "../../src/util/prng.ts";
import { detectRuntime } from "../../storage/fs/detect.ts";
import type { LogStorage } from "../../storage/log/log_storage.ts";
import { createLogStorage } from "../../storage/uri.ts";
import { payloadFor, rejectsWith, withTempDir } from "./_helpers.ts";

const CHILD = fileURLToPath(new URL("./_crash_child.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../../", import.meta.url));

function childCommand(args: string[]): { cmd: string; args: string[] } {
  const deno = (globalThis as { Deno?: { execPath(): string } }).Deno;
  if (deno) return { cmd: deno.execPath(), args: ["run", "-A", CHILD, ...args] };
  return { cmd: process.execPath, args: [CHILD, ...args] };
}

interface Round {
  ready: number;
  acked: number;
  first: number;
  stderr: string;
}

/** Runs the child until it has printed `targetAcks` acks, then SIGKILLs it. */
function runChild(
  dir: string,
  term: number,
  seed: number,
  targetAcks: number,
  delayMs: number,
): Promise<Round> {
  return new Promise((resolve, reject) => {
    const { cmd, args } = childCommand([dir, String(term), String(seed)]);
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    const round: Round = { ready: -1, acked: -1, first: 1, stderr: "" };
    let acks = 0;
    let buffered = "";
    let killing = false;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`child made no progress in 20 s (acks ${acks}); stderr: ${round.stderr}`));
    }, 20_000);
    const kill = (): void => {
      if (killing) return;
      killing = true;
      if (delayMs > 0) setTimeout(() => child.kill("SIGKILL"), delayMs);
      else child.kill("SIGKILL");
    };
    child.stdout!.on("data", (chunk: Uint8Array) => {
      buffered += new TextDecoder().decode(chunk);
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const [kind, value] = buffered.slice(0, nl).split(" ");
        buffered = buffered.slice(nl + 1);
        if (kind === "ready") round.ready = Number(value);
        else if (kind === "first") round.first = Number(value);
        else if (kind === "ack") {
          round.acked = Number(value);
          if (++acks >= targetAcks) kill();
        }
      }
    });
    child.stderr!.on("data", (chunk: Uint8Array) => {
      round.stderr += new TextDecoder().decode(chunk);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (signal !== "SIGKILL" && !killing) {
        reject(
          new Error(`child exited on its own (code ${code}, signal ${signal}): ${round.stderr}`),
        );
      } else {
        resolve(round);
      }
    });
  });
}

async function verify(
  log: LogStorage,
  acked: number,
  ackedFirst: number,
  terms: Map<number, number>,
): Promise<void> {
  assert.ok(
    log.lastLogIndex() >= acked,
    `last index ${log.lastLogIndex()} < acknowledged ${acked}`,
  );
  const first = log.firstLogIndex();
  assert.ok(
    first >= ackedFirst,
    `first index ${first} < acknowledged truncatePrefix ${ackedFirst}`,
  );
  assert.ok(first <= acked + 1, `first index ${first} beyond acknowledged ${acked}`);
  const entries = await log.getEntries(first, log.lastLogIndex());
  assert.equal(entries.length, log.lastLogIndex() - first + 1);
  let prevTerm = 0;
  for (const e of entries) {
    assert.ok(e.data.equals(payloadFor(e.index)), `payload of entry ${e.index}`);
    assert.ok(e.term >= prevTerm, `term of entry ${e.index} decreases`);
    const expected = terms.get(e.index);
    if (expected !== undefined) assert.equal(e.term, expected, `term of entry ${e.index}`);
    prevTerm = e.term;
  }
}

describe(`crash test on the real ${detectRuntime()} file system`, () => {
  it("every acknowledged append survives SIGKILL; a flipped byte in a closed segment is reported", {
    timeout: 300_000, // plain `bun test` would otherwise stop it at 5 s
  }, async () => {
    const kills = Number(process.env.CRASH_KILLS ?? 50);
    const seed = Number(process.env.CRASH_SEED ?? Date.now() % 1_000_000);
    const prng = new Prng(seed);
    const started = Date.now();
    let maxAcked = 0;
    let ackedFirst = 1;
    const terms = new Map<number, number>();
    try {
      await withTempDir(async (root) => {
        const dir = join(root, "log");
        for (let k = 0; k < kills; k++) {
          const term = k + 1;
          const round = await runChild(
            dir,
            term,
            prng.nextU32(),
            prng.range(1, 6),
            prng.chance(0.5) ? 0 : prng.int(3),
          );
          assert.ok(
            round.ready >= maxAcked,
            `child started at ${round.ready}, below acknowledged ${maxAcked}`,
          );
          for (let i = round.ready + 1; i <= round.acked; i++) terms.set(i, term);
          maxAcked = Math.max(maxAcked, round.acked);
          ackedFirst = Math.max(ackedFirst, round.first);
          const log = await createLogStorage(`local://${dir}`, { maxSegmentSize: 32 * 1024 });
          await log.init();
          await verify(log, maxAcked, ackedFirst, terms);
          await log.close();
        }
        const closed = (await readdir(dir)).filter((n) => /^log_\d{20}_\d{20}$/.test(n)).sort();
        assert.ok(closed.length > 0, "expected closed segments");
        const victim = join(dir, closed[Math.floor(closed.length / 2)]!);
        const bytes = await readFile(victim);
        const offset = prng.int(bytes.byteLength);
        bytes[offset] = bytes[offset]! ^ 0x01;
        await writeFile(victim, bytes);
        const log = await createLogStorage(`local://${dir}`);
        const err = await rejectsWith(log.init(), RaftError.EIO);
        assert.match(
          err.message,
          new RegExp(`${closed[Math.floor(closed.length / 2)]}.*at offset \\d+`),
        );
      });
    } catch (e) {
      console.error(`crash test failed with CRASH_SEED=${seed}`);
      throw e;
    }
    console.log(
      `crash test (${detectRuntime()}): ${kills} SIGKILLs, ${maxAcked} acknowledged entries ` +
        `(first index ${ackedFirst}), ` +
        `seed ${seed}, ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  });
});
