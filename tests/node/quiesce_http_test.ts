// Quiescence over real sockets (HttpTransport): an idle group stays quiesced on PINGs alone, and
// when the leader's server goes away without a word the followers notice and elect.
import { it } from "node:test";
import assert from "node:assert/strict";
import { HttpCluster } from "../transports/http/_http_cluster.ts";
import { applyStatus, DEADLINE_MS, sleep, waitFor } from "./cluster.ts";

it("over HttpTransport: idle groups stay quiesced; a dead leader endpoint is noticed", async () => {
  const c = new HttpCluster();
  try {
    const members = [await c.serveMember(), await c.serveMember(), await c.serveMember()];
    for (const m of members) await c.startNode(m, c.conf(), { quiesce: true });
    const leader = await c.waitLeader();
    assert.ok((await applyStatus(leader, "a")).ok());
    const all = () => c.nodes().every((n) => n.quiesced) || undefined;
    await waitFor(all, DEADLINE_MS, "a quiesced group");
    const term = leader.term();
    await sleep(1500); // several election timeouts (400 ms) of PINGs only
    assert.ok(c.nodes().every((n) => n.quiesced), "still quiesced");
    assert.equal(leader.term(), term);
    // the leader's process dies: no shutdown, no TimeoutNow, its server just stops
    const dead = c.memberOf(leader);
    await dead.server.shutdown();
    await dead.service.close();
    const next = await waitFor(
      () => c.nodes().find((n) => n !== leader && n.isLeader()),
      DEADLINE_MS,
      "a new leader",
    );
    assert.ok(next.term() > term);
    await leader.shutdown();
    dead.node = null;
    assert.ok((await applyStatus(next, "b")).ok());
    await c.ensureSame();
    assert.deepEqual(c.memberOf(next).fsm!.logs, ["a", "b"]);
  } finally {
    await c.stopAll();
  }
});
