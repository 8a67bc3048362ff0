/**
 * A small text driver for protocol scenarios (etcd-raft's testdata idea): each line is a
 * command on a {@linkcode ManualNet}; `expect` lines assert. Nodes are numbered from 1.
 *
 * Commands:
 * - `net <n> [checkQuorum=false] [leaseEnabled=true] [maxEntriesPerMsg=k]`
 * - `campaign <i>` · `stabilize [down=i,j]` · `tick <n> [down=i,j]`
 * - `propose <i> <text>` (prints the status) · `transfer <i> <j>` · `read <i> <ctx>`
 * - `deliver [from=i] [to=i] [type=T]` · `drop [from=i] [to=i] [type=T]`
 * - `restart <i>` (crash and restart from storage)
 * - `expect <i> [role=r] [term=t] [commit=c] [last=l] [leader=j] [log=t1,t2,…] [reads=k]`
 * - `expect-output <text>` (the last printed line)
 *
 * @module
 */

import { ChunkChain } from "../../src/bytes/chunk_chain.ts";
import type { Message } from "../../src/core/types.ts";
import { key, ManualNet } from "./manual_net.ts";

function kv(args: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const a of args) {
    const eq = a.indexOf("=");
    if (eq > 0) m.set(a.slice(0, eq), a.slice(eq + 1));
  }
  return m;
}

function nodes(list: string | undefined): string[] {
  return list === undefined || list === "" ? [] : list.split(",").map((x) => key(Number(x)));
}

function filterOf(opts: Map<string, string>): (m: Message) => boolean {
  const from = opts.get("from");
  const to = opts.get("to");
  const type = opts.get("type");
  return (m) =>
    (from === undefined || m.from === key(Number(from))) &&
    (to === undefined || m.to === key(Number(to))) &&
    (type === undefined || m.type === type);
}

/**
 * Runs a script; throws with the line number on the first failed expectation.
 *
 * @param text The script.
 * @param name Name for error messages.
 * @returns The printed output lines.
 */
export function runScript(text: string, name: string): string[] {
  let net: ManualNet | null = null;
  const out: string[] = [];
  const lines = text.split("\n");
  for (let ln = 0; ln < lines.length; ln++) {
    const line = lines[ln]!.trim();
    if (line === "" || line.startsWith("#")) continue;
    const [cmd, ...args] = line.split(/\s+/);
    const fail = (why: string): never => {
      throw new Error(`${name}:${ln + 1}: ${line}\n  ${why}`);
    };
    const need = (): ManualNet => net ?? fail("no net: start with `net <n>`");
    const node = (s: string | undefined) => need().core(key(Number(s)));
    const opts = kv(args);
    switch (cmd) {
      case "net": {
        const o: Record<string, unknown> = {};
        for (const [k, v] of opts) o[k] = v === "true" ? true : v === "false" ? false : Number(v);
        net = new ManualNet(Number(args[0]), o);
        break;
      }
      case "campaign":
        node(args[0]).campaign();
        need().drain();
        break;
      case "stabilize":
        need().stabilize(nodes(opts.get("down")));
        break;
      case "tick":
        need().tick(Number(args[0]), nodes(opts.get("down")));
        break;
      case "propose": {
        const r = node(args[0]).propose(ChunkChain.from(args[1] ?? ""));
        out.push(r.status.ok() ? `ok index=${r.index}` : r.status.toString());
        need().drain();
        break;
      }
      case "transfer":
        out.push(node(args[0]).transferLeader(key(Number(args[1]))).toString());
        need().drain();
        break;
      case "read":
        out.push(node(args[0]).readIndex(args[1]).toString());
        need().drain();
        break;
      case "deliver":
        need().deliver(filterOf(opts));
        break;
      case "drop":
        need().drop(filterOf(opts));
        break;
      case "restart":
        need().restart(key(Number(args[0])));
        break;
      case "expect": {
        const c = node(args[0]);
        const got: Record<string, string> = {
          role: c.role(),
          term: String(c.term()),
          commit: String(c.commitIndex()),
          last: String(c.lastIndex()),
          leader: c.leader() === "" ? "none" : c.leader().slice(1, c.leader().indexOf(":")),
          log: need().terms(key(Number(args[0]))).join(","),
          reads: String(
            need().reads.get(key(Number(args[0])))!.filter((r) => r.status.ok()).length,
          ),
        };
        for (const [k, v] of opts) {
          if (!(k in got)) fail(`unknown field ${k}`);
          if (got[k] !== v) fail(`expected ${k}=${v}, got ${k}=${got[k]}`);
        }
        break;
      }
      case "expect-output": {
        const want = args.join(" ");
        if (out.at(-1) !== want) fail(`expected output "${want}", got "${out.at(-1)}"`);
        break;
      }
      default:
        fail(`unknown command ${cmd}`);
    }
  }
  return out;
}
