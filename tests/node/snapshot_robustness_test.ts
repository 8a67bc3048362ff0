// SnapshotExecutor robustness (issue 9): installs that cannot block the Ready loop for ever,
// cancellation on shutdown, saves drained by shutdown, state machine errors reported as such.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Configuration } from "../../src/conf/configuration.ts";
import type { RaftCore } from "../../src/core/raft_core.ts";
import type { InstallSnapshotMessage, SnapshotMeta } from "../../src/core/types.ts";
import { RaftError, RaftException, Status } from "../../src/errors/status.ts";
import { systemClock } from "../../src/util/clock.ts";
import { flags } from "../../src/util/flags.ts";
import type { Closure } from "../../src/node/closure.ts";
import { type FileRequest, FileService } from "../../src/node/file_service.ts";
import { FSMCaller } from "../../src/node/fsm_caller.ts";
import { LogManager } from "../../src/node/log_manager.ts";
import type { NodeManager } from "../../src/node/node_manager.ts";
import { SnapshotExecutor } from "../../src/node/snapshot_executor.ts";
import type { MessageEnvelope } from "../../src/codec/message_codec.ts";
import type { CallOptions } from "../../transports/transport.ts";
import type { SnapshotReader, SnapshotWriter } from "../../storage/snapshot/snapshot.ts";
import { MemoryFileSystem } from "../../storage/fs/memory.ts";
import { LocalSnapshotStorage } from "../../storage/snapshot/local_snapshot_storage.ts";
import type { FileHandle, OpenOptions } from "../../storage/fs/file_system.ts";
import { createLogStorage, createMetaStorage, registerSnapshotStorage } from "../../storage/uri.ts";
import {
  Cluster,
  DEADLINE_MS,
  MockFsm,
  peerIds,
  rejectsWith,
  waitFor,
  withDeadline,
} from "./cluster.ts";

const conf = { peers: Configuration.parse("127.0.0.1:1:0") };

class Fsm extends MockFsm {
  loadError: Error | null = null;
  override async onSnapshotLoad(reader: SnapshotReader): Promise<void> {
    if (this.loadError !== null) throw this.loadError;
    await super.onSnapshotLoad(reader);
  }
}

type Call = (req: FileRequest, opts?: CallOptions) => Promise<Uint8Array>;

let seq = 0;

/** A follower-side executor over memory storage; `call` answers its copy calls. */
async function follower(call: Call, installAttempts = 10) {
  const name = `robust-${seq++}-${Math.random()}`;
  const log = await createLogStorage(`memory://${name}/log`);
  await log.init();
  const meta = await createMetaStorage(`memory://${name}/meta`);
  await meta.init();
  const logManager = new LogManager(log, meta);
  const fsm = new Fsm();
  const caller = new FSMCaller(fsm);
  const storage = new LocalSnapshotStorage(new MemoryFileSystem(), "/snap");
  await storage.init();
  const received: MessageEnvelope[] = [];
  const core = {
    term: () => 1,
    commitIndex: () => 0,
    termAt: () => undefined,
    firstIndex: () => 1,
    snapshotMetaAt: (index: number): SnapshotMeta => ({ index, term: 1, conf }),
  } as unknown as RaftCore;
  const executor = new SnapshotExecutor(storage, {
    groupId: "g",
    endpoint: "127.0.0.1:1",
    fsm,
    caller,
    logManager,
    manager: {
      callFile: (_to: string, _g: string, req: FileRequest, opts?: CallOptions) => call(req, opts),
    } as unknown as NodeManager,
    core: () => core,
    active: () => true,
    receive: (e) => received.push(e),
    drive: () => {},
    electionTimeoutMs: () => 100,
  }, { intervalS: 0, filterBeforeCopyRemote: false, clock: systemClock, installAttempts });
  const offer = (index: number, readerId: number): boolean => {
    const message = {
      type: "InstallSnapshot",
      from: "127.0.0.1:2:0",
      to: "127.0.0.1:1:0",
      term: 1,
      meta: { index, term: 1, conf },
    } as unknown as InstallSnapshotMessage;
    return executor.interceptInstall(
      core,
      {
        groupId: "g",
        message,
        uri: `remote://127.0.0.1:2/${readerId}`,
      } as MessageEnvelope & { message: InstallSnapshotMessage },
    );
  };
  return { executor, storage, fsm, caller, core, logManager, received, offer };
}

