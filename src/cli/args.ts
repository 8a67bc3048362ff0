/**
 * The `webraft` command line: its usage text and the parser from `argv` to a {@linkcode Command}
 * (braft_cli's verbs and flags, plus `get_leader`, `list_peers` and `stat`). Pure: no I/O.
 *
 * @module
 */

import { Configuration } from "../conf/configuration.ts";
import { ANY_PEER, PeerId } from "../conf/peer_id.ts";

/** The verbs of the `webraft` tool. */
export const VERBS = [
  "add_peer",
  "remove_peer",
  "change_peers",
  "reset_peer",
  "snapshot",
  "transfer_leader",
  "get_leader",
  "list_peers",
  "stat",
] as const;

/** One of {@linkcode VERBS}. */
export type Verb = (typeof VERBS)[number];

/** The flags a verb requires and the ones it also accepts (besides the common ones). */
const SPECS: Readonly<Record<Verb, { required: readonly string[]; optional: readonly string[] }>> =
  {
    add_peer: { required: ["group", "peer", "conf"], optional: [] },
    remove_peer: { required: ["group", "peer", "conf"], optional: [] },
    change_peers: { required: ["group", "conf", "new_peers"], optional: [] },
    reset_peer: { required: ["group", "peer", "new_peers"], optional: [] },
    snapshot: { required: ["group", "peer"], optional: [] },
    transfer_leader: { required: ["group", "peer", "conf"], optional: [] },
    get_leader: { required: ["group", "conf"], optional: [] },
    list_peers: { required: ["group", "conf"], optional: [] },
    stat: { required: [], optional: ["group", "peer", "conf"] },
  };

const COMMON = ["timeout_ms", "max_retry", "secret"] as const;
const ALL_FLAGS: ReadonlySet<string> = new Set([
  "group",
  "peer",
  "conf",
  "new_peers",
  ...COMMON,
]);

/** The environment variable read when `--secret` is not given. */
export const SECRET_ENV = "WEBRAFT_SECRET";

/**
 * The usage text printed by `--help` and with every usage error.
 *
 * @example
 * ```ts
 * import { USAGE } from "./args.ts";
 * import assert from "node:assert/strict";
 * assert.match(USAGE, /^Usage: webraft <command>/);
 * ```
 */
export const USAGE: string = `Usage: webraft <command> [--flags]

Commands:
  add_peer         --group --peer --conf       add --peer to the group through its leader
  remove_peer      --group --peer --conf       remove --peer from the group
  change_peers     --group --conf --new_peers  set the voters to --new_peers
  reset_peer       --group --peer --new_peers  force --peer's configuration (unsafe: only
                                               when a majority is lost for good)
  snapshot         --group --peer              make --peer take a snapshot now
  transfer_leader  --group --peer --conf       make --peer the leader (--peer= : any peer)
  get_leader       --group --conf              print the leader
  list_peers       --group --conf              print the voters, as the leader sees them
  stat             --peer | --conf [--group]   print each node's /raft_stat

Flags:
  --group <id>          the raft group
  --peer <peer>         a peer id: host:port[:idx]
  --conf <peers>        comma-separated peer ids, asked for the leader
  --new_peers <peers>   comma-separated peer ids: the new configuration
  --timeout_ms <ms>     timeout of each call (default -1: none)
  --max_retry <n>       retries through a new leader (default 3)
  --secret <secret>     the cluster's shared secret (default: $${SECRET_ENV})
  --help                print this text

Flags are given as "--flag value" or "--flag=value".
Exit status: 0 success, 1 failure (the status is printed), 2 usage error.`;

/** A parsed command line, ready to run. */
export interface Command {
  /** What to do. */
  verb: Verb;
  /** `--group` (`""` when not given: only `stat` allows that). */
  group: string;
  /** `--peer`: `ANY_PEER` for `transfer_leader --peer=`; `null` when not given. */
  peer: PeerId | null;
  /** `--conf`, `null` when not given. */
  conf: Configuration | null;
  /** `--new_peers`, `null` when not given. */
  newPeers: Configuration | null;
  /** `--timeout_ms`: > 0, or -1 for none. */
  timeoutMs: number;
  /** `--max_retry`: >= 0. */
  maxRetry: number;
  /** `--secret`, else a non-empty `$WEBRAFT_SECRET`, else `undefined`. */
  secret: string | undefined;
}

/** What {@linkcode parseArgs} found: a command, or a request for the usage text. */
export type ParsedArgs = { help: true } | { help: false; command: Command };

/**
 * A command line that cannot run; the tool prints the message and {@linkcode USAGE} and
 * exits with status 2.
 */
