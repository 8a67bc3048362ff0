/**
 * A raft group whose members talk over real loopback sockets: each member is a Hono app with
 * the raft service mounted, served on 127.0.0.1 port 0, in this one process.
 */

import { Hono } from "hono";
import { Configuration } from "../../../src/conf/configuration.ts";
import { PeerId } from "../../../src/conf/peer_id.ts";
import { Node } from "../../../src/node/node.ts";
import type { NodeOptions } from "../../../src/node/options.ts";
import { addService, type RaftService } from "../../../transports/http/service.ts";
import { serve, type ServeHandle } from "../../../transports/http/serve.ts";
import assert from "node:assert/strict";
import { MockFsm, waitFor, withDeadline } from "../../node/cluster.ts";
import { SettleTracker } from "../../node/_settle.ts";

/** Generous deadline for anything a loaded 2-core machine must finish. */
export const DEADLINE_MS = 60_000;

/** One served endpoint. */
export interface Member {
  app: Hono;
  service: RaftService;
  server: ServeHandle;
  peer: PeerId;
  node: Node | null;
  fsm: MockFsm | null;
}

let seq = 0;

/** Members of one group over HttpTransport. */
export class HttpCluster {
  readonly group = `http-${++seq}-${Math.floor(Math.random() * 1e9)}`;
  readonly members: Member[] = [];
  readonly settle: SettleTracker = new SettleTracker();
  readonly #secret: string | undefined;

  constructor(options: { secret?: string } = {}) {
    this.#secret = options.secret;
  }

  /** Serves a new endpoint (no node yet). */
  async serveMember(): Promise<Member> {
    const app = new Hono();
    const service = addService(
      app,
      "127.0.0.1:0",
      this.#secret === undefined ? {} : { secret: this.#secret },
    );
    const server = await serve(app, { hostname: "127.0.0.1", port: 0 });
    const member: Member = {
      app,
      service,
      server,
      peer: PeerId.parse(`127.0.0.1:${server.port}:0`),
      node: null,
      fsm: null,
    };
    this.members.push(member);
    return member;
  }

  /** Starts the member's node, with `conf` as its initial configuration (none: empty). */
  async startNode(
    member: Member,
    conf: Configuration | null,
    extra: Partial<NodeOptions> = {},
  ): Promise<Node> {
    const fsm = new MockFsm();
    const node = new Node(this.group, member.peer);
    const base = `memory://${this.group}/${member.peer.port}`;
    this.settle.instrument(node);
    await node.init({
      fsm,
      electionTimeoutMs: 400,
      snapshotIntervalS: 0,
      catchupMargin: 100,
      logUri: `${base}/log`,
      raftMetaUri: `${base}/meta`,
      snapshotUri: `${base}/snapshot`,
      ...(conf === null ? {} : { initialConf: conf }),
      ...extra,
    });
    member.node = node;
    member.fsm = fsm;
    return node;
  }

  /** The configuration of every member served so far. */
  conf(): Configuration {
    return new Configuration(this.members.map((m) => m.peer));
  }

  /** The nodes running now. */
  nodes(): Node[] {
    return this.members.flatMap((m) => m.node === null ? [] : [m.node]);
  }

  /** The member running `node`. */
  memberOf(node: Node): Member {
    return this.members.find((m) => m.node === node)!;
  }

  /** Waits for a leader whose first entry of its term is applied. */
  async waitLeader(): Promise<Node> {
    return await waitFor(
      () =>
        this.members.find((m) => m.node?.isLeader() && m.fsm?.leaderTerm === m.node.term())
          ?.node ?? undefined,
      DEADLINE_MS,
      "a leader",
    );
  }

  /** Waits until every running node applied as far as the leader and all logs are equal. */
  async ensureSame(): Promise<void> {
    const leader = await this.waitLeader();
    const index = leader.appliedIndex();
    await Promise.all(
      this.nodes().map((n) =>
        withDeadline(n.waitApplied(index), DEADLINE_MS, `${n.nodeId()} applies ${index}`)
      ),
    );
    const reference = this.memberOf(leader).fsm!.logs;
    for (const m of this.members) {
      if (m.node === null) continue;
      assert.deepEqual(m.fsm!.logs, reference, `state machine of ${m.peer} differs`);
    }
  }

  /** Stops every node and server, then checks every closure settled once. */
  async stopAll(): Promise<void> {
    for (const m of this.members) {
      await m.node?.shutdown();
      m.node = null;
    }
    for (const m of this.members) await m.server.shutdown();
    for (const m of this.members) await m.service.close();
    await this.settle.check(DEADLINE_MS);
  }
}
