/**
 * The `webraft` tool's pure parts: every verb's required flags, usage errors (exit status 2
 * with the usage text), `--flag=value`, `--secret` from the environment, and the formatters.
 */

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Configuration } from "../../src/conf/configuration.ts";
import { ANY_PEER, PeerId } from "../../src/conf/peer_id.ts";
import { RaftError, RaftException } from "../../src/errors/status.ts";
import { parseArgs, USAGE, UsageError, VERBS } from "../../src/cli/args.ts";
import {
  formatChange,
  formatFailure,
  formatStat,
  formatTransfer,
  snakeCase,
} from "../../src/cli/format.ts";
import { run } from "../../src/cli/main.ts";

const P = "127.0.0.1:8100";
const C = "127.0.0.1:8100,127.0.0.1:8101,127.0.0.1:8102";

/** Every verb with a full, valid set of flags. */
const FULL: Record<string, string[]> = {
  add_peer: ["--group", "g", "--peer", P, "--conf", C],
  remove_peer: ["--group", "g", "--peer", P, "--conf", C],
  change_peers: ["--group", "g", "--conf", C, "--new_peers", C],
  reset_peer: ["--group", "g", "--peer", P, "--new_peers", P],
  snapshot: ["--group", "g", "--peer", P],
  transfer_leader: ["--group", "g", "--peer", P, "--conf", C],
  get_leader: ["--group", "g", "--conf", C],
  list_peers: ["--group", "g", "--conf", C],
  stat: ["--peer", P],
};

function command(argv: string[], env: Record<string, string> = {}) {
  const parsed = parseArgs(argv, env);
  assert.ok(!parsed.help);
  return parsed.command;
}

function usageError(argv: string[], pattern: RegExp): void {
  assert.throws(() => parseArgs(argv, {}), (e: unknown) => {
    assert.ok(e instanceof UsageError, `expected a UsageError, got ${String(e)}`);
    assert.match(e.message, pattern);
    return true;
  });
}

describe("webraft arguments", () => {
  it("accepts every verb with its flags and has a test for each", () => {
    assert.deepEqual(Object.keys(FULL).sort(), [...VERBS].sort());
    for (const [verb, flags] of Object.entries(FULL)) {
      const c = command([verb, ...flags]);
      assert.equal(c.verb, verb);
      assert.equal(c.timeoutMs, -1);
      assert.equal(c.maxRetry, 3);
      assert.equal(c.secret, undefined);
    }
  });

  it("rejects each verb without each of its required flags", () => {
    for (const [verb, flags] of Object.entries(FULL)) {
      if (verb === "stat") continue;
      for (let i = 0; i < flags.length; i += 2) {
        const name = flags[i]!;
        const without = [...flags.slice(0, i), ...flags.slice(i + 2)];
        usageError([verb, ...without], new RegExp(`^${verb} needs ${name}$`));
      }
    }
    usageError(["stat"], /stat needs --peer or --conf/);
    usageError(["stat", "--peer", P, "--conf", C], /stat needs --peer or --conf/);
  });

  it("reads the values: peers, configurations, numbers", () => {
    const c = command(["change_peers", ...FULL.change_peers!]);
    assert.equal(c.group, "g");
    assert.ok(c.conf!.equals(Configuration.parse(C)));
    assert.ok(c.newPeers!.equals(Configuration.parse(C)));
    assert.equal(c.peer, null);
    const r = command(["reset_peer", "--group", "g", "--peer", P, "--new_peers", P]);
    assert.ok(r.peer!.equals(PeerId.parse(P)));
    const s = command(["stat", "--conf", C, "--group", "g", "--timeout_ms", "500"]);
    assert.equal(s.conf!.size, 3);
    assert.equal(s.group, "g");
    assert.equal(s.timeoutMs, 500);
    assert.equal(command(["stat", "--peer", P]).group, "");
  });

  it("takes --flag=value like --flag value, including values with '='", () => {
    const c = command([
      "add_peer",
      "--group=g",
      `--peer=${P}`,
      `--conf=${C}`,
      "--timeout_ms=2000",
      "--max_retry=0",
      "--secret=a=b",
    ]);
    assert.deepEqual(
      [c.group, c.peer!.toString(), c.conf!.size, c.timeoutMs, c.maxRetry, c.secret],
      ["g", `${P}:0`, 3, 2000, 0, "a=b"],
    );
  });

  it("reads the secret from --secret, else WEBRAFT_SECRET", () => {
    assert.equal(command(["snapshot", ...FULL.snapshot!], { WEBRAFT_SECRET: "env" }).secret, "env");
    assert.equal(
      command(["snapshot", ...FULL.snapshot!, "--secret", "flag"], { WEBRAFT_SECRET: "env" })
        .secret,
      "flag",
    );
  });

  it("rejects an empty --secret and ignores an empty WEBRAFT_SECRET", () => {
    usageError(["snapshot", ...FULL.snapshot!, "--secret="], /^--secret is empty$/);
    assert.equal(
      command(["snapshot", ...FULL.snapshot!], { WEBRAFT_SECRET: "" }).secret,
      undefined,
    );
  });

  it("takes an empty --peer of transfer_leader as any peer, nowhere else", () => {
    assert.ok(
      command(["transfer_leader", "--group", "g", "--peer=", "--conf", C]).peer!.equals(ANY_PEER),
    );
    usageError(["snapshot", "--group", "g", "--peer="], /--peer: Cannot parse peer id ""/);
  });

  it("rejects unknown verbs and flags, misplaced flags, repeats and stray arguments", () => {
    usageError([], /^Missing command$/);
    usageError(["add_peers"], /^Unknown command "add_peers"$/);
    usageError(
      ["get_leader", "--group", "g", "--conf", C, "--leader", P],
      /^Unknown flag --leader$/,
    );
    usageError(
      ["get_leader", "--group", "g", "--conf", C, "--peer", P],
      /^get_leader does not take --peer$/,
    );
    usageError(["snapshot", "--group", "g", "--group", "h", "--peer", P], /--group is given twice/);
    usageError(["snapshot", "--group", "g", "--peer", P, "extra"], /Unexpected argument "extra"/);
    usageError(["snapshot", "--group", "--peer", P], /^--group needs a value$/);
    usageError(["snapshot", "--peer", P, "--group"], /^--group needs a value$/);
    usageError(["snapshot", "--peer", P, "--group="], /^--group is empty$/);
  });

  it("rejects malformed peers, configurations and numbers", () => {
    usageError(
      ["snapshot", "--group", "g", "--peer", "nohost"],
      /^--peer: Cannot parse peer id "nohost"/,
    );
    usageError(
      ["get_leader", "--group", "g", "--conf", "a:1,b"],
      /^--conf: Cannot parse configuration/,
    );
    usageError(["get_leader", "--group", "g", "--conf", ","], /^--conf is empty$/);
    usageError(
      ["reset_peer", "--group", "g", "--peer", P, "--new_peers", ""],
      /^--new_peers is empty$/,
    );
    for (const t of ["0", "-2", "1.5", "x", ""]) {
      usageError(["get_leader", ...FULL.get_leader!, "--timeout_ms", t], /--timeout_ms must be/);
    }
    for (const t of ["-1", "x", "1e3"]) {
      usageError(["get_leader", ...FULL.get_leader!, `--max_retry=${t}`], /--max_retry must be/);
    }
  });

  it("asks for help with --help, -h or help", () => {
    for (const argv of [["--help"], ["-h"], ["help"], ["add_peer", "--help"]]) {
      assert.deepEqual(parseArgs(argv, {}), { help: true });
    }
  });
});

