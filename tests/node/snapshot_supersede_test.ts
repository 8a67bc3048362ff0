// Issue 9 item 7: a newer snapshot supersedes an older install. A follower's core holds S1
// (accepted, handed out in a Ready) whose files were not downloaded, so the install copies them
// itself — from a source that dies. A newer InstallSnapshot S2 from a new leader must take over
// instead of the install failing after its capped attempts (the node would go to ERROR).
//
// Harness: a real RaftCore, LogManager and SnapshotExecutor for the follower, driven the way the
// node's Ready loop drives them; the sources are NodeManager file services on a MemoryNetwork.
// (A full Node always downloads a snapshot before its core accepts it, so its install has the
// files at hand; the copy fallback is reached only through a core holding a snapshot without
// them, which this harness sets up by stepping S1 into the core directly.)
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Configuration } from "../../src/conf/configuration.ts";
import type { MessageEnvelope } from "../../src/codec/message_codec.ts";
import { RaftCore } from "../../src/core/raft_core.ts";
import type { InstallSnapshotMessage, Message, Ready, SnapshotMeta } from "../../src/core/types.ts";
import { Prng } from "../../src/util/prng.ts";
import { systemClock } from "../../src/util/clock.ts";
import { FSMCaller } from "../../src/node/fsm_caller.ts";
import { LogManager } from "../../src/node/log_manager.ts";
import { NodeManager } from "../../src/node/node_manager.ts";
import { SnapshotExecutor } from "../../src/node/snapshot_executor.ts";
import { MemoryFileSystem } from "../../storage/fs/memory.ts";
import { LocalSnapshotStorage } from "../../storage/snapshot/local_snapshot_storage.ts";
import { createLogStorage, createMetaStorage } from "../../storage/uri.ts";
import { MemoryNetwork } from "../../transports/memory/memory_network.ts";
import { DEADLINE_MS, MockFsm, waitFor, withDeadline } from "./cluster.ts";

const GROUP = "supersede";
let seq = 0;

async function harness() {
  const n = seq++;
  const net = new MemoryNetwork({ seed: 11 });
  const base = 7600 + 10 * n;
  const A = `127.0.0.1:${base}`; // leader of term 3, source of S1
  const B = `127.0.0.1:${base + 1}`; // leader of term 4, source of S2
  const F = `127.0.0.1:${base + 2}`; // the follower
  const five = {
    peers: Configuration.parse(
      [A, B, F, `127.0.0.1:${base + 3}`, `127.0.0.1:${base + 4}`].map((e) => `${e}:0`).join(","),
    ),
  };
  const meta = (index: number, term: number): SnapshotMeta => ({ index, term, conf: five });

  /** A file service at `endpoint` serving a snapshot at `index`; counts the calls it gets. */
  async function source(endpoint: string, s: SnapshotMeta) {
    const storage = new LocalSnapshotStorage(new MemoryFileSystem(), "/leader");
    await storage.init();
    const w = await storage.create();
    await w.writeFile("data", new TextEncoder().encode(JSON.stringify([`state@${s.index}`])));
    w.saveMeta({
      lastIncludedIndex: s.index,
      lastIncludedTerm: s.term,
      peers: s.conf.peers,
      oldPeers: new Configuration(),
    });
    await storage.close(w);
    const manager = NodeManager.for(net.transport(endpoint));
    const id = manager.fileService.register((await storage.open())!, () => Promise.resolve());
    /** `dieAt`: the source is cut off while it serves this call (its answer is lost). */
    const served = { calls: 0, dieAt: 0 };
    const handle = manager.fileService.handle.bind(manager.fileService);
    manager.fileService.handle = (req) => {
      if (++served.calls === served.dieAt) net.isolate(endpoint);
      return handle(req);
    };
    const envelope = (term: number): MessageEnvelope & { message: InstallSnapshotMessage } => ({
      groupId: GROUP,
      message: { type: "InstallSnapshot", from: `${endpoint}:0`, to: `${F}:0`, term, meta: s },
      uri: `remote://${endpoint}/${id}`,
    });
    return { served, envelope };
  }

  const log = await createLogStorage(`memory://supersede-${n}-${Math.random()}/log`);
  await log.init();
  const metaStorage = await createMetaStorage(`memory://supersede-${n}-${Math.random()}/meta`);
  await metaStorage.init();
  const lm = new LogManager(log, metaStorage);
  const core = new RaftCore({ id: `${F}:0`, storage: lm, prng: new Prng(3), initialConf: five });
  const fsm = new MockFsm();
  const caller = new FSMCaller(fsm);
  const storage = new LocalSnapshotStorage(new MemoryFileSystem(), "/follower");
  await storage.init();
  const manager = NodeManager.for(net.transport(F));
  /** What the node's `receive` does with a message. */
  const receive = (e: MessageEnvelope): void => {
    const m = e.message;
    if (m.type === "InstallSnapshot" && executor.interceptInstall(core, { ...e, message: m })) {
      return;
    }
    core.step(m);
  };
  const executor: SnapshotExecutor = new SnapshotExecutor(storage, {
    groupId: GROUP,
    endpoint: F,
    fsm,
    caller,
    logManager: lm,
    manager,
    core: () => core,
    active: () => true,
    receive,
    drive: () => {},
    electionTimeoutMs: () => 100,
  }, { intervalS: 0, filterBeforeCopyRemote: false, clock: systemClock, installAttempts: 4 });

  /** The node's Ready processing: install, write unless superseded, persist, advance. */
  async function process(rd: Ready): Promise<Message[]> {
    let superseded = false;
    if (rd.snapshot !== undefined) superseded = !await executor.install(rd.snapshot, () => false);
    if (!superseded) await lm.append(rd.entries);
    if (rd.hardState !== undefined) await lm.setHardState(rd.hardState);
    const acks = [...rd.messagesAfterPersist];
    core.advance(rd);
    return acks;
  }
  return { net, A, B, meta, source, core, lm, fsm, executor, storage, receive, process };
}

