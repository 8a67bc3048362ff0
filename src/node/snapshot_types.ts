/**
 * Snapshot reader and writer types as the state machine sees them (re-exported from storage).
 *
 * @module
 */
// TODO(integration): replace with the storage layer's SnapshotWriter / SnapshotReader.
/** Placeholder until the storage layer lands. */
export type SnapshotWriter = { readonly path: string };
/** Placeholder until the storage layer lands. */
export type SnapshotReader = { readonly path: string };
