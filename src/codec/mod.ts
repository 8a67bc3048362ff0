/**
 * On-disk and wire encodings: the log entry header, configuration payloads and
 * checksummed metadata records.
 *
 * @module
 */
export {
  decodeEntryHeader,
  encodeEntryHeader,
  ENTRY_FORMAT_VERSION,
  ENTRY_HEADER_SIZE,
  ENTRY_MAGIC,
  type EntryHeader,
} from "./entry_header.ts";
export {
  configurationFromRecord,
  type ConfigurationRecord,
  configurationToRecord,
  decodeConfigurationPayload,
  encodeConfigurationPayload,
} from "./configuration_payload.ts";
export { decodeRecord, encodeRecord, RECORD_HEADER_SIZE } from "./record_file.ts";
