/**
 * A deterministic simulated cluster of `RaftCore`s: a seeded network (drop, duplicate,
 * reorder, delay, partitions, one-way links), durable in-memory storage with crash/restart
 * that loses everything not yet persisted, and safety checks after every step.
 *
 * @module
 */

import { ChunkChain } from "../../src/bytes/chunk_chain.ts";
import { Configuration } from "../../src/conf/configuration.ts";
import { ENTRY_OVERHEAD_BYTES, EntryType, type LogEntry } from "../../src/core/entry.ts";
import { MemoryCoreStorage, RaftCore, type RaftCoreOptions } from "../../src/core/mod.ts";
import type { Message, ReadState, Ready, SnapshotMeta } from "../../src/core/types.ts";
import { Prng } from "../../src/util/prng.ts";

/** A safety violation found by the checker. */
export class SafetyViolation extends Error {
  /** @param message What failed. */
  constructor(message: string) {
    super(message);
    this.name = "SafetyViolation";
  }
}

interface Packet {
  at: number;
  seq: number;
  msg: Message;
  snap?: string[];
}

/** Options for a {@linkcode Cluster}. */
export interface ClusterOptions {
  /** Seed for everything random. */
  seed: number;
  /** Number of nodes in the initial voting configuration. */
  voters: number;
  /** Extra nodes that exist but start outside the configuration. */
  spares?: number;
  /** Core options applied to every node. */
  core?: Partial<RaftCoreOptions>;
  /** Time units per tick (default 4). */
  tickUnits?: number;
  /** Message delay range in units (default [1, 6]). */
  delay?: [number, number];
  /** Persist delay range in units (default [0, 3]). */
  persistDelay?: [number, number];
  /** Per-node core options. */
  nodeCore?: (id: string) => Partial<RaftCoreOptions>;
  /**
   * Asynchronous applying: each core gets a small `maxApplyingBytes`, committed entries
   * queue in the node's state machine and are applied a few per step, reported with
   * `appliedTo` (a crash loses the queue, as a process's memory).
   */
  asyncApply?: boolean;
  /**
   * Probability that a node with work does not take a Ready in a given step, so several
   * messages and ticks reach its core between two `ready()` hand-outs (default 0).
   */
  readyLag?: number;
  /**
   * Probability that a node takes its Ready right after one delivered message instead of
   * after the whole step's deliveries (default 0).
   */
  interleave?: number;
}

/**
 * Durable in-memory storage whose log can go "cold": `entries()` then answers `null` (as an
 * asynchronous file log does for entries not in its cache) until the driver warms it and
 * calls `notifyStorageReady()`.
 */
export class SimStorage extends MemoryCoreStorage {
  /** While true, `entries()` is not available synchronously. */
  cold = false;

  /**
   * Entries, or `null` while cold.
   *
   * @param lo First index.
   * @param hi One past the last index.
   * @param maxBytes Byte budget.
   * @returns The entries or `null`.
   */
  override entries(lo: number, hi: number, maxBytes: number): LogEntry[] {
    if (this.cold) return null as unknown as LogEntry[];
    return super.entries(lo, hi, maxBytes);
  }
}

/** One simulated node: durable storage, a core (when up), and its state machine. */
export class SimNode {
  /** Peer key. */
  readonly id: string;
  /** Durable storage (survives crashes). */
  storage: SimStorage = new SimStorage();
  /** Durable snapshot data (state machine at the snapshot index). */
  snapData: string[] = [];
  /** The running core, or null while crashed. */
  core: RaftCore | null = null;
  /** State machine: key of every applied entry, fsm[i - 1] for index i. */
  fsm: string[] = [];
  /** Asynchronous applying: entries handed out by the core, not yet applied. */
  applyQueue: LogEntry[] = [];
  /** Asynchronous applying: the core's `maxApplyingBytes`. */
  maxApplying = Infinity;
  /** Ready being persisted. */
  outstanding: { rd: Ready; at: number } | null = null;
  /** Snapshot payloads received, by "index:term". */
  inbox = new Map<string, string[]>();
  /** Read states received. */
  reads: ReadState[] = [];
  /** Last term seen (for monotonicity across restarts). */
  lastTerm = 0;
  /** Last role@term seen in a Ready. */
  lastRole = "";
  /** Highest persisted term. */
  durableTerm = 0;
  /** Last commit seen in this incarnation. */
  lastCommit = 0;
  /** Number of the incarnation. */
  incarnation = 0;
  /** Tick phase offset. */
  phase: number;
  /** Committed prefix already compared with the global committed log. */
  checkedCommit = 0;
  /** Persist delay range of a slow disk (overrides the cluster's while set). */
  slowDisk: [number, number] | null = null;