/** A leader-side file service serving one snapshot at `index` under reader id 1. */
async function source(index: number): Promise<Call> {
  const storage = new LocalSnapshotStorage(new MemoryFileSystem(), "/leader");
  await storage.init();
  const w = await storage.create();
  await w.writeFile("data", new TextEncoder().encode(JSON.stringify([`state@${index}`])));
  w.saveMeta({
    lastIncludedIndex: index,
    lastIncludedTerm: 1,
    peers: conf.peers,
    oldPeers: new Configuration(),
  });
  await storage.close(w);
  const service = new FileService();
  const id = service.register((await storage.open())!, () => Promise.resolve());
  return (req) => service.handle({ ...req, readerId: id });
}

/** A call that never answers until its signal aborts. */
function hang(opts?: CallOptions): Promise<Uint8Array> {
  return new Promise((_, reject) => {
    if (opts?.signal?.aborted) reject(RaftException.of(RaftError.ECANCELED, "Call was aborted"));
    opts?.signal?.addEventListener(
      "abort",
      () => reject(RaftException.of(RaftError.ECANCELED, "Call was aborted")),
    );
  });
}

const metaAt = (index: number): SnapshotMeta => ({ index, term: 1, conf });

describe("SnapshotExecutor robustness", () => {
  it("cancel() ends an install whose copy hangs (shutdown does not wait for it)", async () => {
    let started!: () => void;
    const calling = new Promise<void>((r) => (started = r));
    const f = await follower((_req, opts) => {
      started();
      return hang(opts);
    });
    f.offer(5, 1); // records the URI (and starts a background download that hangs)
    const install = f.executor.install(metaAt(5), () => false);
    await calling;
    f.executor.cancel();
    await withDeadline(
      rejectsWith(install, RaftError.ECANCELED),
      DEADLINE_MS,
      "install to end on cancel",
    );
    await withDeadline(f.executor.stop(), DEADLINE_MS, "stop");
  });

  it("an install whose source is dead fails after a bounded number of copies", async () => {
    let calls = 0;
    const f = await follower(() => {
      calls++;
      return Promise.reject(RaftException.of(RaftError.EHOSTUNREACH, "Peer is gone"));
    }, 3);
    f.offer(5, 1); // the background download fails at once
    await waitFor(() => (f.executor.status === "IDLE" ? true : undefined), DEADLINE_MS, "idle");
    const before = calls;
    await withDeadline(
      rejectsWith(f.executor.install(metaAt(5), () => false), RaftError.EHOSTUNREACH),
      DEADLINE_MS,
      "install to give up",
    );
    // Three copy attempts, each sending its first call once and retrying it 3 times (braft).
    assert.equal(calls - before, 3 * 4, "three copy attempts of four calls");
    assert.equal(f.executor.status, "IDLE");
  });

  it("an install aborts a newer background download that holds the storage's writer", async () => {
    const serve = await source(5);
    const f = await follower((req, opts) => (req.readerId === 2 ? hang(opts) : serve(req)));
    f.offer(5, 1); // URI of snapshot 5 ...
    await waitFor(() => (f.received.length === 1 ? true : undefined), DEADLINE_MS, "download 5");
    // ... whose files a newer InstallSnapshot's download drops (the core did not accept 5 yet
    // in this fake), then hangs holding the writer.
    assert.equal(f.offer(9, 2), true);
    assert.equal(f.executor.status, "DOWNLOADING");
    await withDeadline(f.executor.install(metaAt(5), () => false), DEADLINE_MS, "install 5");
    assert.equal(f.logManager.snapshotMeta().index, 5);
    assert.deepEqual(f.fsm.logs, ["state@5"]);
    assert.equal(f.storage instanceof LocalSnapshotStorage && f.storage.lastSnapshotIndex, 5);
    await f.executor.stop();
  });

  it("onSnapshotLoad failing during an install is a state machine error", async () => {
    const f = await follower(await source(5));
    f.fsm.loadError = new Error("bad state");
    f.offer(5, 1);
    await waitFor(() => (f.received.length === 1 ? true : undefined), DEADLINE_MS, "download");
    const e = await rejectsWith(
      f.executor.install(metaAt(5), () => false),
      RaftError.ESTATEMACHINE,
    );
    assert.match(e.message, /bad state/);
    assert.equal(f.executor.status, "IDLE");
  });

  it("an install waits for a save in progress instead of failing on the busy storage", async () => {
    const f = await follower(await source(5), 1);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let saving!: () => void;
    const started = new Promise<void>((r) => (saving = r));
    f.fsm.onSnapshotSave = async (writer: SnapshotWriter, done: Closure): Promise<void> => {
      await writer.writeFile("data", new TextEncoder().encode("[]"));
      saving();
      void gate.then(() => done.run(Status.OK()));
    };
    f.caller.resetApplied(3, 1);
    const save = f.executor.save();
    await started;
    assert.equal(f.offer(5, 1), true); // no download while saving: the install must copy
    const install = f.executor.install(metaAt(5), () => false);
    await rejectsWith(f.executor.save(), RaftError.EBUSY);
    release();
    await withDeadline(Promise.all([save, install]), DEADLINE_MS, "save and install");
    assert.equal(f.logManager.snapshotMeta().index, 5);
    assert.deepEqual(f.fsm.logs, ["state@5"]);
  });

  it("a save while the core holds a snapshot not yet installed is refused with EBUSY", async () => {
    const f = await follower(await source(40));
    f.caller.resetApplied(11, 1);
    f.core.firstIndex = () => 41; // the core accepted snapshot 40; the install is pending
    await rejectsWith(f.executor.save(), RaftError.EBUSY);
    assert.equal(f.executor.status, "IDLE");
  });

  it("node: shutdown waits for a snapshot save in progress", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let saving!: () => void;
    const saveStarted = new Promise<void>((r) => (saving = r));
    const events: string[] = [];
    class SlowFsm extends MockFsm {
      override async onSnapshotSave(writer: SnapshotWriter, done: Closure): Promise<void> {
        await writer.writeFile("data", new TextEncoder().encode(JSON.stringify(this.logs)));
        saving();
        void gate.then(() => {
          events.push("save finishing");
          done.run(Status.OK());
        });
      }
    }
    const [p] = peerIds(1, 5700);
    const c = new Cluster("drainsave", [p!]);
    try {
      const node = await c.start(p!, { fsm: new SlowFsm() });
      await c.waitLeader();
      await c.apply(node, 3);
      const snap = node.snapshot().then(() => events.push("saved"), (e) => {
        events.push(`save failed: ${e}`);
      });
      await saveStarted;
      const down = node.shutdown().then(() => events.push("shut down"));
      // Give shutdown every chance to finish early (it must not).
      for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 1));
      release();
      await withDeadline(Promise.all([snap, down]), DEADLINE_MS, "shutdown");
      assert.deepEqual(events, ["save finishing", "saved", "shut down"]);
      // The restarted node on the same paths finds the snapshot.
      const again = await c.start(p!);
      assert.ok(again.describe().lastSnapshotIndex > 0);
    } finally {
      await c.stopAll();
    }
  });

  it("node: onSnapshotLoad failing during an install is reported as ESTATEMACHINE", async () => {
    const peers = peerIds(3, 5710);
    const c = new Cluster("loadfail", peers);
    try {
      for (const p of peers) await c.start(p);
      const leader = await c.waitLeader();
      const lagger = c.followers()[0]!.nodeId();
      await c.stop(lagger);
      await c.apply(leader, 10);
      await leader.snapshot();
      await c.apply(leader, 5, "b");
      await leader.snapshot();
      await c.start(lagger);
      c.fsm(lagger).failLoad = true;
      const errors = await waitFor(
        () => (c.fsm(lagger).errors.length > 0 ? c.fsm(lagger).errors : undefined),
        DEADLINE_MS,
        "the install to fail",
      );
      assert.equal(errors[0]!.code, RaftError.ESTATEMACHINE, errors[0]!.message);
    } finally {
      await c.stopAll();
    }
  });

  it("node: a snapshot save during an install's publish is refused; the install stays whole", async () => {
    // Snapshot storages on one file system whose publish of `hookPath` can be paused.
    let hookPath = "";
    let hook: (() => Promise<void>) | null = null;
    class HookedFs extends MemoryFileSystem {
      override async open(path: string, options: OpenOptions = {}): Promise<FileHandle> {
        const h = hook;
        if (h !== null && path === hookPath) {
          hook = null;
          await h();
        }
        return await super.open(path, options);
      }
    }
    const fs = new HookedFs();
    registerSnapshotStorage("hooked-snap", (path) => new LocalSnapshotStorage(fs, `/${path}`));
    const peers = peerIds(3, 5720);
    const c = new Cluster("publishrace", peers);
    const uri = (p: (typeof peers)[number]) => `hooked-snap://publishrace/${p.endpoint}`;
    try {
      for (const p of peers) await c.start(p, { extra: { snapshotUri: uri(p) } });
      const leader = await c.waitLeader();
      await c.apply(leader, 10);
      const lagger = c.followers()[0]!;
      const laggerId = lagger.nodeId();
      await waitFor(
        () => (c.fsm(laggerId).logs.length === 10 ? true : undefined),
        DEADLINE_MS,
        "the follower to apply",
      );
      c.net.isolate(laggerId.endpoint);
      await c.apply(leader, 20, "b");
      await leader.snapshot();
      await c.apply(leader, 5, "c");
      await leader.snapshot();
      // When the follower publishes the installed snapshot, ask it for a snapshot of its own.
      const saves: Promise<unknown>[] = [];
      hookPath = `/publishrace/${laggerId.endpoint}/temp/__raft_snapshot_meta`;
      hook = async () => {
        const save = lagger.snapshot();
        saves.push(save.catch((e: unknown) => e));
        await withDeadline(save, 2000, "the competing save").catch(() => {});
      };
      c.net.heal();
      await c.ensureSame();
      assert.equal(saves.length, 1, "the hook ran");
      const refused = await saves[0];
      assert.ok(refused instanceof RaftException, `save was refused: ${String(refused)}`);
      assert.equal(refused.code, RaftError.EBUSY);
      assert.deepEqual(c.fsm(laggerId).errors, []);
      // The installed snapshot is whole: the follower restarts from it.
      await c.stop(laggerId);
      const again = await c.start(laggerId, { extra: { snapshotUri: uri(laggerId) } });
      assert.ok(again.describe().lastSnapshotIndex > 0);
      await c.ensureSame();
      assert.equal(c.fsm(laggerId).logs.length, 35);
    } finally {
      await c.stopAll();
    }
  });

  it("node: shutdown aborts a snapshot download and leaves no file open", async () => {
    const saved = flags.raft_max_byte_count_per_rpc;
    flags.raft_max_byte_count_per_rpc = 512; // many small copy calls
    const laggerFs = new MemoryFileSystem();
    const otherFs = new MemoryFileSystem();
    const peers = peerIds(3, 5730);
    const lagger = peers[2]!;
    registerSnapshotStorage(
      "abort-snap",
      (path) =>
        new LocalSnapshotStorage(path.includes(lagger.endpoint) ? laggerFs : otherFs, `/${path}`),
    );
    const c = new Cluster("abortcopy", peers);
    const uri = (p: (typeof peers)[number]) => `abort-snap://abortcopy/${p.endpoint}`;
    try {
      for (const p of peers.slice(0, 2)) await c.start(p, { extra: { snapshotUri: uri(p) } });
      const leader = await c.waitLeader();
      await c.apply(leader, 100, "x".repeat(200)); // ~20 KB of state
      await leader.snapshot();
      await c.apply(leader, 5, "b");
      await leader.snapshot();
      c.net.setDelay(5, 10); // slow the copy down
      const node = await c.start(lagger, { extra: { snapshotUri: uri(lagger) } });
      await waitFor(
        () => (laggerFs.openFiles > 0 ? true : undefined),
        DEADLINE_MS,
        "the download to write a file",
      );
      assert.equal(node.describe().snapshotStatus, "DOWNLOADING");
      await withDeadline(node.shutdown(), DEADLINE_MS, "shutdown");
      assert.equal(laggerFs.openFiles, 0, "the download was aborted and its writer closed");
      assert.deepEqual(await laggerFs.readDir(`/abortcopy/${lagger.endpoint}`), []);
      c.nodes.delete(lagger.key());
      c.net.setDelay(0, 0);
      await c.start(lagger, { extra: { snapshotUri: uri(lagger) } });
      await c.ensureSame();
    } finally {
      flags.raft_max_byte_count_per_rpc = saved;
      await c.stopAll();
    }
  });
});
