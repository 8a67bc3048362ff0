/**
 * Endpoint syntax: `host:port` where host is IPv4, a hostname, or bracketed IPv6.
 *
 * @module
 */

const ENDPOINT = /^(\[[0-9A-Fa-f:.]+\]|[0-9A-Za-z._-]+):(\d{1,5})$/;

/**
 * Checks an endpoint's syntax.
 *
 * @param endpoint The candidate, e.g. `"127.0.0.1:8100"` or `"[::1]:8100"`.
 * @returns `null` when valid, else a message saying what is wrong.
 */
export function checkEndpoint(endpoint: string): string | null {
  const m = ENDPOINT.exec(endpoint);
  if (m === null || Number(m[2]) > 65535) {
    return `Invalid endpoint "${endpoint.slice(0, 300)}": expected host:port or [v6]:port`;
  }
  return null;
}
