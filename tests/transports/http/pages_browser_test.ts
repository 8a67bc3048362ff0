/**
 * The raft_stat and flags pages in a real headless browser: Debian's chromium (installed by
 * `scripts/ensure_chromium.mjs` when missing) driven by playwright-core. Serves a 3-node group,
 * reads every field off the leader's rendered page, waits for an auto-refresh, follows a peer
 * link to a follower's page, changes runtime flags through the flags page's forms, and saves a
 * screenshot of the leader's page to `.tmp/raft_stat.png`, and to the README's
 * `docs/raft_stat.png` when that is missing or `UPDATE_SCREENSHOTS=1` (so a test run does not
 * dirty the work tree: ports and group names differ each run). Skipped, loudly, when chromium
 * cannot be had.
 */

import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import type { Node } from "../../../src/node/node.ts";
import { flags } from "../../../src/util/flags.ts";
import { STAT_FIELDS, statJson, statText } from "../../../transports/http/pages/raft_stat_page.ts";
import { ensureChromium } from "../../../scripts/ensure_chromium.mjs";
import { waitFor } from "../../node/cluster.ts";
import { DEADLINE_MS, HttpCluster, type Member } from "./_http_cluster.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const SCREENSHOT = join(ROOT, ".tmp", "raft_stat.png");
const README_SCREENSHOT = join(ROOT, "docs", "raft_stat.png");
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const chromiumState = ensureChromium();
const skip = chromiumState.path === null
  ? `no chromium at /usr/bin/chromium (${chromiumState.why})`
  : false;
if (skip !== false) {
  console.error(`\n!!! SKIPPING the browser test of /raft_stat and /flags: ${skip} !!!\n`);
}

/** Field name → the cell's text, for every field row of the page's first node. */
async function readFields(page: Page): Promise<Map<string, string>> {
  const rows = page.locator("section.node").first().locator("tr[data-field]");
  const out = new Map<string, string>();
  for (let i = 0, n = await rows.count(); i < n; i++) {
    const row = rows.nth(i);
    const field = await row.getAttribute("data-field");
    const text = await row.locator("td").textContent();
    out.set(field!, text!.replace(" (this node)", ""));
  }
  return out;
}

/** Field name → value as the text form prints it (the same strings the page shows). */
function expectedFields(node: Node): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of statText([statJson(node.describe())]).split("\n")) {
    const m = /^([a-z_]+): (.*)$/.exec(line);
    if (m !== null) out.set(m[1]!, m[2]!);
  }
  return out;
}

