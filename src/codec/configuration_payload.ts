/**
 * CBOR encoding of the membership carried by CONFIGURATION entries and snapshot metas.
 *
 * @module
 */

import { decode, encode } from "cbor-x";
import { Configuration } from "../conf/configuration.ts";
import type { ConfigurationPayload } from "../core/entry.ts";

/** The plain-data form of a {@linkcode ConfigurationPayload}: peer id strings. */
export interface ConfigurationRecord {
  /** Voting peers. */
  peers: string[];
  /** Old voting peers while joint. */
  oldPeers?: string[];
  /** Learners. */
  learners?: string[];
  /** Old learners while joint. */
  oldLearners?: string[];
}

/**
 * Converts a payload into its plain-data record (peer id strings).
 *
 * @param conf The payload.
 * @returns The record.
 */
export function configurationToRecord(conf: ConfigurationPayload): ConfigurationRecord {
  const record: ConfigurationRecord = { peers: conf.peers.peers.map(String) };
  if (conf.oldPeers && !conf.oldPeers.isEmpty()) record.oldPeers = conf.oldPeers.peers.map(String);
  if (conf.learners && !conf.learners.isEmpty()) record.learners = conf.learners.peers.map(String);
  if (conf.oldLearners && !conf.oldLearners.isEmpty()) {
    record.oldLearners = conf.oldLearners.peers.map(String);
  }
  return record;
}

/**
 * Converts a plain-data record back into a payload.
 *
 * @param record The record.
 * @returns The payload.
 * @throws {TypeError} If the record is malformed.
 */
export function configurationFromRecord(record: unknown): ConfigurationPayload {
  if (typeof record !== "object" || record === null) {
    throw new TypeError("Cannot decode configuration: expected a map");
  }
  const r = record as Record<string, unknown>;
  const list = (key: string): Configuration | undefined => {
    const v = r[key];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || !v.every((p) => typeof p === "string")) {
      throw new TypeError(`Cannot decode configuration: "${key}" is not a list of peer ids`);
    }
    return new Configuration(v as string[]);
  };
  const peers = list("peers") ?? new Configuration();
  const out: {
    peers: Configuration;
    oldPeers?: Configuration;
    learners?: Configuration;
    oldLearners?: Configuration;
  } = { peers };
  const oldPeers = list("oldPeers");
  if (oldPeers) out.oldPeers = oldPeers;
  const learners = list("learners");
  if (learners) out.learners = learners;
  const oldLearners = list("oldLearners");
  if (oldLearners) out.oldLearners = oldLearners;
  return out;
}

/**
 * Encodes a configuration payload as CBOR (the payload of a CONFIGURATION entry).
 *
 * @param conf The payload.
 * @returns The CBOR bytes.
 *
 * @example
 * ```ts
 * import { decodeConfigurationPayload, encodeConfigurationPayload } from "./configuration_payload.ts";
 * import { Configuration } from "../conf/configuration.ts";
 * import assert from "node:assert/strict";
 * const bytes = encodeConfigurationPayload({ peers: Configuration.parse("a:1:0,b:2:0") });
 * assert.equal(decodeConfigurationPayload(bytes).peers.size, 2);
 * ```
 */
export function encodeConfigurationPayload(conf: ConfigurationPayload): Uint8Array {
  const out: Uint8Array = encode(configurationToRecord(conf));
  return out;
}

/**
 * Decodes the payload of a CONFIGURATION entry.
 *
 * @param bytes CBOR bytes from {@linkcode encodeConfigurationPayload}.
 * @returns The payload.
 * @throws {TypeError} If the bytes are not a configuration.
 */
export function decodeConfigurationPayload(bytes: Uint8Array): ConfigurationPayload {
  let record: unknown;
  try {
    record = decode(bytes);
  } catch (e) {
    throw new TypeError(
      `Cannot decode configuration: not CBOR (${e instanceof Error ? e.message : String(e)})`,
    );
  }
  return configurationFromRecord(record);
}
