// The raft_* flags a node reads at init take effect.
import { it } from "node:test";
import assert from "node:assert/strict";
import { flags } from "../../src/util/flags.ts";
import type { Iterator } from "../../src/node/iterator.ts";
import { Node } from "../../src/node/node.ts";
import { StateMachine } from "../../src/node/state_machine.ts";
import { Status } from "../../src/errors/status.ts";
import { MemoryNetwork } from "../../transports/memory/memory_network.ts";
import { SettleTracker } from "./_settle.ts";

/** Every closure given to `apply()` runs once and every Promise settles (checked last). */
const settle = new SettleTracker();

class BatchRecorder extends StateMachine {
  batches: number[] = [];
  onApply(iter: Iterator): void {
    let n = 0;
    for (; iter.valid(); iter.next()) {
      n++;
      iter.done()?.run(Status.OK());
    }
    this.batches.push(n);
  }
}

it("raft_apply_batch caps the entries per onApply call", async () => {
  const saved = flags.raft_apply_batch;
  flags.raft_apply_batch = 4;
  const net = new MemoryNetwork();
  try {
    const fsm = new BatchRecorder();
    const node = new Node("flags", "127.0.0.1:7600:0");
    settle.instrument(node);
    await node.init({
      fsm,
      initialConf: "127.0.0.1:7600:0",
      logUri: "memory://flags/log",
      raftMetaUri: "memory://flags/meta",
      transport: net.transport("127.0.0.1:7600"),
    });
    await node.waitLeader();
    await Promise.all(Array.from({ length: 40 }, () => node.applyAsync(new Uint8Array([1]))));
    assert.equal(fsm.batches.reduce((a, b) => a + b, 0), 40);
    assert.ok(Math.max(...fsm.batches) <= 4, `batches ${fsm.batches.join(",")}`);
    assert.ok(fsm.batches.some((b) => b === 4), "batching happened");
    await node.shutdown();
  } finally {
    flags.raft_apply_batch = saved;
    await net.close();
  }
});

it("every closure given to apply() ran exactly once and every node Promise settled", async () => {
  assert.ok(settle.counts.promises > 0, "the check had work");
  await settle.check(30_000);
});