describe("raft_stat and flags pages in headless chromium", { skip }, () => {
  const c = new HttpCluster();
  let context: BrowserContext | null = null;
  let userDir = "";
  let leader: Node;
  let leaderMember: Member;

  before(async () => {
    for (let i = 0; i < 3; i++) await c.serveMember();
    for (const m of c.members) await c.startNode(m, c.conf());
    leader = await c.waitLeader();
    for (let i = 0; i < 5; i++) await leader.applyAsync(new TextEncoder().encode(`entry ${i}`));
    await c.ensureSame();
    leaderMember = c.memberOf(leader);
    await waitFor(
      () => {
        const d = leader.describe();
        const done = d.followers.length === 2 &&
          d.followers.every((f) => f.matchIndex === d.lastLogId.index);
        return done ? true : undefined;
      },
      DEADLINE_MS,
      "the leader sees both followers caught up",
    );
    userDir = mkdtempSync(join(tmpdir(), "webraft-chromium-"));
    context = await chromium.launchPersistentContext(userDir, {
      executablePath: chromiumState.path!,
      headless: true,
      args: ARGS,
      viewport: { width: 1150, height: 900 },
    });
    context.setDefaultTimeout(DEADLINE_MS);
  });

  after(async () => {
    try {
      await context?.close();
    } finally {
      if (userDir !== "") rmSync(userDir, { recursive: true, force: true });
      await c.stopAll();
    }
  });

  const url = (m: Member, path: string) => `http://${m.peer.endpoint}${path}`;

  it("the leader's page shows every field, one row per follower, and reloads by itself", async () => {
    const page = await context!.newPage();
    // Auto-refresh: the page loads a second time without being told to.
    await page.goto(url(leaderMember, `/raft_stat/${encodeURIComponent(c.group)}`));
    await page.waitForEvent("load", { timeout: DEADLINE_MS });
    await page.goto(url(leaderMember, `/raft_stat/${encodeURIComponent(c.group)}?refresh=0`));
    assert.equal(await page.locator("h1").first().textContent(), `[${c.group}]`);
    const shown = await readFields(page);
    assert.deepEqual([...shown.keys()], [...STAT_FIELDS]);
    const expected = expectedFields(leader);
    for (const field of STAT_FIELDS) {
      if (field === "peers") continue; // order-free check below
      assert.equal(shown.get(field), expected.get(field), field);
    }
    assert.equal(shown.get("state"), "LEADER");
    assert.equal(shown.get("term"), String(leader.term()));
    assert.deepEqual(
      shown.get("peers")!.split(" ").sort(),
      c.members.map((m) => m.peer.toString()).sort(),
    );
    const rows = page.locator("table.replicators tbody tr");
    assert.equal(await rows.count(), 2);
    for (const m of c.members.filter((m) => m !== leaderMember)) {
      const row = page.locator(`tr[data-peer="${m.peer}"]`);
      const col = async (name: string) => await row.locator(`td[data-col="${name}"]`).textContent();
      assert.equal(await col("peer_id"), m.peer.toString());
      assert.equal(await col("match_index"), String(leader.describe().lastLogId.index));
      assert.equal(await col("next_index"), String(leader.describe().lastLogId.index + 1));
      assert.equal(await col("flying_append_entries_size"), "0");
      assert.match((await col("consecutive_error_times"))!, /^\d+$/);
      assert.match((await col("last_contact_ms"))!, /^\d+ ms ago$/);
    }
    mkdirSync(dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    if (process.env.UPDATE_SCREENSHOTS === "1" || !existsSync(README_SCREENSHOT)) {
      mkdirSync(dirname(README_SCREENSHOT), { recursive: true });
      copyFileSync(SCREENSHOT, README_SCREENSHOT);
    }
    await page.close();
  });

  it("a peer link leads to that node's page", async () => {
    const page = await context!.newPage();
    await page.goto(url(leaderMember, `/raft_stat/${encodeURIComponent(c.group)}?refresh=0`));
    const follower = c.members.find((m) => m !== leaderMember)!;
    const link = page.locator(
      `tr[data-field="peers"] a[href^="http://${follower.peer.endpoint}/"]`,
    );
    await Promise.all([page.waitForURL(`http://${follower.peer.endpoint}/**`), link.click()]);
    assert.equal(
      page.url(),
      `http://${follower.peer.endpoint}/raft_stat/${encodeURIComponent(c.group)}`,
    );
    const shown = await readFields(page);
    assert.equal(shown.get("peer_id"), follower.peer.toString());
    assert.equal(shown.get("state"), "FOLLOWER");
    assert.equal(shown.get("leader"), leaderMember.peer.toString());
    assert.equal(shown.get("term"), String(leader.term()));
    assert.equal(await page.locator("table.replicators").count(), 0);
    // …and its leader link leads back.
    await Promise.all([
      page.waitForURL(`http://${leaderMember.peer.endpoint}/**`),
      page.locator(`tr[data-field="leader"] a`).click(),
    ]);
    assert.equal((await readFields(page)).get("state"), "LEADER");
    await page.close();
  });

  it("the flags page's forms change runtime flags", async () => {
    const saved = { ...flags };
    const page = await context!.newPage();
    try {
      await page.goto(url(c.members[1]!, "/flags"));
      const value = (name: string) =>
        page.locator(`tr[data-flag="${name}"] td[data-col="value"]`).textContent();
      assert.equal(
        await value("raft_do_snapshot_min_index_gap"),
        String(saved.raft_do_snapshot_min_index_gap),
      );
      assert.equal(await page.locator(`tr[data-flag="raft_sync"] form`).count(), 0, "static flag");
      await page.screenshot({ path: join(ROOT, ".tmp", "flags.png"), fullPage: true });

      const gap = page.locator(`form[data-flag="raft_do_snapshot_min_index_gap"]`);
      await gap.locator(`input[name="value"]`).fill("42");
      await Promise.all([page.waitForURL("**/flags"), gap.locator("button").click()]);
      assert.equal(await value("raft_do_snapshot_min_index_gap"), "42");
      assert.equal(flags.raft_do_snapshot_min_index_gap, 42);

      const throttle = page.locator(`form[data-flag="raft_enable_throttle_when_install_snapshot"]`);
      await throttle.locator("select").selectOption("false");
      await Promise.all([page.waitForURL("**/flags"), throttle.locator("button").click()]);
      assert.equal(await value("raft_enable_throttle_when_install_snapshot"), "false");
      assert.equal(flags.raft_enable_throttle_when_install_snapshot, false);

      // A value the form's own checks let through but the server refuses shows an error.
      await page.goto(url(c.members[1]!, "/flags"));
      const batch = page.locator(`form[data-flag="raft_leader_batch"]`);
      await batch.locator(`input[name="value"]`).evaluate((el) => el.removeAttribute("min"));
      await batch.locator(`input[name="value"]`).fill("0");
      await batch.locator("button").click();
      assert.match((await page.locator("#error").textContent())!, /out of range/);
      assert.equal(flags.raft_leader_batch, saved.raft_leader_batch);
    } finally {
      Object.assign(flags, saved);
      await page.close();
    }
  });
});
