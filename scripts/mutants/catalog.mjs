// The planted bugs of `npm run mutants` (scripts/mutants.mjs).
//
// Each mutant is one classic Raft bug, written as exact search/replace edits on the source.
// `find` must occur exactly once in its file; runs of whitespace in `find` match any run of
// whitespace (so re-indentation or re-wrapping by `deno fmt` does not break an anchor), nothing
// else is fuzzy. `find` may list alternatives (e.g. before and after a rename): the first that
// occurs is used. In `replace`, `$&` stands for the matched text. When an anchor no longer matches, the harness reports the mutant as
// "anchor not found" (or "anchor ambiguous"): update the anchor here, do not delete the mutant.
// Keep anchors small: one expression or statement that names what the bug is about.

/**
 * @typedef {{ file: string, find: string | string[], replace: string }} Edit
 * @typedef {{ name: string, bug: string, edits: Edit[] }} Mutant
 */

const CORE = "src/core/raft_core.ts";
const LOG = "src/core/raft_log.ts";
const QUORUM = "src/core/quorum.ts";
const NODE = "src/node/node.ts";

/** @type {Mutant[]} */
export const MUTANTS = [
  {
    name: "prevote-bumps-term",
    bug:
      "a pre-vote request with a higher term makes the voter adopt that term (pre-vote variant a)",
    edits: [{
      file: CORE,
      find: "// never change term for a pre-vote",
      replace: "this.#becomeFollower(m.term, NONE); // MUTANT",
    }],
  },
  {
    name: "prevote-records-vote",
    bug: "granting a pre-vote records votedFor (pre-vote variant b)",
    edits: [{
      file: CORE,
      find: "const grant = canVote && this.#log.isUpToDate(m.lastLogIndex, m.lastLogTerm);",
      replace: "const grant = canVote && this.#log.isUpToDate(m.lastLogIndex, m.lastLogTerm);\n" +
        "    if (pre && grant) this.#vote = m.from; // MUTANT",
    }],
  },
  {
    name: "vote-ignores-last-term",
    bug: "the vote's up-to-date check compares only last indexes, not last terms (§5.4.1)",
    edits: [{
      file: LOG,
      find: "return term > lt || (term === lt && index >= this.lastIndex());",
      replace: "return lt >= 0 && index >= this.lastIndex(); // MUTANT",
    }],
  },
  {
    name: "stale-vote-resp-counted",
    bug: "a candidate counts RequestVoteResp grants from an older term",
    edits: [{
      file: CORE,
      find: "} else if (m.term < this.#term) {",
      replace: '} else if (m.term < this.#term && m.type !== "RequestVoteResp") { // MUTANT',
    }],
  },
  {
    name: "stale-append-resp-accepted",
    bug: "the leader accepts AppendEntriesResp acks sent in an older term",
    edits: [{
      file: CORE,
      find: "} else if (m.term < this.#term) {",
      replace: '} else if (m.term < this.#term && m.type !== "AppendEntriesResp") { // MUTANT',
    }],
  },
  {
    name: "no-stepdown-on-higher-term-resp",
    bug: "a leader does not step down when an AppendEntriesResp carries a higher term",
    edits: [{
      file: CORE,
      find: '} else if (m.type === "PreVoteResp" && m.granted) {',
      replace:
        '} else if (m.type === "AppendEntriesResp" || (m.type === "PreVoteResp" && m.granted)) { // MUTANT',
    }],
  },
  {
    name: "vote-not-persisted",
    bug:
      "votedFor is not part of the persisted hard state (a restarted node votes twice in a term)",
    edits: [{
      file: CORE,
      find: "return { term: this.#term, vote: this.#vote, commit: this.#log.committed };",
      replace: "return { term: this.#term, vote: NONE, commit: this.#log.committed }; // MUTANT",
    }],
  },
  {
    name: "vote-sent-before-persist",
    bug: "a vote grant leaves before the vote is durable",
    edits: [{
      file: CORE,
      find: 'this.#sendAfter({ type: "RequestVoteResp",',
      replace: 'this.#send({ type: "RequestVoteResp", // MUTANT\n',
    }],
  },
  {
    name: "append-ack-before-persist",
    bug: "a follower acknowledges appended entries before they are durable",
    edits: [{
      file: CORE,
      find: "messages: this.#msgs,",
      replace: "messages: [ // MUTANT: append acks also leave with the messages sent at once\n" +
        '        ...this.#msgs,\n        ...this.#msgsAfter.filter((m) => m.type === "AppendEntriesResp"),\n' +
        "      ],",
    }],
  },
  {
    name: "leader-self-ack-before-persist",
    bug: "the leader counts its own entries towards commit before they are durable",
    edits: [{
      file: CORE,
      find: "this.#log.appendOne(e);",
      replace:
        "this.#log.appendOne(e);\n    this.#prs.get(this.#id)?.maybeUpdate(index); // MUTANT",
    }],
  },
  {
    name: "apply-before-persist",
    bug: "committed entries are handed out for applying before they are durable locally",
    edits: [
      {
        file: LOG,
        find: "Math.min(this.committed, this.stableLastIndex()) >",
        replace: "this.committed /* MUTANT */ >",
      },
      {
        file: LOG,
        find: "const hi = Math.min(this.committed, this.stableLastIndex());",
        replace: "const hi = this.committed; // MUTANT",
      },
    ],
  },
  {
    name: "follower-commit-past-last-new",
    bug: "a follower commits up to leaderCommit capped by its log end, not by the last new entry",
    edits: [{
      file: CORE,
      find: "log.commitTo(Math.min(m.commit, lastNew));",
      replace: "log.commitTo(Math.min(m.commit, log.lastIndex())); // MUTANT",
    }],
  },
  {
    name: "heartbeat-commit-backwards",
    bug: "the commit index may move backwards (a heartbeat with a lower commit lowers it)",
    edits: [{
      file: LOG,
      find: "if (index <= this.committed) return;",
      replace: "if (index === this.committed) return; // MUTANT",
    }],
  },
  {
    name: "append-ignores-prev-term",
    bug: "the AppendEntries consistency check looks at prevLogIndex only, not prevLogTerm",
    edits: [{
      file: CORE,
      find: "if (log.matchTerm(m.prevLogIndex, m.prevLogTerm)) { const lastNew",
      replace: "if (m.prevLogIndex <= log.lastIndex()) { // MUTANT\n      const lastNew",
    }],
  },
  {
    name: "truncate-without-conflict",
    bug: "an AppendEntries always truncates at prevLogIndex + 1, conflict or not",
    edits: [{
      file: CORE,
      find: "const ci = log.findConflict(m.entries);",
      replace: "const ci = m.entries.length > 0 ? m.prevLogIndex + 1 : 0; // MUTANT",
    }],
  },
  {
    name: "install-older-snapshot",
    bug: 'InstallSnapshot handling ignores the "snapshot older than commit" guard',
    edits: [{
      file: CORE,
      find: "if (meta.index <= log.committed) {",
      replace: "if (meta.index < 0) { // MUTANT",
    }],
  },
  {
    name: "figure-8-commit",
    bug: "the leader commits entries of earlier terms by counting replicas (Figure 8, §5.4.2)",
    edits: [{
      file: CORE,
      find: "|| this.#log.term(mci) !== this.#term) return false;",
      replace: ") return false; // MUTANT",
    }],
  },
  {
    name: "joint-commit-new-majority-only",
    bug: "in a joint configuration the commit index needs only the new majority",
    edits: [{
      file: QUORUM,
      find: "const m = Math.min(a, b);",
      replace: "const m = a === Infinity ? b : a; // MUTANT",
    }],
  },
  {
    name: "joint-vote-new-majority-only",
    bug: "in a joint configuration an election needs only the new majority",
    edits: [{
      file: QUORUM,
      find: 'if (a === "lost" || b === "lost") return "lost"; if (a === "won" && b === "won")',
      replace: 'if (a === "lost") return "lost";\n  if (a === "won") // MUTANT\n   ',
    }],
  },
  {
    name: "learners-in-commit-quorum",
    bug: "learners count in the commit quorum",
    edits: [{
      file: CORE,
      find: "this.#conf.voters, this.#conf.oldVoters, (id) => this.#prs.get(id)?.match ?? 0,",
      replace: "[...this.#conf.voters, ...this.#conf.learners], // MUTANT\n" +
        "      this.#conf.oldVoters,\n      (id) => this.#prs.get(id)?.match ?? 0,",
    }],
  },
  {
    name: "conf-effective-on-commit",
    bug: "the commit quorum uses the last committed configuration, not the latest appended one",
    edits: [{
      file: CORE,
      find: "this.#conf.voters, this.#conf.oldVoters, (id) => this.#prs.get(id)?.match ?? 0,",
      replace: "keysOf(this.#confAt(this.#log.committed).peers), // MUTANT\n" +
        "      keysOf(this.#confAt(this.#log.committed).oldPeers),\n" +
        "      (id) => this.#prs.get(id)?.match ?? 0,",
    }],
  },
  {
    name: "read-before-commit-in-term",
    bug: "a new leader serves ReadIndex before committing an entry of its term",
    edits: [{
      file: CORE,
      find: "if (!this.#committedInTerm) { this.#readsBeforeCommit.push(ctx);",
      replace: "if (this.#term < 0) { // MUTANT\n      this.#readsBeforeCommit.push(ctx);",
    }],
  },
  {
    name: "read-without-quorum",
    bug: "ReadIndex is answered from the leader's commit index without a heartbeat quorum",
    edits: [{
      file: CORE,
      find: "if (single || (allowLease && this.isLeaderLeaseValid())) {",
      replace: "if (single || allowLease || !allowLease) { // MUTANT",
    }],
  },
  {
    name: "lease-ignores-clock",
    bug: "the node trusts the tick-based leader lease even when ticks lagged real time",
    edits: [{
      file: NODE,
      // the clock check of the lease (renamed on main after 771e9fd)
      find: ["#leaseConfirmedByClock(): boolean {", "#ticksKeptPace(): boolean {"],
      replace: "$&\n    if (Date.now() >= 0) return true; // MUTANT",
    }],
  },
  {
    name: "ack-overwritten-entries",
    bug: "queued append acks are not withdrawn when a later AppendEntries truncates the entries " +
      "they claim (finding 1; the ack-claims assertion is disabled too)",
    edits: [
      {
        file: CORE,
        find: "if (ci <= log.lastIndex()) this.#withdrawAcks(ci);",
        replace: "if (ci <= log.lastIndex()) void ci; // MUTANT",
      },
      {
        file: CORE,
        find: "#checkAckClaims(msgs: readonly Message[]): void {",
        replace: "#checkAckClaims(msgs: readonly Message[]): void {\n" +
          "    if (msgs.length >= 0) return; // MUTANT",
      },
    ],
  },
  {
    name: "ack-replaced-by-snapshot",
    bug: "queued append acks are not withdrawn when an InstallSnapshot replaces the log " +
      "(the ack-claims assertion is disabled too)",
    edits: [
      {
        file: CORE,
        find: [
          "this.#withdrawAcks(pending === undefined ? log.committed + 1 : pending.index);",
          "this.#withdrawAcks(log.committed + 1);",
        ],
        replace: "// MUTANT: acks beyond the commit index kept",
      },
      {
        file: CORE,
        find: "#checkAckClaims(msgs: readonly Message[]): void {",
        replace: "#checkAckClaims(msgs: readonly Message[]): void {\n" +
          "    if (msgs.length >= 0) return; // MUTANT",
      },
    ],
  },
];
