/**
 * The process-wide registry of raft services: where a `Node` without a `transport` option finds
 * the transport of the service registered for its endpoint (braft: the node finds the server
 * on its `PeerId`'s port). `addService` registers; `Node.init` looks up.
 *
 * @module
 */

import type { Transport } from "../../transports/transport.ts";

/** What `addService` registers for one listen address. */
export interface RegisteredService {
  /** The host it listens on; `""` or a wildcard (`0.0.0.0`, `::`) matches any host. */
  readonly host: string;
  /** The port, or 0 while it is not bound yet (then it matches nothing). */
  port(): number;
  /**
   * The transport nodes of `endpoint` use (created on first use).
   *
   * @param endpoint The node's `host:port`.
   */
  transportFor(endpoint: string): Transport;
}

const services = new Set<RegisteredService>();

/**
 * Adds a service. The returned function removes it.
 *
 * @param service The service.
 * @returns Its unregister function.
 * @internal
 */
export function registerService(service: RegisteredService): () => void {
  services.add(service);
  return () => services.delete(service);
}

const WILDCARDS = new Set(["", "0.0.0.0", "::", "[::]", "*"]);

/**
 * The service serving `endpoint` (`host:port`, IPv6 hosts bracketed): the one on the same port
 * whose host is the same or a wildcard; an exact host wins.
 *
 * @param endpoint A node's endpoint.
 * @returns The service, or `null` when none is registered for that port.
 * @internal
 */
export function findService(endpoint: string): RegisteredService | null {
  const cut = endpoint.lastIndexOf(":");
  const host = endpoint.slice(0, cut);
  const port = Number(endpoint.slice(cut + 1));
  let fallback: RegisteredService | null = null;
  for (const s of services) {
    if (s.port() !== port) continue;
    if (s.host === host) return s;
    fallback ??= s;
  }
  // A service bound to one host serves that host only unless it listens on every address;
  // braft matches on the port alone, and so do we for aliases such as localhost/127.0.0.1.
  return fallback;
}

/**
 * Whether `host` means "every address".
 *
 * @param host A listen host.
 * @returns `true` for `""`, `0.0.0.0`, `::` and `*`.
 * @internal
 */
export function isWildcardHost(host: string): boolean {
  return WILDCARDS.has(host);
}
