/** The history recorder: outcomes, times, save and load. */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { History } from "./history.ts";
import { checkCounter, type CounterInput } from "./counter_checker.ts";

describe("history recorder", () => {
  it("records outcomes with call and return times on one clock", () => {
    const h = new History<CounterInput, number>();
    const a = h.invoke(1, { f: "add", delta: 1 });
    const b = h.invoke(2, { f: "get" });
    const c = h.invoke(3, { f: "add", delta: 1 });
    a.ok(0);
    b.fail();
    c.info();
    h.invoke(4, { f: "get" }); // never completed
    const ops = h.operations();
    assert.deepEqual(ops.map((o) => [o.id, o.process, o.outcome]), [
      [0, 1, "ok"],
      [1, 2, "fail"],
      [2, 3, "info"],
      [3, 4, "info"],
    ]);
    assert.deepEqual(ops.map((o) => [o.call, o.return]), [[1, 4], [2, 5], [3, null], [6, null]]);
    assert.equal(ops[0]!.output, 0);
    assert.equal("output" in ops[1]!, false);
  });
  it("refuses to complete an operation twice", () => {
    const h = new History<string, number>();
    const a = h.invoke(1, "x");
    a.ok(1);
    assert.throws(() => a.fail(), /twice/);
  });
  it("uses the given clock", () => {
    let now = 100;
    const h = new History<string, number>({ clock: () => (now += 10) });
    h.invoke(1, "x").ok(1);
    assert.deepEqual([h.operations()[0]!.call, h.operations()[0]!.return], [110, 120]);
  });
  it("saves and loads a history that checks the same", async () => {
    const dir = mkdtempSync(join(tmpdir(), "history-"));
    try {
      const h = new History<CounterInput, number>();
      const a = h.invoke(1, { f: "add", delta: 1 });
      h.invoke(2, { f: "get" }).ok(0);
      a.ok(0);
      h.invoke(2, { f: "get" }).ok(0); // stale
      const path = join(dir, "h.json");
      await h.save(path);
      const back = await History.load<CounterInput, number>(path);
      assert.deepEqual(back.operations(), h.operations());
      assert.equal(checkCounter(back.operations()).ok, false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it("rejects text that is not a saved history", () => {
    assert.throws(() => History.parse("{}"), /expected format/);
    assert.throws(
      () => History.parse(JSON.stringify({ format: "webraft-history/1", ops: [{ outcome: "x" }] })),
      /malformed/,
    );
  });
});
