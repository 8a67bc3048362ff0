/**
 * `/flags` in its three forms: JSON keyed by flag name, `name: value` text, and an HTML table
 * with a small form per runtime flag (when the service has no secret: a form cannot sign).
 *
 * @module
 */

import { FLAG_INFO, type FlagInfo, flags, type RaftFlags } from "../../../src/util/flags.ts";
import { escapeHtml, htmlPage } from "./html.ts";

/** One flag in `/flags` JSON. */
export interface FlagJson {
  /** The current value. */
  value: boolean | number;
  /** The value it starts with. */
  default: boolean | number;
  /** `POST /flags/<name>` may change it (running nodes read it at each use). */
  runtime: boolean;
  /** When it is read. */
  read_at: string;
  /** One line for people. */
  description: string;
  /** Smallest allowed value (numeric flags). */
  min?: number;
  /** Largest allowed value (numeric flags). */
  max?: number;
}

function infoOf(name: keyof RaftFlags): FlagInfo {
  return FLAG_INFO[name];
}

function names(): (keyof RaftFlags)[] {
  return Object.keys(FLAG_INFO) as (keyof RaftFlags)[];
}

/**
 * One flag as JSON.
 *
 * @param name A flag name.
 * @returns Its value and metadata.
 *
 * @example
 * ```ts
 * import { flagJson } from "./flags_page.ts";
 * import assert from "node:assert/strict";
 * assert.equal(flagJson("raft_leader_batch").runtime, true);
 * ```
 */
export function flagJson(name: keyof RaftFlags): FlagJson {
  const info = infoOf(name);
  return {
    value: flags[name],
    default: info.default,
    runtime: info.runtime,
    read_at: info.readAt,
    description: info.description,
    ...(info.min === undefined ? {} : { min: info.min }),
    ...(info.max === undefined ? {} : { max: info.max }),
  };
}

/**
 * Every flag as JSON, keyed by name: `{ "raft_sync": { value, default, runtime, read_at,
 * description }, … }`.
 *
 * @returns The object.
 *
 * @example
 * ```ts
 * import { flagsJson } from "./flags_page.ts";
 * import assert from "node:assert/strict";
 * assert.equal(flagsJson().raft_sync!.default, true);
 * ```
 */
export function flagsJson(): Record<string, FlagJson> {
  const out: Record<string, FlagJson> = {};
  for (const name of names()) out[name] = flagJson(name);
  return out;
}

/**
 * Every flag as text, one line each:
 * `raft_sync: true (default true, static: read when …) fsync log appends …`.
 *
 * @returns The text.
 *
 * @example
 * ```ts
 * import { flagsText } from "./flags_page.ts";
 * import assert from "node:assert/strict";
 * assert.match(flagsText(), /^raft_sync: true \(default true, static: /m);
 * assert.match(flagsText(), /^raft_leader_batch: 256 \(default 256, runtime: /m);
 * ```
 */
export function flagsText(): string {
  return names().map((name) => {
    const f = flagJson(name);
    const kind = f.runtime ? "runtime" : "static";
    return `${name}: ${f.value} (default ${f.default}, ${kind}: read ${f.read_at}) ${f.description}`;
  }).join("\n") + "\n";
}

/** Options for {@linkcode flagsHtml}. */
export interface FlagsHtmlOptions {
  /** Show a form per runtime flag (false when the service has a secret). */
  editable: boolean;
  /** A message to show above the table (escaped here). */
  notice?: string;
  /** An error to show above the table (escaped here). */
  error?: string;
}

function editor(name: keyof RaftFlags, f: FlagJson): string {
  const action = `/flags/${encodeURIComponent(name)}`;
  const input = typeof f.default === "boolean"
    ? `<select name="value">` +
      [true, false].map((v) => `<option${v === f.value ? " selected" : ""}>${v}</option>`).join(
        "",
      ) +
      `</select>`
    : `<input type="number" name="value" required step="1" value="${escapeHtml(f.value)}"` +
      (f.min === undefined ? "" : ` min="${f.min}"`) +
      (f.max === undefined ? "" : ` max="${f.max}"`) + `>`;
  return `<form method="post" action="${escapeHtml(action)}" data-flag="${escapeHtml(name)}">` +
    `${input} <button type="submit">set</button></form>`;
}

/**
 * The HTML page: one row per flag (`data-flag="<name>"`, cells `data-col`), and a form that
 * posts `value=` to `/flags/<name>` for each runtime flag when `editable`.
 *
 * @param options Whether forms are shown, and a notice or error.
 * @returns The document.
 *
 * @example
 * ```ts
 * import { flagsHtml } from "./flags_page.ts";
 * import assert from "node:assert/strict";
 * const html = flagsHtml({ editable: true });
 * assert.match(html, /<form method="post" action="\/flags\/raft_leader_batch"/);
 * assert.doesNotMatch(flagsHtml({ editable: false }), /<form/);
 * ```
 */
export function flagsHtml(options: FlagsHtmlOptions): string {
  const rows = names().map((name) => {
    const f = flagJson(name);
    const change = !f.runtime
      ? "read " + escapeHtml(f.read_at)
      : options.editable
      ? editor(name, f)
      : "runtime (signed POST only)";
    return `<tr data-flag="${escapeHtml(name)}"><td data-col="name">${escapeHtml(name)}</td>` +
      `<td data-col="value"${f.value === f.default ? "" : ` class="changed"`}>${
        escapeHtml(f.value)
      }</td>` +
      `<td data-col="default">${escapeHtml(f.default)}</td>` +
      `<td data-col="runtime">${f.runtime ? "yes" : "no"}</td>` +
      `<td data-col="description">${escapeHtml(f.description)}</td>` +
      `<td data-col="change">${change}</td></tr>`;
  });
  const messages = [
    options.notice === undefined
      ? ""
      : `<p class="note" id="notice">${escapeHtml(options.notice)}</p>`,
    options.error === undefined
      ? ""
      : `<p class="error" id="error">${escapeHtml(options.error)}</p>`,
    options.editable ? "" : `<p class="note" id="readonly-note">This service has a secret: the ` +
      `flags are shown read-only. Change a runtime flag with <code>POST /flags/&lt;name&gt;</code> ` +
      `signed with the <code>x-raft-auth</code> header, as CLI calls are.</p>`,
  ].join("");
  return htmlPage(
    "flags",
    `<h1>flags</h1>${messages}\n<table class="flags"><thead><tr><th>name</th><th>value</th>` +
      `<th>default</th><th>runtime</th><th>description</th><th>change</th></tr></thead>` +
      `<tbody>${rows.join("\n")}</tbody></table>`,
  );
}
