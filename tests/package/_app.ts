/**
 * The scratch project's program for pack_test.ts, copied next to its node_modules: imports the
 * installed npm package by its bare name (and its subpath exports), runs a 3-node group on an
 * in-process network, elects, applies, and checks every replica applied the same entries. Prints
 * `OK <runtime>` on success; any failure throws (non-zero exit).
 */
import { type Iterator, MemoryNetwork, Node, StateMachine, Status } from "webraft";
import { ChunkChain } from "webraft/bytes";
import { Configuration } from "webraft/conf";
import { EntryType } from "webraft/core";
import { detectRuntime } from "webraft/storage";

class Sum extends StateMachine {
  total = 0;
  applied = 0;
  #waiters: Array<{ count: number; resolve: () => void }> = [];
  override onApply(iter: Iterator): void {
    for (; iter.valid(); iter.next()) {
      this.total += iter.data().toUint8Array()[0] ?? 0;
      this.applied++;
      iter.done()?.run(Status.OK());
    }
    this.#waiters = this.#waiters.filter((w) => {
      if (this.applied < w.count) return true;
      w.resolve();
      return false;
    });
  }
  /** Resolves once `count` user entries have been applied. */
  reached(count: number): Promise<void> {
    if (this.applied >= count) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ count, resolve }));
  }
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`package check failed: ${what}`);
}

const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
const peers = ["127.0.0.1:8100:0", "127.0.0.1:8101:0", "127.0.0.1:8102:0"];
check(Configuration.parse(peers.join(",")).size === 3, "webraft/conf parses a configuration");
check(ChunkChain.from(new Uint8Array([1, 2])).length === 2, "webraft/bytes builds a chain");
check(typeof EntryType.DATA === "number", "webraft/core exports EntryType");
check(detectRuntime() === runtime, `webraft/storage detects ${runtime}`);

const net = new MemoryNetwork();
const fsms = peers.map(() => new Sum());
const nodes = await Promise.all(peers.map(async (peer, i) => {
  const node = new Node("pack", peer);
  await node.init({
    fsm: fsms[i]!,
    initialConf: peers.join(","),
    logUri: `memory://pack/${i}/log`,
    raftMetaUri: `memory://pack/${i}/meta`,
    transport: net.transport(peer.split(":").slice(0, 2).join(":")),
    electionTimeoutMs: 300,
  });
  return node;
}));
try {
  const leader = await Promise.race(nodes.map((n) => n.waitLeader().then(() => n)));
  for (const v of [1, 2, 3]) await leader.applyAsync(new Uint8Array([v]));
  await Promise.all(fsms.map((f) => f.reached(3)));
  check(fsms.every((f) => f.total === 6), `every replica sums to 6: ${fsms.map((f) => f.total)}`);
} finally {
  for (const n of nodes) await n.shutdown();
  await net.close();
}
console.log(`OK ${runtime}`);
