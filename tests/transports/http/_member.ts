/**
 * One raft member in its own process, for the mixed-runtime test (run by Deno, Bun or Node).
 *
 * It serves a Hono app on 127.0.0.1 port 0 with the raft service mounted and prints
 * `PORT <n>` on stdout. The parent then sends `POST /test/init` with the peer id, the group's
 * configuration and a data directory; the node uses local:// storage there. Test routes on
 * the same port: `POST /test/apply` `{ value }` (leader only: 200 `{ index }` once applied,
 * 503 `{ leader }` otherwise) and `GET /test/state` (role, term, leader and every applied
 * value, in order). SIGTERM shuts the node and the server down and exits 0.
 */

import { Hono } from "hono";
import { Node } from "../../../src/node/node.ts";
import type { Iterator } from "../../../src/node/iterator.ts";
import { StateMachine } from "../../../src/node/state_machine.ts";
import { RaftException, Status } from "../../../src/errors/status.ts";
import { addService } from "../../../transports/http/service.ts";
import { serve } from "../../../transports/http/serve.ts";

class RecordingFsm extends StateMachine {
  values: string[] = [];
  onApply(iter: Iterator): void {
    for (; iter.valid(); iter.next()) {
      this.values.push(iter.data().text());
      iter.done()?.run(Status.OK());
    }
  }
}

const secret = process.env.WEBRAFT_TEST_SECRET;
const app = new Hono();
addService(app, "127.0.0.1:0", secret === undefined ? {} : { secret });
const fsm = new RecordingFsm();
let node: Node | null = null;

app.post("/test/init", async (c) => {
  const body = await c.req.json() as { peer: string; conf: string; dir: string; group: string };
  node = new Node(body.group, body.peer);
  await node.init({
    fsm,
    initialConf: body.conf,
    logUri: `local://${body.dir}/log`,
    raftMetaUri: `local://${body.dir}/raft_meta`,
    electionTimeoutMs: 500,
  });
  return c.json({ ok: true });
});

app.post("/test/apply", async (c) => {
  const { value } = await c.req.json() as { value: string };
  if (node === null || !node.isLeader()) {
    return c.json({ leader: node?.leaderId()?.toString() ?? null }, 503);
  }
  try {
    await node.applyAsync(new TextEncoder().encode(value));
    return c.json({ ok: true });
  } catch (e) {
    const code = e instanceof RaftException ? e.status.code : -1;
    return c.json({ error: String(e), code }, 503);
  }
});

app.get("/test/state", (c) =>
  c.json({
    state: node?.describe().state ?? "UNINITIALIZED",
    term: node?.term() ?? 0,
    leader: node?.leaderId()?.toString() ?? null,
    values: fsm.values,
  }));

const server = await serve(app, { hostname: "127.0.0.1", port: 0 });
console.log(`PORT ${server.port}`);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await node?.shutdown();
  await server.shutdown();
  process.exit(0);
}
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
