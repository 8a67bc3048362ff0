/**
 * Three (or more) counter servers as real processes behind a {@link PartitionProxy}, with the
 * faults of the process-level tests: SIGKILL and restart, SIGSTOP/SIGCONT, pairwise cuts.
 * Processes are signalled by their pid only; {@link FaultCluster.stop} reaps every child.
 *
 * @module
 */

import { join } from "node:path";
import { CounterServer, freePorts, type Runtime, until } from "../examples/_counter_cluster.ts";
import { PartitionProxy } from "./_partition_proxy.ts";
import { rawRequest } from "./_raw_http.ts";

/** One node: its PeerId port (the proxy's), the port it binds, its current process. */
export interface FaultNode {
  index: number;
  runtime: Runtime;
  publicPort: number;
  privatePort: number;
  server: CounterServer;
  paused: boolean;
  /** Stderr of this node's earlier processes (before restarts). */
  pastStderr: string;
}

/** Options of {@link FaultCluster.start}. */
export interface FaultClusterOptions {
  runtimes: Runtime[];
  dir: string;
  electionTimeoutMs: number;
  /** More server flags for node `i` (e.g. `--enable_leader_lease`, `--clock_rate=0.8`). */
  nodeArgs?: (i: number) => string[];
  /**
   * Servers run with `--follower_reads` (followers answer `GET /counter` too), so the leader
   * is found by its `/raft_stat` state as well.
   */
  followerReads?: boolean;
}

/** The group under test. */
export class FaultCluster {
  readonly nodes: FaultNode[] = [];
  readonly conf: string;
  readonly proxy: PartitionProxy;
  readonly #options: FaultClusterOptions;

  private constructor(ports: number[], proxy: PartitionProxy, options: FaultClusterOptions) {
    const n = options.runtimes.length;
    this.conf = ports.slice(0, n).map((p) => `127.0.0.1:${p}:0`).join(",");
    this.proxy = proxy;
    this.#options = options;
    for (let i = 0; i < n; i++) {
      this.nodes.push({
        index: i,
        runtime: options.runtimes[i]!,
        publicPort: ports[i]!,
        privatePort: ports[n + i]!,
        server: null as unknown as CounterServer,
        paused: false,
        pastStderr: "",
      });
    }
  }

  /**
   * Starts the proxy and every server and waits until they serve.
   *
   * @param options Runtimes (one per node), data directory, election timeout.
   * @returns The cluster.
   */
  static async start(options: FaultClusterOptions): Promise<FaultCluster> {
    const n = options.runtimes.length;
    for (let attempt = 0;; attempt++) {
      // Free a moment ago; another process may take one meanwhile: then try other ports.
      const ports = await freePorts(2 * n);
      let proxy: PartitionProxy;
      try {
        proxy = await PartitionProxy.start(
          ports.slice(0, n).map((p, i) => ({ publicPort: p, privatePort: ports[n + i]! })),
        );
      } catch (e) {
        if (attempt >= 3) throw e;
        continue;
      }
      const cluster = new FaultCluster(ports, proxy, options);
      try {
        for (const node of cluster.nodes) node.server = cluster.#spawn(node);
        await Promise.all(cluster.nodes.map((node) => node.server.ready()));
        return cluster;
      } catch (e) {
        await cluster.stop();
        const busy = cluster.nodes.some((node) => node.server?.child.exitCode === 98);
        if (!busy || attempt >= 3) throw e;
      }
    }
  }

  #spawn(node: FaultNode): CounterServer {
    const args = [
      `--port=${node.publicPort}`,
      `--listen_port=${node.privatePort}`,
      `--conf=${this.conf}`,
      `--data_path=${join(this.#options.dir, String(node.publicPort))}`,
      `--election_timeout_ms=${this.#options.electionTimeoutMs}`,
      ...(this.#options.followerReads ? ["--follower_reads"] : []),
      ...(this.#options.nodeArgs?.(node.index) ?? []),
    ];
    return new CounterServer(node.runtime, node.privatePort, args, {});
  }

  /** The node whose PeerId has this public port. */
  byPublicPort(port: number): FaultNode | undefined {
    return this.nodes.find((n) => n.publicPort === port);
  }

  /** SIGKILLs node `i` and waits for its exit. */
  async kill(i: number): Promise<void> {
    const node = this.nodes[i]!;
    if (node.server.alive()) process.kill(node.server.child.pid!, "SIGKILL");
    await node.server.exited;
    node.paused = false;
  }

  /** Starts node `i` again from its data and waits until it serves. */
  async restart(i: number): Promise<void> {
    const node = this.nodes[i]!;
    node.pastStderr += node.server.stderr;
    node.server = this.#spawn(node);
    await node.server.ready();
  }

  /** SIGSTOPs node `i` (not child.kill: Deno's sends nothing after the first signal). */
  pause(i: number): void {
    const node = this.nodes[i]!;
    if (!node.server.alive()) return;
    process.kill(node.server.child.pid!, "SIGSTOP");
    node.paused = true;
  }

  /** SIGCONTs node `i`. */
  resume(i: number): void {
    const node = this.nodes[i]!;
    if (node.server.alive()) process.kill(node.server.child.pid!, "SIGCONT");
    node.paused = false;
  }

  /**
   * The index of a running, unpaused node answering `GET /counter` with 200 (and, with
   * follower reads, whose `/raft_stat` says LEADER), or null.
   */
  async findLeader(): Promise<number | null> {
    const answers = await Promise.all(this.nodes.map(async (n) => {
      if (n.paused || !n.server.alive()) return false;
      const r = await rawRequest(n.privatePort, "GET", "/counter", null, 3_000);
      if (r.kind !== "answer" || r.status !== 200) return false;
      if (!this.#options.followerReads) return true;
      const stat = await rawRequest(n.privatePort, "GET", "/raft_stat?format=json", null, 3_000);
      const nodes = stat.kind === "answer" ? stat.body.nodes : undefined;
      return Array.isArray(nodes) && (nodes[0] as { state?: unknown })?.state === "LEADER";
    }));
    const i = answers.indexOf(true);
    return i < 0 ? null : i;
  }

  /** Waits (up to the harness deadline) for a leader that answers a linearizable read. */
  async leader(): Promise<number> {
    return await until("a leader answering GET /counter", () => this.findLeader());
  }

  /** Heals everything: lifts cuts, resumes paused nodes, restarts dead ones. */
  async healAll(): Promise<void> {
    this.proxy.heal();
    for (const n of this.nodes) if (n.paused) this.resume(n.index);
    for (const n of this.nodes) if (!n.server.alive()) await this.restart(n.index);
  }

  /** The last `chars` of every node's stderr (all its processes), for failure reports. */
  stderrTails(chars = 4000): string {
    return this.nodes.map((n) => {
      const all = n.pastStderr + n.server.stderr;
      return `--- node ${n.index} (${n.runtime}, 127.0.0.1:${n.publicPort}) stderr tail ---\n` +
        all.slice(-chars);
    }).join("\n");
  }

  /** Resumes, stops (SIGTERM, then SIGKILL) and reaps every server; closes the proxy. */
  async stop(): Promise<void> {
    for (const n of this.nodes) {
      if (n.server !== null && n.server.alive()) {
        try {
          process.kill(n.server.child.pid!, "SIGCONT");
        } catch { /* exited meanwhile */ }
      }
    }
    await Promise.all(this.nodes.map((n) => n.server?.stop()));
    await this.proxy.close();
  }
}
