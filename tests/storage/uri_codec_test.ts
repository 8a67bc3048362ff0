// URI registry, codecs and the runtime adapters' small contracts.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { crc32c } from "../../src/bytes/crc32c.ts";
import {
  decodeEntryHeader,
  encodeEntryHeader,
  ENTRY_HEADER_SIZE,
} from "../../src/codec/entry_header.ts";
import { decodeRecord, encodeRecord } from "../../src/codec/record_file.ts";
import {
  decodeConfigurationPayload,
  encodeConfigurationPayload,
} from "../../src/codec/configuration_payload.ts";
import { Configuration } from "../../src/conf/configuration.ts";
import { RaftError, RaftException } from "../../src/errors/status.ts";
import { detectRuntime, localFileSystem } from "../../storage/fs/detect.ts";
import { dirName, fsError, joinPath } from "../../storage/fs/file_system.ts";
import { MemoryLogStorage } from "../../storage/log/memory_log_storage.ts";
import { SegmentLogStorage } from "../../storage/log/segment_log_storage.ts";
import {
  createLogStorage,
  createMetaStorage,
  createSnapshotStorage,
  parseStorageUri,
  registerLogStorage,
  registerMetaStorage,
  registerSnapshotStorage,
} from "../../storage/uri.ts";
import { MemoryRaftMetaStorage } from "../../storage/meta/meta_storage.ts";
import { LocalSnapshotStorage } from "../../storage/snapshot/local_snapshot_storage.ts";
import { MemoryFileSystem } from "../../storage/fs/memory.ts";
import { rejectsWith } from "./_helpers.ts";

describe("storage URIs", () => {
  it("parses scheme://path and strips whitespace like braft", () => {
    assert.deepEqual(parseStorageUri("local://./data/log"), {
      scheme: "local",
      path: "./data/log",
    });
    assert.deepEqual(parseStorageUri(" MEMORY:// a b "), { scheme: "memory", path: "ab" });
  });

  it("rejects malformed URIs and unknown schemes with EINVAL", async () => {
    for (const bad of ["", "local:/x", "://x", "local://", "/plain/path"]) {
      assert.throws(
        () => parseStorageUri(bad),
        (e: unknown) => e instanceof RaftException && e.code === RaftError.EINVAL,
      );
    }
    const err = await rejectsWith(createLogStorage("nope://x"), RaftError.EINVAL);
    assert.match(err.message, /unknown scheme "nope"/);
    await rejectsWith(createMetaStorage("nope://x"), RaftError.EINVAL);
    await rejectsWith(createSnapshotStorage("nope://x"), RaftError.EINVAL);
    assert.throws(() => registerLogStorage("bad scheme", () => new MemoryLogStorage()));
  });

  it("builds the right storage per scheme, including user-registered ones", async () => {
    assert.ok((await createLogStorage("local:///tmp/x")) instanceof SegmentLogStorage);
    assert.ok((await createLogStorage("memory://uri-test")) instanceof MemoryLogStorage);
    assert.ok((await createMetaStorage("memory://uri-test")) instanceof MemoryRaftMetaStorage);
    assert.ok((await createSnapshotStorage("memory://uri-test")) instanceof LocalSnapshotStorage);
    const fs = new MemoryFileSystem();
    registerLogStorage(
      "test-mem",
      (path, options) => new SegmentLogStorage(fs, `/${path}`, options),
    );
    registerMetaStorage("test-mem", (path) => new MemoryRaftMetaStorage(`test-${path}`));
    registerSnapshotStorage("test-mem", (path) => new LocalSnapshotStorage(fs, `/${path}`));
    const log = await createLogStorage("test-mem://a", { sync: false });
    assert.ok(log instanceof SegmentLogStorage);
    assert.equal((log as SegmentLogStorage).path, "/a");
    assert.ok((await createMetaStorage("test-mem://a")) instanceof MemoryRaftMetaStorage);
    assert.ok((await createSnapshotStorage("test-mem://a")) instanceof LocalSnapshotStorage);
    MemoryLogStorage.destroy("uri-test");
    MemoryRaftMetaStorage.destroy("uri-test");
  });
});

describe("storage codecs", () => {
  it("entry headers round-trip and reject any flipped bit", () => {
    const buf = new Uint8Array(ENTRY_HEADER_SIZE + 4);
    const header = {
      type: 3,
      term: 2 ** 40 + 5,
      index: 2 ** 35 + 7,
      dataLength: 123,
      dataCrc: 0xdeadbeef,
    };
    encodeEntryHeader(buf, 4, header);
    assert.deepEqual(decodeEntryHeader(buf, 4), header);
    for (let bit = 0; bit < ENTRY_HEADER_SIZE * 8; bit += 5) {
      const copy = buf.slice();
      copy[4 + (bit >> 3)]! ^= 1 << (bit & 7);
      assert.equal(decodeEntryHeader(copy, 4), null, `bit ${bit}`);
    }
    assert.equal(decodeEntryHeader(buf.subarray(0, 20), 0), null);
  });

  it("records round-trip and report where they are damaged", () => {
    const bytes = encodeRecord({ firstLogIndex: 42, name: "x" });
    assert.deepEqual(decodeRecord(bytes), { firstLogIndex: 42, name: "x" });
    const flipped = bytes.slice();
    flipped[flipped.length - 1]! ^= 0x10;
    assert.throws(() => decodeRecord(flipped), /checksum mismatch at offset 12/);
    assert.throws(() => decodeRecord(bytes.subarray(0, bytes.length - 1)), /length/);
    assert.throws(() => decodeRecord(new Uint8Array(3)), /bad magic at offset 0/);
  });

  it("configuration payloads round-trip, joint and with learners", () => {
    const conf = {
      peers: Configuration.parse("10.0.0.1:8100:0,10.0.0.2:8100:1"),
      oldPeers: Configuration.parse("10.0.0.1:8100:0"),
      learners: Configuration.parse("[::1]:9000:0"),
    };
    const back = decodeConfigurationPayload(encodeConfigurationPayload(conf));
    assert.ok(back.peers.equals(conf.peers));
    assert.ok(back.oldPeers!.equals(conf.oldPeers));
    assert.ok(back.learners!.equals(conf.learners));
    assert.equal(back.oldLearners, undefined);
    assert.throws(() => decodeConfigurationPayload(new Uint8Array([0x05])), TypeError);
  });

  it("crc32c is the Castagnoli checksum", () => {
    assert.equal(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
  });
});

describe("file system port", () => {
  it("detects the runtime once and maps native errors to statuses", async () => {
    const fs = await localFileSystem();
    assert.equal(fs, await localFileSystem());
    assert.equal(fs.kind, detectRuntime());
    const missing = await fs.open("/nonexistent-webraft/x").catch((e: unknown) => e);
    assert.ok(missing instanceof RaftException);
    assert.equal(missing.code, RaftError.ENOENT);
    assert.match(missing.message, /Cannot open "\/nonexistent-webraft\/x"/);
    assert.equal(
      fsError("write", "/x", Object.assign(new Error("boom"), { code: "ENOSPC" })).code,
      RaftError.ENOSPC,
    );
    assert.equal(fsError("write", "/x", new Error("weird")).code, RaftError.EIO);
    assert.equal(joinPath("/a/", "/b", "c"), "/a/b/c");
    assert.equal(dirName("/a/b/c"), "/a/b");
    assert.equal(dirName("c"), ".");
  });
});
