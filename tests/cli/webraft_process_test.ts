/**
 * The real `webraft` tool, run as child processes (`node bin/webraft.mjs ...`, which runs Deno,
 * and `bun src/cli/main.ts ...`), against raft groups served in this process over loopback
 * sockets with a shared secret: every verb, the secret (flag, environment, wrong, missing),
 * `disableCli` and usage errors. The children are spawned asynchronously: this process must keep
 * serving the nodes while a child calls them.
 */

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer, type Socket } from "node:net";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { Configuration } from "../../src/conf/configuration.ts";
import type { Node } from "../../src/node/node.ts";
import { waitFor, withDeadline } from "../node/cluster.ts";
import { DEADLINE_MS, HttpCluster, type Member } from "../transports/http/_http_cluster.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const secret = "webraft-cli-secret";

type Launcher = "node" | "bun";

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the tool and resolves when it exits (never blocking this process's event loop). */
function webraft(via: Launcher, args: string[], env: Record<string, string> = {}): Promise<Result> {
  const [cmd, pre] = via === "node"
    ? ["node", [join(root, "bin", "webraft.mjs")]]
    : [join(root, "node_modules", ".bin", "bun"), [join(root, "src", "cli", "main.ts")]];
  const base = { ...process.env };
  delete base.WEBRAFT_SECRET;
  const child = spawn(cmd, [...pre, ...args], {
    cwd: root,
    env: { ...base, NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => stdout += d);
  child.stderr.on("data", (d) => stderr += d);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`webraft ${args.join(" ")} did not exit: ${stdout} ${stderr}`));
    }, DEADLINE_MS);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs the tool and expects exit 0 with one line on stdout, which it returns. */
async function ok(
  via: Launcher,
  args: string[],
  env: Record<string, string> = {},
): Promise<string> {
  const r = await webraft(via, args, env);
  assert.equal(r.code, 0, `webraft ${args.join(" ")} (via ${via}): ${r.stdout}${r.stderr}`);
  assert.equal(r.stderr, "");
  return r.stdout.trimEnd();
}

function startGroup(c: HttpCluster, n: number): Promise<Member[]> {
  return (async () => {
    const members: Member[] = [];
    for (let i = 0; i < n; i++) members.push(await c.serveMember());
    const conf = new Configuration(members.map((m) => m.peer));
    for (const m of members) await c.startNode(m, conf);
    return members;
  })();
}

const peerOf = (c: HttpCluster, node: Node): string => c.memberOf(node).peer.toString();