export class UsageError extends Error {
  /**
   * @param message What is wrong with the command line.
   */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * Parses the arguments after the program name.
 *
 * @param argv For example `["add_peer", "--group", "g", "--peer=h:8103", "--conf", "h:8100"]`.
 * @param env The environment; `WEBRAFT_SECRET` is the default of `--secret`.
 * @returns The command, or `{ help: true }` for `--help`, `-h` or `help`.
 * @throws {UsageError} Unknown verb or flag, a missing required flag or value, a flag the verb
 *   does not take, a repeated flag, an extra argument, or a malformed peer, configuration or
 *   number.
 *
 * @example
 * ```ts
 * import { parseArgs, UsageError } from "./args.ts";
 * import assert from "node:assert/strict";
 *
 * const parsed = parseArgs(
 *   ["add_peer", "--group", "g", "--peer=127.0.0.1:8103", "--conf", "127.0.0.1:8100,127.0.0.1:8101"],
 *   {},
 * );
 * assert.ok(!parsed.help);
 * assert.equal(parsed.command.peer?.toString(), "127.0.0.1:8103:0");
 * assert.equal(parsed.command.conf?.size, 2);
 * assert.equal(parsed.command.timeoutMs, -1);
 * assert.throws(() => parseArgs(["add_peer", "--group", "g"], {}), UsageError);
 * ```
 */
export function parseArgs(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): ParsedArgs {
  if (argv.some((a) => a === "--help" || a === "-h") || argv[0] === "help") return { help: true };
  const [verbText, ...rest] = argv;
  if (verbText === undefined) throw new UsageError("Missing command");
  if (!(VERBS as readonly string[]).includes(verbText)) {
    throw new UsageError(`Unknown command "${verbText}"`);
  }
  const verb = verbText as Verb;
  const values = readFlags(rest);
  const spec = SPECS[verb];
  for (const name of values.keys()) {
    if (!spec.required.includes(name) && !spec.optional.includes(name) && !isCommon(name)) {
      throw new UsageError(`${verb} does not take --${name}`);
    }
  }
  for (const name of spec.required) {
    if (!values.has(name)) throw new UsageError(`${verb} needs --${name}`);
  }
  if (verb === "stat" && values.has("peer") === values.has("conf")) {
    throw new UsageError("stat needs --peer or --conf (one of them)");
  }

  const group = values.get("group") ?? "";
  if (values.has("group") && group === "") throw new UsageError("--group is empty");
  const peerText = values.get("peer");
  let peer: PeerId | null = null;
  if (peerText !== undefined) {
    peer = peerText === "" && verb === "transfer_leader" ? ANY_PEER : parsePeer(peerText);
  }
  const confText = values.get("conf");
  const newPeersText = values.get("new_peers");
  if (values.get("secret") === "") throw new UsageError("--secret is empty");
  // an empty variable (WEBRAFT_SECRET=) means no secret, as if unset
  const secret = values.get("secret") ?? (env[SECRET_ENV] || undefined);
  return {
    help: false,
    command: {
      verb,
      group,
      peer,
      conf: confText === undefined ? null : parseConf("conf", confText),
      newPeers: newPeersText === undefined ? null : parseConf("new_peers", newPeersText),
      timeoutMs: parseTimeout(values.get("timeout_ms")),
      maxRetry: parseMaxRetry(values.get("max_retry")),
      secret,
    },
  };
}

function isCommon(name: string): boolean {
  return (COMMON as readonly string[]).includes(name);
}

/** `--name value` and `--name=value` pairs, by name. */
function readFlags(args: readonly string[]): Map<string, string> {
  const values = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith("--") || arg === "--") {
      throw new UsageError(`Unexpected argument "${arg}"`);
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    if (!ALL_FLAGS.has(name)) throw new UsageError(`Unknown flag --${name}`);
    let value: string;
    if (eq >= 0) {
      value = arg.slice(eq + 1);
    } else {
      const next = args[i + 1];
      if (next === undefined || next.startsWith("--")) {
        throw new UsageError(`--${name} needs a value`);
      }
      value = next;
      i++;
    }
    if (values.has(name)) throw new UsageError(`--${name} is given twice`);
    values.set(name, value);
  }
  return values;
}

function parsePeer(text: string): PeerId {
  try {
    return PeerId.parse(text);
  } catch (e) {
    throw new UsageError(`--peer: ${(e as Error).message}`);
  }
}

function parseConf(name: string, text: string): Configuration {
  let conf: Configuration;
  try {
    conf = Configuration.parse(text);
  } catch (e) {
    throw new UsageError(`--${name}: ${(e as Error).message}`);
  }
  if (conf.isEmpty()) throw new UsageError(`--${name} is empty`);
  return conf;
}

function parseTimeout(text: string | undefined): number {
  if (text === undefined) return -1;
  const n = /^-?\d+$/.test(text) ? Number(text) : NaN;
  if (n === -1 || (Number.isSafeInteger(n) && n > 0)) return n;
  throw new UsageError(`--timeout_ms must be a positive integer or -1, not "${text}"`);
}

function parseMaxRetry(text: string | undefined): number {
  if (text === undefined) return 3;
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (Number.isSafeInteger(n)) return n;
  throw new UsageError(`--max_retry must be a non-negative integer, not "${text}"`);
}
