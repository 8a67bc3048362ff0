/**
 * `bootstrap()`: create a raft group from existing data (braft `bootstrap`).
 *
 * @module
 */

import { ChunkChain } from "../bytes/chunk_chain.ts";
import { Configuration } from "../conf/configuration.ts";
import { EntryType } from "../core/entry.ts";
import { RaftError, RaftException, Status } from "../errors/status.ts";
import { createLogStorage, createMetaStorage, createSnapshotStorage } from "../../storage/uri.ts";
import { closure } from "./closure.ts";
import type { BootstrapOptions } from "./options.ts";

/**
 * Writes the initial state of a new group into empty storage, so that nodes started on it
 * need no `initialConf`: term 1, optionally a snapshot of existing data at `lastLogIndex`
 * (written by `fsm.onSnapshotSave`), then one CONFIGURATION entry with `groupConf`.
 *
 * @param options Storage URIs, membership, and the data's last index.
 * @throws {RaftException} EINVAL for bad options, EEXIST when the storage is not empty,
 *   or the state machine's error when saving the snapshot fails.
 *
 * @example
 * ```ts
 * import { bootstrap } from "@webraft/raft";
 * await bootstrap({
 *   groupConf: "127.0.0.1:8100:0",
 *   logUri: "memory://boot-doc/log",
 *   raftMetaUri: "memory://boot-doc/meta",
 * });
 * ```
 */
export async function bootstrap(options: BootstrapOptions): Promise<void> {
  const bad = (why: string): RaftException =>
    RaftException.of(RaftError.EINVAL, `Cannot bootstrap: ${why}`);
  let conf: Configuration;
  try {
    conf = Configuration.from(options.groupConf);
  } catch (e) {
    throw bad((e as Error).message);
  }
  if (conf.isEmpty()) throw bad("groupConf is empty");
  const last = options.lastLogIndex ?? 0;
  if (!Number.isSafeInteger(last) || last < 0) throw bad(`lastLogIndex ${last} must be >= 0`);
  if (!options.logUri || !options.raftMetaUri) throw bad("logUri and raftMetaUri are required");
  if (last > 0 && (!options.snapshotUri || options.fsm === undefined)) {
    throw bad("lastLogIndex > 0 needs snapshotUri and fsm to save the existing data");
  }
  const log = await createLogStorage(options.logUri);
  const meta = await createMetaStorage(options.raftMetaUri);
  try {
    await log.init();
    await meta.init();
    const hs = meta.getTermAndVotedFor();
    if (log.lastLogIndex() > 0 || hs.term > 1 || hs.votedFor !== null) {
      throw RaftException.of(RaftError.EEXIST, "Cannot bootstrap: the storage is not empty");
    }
    await meta.setTermAndVotedFor(1, null);
    if (last > 0) {
      const snapshots = await createSnapshotStorage(options.snapshotUri!);
      await snapshots.init();
      if ((await snapshots.open()) !== null) {
        throw RaftException.of(RaftError.EEXIST, "Cannot bootstrap: a snapshot already exists");
      }
      const writer = await snapshots.create();
      const status = await new Promise<Status>((resolve) => {
        Promise.resolve(options.fsm!.onSnapshotSave(writer, closure(resolve))).catch((e: unknown) =>
          resolve(new Status(RaftError.ESTATEMACHINE, `onSnapshotSave threw: ${String(e)}`))
        );
      });
      if (!status.ok()) {
        await snapshots.close(writer).catch(() => {});
        throw new RaftException(status);
      }
      writer.saveMeta({
        lastIncludedIndex: last,
        lastIncludedTerm: 1,
        peers: conf,
        oldPeers: new Configuration(),
      });
      await snapshots.close(writer);
      await log.reset(last + 1);
    }
    await log.appendEntries([{
      index: last + 1,
      term: 1,
      type: EntryType.CONFIGURATION,
      data: new ChunkChain(),
      conf: { peers: conf },
    }]);
  } finally {
    await log.close().catch(() => {});
    await meta.close().catch(() => {});
  }
}
