/**
 * `cli`: the library form of braft_cli. Administer a raft group from outside through the
 * CliService that every endpoint serving a node answers: add, remove or change voters, move
 * leadership, force a membership, take a snapshot, find the leader, list the voters.
 *
 * Like braft's `cli`, the functions that need the leader ask the peers of `conf` for it
 * (`get_leader`) until one answers, send the request to the leader, and find the leader
 * again (up to `maxRetry` times, default 3) if it changed meanwhile. `resetPeer` and
 * `snapshot` go straight to the named peer. The options say how to reach the nodes: a
 * `Transport` or a {@linkcode CliCaller}.
 *
 * @example Grow a three-node group to four, snapshot, shrink it again, move leadership
 * ```ts
 * import {
 *   ANY_PEER,
 *   cli,
 *   type Closure,
 *   Configuration,
 *   type Iterator,
 *   MemoryNetwork,
 *   Node,
 *   StateMachine,
 *   type SnapshotWriter,
 *   Status,
 * } from "@webraft/raft";
 * import assert from "node:assert/strict";
 *
 * class Noop extends StateMachine {
 *   onApply(iter: Iterator): void {
 *     for (; iter.valid(); iter.next()) iter.done()?.run(Status.OK());
 *   }
 *   override onSnapshotSave(_writer: SnapshotWriter, done: Closure): void {
 *     done.run(Status.OK()); // nothing to save
 *   }
 *   override async onSnapshotLoad(): Promise<void> {}
 * }
 *
 * const net = new MemoryNetwork();
 * const peers = ["127.0.0.1:8200:0", "127.0.0.1:8201:0", "127.0.0.1:8202:0"];
 * const fourth = "127.0.0.1:8203:0";
 * const start = async (peer: string, i: number, initialConf?: string): Promise<Node> => {
 *   const node = new Node("cli-doc", peer);
 *   await node.init({
 *     fsm: new Noop(),
 *     ...(initialConf === undefined ? {} : { initialConf }),
 *     logUri: `memory://cli-doc/${i}/log`,
 *     raftMetaUri: `memory://cli-doc/${i}/meta`,
 *     snapshotUri: `memory://cli-doc/${i}/snapshot`,
 *     transport: net.transport(`127.0.0.1:${8200 + i}`),
 *     electionTimeoutMs: 200,
 *   });
 *   return node;
 * };
 * const nodes = await Promise.all(peers.map((p, i) => start(p, i, peers.join(","))));
 * nodes.push(await start(fourth, 3)); // empty configuration: waits to be added
 * await Promise.race(nodes.map((n) => n.waitLeader()));
 *
 * // Any endpoint on the network can call; over HTTP this would be a caller instead.
 * const options = { transport: net.transport("127.0.0.1:9999"), timeoutMs: 10_000 };
 * const conf = peers.join(",");
 * const change = await cli.addPeer("cli-doc", conf, fourth, options);
 * assert.ok(change.newPeers.equals(new Configuration([...peers, fourth])));
 * assert.equal((await cli.listPeers("cli-doc", conf, options)).length, 4);
 *
 * await cli.snapshot("cli-doc", fourth, options);
 * assert.ok(nodes[3]!.describe().lastSnapshotIndex > 0);
 *
 * const back = await cli.removePeer("cli-doc", conf, fourth, options);
 * assert.equal(back.newPeers.size, 3);
 *
 * const before = await cli.getLeader("cli-doc", conf, options);
 * await cli.transferLeader("cli-doc", conf, ANY_PEER, options); // started, not finished
 * assert.ok(peers.includes(before.toString()));
 *
 * for (const n of nodes) await n.shutdown();
 * await net.close();
 * ```
 *
 * @module
 */
export {
  addPeer,
  changePeers,
  type CliCaller,
  type CliOptions,
  type ConfigurationChange,
  getLeader,
  listPeers,
  removePeer,
  resetPeer,
  snapshot,
  transferLeader,
} from "./cli.ts";
