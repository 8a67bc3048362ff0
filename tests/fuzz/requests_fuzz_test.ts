/**
 * Fuzzing request parsing of the services a node answers: the CliService
 * (`handleCliRequest`, `handleCliCall`, `decodeCliResponse`) against stand-in nodes, and the
 * snapshot FileService's `parseFileRequest`. Each answers a well-formed value or a
 * RaftException with a documented code, and never reaches a node with a malformed argument.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { decode, encode } from "cbor-x";
import {
  CLI_VERBS,
  type CliNode,
  decodeCliResponse,
  handleCliCall,
  handleCliRequest,
} from "../../src/node/cli_service.ts";
import { copySnapshot, type FileRequest, parseFileRequest } from "../../src/node/file_service.ts";
import { unsafeSnapshotFileName } from "../../src/node/snapshot_file_name.ts";
import { MemoryFileSystem } from "../../storage/fs/memory.ts";
import { LocalSnapshotStorage } from "../../storage/snapshot/local_snapshot_storage.ts";
import { RaftException } from "../../src/errors/status.ts";
import { Configuration } from "../../src/conf/configuration.ts";
import { PeerId } from "../../src/conf/peer_id.ts";
import { RaftError, Status } from "../../src/errors/status.ts";
import type { RoutedNode } from "../../src/node/node_manager.ts";
import { check, checkAsync, expectOnly, expectOnlyAsync, raftError } from "./_fuzz.ts";
import {
  extremeNumber,
  mutated,
  nastyValue,
  oddString,
  rawCbor,
  withHostileField,
} from "./_arbitraries.ts";
import { peerString } from "./_valid.ts";

const GROUP = "fuzz-group";
const PEERS = ["10.0.0.1:8100:0", "10.0.0.2:8100:0", "10.0.0.3:8100:0"];

/** A node that checks the arguments it gets (a bad one is a test failure, not an error). */
class StandIn implements CliNode {
  readonly groupId = GROUP;
  readonly cliDisabled: boolean;
  readonly peerKey: string;
  readonly #id: PeerId;
  constructor(peer: string, disabled = false) {
    this.#id = PeerId.parse(peer);
    this.peerKey = this.#id.key();
    this.cliDisabled = disabled;
  }
  receive(): void {}
  nodeId(): PeerId {
    return this.#id;
  }
  leaderId(): PeerId | null {
    return PeerId.parse(PEERS[0]!);
  }
  listPeers(): PeerId[] {
    return PEERS.map((p) => PeerId.parse(p));
  }
  addPeer(peer: PeerId): Promise<void> {
    assert.ok(peer instanceof PeerId);
    return Promise.resolve();
  }
  removePeer(peer: PeerId): Promise<void> {
    assert.ok(peer instanceof PeerId);
    return Promise.resolve();
  }
  changePeers(conf: Configuration): Promise<void> {
    assert.ok(conf instanceof Configuration);
    return Promise.resolve();
  }
  resetPeers(conf: Configuration): Status {
    assert.ok(conf instanceof Configuration);
    return conf.isEmpty() ? Status.error(RaftError.EINVAL, "empty") : Status.OK();
  }
  transferLeadershipTo(peer: PeerId): Status {
    assert.ok(peer instanceof PeerId);
    return Status.OK();
  }
  snapshot(): Promise<void> {
    return Promise.resolve();
  }
}

const nodes: RoutedNode[] = [
  new StandIn(PEERS[0]!),
  new StandIn(PEERS[1]!),
  new StandIn("10.0.0.9:1:0", true),
];
const manager = {
  nodesOf: (g: string) => nodes.filter((n) => n.groupId === g),
};

const CLI_CODES = raftError(
  RaftError.EINVAL,
  RaftError.ENOENT,
  RaftError.EACCES,
  RaftError.EAGAIN,
);

const peerField = fc.oneof(
  fc.constantFrom(...PEERS, "10.0.0.9:1:0", "", null),
  peerString,
  oddString,
  nastyValue,
);
const peersField = fc.oneof(
  fc.array(fc.oneof(peerString, fc.constantFrom(...PEERS), oddString, nastyValue), {
    maxLength: 5,
  }),
  fc.array(peerString, { maxLength: 4 }).map((xs) => xs.join(",")),
  nastyValue,
);
/** A request body: right field names, values good, odd or of the wrong type. */
const cliBody = fc.oneof(
  fc.record({
    group_id: fc.oneof(fc.constant(GROUP), oddString, nastyValue),
    peer_id: peerField,
    leader_id: peerField,
    new_peers: peersField,
    old_peers: peersField,
  }, { requiredKeys: [] }),
  nastyValue,
);
const verb = fc.oneof(fc.constantFrom(...CLI_VERBS), oddString);