  /**
   * @param id Peer key.
   * @param phase Tick phase.
   */
  constructor(id: string, phase: number) {
    this.id = id;
    this.phase = phase;
  }
}

/** Key identifying an entry's content. */
export function entryKey(e: LogEntry): string {
  if (e.type === EntryType.DATA) return `d:${e.data.text()}`;
  if (e.type === EntryType.CONFIGURATION) {
    return `c:${e.term}:${e.conf!.peers}|${e.conf!.oldPeers ?? ""}|${e.conf!.learners ?? ""}`;
  }
  return `n:${e.term}`;
}

/** Keeps about the last 128 packets of one kind. */
function remember(h: Packet[], p: Packet): void {
  if (h.length >= 160) h.splice(0, 32);
  h.push(p);
}

/**
 * The simulated cluster.
 */
export class Cluster {
  /** Randomness for the schedule (the cores get their own derived seeds). */
  readonly prng: Prng;
  /** All nodes by key. */
  readonly nodes: Map<string, SimNode> = new Map();
  /** Node keys in order. */
  readonly ids: string[];
  /** Current time in units. */
  now = 0;
  /** Probability a packet is dropped. */
  dropRate = 0;
  /** Probability a packet is duplicated. */
  dupRate = 0;
  /** Message delay range in units. */
  delay: [number, number];
  /** Persist delay range in units. */
  persistDelay: [number, number];
  /** See {@linkcode ClusterOptions.readyLag}. */
  readyLag: number;
  /**
   * Probability that a message meeting a blocked link is held (as TCP retransmits) and
   * delivered once the link heals, rather than lost; a heal then delivers a burst of old
   * messages from both sides of the partition.
   */
  holdRate = 0;
  /**
   * Probability that an AppendEntries with entries is overtaken by a copy of itself with
   * entries cut off at the end but the commit field kept (so it commits past its last entry).
   */
  shortenRate = 0;
  /** Probability that a TimeoutNow is delayed by 10–80 more units. */
  lateTimeoutNow = 0;
  /** Blocked directed links "from>to". */
  readonly blocked: Set<string> = new Set();
  /** Writes acknowledged to a client: index → entry key. */
  readonly acked: Map<number, string> = new Map();
  /** Committed (applied somewhere) entries: index → entry key. */
  readonly committed: Map<number, string> = new Map();
  /** Counters of interesting events (for reports). */
  readonly stats: Record<string, number> = {};
  /** Log trace for replay output. */
  readonly trace: string[] = [];
  readonly #opts: ClusterOptions;
  #packets: Packet[] = [];
  #seq = 0;
  /** Recent packets for adversarial replays: any AppendEntries, those with entries, snapshots. */
  readonly #history: Record<"stale" | "shorten" | "snapshot", Packet[]> = {
    stale: [],
    shorten: [],
    snapshot: [],
  };
  /** Packets held by blocked links until they heal. */
  #held: Packet[] = [];
  readonly #leaders = new Map<number, string>();
  readonly #commitTerm = new Map<number, number>();
  readonly #prevTermOf = new Map<string, number>();
  readonly #contentOf = new Map<string, string>();
  #proposalSeq = 0;
  readonly #pending = new Map<string, { index: number; term: number; key: string }>();
  readonly #readChecks = new Map<number, number>();
  #readSeq = 0;
  readonly #tickUnits: number;
  #initialConf: Configuration = new Configuration();

  /** @param opts Cluster options. */
  constructor(opts: ClusterOptions) {
    this.#opts = opts;
    this.prng = new Prng(opts.seed);
    this.#tickUnits = opts.tickUnits ?? 4;
    this.delay = opts.delay ?? [1, 6];
    this.persistDelay = opts.persistDelay ?? [0, 3];
    this.readyLag = opts.readyLag ?? 0;
    const n = opts.voters + (opts.spares ?? 0);
    this.ids = [];
    for (let i = 0; i < n; i++) this.ids.push(`n${i + 1}:1:0`);
    const conf = new Configuration(this.ids.slice(0, opts.voters));
    for (const id of this.ids) {
      const node = new SimNode(id, this.prng.int(this.#tickUnits));
      if (opts.asyncApply) node.maxApplying = this.prng.range(1, 4) * (ENTRY_OVERHEAD_BYTES + 8);
      this.nodes.set(id, node);
    }
    this.#initialConf = conf;
    for (const id of this.ids) this.#boot(this.nodes.get(id)!);
  }

  #boot(node: SimNode): void {
    const initial = this.#initialConf;
    node.incarnation++;
    const snap = node.storage.snapshotMeta();
    const core = new RaftCore({
      electionTick: 10,
      heartbeatTick: 2,
      maxEntriesPerMsg: 8,
      maxInflightMsgs: 4,
      catchupMargin: 5,
      ...this.#opts.core,
      ...this.#opts.nodeCore?.(node.id),
      ...(this.#opts.asyncApply ? { maxApplyingBytes: node.maxApplying } : {}),
      id: node.id,
      storage: node.storage,
      prng: new Prng(this.prng.nextU32()),
      ...(this.ids.indexOf(node.id) < this.#opts.voters
        ? { initialConf: { peers: initial.clone() } }
        : {}),
    });
    node.core = core;
    node.fsm = node.snapData.slice(0, snap.index);
    node.applyQueue = [];
    node.outstanding = null;
    node.lastCommit = core.commitIndex();
    node.checkedCommit = snap.index; // re-check the durable log against the global one
    // unpersisted terms may be forgotten; the durable term never goes back
    if (core.term() < node.durableTerm) this.fail(`${node.id} term went back on restart`);
    node.lastTerm = core.term();
  }

  /** @returns A description for failure messages. */
  describe(): string {
    const lines: string[] = [];
    for (const n of this.nodes.values()) {
      const c = n.core;
      lines.push(
        c === null
          ? `${n.id}: down`
          : `${n.id}: ${c.role()} t=${c.term()} commit=${c.commitIndex()} ` +
            `applied=${c.appliedIndex()} first=${c.firstIndex()} last=${c.lastIndex()} ` +
            `conf=${c.configuration().peers}${
              c.isJoint() ? ` old=${c.configuration().oldPeers}` : ""
            }`,
      );
    }
    return lines.join("\n");
  }

  /**
   * Throws a safety violation with the cluster state.
   *
   * @param why What failed.
   */
  fail(why: string): never {
    throw new SafetyViolation(
      `${why} at t=${this.now}\n${this.describe()}\n${this.trace.slice(-30).join("\n")}`,
    );
  }

  /**
   * @param id Node key.
   * @returns The node.
   */
  node(id: string): SimNode {
    return this.nodes.get(id)!;
  }

  /** @returns Keys of live leaders with the highest term. */
  leader(): string | null {
    let best: RaftCore | null = null;
    for (const n of this.nodes.values()) {
      const c = n.core;
      if (c !== null && c.isLeader() && (best === null || c.term() > best.term())) best = c;
    }
    return best?.id ?? null;
  }

  /** @returns Key of a random live node that believes it leads (maybe a deposed one). */
  anyLeader(): string | null {
    const ls = this.ids.filter((x) => this.node(x).core?.isLeader());
    return ls.length > 0 ? this.prng.pick(ls) : null;
  }

  /** Crashes a node: everything not persisted is lost.
   * @param id Node key. */
  crash(id: string): void {
    const n = this.node(id);
    if (n.core === null) return;
    this.trace.push(`${this.now} crash ${id}`);
    const out = n.outstanding;
    if (out !== null && this.prng.chance(0.5)) {
      // torn persistence: a prefix of the Ready's writes (in contract order) made it to disk
      if (out.rd.snapshot !== undefined) this.#installSnapshot(n, out.rd.snapshot);
      if (this.prng.chance(0.5)) n.storage.append(out.rd.entries);
    }
    n.core = null;
    n.outstanding = null;
    n.inbox.clear();
  }

  /** Restarts a crashed node from its durable storage.
   * @param id Node key. */
  restart(id: string): void {
    const n = this.node(id);
    if (n.core !== null) return;
    this.trace.push(`${this.now} restart ${id}`);
    this.#boot(n);
  }

  /** Splits the network into two sides.
   * @param a One side (the rest is the other side). */
  partition(a: readonly string[]): void {
    this.trace.push(`${this.now} partition ${a.join(",")}`);
    this.blocked.clear();
    for (const x of this.ids) {
      for (const y of this.ids) {
        if (a.includes(x) !== a.includes(y)) this.blocked.add(`${x}>${y}`);
      }
    }
    this.#release();
  }

  /** A packet meets a blocked link: held until it heals, or lost. */
  #hold(p: Packet): void {
    if (this.holdRate === 0 || !this.prng.chance(this.holdRate)) return;
    if (this.#held.length >= 512) this.#held.splice(0, 128);
    this.#held.push(p);
  }

  /** Delivers held packets whose link is open again (soon, in a burst). */
  #release(): void {
    if (this.#held.length === 0) return;
    const still: Packet[] = [];
    const [lo, hi] = this.delay;
    for (const p of this.#held) {
      if (this.blocked.has(`${p.msg.from}>${p.msg.to}`)) still.push(p);
      else this.#packets.push({ ...p, at: this.now + this.prng.range(lo, hi) });
    }
    this.#held = still;
  }

  /** Cuts a node off from every other node.
   * @param id Node key. */
  isolate(id: string): void {
    this.trace.push(`${this.now} isolate ${id}`);
    for (const x of this.ids) {
      if (x === id) continue;
      this.blocked.add(`${x}>${id}`);
      this.blocked.add(`${id}>${x}`);
    }
  }

  /** Reconnects a node.
   * @param id Node key. */
  connect(id: string): void {
    this.trace.push(`${this.now} connect ${id}`);
    for (const x of this.ids) {
      this.blocked.delete(`${x}>${id}`);
      this.blocked.delete(`${id}>${x}`);
    }
    this.#release();
  }

  /** Heals all partitions and clears drop/dup rates. */
  heal(): void {
    this.trace.push(`${this.now} heal`);
    this.blocked.clear();
    this.dropRate = 0;
    this.dupRate = 0;
    this.#release();
  }

  #send(from: SimNode, msgs: readonly Message[]): void {
    const [lo, hi] = this.delay;
    for (const msg of msgs) {
      const snap = msg.type === "InstallSnapshot"
        ? from.snapData.slice(0, msg.meta.index)
        : undefined;
      if (this.blocked.has(`${msg.from}>${msg.to}`)) {
        this.#hold(
          snap === undefined
            ? { at: 0, seq: this.#seq++, msg }
            : { at: 0, seq: this.#seq++, msg, snap },
        );
        continue;
      }
      if (this.dropRate > 0 && this.prng.chance(this.dropRate)) continue;
      const copies = this.dupRate > 0 && this.prng.chance(this.dupRate) ? 2 : 1;
      // a late TimeoutNow: the transfer it belonged to may be long over
      const late = msg.type === "TimeoutNow" && this.prng.chance(this.lateTimeoutNow)
        ? this.prng.range(10, 80)
        : 0;
      for (let i = 0; i < copies; i++) {
        const p: Packet = {
          at: this.now + late + this.prng.range(lo, hi),
          seq: this.#seq++,
          msg,
        };
        if (snap !== undefined) p.snap = snap;
        this.#packets.push(p);
      }
      if (
        msg.type === "AppendEntries" && msg.entries.length > 0 && this.shortenRate > 0 &&
        this.prng.chance(this.shortenRate)
      ) {
        // a shortened copy (entries cut at the end, commit kept) overtakes the original
        const short = { ...msg, entries: msg.entries.slice(0, this.prng.int(msg.entries.length)) };
        this.#packets.push({ at: this.now + lo, seq: this.#seq++, msg: short });
        this.count("shortened");
      }
      if (msg.type === "AppendEntries" || msg.type === "InstallSnapshot") {
        const p: Packet = { at: 0, seq: 0, msg };
        if (snap !== undefined) p.snap = snap;
        const h = this.#history;
        if (msg.type === "InstallSnapshot") remember(h.snapshot, p);
        else {
          remember(h.stale, p);
          if (msg.entries.length > 0) remember(h.shorten, p);
        }
      }
    }
  }

  /**
   * Re-sends an AppendEntries or InstallSnapshot sent earlier (a stale duplicate, as a
   * network that retransmits or a slow path would deliver it). With `shorten`, an
   * AppendEntries loses a random number of entries at its end but keeps its commit field,
   * so it commits past its last entry (a legal message: a leader that caps the batch).
   *
   * @param kind Which kind of replay.
   * @returns Whether a packet was re-sent.
   */
  replay(kind: "stale" | "shorten" | "snapshot"): boolean {
    const h = this.#history[kind];
    if (h.length === 0) return false;
    const p = h[h.length - 1 - this.prng.int(h.length)]!;
    let msg = p.msg;
    if (kind === "shorten" && msg.type === "AppendEntries") {
      msg = { ...msg, entries: msg.entries.slice(0, this.prng.int(msg.entries.length)) };
    }
    if (this.blocked.has(`${msg.from}>${msg.to}`)) return false;
    const [lo, hi] = this.delay;
    const q: Packet = { at: this.now + this.prng.range(lo, hi), seq: this.#seq++, msg };
    if (p.snap !== undefined) q.snap = p.snap;
    this.#packets.push(q);
    this.count(`replay_${kind}`);
    return true;
  }

  /**
   * Proposes `data` on the current leader (if any) and tracks it for acknowledgement.
   *
   * @param data Payload text (unique per call is best).
   * @param on Propose on this node (if it believes it leads) instead of the newest leader.
   * @returns Whether a leader accepted it.
   */
  propose(data?: string, on?: string): boolean {
    const id = on ?? this.leader();
    if (id === null || this.node(id).core?.isLeader() !== true) return false;
    const text = data ?? `w${this.#proposalSeq++}`;
    const r = this.node(id).core!.propose(ChunkChain.from(text));
    if (!r.status.ok()) return false;
    this.#pending.set(`${id}#${r.index}`, { index: r.index, term: r.term, key: `d:${text}` });
    this.trace.push(`${this.now} propose ${text} on ${id} @${r.index}`);
    return true;
  }

  /**
   * Requests a read barrier on the current leader; the result is checked for linearizability.
   *
   * @param allowLease Whether the leader may answer from its lease.
   * @param anyLeader Ask any node that believes it leads (maybe a deposed one), not the
   *   newest leader.
   * @returns Whether the request was accepted.
   */
  read(allowLease = true, anyLeader = false): boolean {
    const id = anyLeader ? this.anyLeader() : this.leader();
    if (id === null) return false;
    const seq = this.#readSeq++;
    let maxAcked = 0;
    for (const i of this.acked.keys()) maxAcked = Math.max(maxAcked, i);
    this.#readChecks.set(seq, maxAcked);
    return this.node(id).core!.readIndex(seq, allowLease).ok();
  }

  /**
   * Takes a snapshot on a node at its applied index and compacts its log.
   *
   * @param id Node key.
   * @param keep Entries to keep before the snapshot index (0 = compact all applied).
   */
  snapshot(id: string, keep = 0): void {
    const n = this.node(id);
    const c = n.core;
    if (c === null || n.outstanding !== null) return;
    const index = c.appliedIndex() - keep;
    if (index <= n.storage.snapshotMeta().index) return;
    // the core stepped an InstallSnapshot not yet handed out in a Ready: the log it would
    // compact is already replaced (snapshotMetaAt throws a RangeError here)
    if (index < c.firstIndex()) return;
    const meta = c.snapshotMetaAt(index);
    n.snapData = n.fsm.slice(0, index);
    n.storage.compact(meta);
    this.trace.push(`${this.now} snapshot ${id} @${index}`);
  }

  /**
   * Makes a node's stored log unavailable synchronously, or warms it again (and notifies).
   *
   * @param id Node key.
   * @param cold The new state.
   */
  setCold(id: string, cold: boolean): void {
    const n = this.node(id);
    n.storage.cold = cold;
    if (!cold) n.core?.notifyStorageReady();
  }

  /** Advances simulated time by one unit: deliveries, ticks, Ready processing, checks. */
  step(): void {
    this.now++;
    // deliver due packets (random delays reorder them)
    if (this.#packets.length > 0) {
      const due: Packet[] = [];
      const rest: Packet[] = [];
      for (const p of this.#packets) (p.at <= this.now ? due : rest).push(p);
      this.#packets = rest;
      due.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const interleave = this.#opts.interleave ?? 0;
      for (const p of due) {
        const n = this.#deliver(p);
        if (n !== undefined && interleave > 0 && this.prng.chance(interleave)) {
          this.#process(n);
          this.#check();
        }
      }
    }
    for (const n of this.nodes.values()) {
      if (n.core !== null && (this.now + n.phase) % this.#tickUnits === 0) this.#tick(n);
    }
    const lag = this.readyLag;
    for (const n of this.nodes.values()) {
      // a lagging Ready loop: the core keeps stepping messages and ticks meanwhile
      if (lag > 0 && n.outstanding === null && this.prng.chance(lag)) continue;
      this.#process(n);
    }
    if (this.#opts.asyncApply) { for (const n of this.nodes.values()) this.#applySome(n); }
    this.#check();
  }

  /** Asynchronous applying: the state machine applies a few queued entries and reports. */
  #applySome(n: SimNode): void {
    const core = n.core;
    if (core === null) return;
    const q = n.applyQueue;
    // handed out = queued + in the Ready being persisted
    const handed = [...q, ...(n.outstanding?.rd.committedEntries ?? [])];
    if (core.applyingIndex() - core.appliedIndex() !== handed.length) {
      this.fail(
        `${n.id} applying ${core.applyingIndex()} applied ${core.appliedIndex()} but ${handed.length} handed out`,
      );
    }
    let size = 0;
    let biggest = 0;
    for (const e of handed) {
      size += e.data.length + ENTRY_OVERHEAD_BYTES;
      biggest = Math.max(biggest, e.data.length + ENTRY_OVERHEAD_BYTES);
    }
    if (size !== core.applyingBytes()) {
      this.fail(`${n.id} applyingBytes ${core.applyingBytes()} != ${size}`);
    }
    if (handed.length > 1 && size >= n.maxApplying + biggest) {
      this.fail(`${n.id} hands out ${size} bytes for applying, limit ${n.maxApplying}`);
    }
    if (size >= n.maxApplying) this.count("applyingLimitReached");
    // a slow state machine: the limit is reached often, most of all after a restart
    if (q.length === 0 || !this.prng.chance(0.25)) return;
    const k = Math.min(q.length, this.prng.range(1, 3));
    for (const e of q.splice(0, k)) this.#apply(n, e);
    core.appliedTo(n.fsm.length);
  }

  #tick(n: SimNode): void {
    const c = n.core!;
    const term = c.term();
    const vote = c.votedFor();
    const role = c.role();
    c.tick();
    if (c.role() !== role) {
      this.trace.push(`${this.now} ${n.id} ${role} -> ${c.role()}@${c.term()} on tick`);
    }
    // starting a pre-vote changes no term or vote (that is its purpose)
    if (c.role() === "precandidate" && (c.term() !== term || c.votedFor() !== vote)) {
      this.fail(
        `pre-vote changed ${n.id}'s term/vote ${term}/${vote} -> ${c.term()}/${c.votedFor()}`,
      );
    }
  }

  /**
   * Runs `units` steps.
   *
   * @param units How many.
   */
  run(units: number): void {
    for (let i = 0; i < units; i++) this.step();
  }

  /**
   * Steps until `cond` holds or `max` units pass.
   *
   * @param cond The condition.
   * @param max Step budget.
   * @returns Whether the condition held.
   */
  runUntil(cond: () => boolean, max: number): boolean {
    for (let i = 0; i < max; i++) {
      if (cond()) return true;
      this.step();
    }
    return cond();
  }

  #deliver(p: Packet): SimNode | undefined {
    const m = p.msg;
    if (this.blocked.has(`${m.from}>${m.to}`)) {
      this.#hold(p);
      return undefined;
    }
    const n = this.nodes.get(m.to);
    if (n === undefined || n.core === null) return undefined;
    if (p.snap !== undefined && m.type === "InstallSnapshot") {
      n.inbox.set(`${m.meta.index}:${m.meta.term}`, p.snap);
    }
    const c = n.core;
    const term = c.term();
    const vote = c.votedFor();
    const role = c.role();
    c.step(m);
    if (c.role() !== role || c.term() !== term) {
      this.trace.push(
        `${this.now} ${n.id} ${role}@${term} -> ${c.role()}@${c.term()} on ${m.type} from ${m.from}@${m.term}`,
      );
    }
    if (m.type === "PreVote" && (c.term() !== term || c.votedFor() !== vote)) {
      this.fail(
        `pre-vote from ${m.from} changed voter ${n.id}'s term/vote ${term}/${vote} -> ` +
          `${c.term()}/${c.votedFor()}`,
      );
    }
    if (m.type === "PreVoteResp" && c.role() !== "candidate") {
      // only a refusal from a node in a higher term may move the pre-candidate's term
      const moved = c.term() !== term || c.votedFor() !== vote;
      if (moved && (m.granted || c.term() !== m.term)) {
        this.fail(
          `pre-vote answer from ${m.from} changed ${n.id}'s term/vote ${term}/${vote} -> ` +
            `${c.term()}/${c.votedFor()}`,
        );
      }
    }
    return n;
  }

  #process(n: SimNode): void {
    const [lo, hi] = n.slowDisk ?? this.persistDelay;
    for (let guard = 0; guard < 100 && n.core !== null; guard++) {
      const core = n.core;
      if (n.outstanding !== null) {
        if (n.outstanding.at > this.now) return;
        this.#persist(n, n.outstanding.rd);
        n.outstanding = null;
        continue;
      }
      if (!core.hasReady()) return;
      const rd = core.ready();
      this.#send(n, rd.messages);
      this.#checkEntries(n, rd.entries);
      if (rd.softState !== undefined) {
        const key = `${rd.softState.role}@${rd.softState.term}`;
        if (rd.softState.role === "leader" && key !== n.lastRole) {
          this.count("elections");
          this.#checkLeaderCompleteness(n);
        }
        n.lastRole = key;
      }
      const d = this.prng.range(lo, hi);
      n.outstanding = { rd, at: this.now + d };
      if (d > 0) return;
    }
  }

  #persist(n: SimNode, rd: Ready): void {
    const core = n.core!;
    if (rd.snapshot !== undefined) this.#installSnapshot(n, rd.snapshot);
    n.storage.append(rd.entries);
    if (rd.hardState !== undefined) {
      if (rd.hardState.term < n.durableTerm) this.fail(`${n.id} persisted term went back`);
      n.durableTerm = rd.hardState.term;
      n.storage.setHardState(rd.hardState);
    }
    for (const m of rd.messagesAfterPersist) this.#checkAck(n, m);
    this.#send(n, rd.messagesAfterPersist);
    if (this.#opts.asyncApply) n.applyQueue.push(...rd.committedEntries);
    else for (const e of rd.committedEntries) this.#apply(n, e);
    for (const r of rd.readStates) this.#checkRead(n, r);
    for (const r of rd.confChangeResults) {
      this.count(
        r.status.ok() ? "confChangesDone" : `confChange_${r.status.toString().split(":")[0]}`,
      );
      this.trace.push(`${this.now} conf change ${r.peers} on ${n.id}: ${r.status}`);
    }
    core.advance(rd);
  }

  /**
   * An acknowledgement never claims more than is durable when it is released (Raft: no
   * answer before the state it depends on is on disk): an append ack for index i means the
   * durable log matches the leader's at i, a snapshot ack that the durable log reaches i, a
   * granted vote that the durable vote is for that candidate in that term.
   */
  #checkAck(n: SimNode, m: Message): void {
    const st = n.storage;
    if (m.type === "AppendEntriesResp" && m.success && !m.heartbeat && m.index > 0) {
      const leader = this.nodes.get(m.to)?.core;
      if (leader === null || leader === undefined || !leader.isLeader()) return;
      if (leader.term() !== m.term) return; // the leader of that term is gone: ack is moot
      const want = leader.termAt(m.index);
      if (want === undefined || m.index < st.snapshotMeta().index) return; // compacted
      const have = st.term(m.index);
      if (have !== want) {
        this.fail(
          `${n.id} acks index ${m.index} to ${m.to} (term ${m.term}) but its durable log has ` +
            `term ${have} there, the leader's ${want}`,
        );
      }
    } else if (m.type === "InstallSnapshotResp" && m.success) {
      if (st.lastIndex() < m.index) {
        this.fail(`${n.id} acks snapshot ${m.index} with durable log ending at ${st.lastIndex()}`);
      }
    } else if (m.type === "RequestVoteResp" && m.granted) {
      // (a durable term past the vote's also keeps the voter from voting again in it)
      const hs = st.hardState();
      if (hs.term < m.term || (hs.term === m.term && hs.vote !== m.to)) {
        this.fail(
          `${n.id} grants ${m.to} its vote in term ${m.term} but its durable vote is ` +
            `${hs.vote || "none"} in term ${hs.term}`,
        );
      }
    }
  }

  /**
   * Counts an event.
   *
   * @param what Event name.
   */
  count(what: string): void {
    this.stats[what] = (this.stats[what] ?? 0) + 1;
  }

  #installSnapshot(n: SimNode, meta: SnapshotMeta): void {
    this.count("snapshotInstalls");
    const data = n.inbox.get(`${meta.index}:${meta.term}`);
    if (data === undefined) this.fail(`${n.id} got snapshot ${meta.index} without data`);
    n.storage.applySnapshot(meta);
    n.snapData = data;
    n.fsm = data.slice();
    n.applyQueue = []; // all below the snapshot
    for (let i = 0; i < data.length; i++) this.#checkApplied(n, i + 1, data[i]!);
  }

  #apply(n: SimNode, e: LogEntry): void {
    if (e.index !== n.fsm.length + 1) this.fail(`${n.id} applies ${e.index} after ${n.fsm.length}`);
    const key = entryKey(e);
    n.fsm.push(key);
    this.#checkApplied(n, e.index, key);
    const p = this.#pending.get(`${n.id}#${e.index}`);
    if (p !== undefined) {
      this.#pending.delete(`${n.id}#${e.index}`);
      if (p.term === e.term && p.key === key) this.acked.set(e.index, key); // client sees success
    }
  }

  #checkApplied(n: SimNode, index: number, key: string, what = "applied"): void {
    const prev = this.committed.get(index);
    if (prev === undefined) this.committed.set(index, key);
    else if (prev !== key) {
      this.fail(`state machine safety: ${n.id} ${what} ${key} at ${index}, others ${prev}`);
    }
  }

  #checkRead(n: SimNode, r: ReadState): void {
    n.reads.push(r);
    this.count(r.status.ok() ? "readsOk" : "readsFailed");
    if (!r.status.ok()) return;
    const need = this.#readChecks.get(r.ctx as number) ?? 0;
    if (r.index < need) {
      this.fail(`read index ${r.index} below acknowledged write ${need} (linearizability)`);
    }
  }

  #checkEntries(n: SimNode, entries: readonly LogEntry[]): void {
    // Log Matching: (index, term) identifies content and the previous entry's term
    const core = n.core!;
    for (const e of entries) {
      const k = `${e.index}:${e.term}`;
      const key = entryKey(e);
      const c = this.#contentOf.get(k);
      if (c === undefined) this.#contentOf.set(k, key);
      else if (c !== key) this.fail(`log matching: two entries at ${k}: ${c} vs ${key}`);
      const pt = core.termAt(e.index - 1);
      if (pt !== undefined) {
        const seen = this.#prevTermOf.get(k);
        if (seen === undefined) this.#prevTermOf.set(k, pt);
        else if (seen !== pt) this.fail(`log matching: entry ${k} follows terms ${seen} and ${pt}`);
      }
    }
  }

  #checkLeaderCompleteness(n: SimNode): void {
    const cold = n.storage.cold;
    n.storage.cold = false; // the checker reads the disk directly
    try {
      this.#checkLeaderLog(n);
    } finally {
      n.storage.cold = cold;
    }
  }

  #checkLeaderLog(n: SimNode): void {
    const core = n.core!;
    const first = core.firstIndex();
    for (const [index, key] of this.committed) {
      // §5.4: entries committed in an earlier term are in every later leader's log
      if (index < first || !((this.#commitTerm.get(index) ?? Infinity) < core.term())) continue;
      const es = core.entries(index, index + 1);
      const e = es?.[0];
      if (e === undefined || entryKey(e) !== key) {
        this.fail(
          `leader completeness: ${n.id} (term ${core.term()}) lacks committed ${index}=${key}`,
        );
      }
    }
  }

  #check(): void {
    this.#checkLeases();
    for (const n of this.nodes.values()) {
      const c = n.core;
      if (c === null) continue;
      if (c.term() < n.lastTerm) this.fail(`${n.id} term went back ${n.lastTerm} -> ${c.term()}`);
      n.lastTerm = c.term();
      if (c.commitIndex() < n.lastCommit) this.fail(`${n.id} commit went back`);
      if (c.isLeader()) {
        for (let i = n.lastCommit + 1; i <= c.commitIndex(); i++) {
          if (!(this.#commitTerm.get(i)! <= c.term())) this.#commitTerm.set(i, c.term());
        }
      }
      n.lastCommit = c.commitIndex();
      if (c.commitIndex() > n.checkedCommit) this.#checkCommittedPrefix(n, c);
      if (c.isLeader()) {
        const l = this.#leaders.get(c.term());
        if (l === undefined) this.#leaders.set(c.term(), n.id);
        else if (l !== n.id) this.fail(`two leaders in term ${c.term()}: ${l} and ${n.id}`);
      }
    }
  }

  /** While a leader's lease is valid, no leader of a higher term exists (lease reads). */
  #checkLeases(): void {
    let newest: RaftCore | null = null;
    for (const n of this.nodes.values()) {
      const c = n.core;
      if (c !== null && c.isLeader() && (newest === null || c.term() > newest.term())) newest = c;
    }
    if (newest === null) return;
    for (const n of this.nodes.values()) {
      const c = n.core;
      if (c === null || c === newest || !c.isLeader() || c.term() >= newest.term()) continue;
      if (c.isLeaderLeaseValid()) {
        this.fail(
          `leader lease: ${n.id} (term ${c.term()}) holds a valid lease while ${newest.id} ` +
            `leads term ${newest.term()}`,
        );
      }
    }
  }

  #checkCommittedPrefix(n: SimNode, c: RaftCore): void {
    // every node's committed prefix is the global committed log (checked as it grows)
    const cold = n.storage.cold;
    n.storage.cold = false; // the checker reads the disk directly
    try {
      const lo = Math.max(n.checkedCommit + 1, c.firstIndex());
      const hi = c.commitIndex();
      const es = lo <= hi ? c.entries(lo, hi + 1) : [];
      if (es === null || es.length !== hi - lo + 1) {
        this.fail(`${n.id} cannot read its committed entries ${lo}..${hi}`);
      }
      for (const e of es) this.#checkApplied(n, e.index, entryKey(e), "committed");
      n.checkedCommit = hi;
    } finally {
      n.storage.cold = cold;
    }
  }

  /** Final check: every acknowledged write is in every state machine that got that far. */
  checkAcked(): void {
    for (const [index, key] of this.acked) {
      if (this.committed.get(index) !== key) this.fail(`acknowledged write lost at ${index}`);
      for (const n of this.nodes.values()) {
        if (n.fsm.length >= index && n.fsm[index - 1] !== key) {
          this.fail(`acknowledged write ${index} differs on ${n.id}`);
        }
      }
    }
  }
}