describe("webraft run (no node needed)", () => {
  it("exits 2 with the message and the usage text on every usage error", async () => {
    for (const argv of [[], ["nope"], ["get_leader", "--group", "g"], ["stat", "--bogus=1"]]) {
      const out = await run(argv, {});
      assert.equal(out.code, 2, argv.join(" "));
      assert.deepEqual(out.stdout, []);
      assert.match(out.stderr[0]!, /^webraft: /);
      assert.equal(out.stderr.at(-1), USAGE);
    }
  });

  it("prints the usage text and exits 0 for --help", async () => {
    assert.deepEqual(await run(["--help"], {}), { code: 0, stdout: [USAGE], stderr: [] });
  });

  it("exits 1 with the status when no node answers", async () => {
    // port 1 refuses (or is blocked): a network failure, not a usage error
    const out = await run([
      "get_leader",
      "--group",
      "g",
      "--conf",
      "127.0.0.1:1",
      "--secret",
      "hush",
    ], {});
    assert.equal(out.code, 1);
    assert.match(out.stderr[0]!, /^Fail to get_leader : \[EHOSTUNREACH\] /);
    assert.ok(!out.stderr.join("\n").includes("hush"));
  });

  it("names every verb and flag in the usage text", () => {
    for (const verb of VERBS) assert.match(USAGE, new RegExp(`\\n  ${verb} `));
    for (
      const flag of ["group", "peer", "conf", "new_peers", "timeout_ms", "max_retry", "secret"]
    ) {
      assert.match(USAGE, new RegExp(`--${flag} `));
    }
  });
});

describe("webraft output", () => {
  it("prints braft's configuration change line", () => {
    assert.equal(
      formatChange("g", Configuration.parse("h:1,h:2"), Configuration.parse("h:1")),
      "Configuration of replication group `g' changed from h:1:0,h:2:0 to h:1:0",
    );
  });

  it("prints failures as Fail to <verb> : [ECODE] message", () => {
    assert.equal(
      formatFailure("snapshot", RaftException.of(RaftError.EBUSY, "Is saving a snapshot")),
      "Fail to snapshot : [EBUSY] Is saving a snapshot",
    );
    assert.equal(formatFailure("stat", new Error("boom")), "Fail to stat : [EIO] boom");
  });

  it("prints already the leader, or the transfer", () => {
    const a = PeerId.parse("h:1");
    const b = PeerId.parse("h:2");
    assert.match(formatTransfer("g", a, a), /already the leader/);
    assert.equal(
      formatTransfer("g", a, b),
      "Leadership of group `g' is being transferred from h:1:0 to h:2:0",
    );
    assert.match(formatTransfer("g", a, ANY_PEER), /from h:1:0 to the most caught-up follower/);
  });

  it("prints raft_stat as key: value lines in snake_case", () => {
    assert.equal(snakeCase("knownAppliedIndex"), "known_applied_index");
    assert.deepEqual(
      formatStat({
        groupId: "g",
        readonly: false,
        leader: "",
        learners: [],
        lastLogId: { index: 3, term: 1 },
        followers: [{ peer: "h:2:0", nextIndex: 4, blocking: false }, { other: 1 }],
        extra: null,
      }),
      [
        "group_id: g",
        "readonly: false",
        "leader:",
        "learners:",
        "last_log_id: (index=3,term=1)",
        "follower@h:2:0: next_index=4 blocking=false",
        "follower[1]: other=1",
        "extra:",
      ],
    );
  });
});