/** Success InstallSnapshotResps in `msgs` as `to@index`. */
const acks = (msgs: readonly Message[]): string[] =>
  msgs.flatMap((m) => m.type === "InstallSnapshotResp" && m.success ? [`${m.to}@${m.index}`] : []);

describe("a newer snapshot supersedes an older install", () => {
  it("S1's source dies mid-install: S2 from a new leader is installed, not an error", async () => {
    const h = await harness();
    const s1 = await h.source(h.A, h.meta(9, 3));
    const s2 = await h.source(h.B, h.meta(14, 4));
    // The core accepted S1 without its files; the install's copy gets one answer from S1's
    // source, which dies during the next call.
    const env1 = s1.envelope(3);
    h.net.isolate(h.A);
    h.receive(env1); // records S1's copy URI; the background download fails at once
    await waitFor(() => (h.executor.status === "IDLE" ? true : undefined), DEADLINE_MS, "idle");
    h.net.heal();
    h.core.step(env1.message);
    const rd1 = h.core.ready();
    assert.deepEqual(rd1.snapshot, h.meta(9, 3));
    s1.served.dieAt = s1.served.calls + 2;
    const installing = h.process(rd1);
    h.receive(s2.envelope(4)); // the new leader's snapshot, held back during the install
    await waitFor(
      () => (s1.served.calls >= s1.served.dieAt ? true : undefined),
      DEADLINE_MS,
      "S1's source to die",
    );
    const sent1 = await withDeadline(installing, DEADLINE_MS, "S1's install to end");
    assert.equal(h.core.superseded(rd1), true);
    assert.deepEqual(acks(sent1), [], "nothing of S1 is acknowledged");
    assert.equal(h.lm.snapshotMeta().index, 0, "S1 not installed");

    const rd2 = h.core.ready();
    assert.deepEqual(rd2.snapshot, h.meta(14, 4));
    const calls2 = s2.served.calls;
    const sent2 = await withDeadline(h.process(rd2), DEADLINE_MS, "S2's install");
    assert.equal(s2.served.calls, calls2, "S2's files were prepared: no second download");
    assert.deepEqual(acks(sent2), [`${h.B}:0@14`]);
    assert.equal(h.core.pendingSnapshot(), undefined);
    assert.equal(h.lm.snapshotMeta().index, 14);
    assert.equal(h.executor.lastSnapshot.index, 14);
    assert.deepEqual(h.fsm.logs, ["state@14"]);
    assert.equal(h.core.appliedIndex(), 14);
    assert.equal(h.executor.status, "IDLE");
    await h.executor.stop();
    await h.net.close();
  });

  it("a newer snapshot taken by the core before the install starts keeps its files", async () => {
    const h = await harness();
    const s1 = await h.source(h.A, h.meta(9, 3));
    const s2 = await h.source(h.B, h.meta(14, 4));
    const env1 = s1.envelope(3);
    h.net.isolate(h.A); // S1's source is dead from the start
    h.receive(env1);
    await waitFor(() => (h.executor.status === "IDLE" ? true : undefined), DEADLINE_MS, "idle");
    h.core.step(env1.message);
    const rd1 = h.core.ready();
    // Before the Ready loop gets to rd1, S2 is downloaded and the core takes it.
    h.receive(s2.envelope(4));
    await waitFor(
      () => (h.core.pendingSnapshot()?.index === 14 ? true : undefined),
      DEADLINE_MS,
      "the core to take S2",
    );
    assert.equal(h.core.superseded(rd1), true);
    await withDeadline(h.process(rd1), DEADLINE_MS, "S1's install to end");
    const calls = s2.served.calls;
    const rd2 = h.core.ready();
    await withDeadline(h.process(rd2), DEADLINE_MS, "S2's install");
    assert.ok(calls >= 2, `a copy takes several calls (${calls})`);
    assert.equal(s2.served.calls, calls, "S2's files were kept, not copied again");
    assert.equal(h.lm.snapshotMeta().index, 14);
    assert.deepEqual(h.fsm.logs, ["state@14"]);
    await h.executor.stop();
    await h.net.close();
  });
});
