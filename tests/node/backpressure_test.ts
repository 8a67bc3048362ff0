/**
 * Backpressure: a slow state machine while clients apply as fast as they can. The leader's
 * admission control answers EBUSY beyond `raft_max_pending_applies`; every node hands at most
 * `raft_max_applying_bytes` of committed entries to its state machine; nothing accepted is
 * lost and nothing is applied twice.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ENTRY_OVERHEAD_BYTES } from "../../src/core/entry.ts";
import { RaftError, RaftException, Status } from "../../src/errors/status.ts";
import type { Iterator } from "../../src/node/iterator.ts";
import type { Node } from "../../src/node/node.ts";
import { flags } from "../../src/util/flags.ts";
import { Cluster, DEADLINE_MS, MockFsm, peerIds, waitFor, withDeadline } from "./cluster.ts";

/** A gate the state machine waits on before each `onApply` batch. */
class Gate {
  #open = false;
  #waiters: Array<() => void> = [];

  wait(): Promise<void> {
    if (this.#open) return Promise.resolve();
    return new Promise((r) => this.#waiters.push(r));
  }

  open(): void {
    this.#open = true;
    for (const w of this.#waiters.splice(0)) w();
  }
}

/** MockFsm whose onApply waits for a gate, then yields once per batch (a slow machine). */
class SlowFsm extends MockFsm {
  readonly gate: Gate;
  batches = 0;

  constructor(gate: Gate) {
    super();
    this.gate = gate;
  }

  override async onApply(iter: Iterator): Promise<void> {
    await this.gate.wait();
    await new Promise((r) => setTimeout(r, 0)); // slow even when open: one batch per turn
    this.batches++;
    for (; iter.valid(); iter.next()) {
      this.logs.push(iter.data().text());
      this.appliedIndex = iter.index();
      iter.done()?.run(Status.OK());
    }
  }
}

const MAX_PENDING = 64;
const PAYLOAD = 16; // bytes per task ("t000000" padded)
const APPLYING_ENTRIES = 8;
const MAX_APPLYING = APPLYING_ENTRIES * (PAYLOAD + ENTRY_OVERHEAD_BYTES);

/** Sets the backpressure flags for the nodes started inside `body`. */
async function withFlags(body: () => Promise<void>): Promise<void> {
  const saved = { ...flags };
  flags.raft_max_pending_applies = MAX_PENDING;
  flags.raft_max_pending_apply_bytes = 1 << 20;
  flags.raft_max_applying_bytes = MAX_APPLYING;
  try {
    await body();
  } finally {
    Object.assign(flags, saved);
  }
}

const payload = (i: number): Uint8Array => new TextEncoder().encode(`t${i}`.padEnd(PAYLOAD, "."));

/** Checks the bounds on every node; returns the largest state machine backlog seen. */
function checkBounds(c: Cluster): number {
  let worst = 0;
  for (const n of c.nodes.values()) {
    const st = n.describe();
    assert.equal(typeof st.pendingQueueSize, "number", "describe() reports pendingQueueSize");
    assert.equal(typeof st.applyingIndex, "number", "describe() reports applyingIndex");
    assert.ok(
      st.pendingQueueSize <= MAX_PENDING,
      `${st.peerId}: ${st.pendingQueueSize} tasks pending, limit ${MAX_PENDING}`,
    );
    const backlog = st.applyingIndex === 0 ? 0 : st.applyingIndex - st.knownAppliedIndex;
    // the bound may be exceeded by the one entry that is always handed out
    assert.ok(
      backlog <= APPLYING_ENTRIES + 1,
      `${st.peerId}: ${backlog} entries wait in the state machine caller (applying ${st.applyingIndex}, applied ${st.knownAppliedIndex}, committed ${st.lastCommittedIndex})`,
    );
    worst = Math.max(worst, backlog);
  }
  return worst;
}

interface Outcome {
  ok: number[];
  busy: number[];
  other: Status[];
  settled: number;
}

/** Applies `tasks` one after the other without waiting, yielding every `every` tasks. */
async function flood(
  c: Cluster,
  leader: Node,
  from: number,
  tasks: number,
  every: number,
  out: Outcome,
): Promise<void> {
  for (let i = from; i < from + tasks; i++) {
    leader.apply({
      data: payload(i),
      done: {
        run: (s: Status) => {
          out.settled++;
          if (s.ok()) out.ok.push(i);
          else if (s.code === RaftError.EBUSY) {
            assert.match(s.message, /overloaded/);
            out.busy.push(i);
          } else out.other.push(s);
        },
      },
    });
    if ((i + 1) % every === 0) {
      await new Promise((r) => setTimeout(r, 0));
      checkBounds(c);
    }
  }
}

describe("backpressure", () => {
  it("a slow state machine: applies get EBUSY, memory stays bounded, nothing is lost", async () => {
    await withFlags(async () => {
      const gate = new Gate();
      const peers = peerIds(3, 7300);
      const c = new Cluster("backpressure", peers, { electionTimeoutMs: 2000 });
      try {
        for (const p of peers) await c.start(p, { fsm: new SlowFsm(gate) });
        const leader = await c.waitLeader();
        const term = leader.term();
        const out: Outcome = { ok: [], busy: [], other: [], settled: 0 };

        // Phase 1: the state machines are stuck; the client floods.
        await flood(c, leader, 0, 1000, 25, out);
        await waitFor(() => out.settled >= 1000 - MAX_PENDING || undefined, DEADLINE_MS, "EBUSY");
        assert.equal(out.ok.length, 0, "nothing can be applied while the gate is shut");
        assert.equal(out.busy.length, 1000 - MAX_PENDING, "all but the first tasks are refused");
        assert.equal(leader.describe().pendingQueueSize, MAX_PENDING);
        await assert.rejects(
          leader.applyAsync(payload(99_999)),
          (e: unknown) => e instanceof RaftException && e.code === RaftError.EBUSY,
        );
        // the entries are committed everywhere, but only a bounded number reach each
        // state machine caller; the rest wait in the log
        const last = leader.describe().lastLogId.index;
        await waitFor(
          () =>
            [...c.nodes.values()].every((n) => n.describe().lastCommittedIndex >= last) ||
            undefined,
          DEADLINE_MS,
          "commit everywhere",
        );
        for (const n of c.nodes.values()) {
          const st = n.describe();
          assert.ok(st.applyingIndex > 0 && st.applyingIndex < last, "a window is handed out");
        }
        checkBounds(c);

        // Phase 2: the state machines run (slowly); the client keeps flooding.
        gate.open();
        await flood(c, leader, 1000, 3000, 10, out);
        await waitFor(
          () => out.settled === 4000 || undefined,
          DEADLINE_MS,
          "every task settled",
        );
        assert.deepEqual(out.other, [], "no task failed other than with EBUSY");
        assert.equal(leader.term(), term, "the leader did not change");
        assert.ok(out.busy.length > 1000 - MAX_PENDING, "EBUSY also while applying slowly");
        assert.ok(out.ok.length >= MAX_PENDING, `${out.ok.length} tasks applied`);
        assert.equal(out.ok.length + out.busy.length, 4000, "every accepted task applied");

        // every accepted task is applied exactly once on every node, in proposal order
        await c.ensureSame();
        const want = out.ok.slice().sort((a, b) => a - b).map((i) =>
          new TextDecoder().decode(payload(i))
        );
        for (const [key, fsm] of c.fsms) {
          assert.deepEqual(fsm.logs, want, `${key} applied every accepted task once, in order`);
        }
        const idle = leader.describe();
        assert.equal(idle.pendingQueueSize, 0);
        assert.equal(idle.pendingQueueBytes, 0);
        assert.equal(idle.applyingIndex, 0);
      } finally {
        gate.open();
        await c.stopAll();
      }
    });
  });

  it("a restarted follower catches up through a bounded applying window", async () => {
    await withFlags(async () => {
      const open = new Gate();
      open.open();
      const peers = peerIds(3, 7310);
      const c = new Cluster("catchup", peers, { electionTimeoutMs: 2000 });
      try {
        for (const p of peers) await c.start(p, { fsm: new SlowFsm(open) });
        const leader = await c.waitLeader();
        const lagging = c.followers()[0]!.nodeId();
        await c.stop(lagging);
        for (let round = 0; round < 10; round++) {
          await c.apply(leader, 40, `r${round}-`); // stays under the pending limit
        }
        // restart on the same storage with a stuck state machine: everything is to be
        // applied again, and only a window of it is handed out
        const gate = new Gate();
        const fsm = new SlowFsm(gate);
        const node = await c.start(lagging, { fsm });
        await waitFor(
          () => node.describe().lastCommittedIndex >= leader.appliedIndex() || undefined,
          DEADLINE_MS,
          "the follower learns the commit index",
        );
        const st = node.describe();
        assert.ok(st.applyingIndex > 0, "entries were handed out");
        assert.ok(st.applyingIndex - st.knownAppliedIndex <= APPLYING_ENTRIES + 1);
        gate.open();
        await withDeadline(node.waitApplied(leader.appliedIndex()), DEADLINE_MS, "catch up");
        await c.ensureSame();
        assert.equal(fsm.logs.length, 400);
        assert.ok(fsm.batches >= 400 / (APPLYING_ENTRIES + 1), `${fsm.batches} batches`);
      } finally {
        await c.stopAll();
      }
    });
  });

  it("a leader that steps down keeps the closures of committed entries it held back", async () => {
    await withFlags(async () => {
      const gate = new Gate();
      const peers = peerIds(3, 7320);
      const c = new Cluster("stepdown", peers, { electionTimeoutMs: 2000 });
      try {
        for (const p of peers) await c.start(p, { fsm: new SlowFsm(gate) });
        const old = await c.waitLeader();
        const statuses: Status[] = [];
        for (let i = 0; i < 30; i++) {
          old.apply({ data: payload(i), done: { run: (s: Status) => statuses.push(s) } });
        }
        // committed everywhere; the stuck state machine got only a window of them
        const last = old.describe().lastLogId.index;
        await waitFor(
          () =>
            [...c.nodes.values()].every((n) => n.describe().lastCommittedIndex >= last) ||
            undefined,
          DEADLINE_MS,
          "commit everywhere",
        );
        assert.ok(old.describe().applyingIndex < last, "entries are held back");
        const target = c.followers()[0]!.nodeId();
        assert.ok(old.transferLeadershipTo(target).ok());
        await waitFor(
          () => c.nodes.get(target.key())?.isLeader() || undefined,
          DEADLINE_MS,
          "the target to lead",
        );
        gate.open();
        await waitFor(() => statuses.length === 30 || undefined, DEADLINE_MS, "30 closures");
        // committed entries are applied, so their closures say OK (not "leader stepped down")
        assert.deepEqual(statuses.filter((s) => !s.ok()).map(String), []);
        await c.ensureSame();
        assert.equal(c.fsm(old.nodeId()).logs.length, 30);
      } finally {
        gate.open();
        await c.stopAll();
      }
    });
  });
});
