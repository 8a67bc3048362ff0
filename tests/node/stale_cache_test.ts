// Issue 9 item 1 at node level: entries read back from disk into the log cache must not
// outlive an InstallSnapshot that replaces the log. An old term-1 leader reads its unreplicated
// entries back from disk (its cache holds one entry), is deposed, and installs a term-2
// snapshot below those entries; the term-2 entries appended next must be the ones it applies.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Node } from "../../src/node/node.ts";
import { applyStatus, Cluster, DEADLINE_MS, peerIds, waitFor } from "./cluster.ts";

/** One byte: the cache keeps only the newest entry, everything else is read back from disk. */
const TINY_CACHE = { logCacheBytes: 1 };

/**
 * Writes `data` through the leader among `nodes`, again under the next leader when an election
 * (say, a deposed leader campaigning) fails it; returns the leader's applied index after it.
 */
async function write(nodes: readonly Node[], data: string): Promise<number> {
  for (;;) {
    const leader = await waitFor(
      () => nodes.find((n) => n.isLeader()),
      DEADLINE_MS,
      "a leader",
    );
    if ((await applyStatus(leader, data)).ok()) return leader.appliedIndex();
  }
}

describe("log cache after an InstallSnapshot (node level)", () => {
  it("an ex-leader's disk-loaded term-1 entries are never applied after a term-2 install", async () => {
    const peers = peerIds(5, 7310);
    const c = new Cluster("stale-cache", peers, { electionTimeoutMs: 1000 });
    try {
      for (const p of peers) await c.start(p, { extra: TINY_CACHE });
      const x = await c.waitLeader();
      await c.apply(x, 3, "old");
      const base = x.describe().lastCommittedIndex;
      await c.ensureSame();
      const xe = x.nodeId().endpoint;
      const z = c.followers()[0]!;
      const ze = z.nodeId().endpoint;
      const majority = [...c.nodes.values()].filter((n) => n !== x && n !== z);
      const me = majority.map((n) => n.nodeId().endpoint);

      // X keeps leading a minority {X, Z} for an election timeout (check-quorum). Its writes
      // to Z are lost at first, so it resends them later from disk.
      c.net.partition([xe, ze], me);
      c.net.cut(xe, ze);
      const stale = Array.from({ length: 10 }, (_, i) => applyStatus(x, `stale${i}`));
      await waitFor(
        () => (x.describe().diskIndex >= base + 10 ? true : undefined),
        DEADLINE_MS,
        "the stale entries on X's disk",
      );
      c.net.heal();
      c.net.partition([xe, ze], me);
      await waitFor(
        () => (z.describe().lastIndex >= base + 10 ? true : undefined),
        DEADLINE_MS,
        "X to replicate its stale entries to Z (read back from X's disk)",
      );

      // The majority elects a term-2 leader and compacts its log past the conflict point.
      for (const round of ["a", "b"]) {
        const index = await write(majority, `new-${round}`);
        await Promise.all(majority.map((n) => n.waitApplied(index)));
        for (const n of majority) await n.snapshot();
      }
      for (const n of majority) assert.ok(n.describe().firstIndex > base + 1, "log compacted");

      // X and Z come back: both get the term-2 snapshot (below their stale entries), then new
      // term-2 entries at the indexes the stale ones held.
      c.net.heal();
      for (let i = 0; i < 12; i++) await write([...c.nodes.values()], `new${i}`);
      for (const s of await Promise.all(stale)) assert.equal(s.ok(), false, "stale write failed");
      await c.ensureSame();
      const installed = (n: Node) => n.describe().lastSnapshotIndex;
      assert.ok(installed(x) > base && installed(x) < base + 10, "X installed a snapshot");
      for (const [key, fsm] of c.fsms) {
        assert.ok(
          fsm.logs.every((l) => !l.startsWith("stale")),
          `${key} applied a stale entry: ${fsm.logs.join(",")}`,
        );
      }
    } finally {
      await c.stopAll();
    }
  });
});