describe("webraft tool (child processes)", () => {
  it("runs every verb against a group with a secret", async () => {
    const c = new HttpCluster({ secret });
    try {
      const first = await startGroup(c, 3);
      const conf = new Configuration(first.map((m) => m.peer)).toString();
      const g = c.group;
      const leader = await c.waitLeader();
      const s = ["--secret", secret];

      // get_leader and list_peers, through both launchers
      for (const via of ["node", "bun"] as const) {
        assert.equal(
          await ok(via, ["get_leader", "--group", g, "--conf", conf, ...s]),
          `Leader of replication group \`${g}' is ${peerOf(c, leader)}`,
        );
      }
      const listed = await ok("bun", ["list_peers", `--group=${g}`, `--conf=${conf}`], {
        WEBRAFT_SECRET: secret,
      });
      assert.equal(listed, `Peers of replication group \`${g}' are ${conf}`);

      // the secret: missing, wrong (flag and environment); never printed
      for (const via of ["node", "bun"] as const) {
        for (const env of [{}, { WEBRAFT_SECRET: "not-it" }]) {
          const r = await webraft(via, ["get_leader", "--group", g, "--conf", conf], env);
          assert.equal(r.code, 1, `${via} ${JSON.stringify(env)}: ${r.stdout}${r.stderr}`);
          assert.equal(r.stdout, "");
          assert.match(r.stderr, /^Fail to get_leader : \[EACCES\] /);
        }
        const r = await webraft(via, ["list_peers", "--group", g, "--conf", conf, "--secret=x"]);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /^Fail to list_peers : \[EACCES\] /);
        assert.ok(!(r.stdout + r.stderr).includes(secret));
      }

      // add_peer: a 4th node started with an empty configuration
      const fourth = await c.serveMember();
      await c.startNode(fourth, null);
      const grown = Configuration.parse(`${conf},${fourth.peer}`).toString();
      assert.equal(
        await ok("node", [
          "add_peer",
          "--group",
          g,
          "--peer",
          `${fourth.peer}`,
          "--conf",
          conf,
          ...s,
        ]),
        `Configuration of replication group \`${g}' changed from ${conf} to ${grown}`,
      );
      assert.ok((await c.waitLeader()).listPeers().some((p) => p.equals(fourth.peer)));

      // transfer_leader to a follower of the first three, then again: already the leader
      const now = await c.waitLeader();
      const target = first.find((m) => m.node !== now)!;
      assert.equal(
        await ok("bun", [
          "transfer_leader",
          "--group",
          g,
          "--peer",
          `${target.peer}`,
          "--conf",
          grown,
          ...s,
        ]),
        `Leadership of group \`${g}' is being transferred from ${peerOf(c, now)} to ${target.peer}`,
      );
      await waitFor(() => target.node!.isLeader() || undefined, DEADLINE_MS, "the transfer");
      await c.waitLeader();
      // every member answers get_leader with the new leader (none still names the old one)
      await waitFor(
        () => c.nodes().every((n) => n.leaderId()?.equals(target.peer)) || undefined,
        DEADLINE_MS,
        "every member knows the new leader",
      );
      assert.equal(
        await ok("node", [
          "transfer_leader",
          "--group",
          g,
          `--peer=${target.peer}`,
          `--conf=${grown}`,
          ...s,
        ]),
        `Peer ${target.peer} is already the leader of group \`${g}'`,
      );

      // remove_peer the 4th
      assert.equal(
        await ok("bun", [
          "remove_peer",
          "--group",
          g,
          "--peer",
          `${fourth.peer}`,
          "--conf",
          grown,
          ...s,
        ]),
        `Configuration of replication group \`${g}' changed from ${grown} to ${conf}`,
      );

      // change_peers: replace the configuration with the first three and a fresh 5th
      const fifth = await c.serveMember();
      await c.startNode(fifth, null);
      const changed = Configuration.parse(`${conf},${fifth.peer}`).toString();
      assert.equal(
        await ok("node", [
          "change_peers",
          "--group",
          g,
          "--conf",
          conf,
          "--new_peers",
          changed,
          ...s,
        ]),
        `Configuration of replication group \`${g}' changed from ${conf} to ${changed}`,
      );

      // snapshot on a follower
      const follower = first.find((m) => m.node !== target.node)!;
      assert.equal(
        await ok("bun", ["snapshot", "--group", g, "--peer", `${follower.peer}`], {
          WEBRAFT_SECRET: secret,
        }),
        `Peer ${follower.peer} of replication group \`${g}' saved a snapshot`,
      );
      assert.ok(follower.node!.describe().lastSnapshotIndex > 0);

      // stat: one peer and one group; every peer of a configuration (no secret needed)
      const one = await ok("node", ["stat", "--peer", `${target.peer}`, "--group", g]);
      assert.match(one, new RegExp(`^group_id: ${g}\\npeer_id: ${target.peer}\\nstate: LEADER\\n`));
      assert.match(one, /^last_log_id: \(index=\d+,term=\d+\)$/m);
      assert.match(one, new RegExp(`^replicator@${fifth.peer}: next_index=\\d+`, "m"));
      const all = await ok("bun", ["stat", "--conf", changed]);
      for (const p of changed.split(",")) assert.match(all, new RegExp(`^peer_id: ${p}$`, "m"));
      const missing = await webraft("bun", ["stat", "--peer", `${target.peer}`, "--group", "nope"]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /^Fail to stat : \[ENOENT\] /);

      // reset_peer on a survivor after stopping two of the other three voters
      const survivor = target;
      const others = [...first, fifth].filter((m) => m !== survivor).slice(0, 3);
      for (const m of others) {
        await m.node!.shutdown();
        m.node = null;
      }
      const alone = `${survivor.peer}`;
      assert.equal(
        await ok("node", ["reset_peer", "--group", g, "--peer", alone, "--new_peers", alone, ...s]),
        `Configuration of peer ${alone} in replication group \`${g}' was reset to ${alone}`,
      );
      await waitFor(
        () => survivor.node!.isLeader() || undefined,
        DEADLINE_MS,
        "the survivor leads",
      );
      assert.equal(
        await ok("bun", ["get_leader", "--group", g, "--conf", alone, ...s]),
        `Leader of replication group \`${g}' is ${alone}`,
      );
    } finally {
      await c.stopAll();
    }
  });

  it("gets EACCES from a node with disableCli, and exits 2 on usage errors", async () => {
    const c = new HttpCluster({ secret });
    try {
      const m = await c.serveMember();
      await c.startNode(m, new Configuration([m.peer]), { disableCli: true });
      await c.waitLeader();
      const p = `${m.peer}`;
      for (const via of ["node", "bun"] as const) {
        const r = await webraft(via, [
          "snapshot",
          "--group",
          c.group,
          "--peer",
          p,
          "--secret",
          secret,
        ]);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /^Fail to snapshot : \[EACCES\] .*disableCli/);
        const l = await webraft(via, ["list_peers", "--group", c.group, "--conf", p], {
          WEBRAFT_SECRET: secret,
        });
        assert.equal(l.code, 1);
        assert.match(l.stderr, /^Fail to list_peers : \[EACCES\] /);

        for (
          const args of [["nope"], ["add_peer", "--group", "g", "--conf", p], [
            "snapshot",
            "--group",
            "g",
            "--peer",
            "x",
          ]]
        ) {
          const u = await webraft(via, args);
          assert.equal(u.code, 2, `${via} ${args.join(" ")}: ${u.stderr}`);
          assert.equal(u.stdout, "");
          assert.match(u.stderr, /^webraft: .*\n\nUsage: webraft <command> \[--flags\]\n/);
        }
        const h = await webraft(via, ["--help"]);
        assert.equal(h.code, 0);
        assert.match(h.stdout, /^Usage: webraft/);
      }
    } finally {
      await c.stopAll();
    }
  });

  it("bin/webraft.mjs forwards SIGTERM to the runtime it started", async () => {
    // a "node" that accepts the call and never answers: the tool waits (no --timeout_ms)
    const sockets: Socket[] = [];
    let connected!: (s: Socket) => void;
    const connection = new Promise<Socket>((resolve) => connected = resolve);
    const server = createServer((s) => {
      sockets.push(s);
      s.resume(); // read, so that the end of the connection is seen
      connected(s);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    const child = spawn(
      "node",
      [
        join(root, "bin", "webraft.mjs"),
        "get_leader",
        "--group",
        "g",
        "--conf",
        `127.0.0.1:${port}`,
      ],
      { cwd: root, stdio: "ignore" },
    );
    const exited = new Promise<string | null>((resolve) =>
      child.once("exit", (_c, sig) => resolve(sig))
    );
    try {
      const socket = await connection;
      const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
      child.kill("SIGTERM");
      assert.equal(await exited, "SIGTERM");
      await withDeadline(closed, DEADLINE_MS, "the runtime's exit"); // the runtime behind the wrapper is gone too: its connection closed
    } finally {
      child.kill("SIGKILL");
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