describe("fuzz: CliService and FileService requests", () => {
  it("handleCliRequest: odd bodies for every verb", async () => {
    await checkAsync("handleCliRequest", fc.tuple(verb, cliBody), 12000, async ([v, body]) => {
      const out = await expectOnlyAsync(
        () => handleCliRequest(manager, v, body),
        CLI_CODES,
        `handleCliRequest(${JSON.stringify(v)})`,
      );
      if (out.ok) {
        assert.ok((CLI_VERBS as readonly string[]).includes(v));
        assert.equal(typeof out.value, "object");
        JSON.stringify(out.value); // serializable as a JSON answer
      }
    });
  });

  it("handleCliCall: CBOR calls with hostile fields", async () => {
    const valid = fc.constantFrom(...CLI_VERBS).map((v) => ({
      t: "cli",
      verb: v,
      group_id: GROUP,
      peer_id: PEERS[1],
      leader_id: PEERS[0],
      new_peers: [PEERS[0], PEERS[1]],
    }));
    // What NodeManager hands over: the call as decoded (hostile items that do not decode
    // are refused before this point).
    const arb = valid.chain((call) => withHostileField(call)).map((b) => {
      try {
        return decode(b) as unknown;
      } catch {
        return undefined;
      }
    });
    await checkAsync("handleCliCall", arb, 6000, async (call) => {
      if (typeof call !== "object" || call === null) return;
      const out = await expectOnlyAsync(
        () => handleCliCall(manager, call as Record<string, unknown>),
        CLI_CODES,
        "handleCliCall",
      );
      if (out.ok) decodeCliResponse("fuzz", out.value);
    });
  });

  it("decodeCliResponse: any bytes", () => {
    const arb = fc.oneof(fc.uint8Array({ maxLength: 64 }), rawCbor);
    check("decodeCliResponse", arb, 6000, (b) => {
      expectOnly(
        () => decodeCliResponse("fuzz", b),
        raftError(RaftError.EINVAL),
        "decodeCliResponse",
      );
    });
  });

  it("parseFileRequest: odd fields", () => {
    const num = fc.oneof(extremeNumber, nastyValue, fc.nat({ max: 1 << 24 }));
    const arb = fc.oneof(
      fc.record({
        t: fc.constantFrom("snapshot_files", "get_file", "x"),
        readerId: num,
        name: fc.oneof(oddString, nastyValue, fc.constant("data")),
        offset: num,
        count: num,
      }, { requiredKeys: [] }),
      fc.dictionary(oddString, nastyValue, { maxKeys: 4 }),
    );
    check("parseFileRequest", arb, 12000, (body) => {
      expectOnly(
        () => parseFileRequest(body as Record<string, unknown>),
        raftError(RaftError.EINVAL),
        "parseFileRequest",
        (req) => {
          assert.ok(Number.isSafeInteger(req.readerId));
          if (req.t === "get_file") {
            assert.ok(typeof req.name === "string" && req.name.length > 0);
            assert.ok(Number.isSafeInteger(req.offset) && req.offset >= 0);
            assert.ok(Number.isSafeInteger(req.count) && req.count > 0);
          }
        },
      );
    });
  });

  it("copySnapshot: hostile listings and chunks from a leader", async () => {
    const DATA = new TextEncoder().encode("snapshot file contents");
    const listing = {
      files: [{ name: "data", meta: { size: DATA.length } }, { name: "d/x", meta: {} }],
    };
    /** What the fake leader answers to one call. */
    const answer = fc.oneof(
      { arbitrary: fc.constant("valid" as const), weight: 6 },
      { arbitrary: fc.constant("fail" as const), weight: 1 },
      { arbitrary: fc.oneof(fc.uint8Array({ maxLength: 24 }), rawCbor), weight: 1 },
      {
        arbitrary: withHostileField({ offset: 0, data: new Uint8Array(4), eof: false }),
        weight: 2,
      },
      {
        arbitrary: fc.oneof(
          withHostileField(listing),
          mutated(fc.constant(encode(listing) as Uint8Array)),
          fc.array(fc.oneof(oddString, nastyValue), { maxLength: 3 }).map((names) =>
            encode({ files: names.map((name) => ({ name, meta: {} })) }) as Uint8Array
          ),
        ),
        weight: 2,
      },
    );
    const arb = fc.array(answer, { minLength: 1, maxLength: 12 });
    let copied = 0;
    await checkAsync("copySnapshot responses", arb, 2500, async (script) => {
      let i = 0;
      const call = (req: FileRequest): Promise<Uint8Array> => {
        const a = script[i++];
        if (a === undefined || a === "fail") {
          return Promise.reject(RaftException.of(RaftError.EHOSTUNREACH, "leader gone"));
        }
        if (a !== "valid") return Promise.resolve(a);
        if (req.t === "snapshot_files") return Promise.resolve(encode(listing) as Uint8Array);
        const body = req.name === "data" ? DATA : new Uint8Array(0);
        const data = body.subarray(req.offset, req.offset + Math.min(req.count, 5));
        const eof = req.offset + data.length >= body.length;
        return Promise.resolve(encode({ offset: req.offset, data, eof }) as Uint8Array);
      };
      const storage = new LocalSnapshotStorage(new MemoryFileSystem(), "/follower");
      await storage.init();
      const writer = await storage.create();
      const out = await expectOnlyAsync(
        () => copySnapshot(call, 1, writer, { maxRetry: 0, retryIntervalMs: 0, chunkBytes: 5 }),
        (e) => e instanceof RaftException,
        "copySnapshot",
      );
      for (const name of writer.listFiles()) {
        assert.equal(unsafeSnapshotFileName(name), null, `wrote ${JSON.stringify(name)}`);
      }
      if (out.ok) {
        copied++;
        assert.ok(i <= script.length, "copied without the leader's answers");
      }
    });
    console.log(`copySnapshot: ${copied} copies completed, the rest refused with a RaftException`);
  });
});
