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
 * @example Grow a three-node group to four, then move leadership
 * ```ts
 * import {
 *   cli,
 *   Configuration,
 *   type Iterator,
 *   MemoryNetwork,
 *   Node,
 *   StateMachine,
 *   Status,
 * } from "@webraft/raft";
 * import assert from "node:assert/strict";
 *
 * class Noop extends StateMachine {
 *   onApply(iter: Iterator): void {
 *     for (; iter.valid(); iter.next()) iter.done()?.run(Status.OK());
 *   }
 * }
 *
 * const net = new MemoryNetwork();
 * const peers = ["127.0.0.1:8200:0", "127.0.0.1:8201:0", "127.0.0.1:8202:0"];
 * const start = async (peer: string, i: number, initialConf?: string): Promise<Node> => {
 *   const node = new Node("cli-doc", peer);
 *   await node.init({
 *     fsm: new Noop(),
 *     ...(initialConf === undefined ? {} : { initialConf }),
 *     logUri: `memory://cli-doc/${i}/log`,
 *     raftMetaUri: `memory://cli-doc/${i}/meta`,
 *     transport: net.transport(`127.0.0.1:${8200 + i}`),
 *     electionTimeoutMs: 200,
 *   });
 *   return node;
 * };
 * const nodes = await Promise.all(peers.map((p, i) => start(p, i, peers.join(","))));
 * nodes.push(await start("127.0.0.1:8203:0", 3)); // empty configuration: waits to be added
 * await Promise.race(nodes.map((n) => n.waitLeader()));
 *
 * const options = { transport: net.transport("127.0.0.1:9999"), timeoutMs: 10_000 };
 * const conf = peers.join(",");
 * const change = await cli.addPeer("cli-doc", conf, "127.0.0.1:8203:0", options);
 * assert.equal(change.newPeers.size, 4);
 * assert.ok(change.newPeers.equals(new Configuration([...peers, "127.0.0.1:8203:0"])));
 *
 * const leader = await cli.getLeader("cli-doc", conf, options);
 * assert.ok(peers.includes(leader.toString()));
 * assert.equal((await cli.listPeers("cli-doc", conf, options)).length, 4);
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
