/**
 * The shared bits of the raft pages for people: escaping, the page frame, the HTML response
 * (with a content security policy that forbids scripts, so a missed escape cannot run code)
 * and the choice between HTML, JSON and text.
 *
 * @module
 */

/** A page format: HTML for browsers, JSON for scripts, braft's `key: value` text otherwise. */
export type PageFormat = "html" | "json" | "text";

const ENTITIES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/**
 * Escapes text for HTML element content and quoted attribute values.
 *
 * @param value Any value; it is converted with `String`.
 * @returns The escaped text.
 *
 * @example
 * ```ts
 * import { escapeHtml } from "./html.ts";
 * import assert from "node:assert/strict";
 * assert.equal(escapeHtml(`<a href="x">'&'</a>`), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
 * ```
 */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (ch) => ENTITIES[ch]!);
}

/** Options for {@linkcode htmlPage}. */
export interface PageOptions {
  /** Reload the page every this many seconds (0 or absent: never). */
  refreshS?: number;
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}
nav a{margin-right:1em}
h1{font-size:1.4em;margin:.8em 0 .3em}
h2{font-size:1.1em;margin:.8em 0 .3em;font-family:monospace}
table{border-collapse:collapse;margin:.3em 0 1em}
th,td{border:1px solid #ccc;padding:.2em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3;font-weight:600}
td{font-family:monospace}td[data-col=description]{font-family:inherit}
td.changed{font-weight:700;color:#a40}
.LEADER{color:#070;font-weight:700}.CANDIDATE{color:#a60}.ERROR{color:#b00}
.note{background:#fff8d0;border:1px solid #e0c860;padding:.4em .8em;display:inline-block}
.error{background:#fde;border:1px solid #d88;padding:.4em .8em;display:inline-block}
form{margin:0}input[type=number]{width:9em}
`;

/**
 * A complete HTML page with the pages' navigation and style.
 *
 * @param title The page title (escaped here).
 * @param body The body's HTML (already escaped by the caller).
 * @param options Auto-refresh.
 * @returns The document.
 *
 * @example
 * ```ts
 * import { htmlPage } from "./html.ts";
 * import assert from "node:assert/strict";
 * const page = htmlPage("raft_stat <x>", "<p>hi</p>", { refreshS: 2 });
 * assert.match(page, /<meta http-equiv="refresh" content="2">/);
 * assert.match(page, /<title>raft_stat &lt;x&gt;<\/title>/);
 * ```
 */
export function htmlPage(title: string, body: string, options: PageOptions = {}): string {
  const refresh = options.refreshS !== undefined && options.refreshS > 0
    ? `<meta http-equiv="refresh" content="${Math.floor(options.refreshS)}">`
    : "";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">${refresh}
<meta name="viewport" content="width=device-width">
<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body><nav><a href="/raft_stat">raft_stat</a><a href="/flags">flags</a></nav>
${body}
</body></html>
`;
}

/**
 * An HTML response: no scripts may run (`Content-Security-Policy`), forms post only to this
 * origin, and the page may not be framed.
 *
 * @param status The HTTP status.
 * @param html The document.
 * @returns The response.
 *
 * @example
 * ```ts
 * import { htmlResponse } from "./html.ts";
 * import assert from "node:assert/strict";
 * const res = htmlResponse(200, "<!doctype html><p>x</p>");
 * assert.match(res.headers.get("content-type")!, /text\/html/);
 * assert.match(res.headers.get("content-security-policy")!, /default-src 'none'/);
 * ```
 */
export function htmlResponse(status: number, html: string): Response {
  return new Response(html, {
    status,
    headers: {
      "content-type": "text/html; charset=utf-8",
      "content-security-policy":
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
      "x-content-type-options": "nosniff",
      "cache-control": "no-store",
    },
  });
}

/**
 * A `text/plain` response.
 *
 * @param status The HTTP status.
 * @param text The body.
 * @returns The response.
 *
 * @example
 * ```ts
 * import { textResponse } from "./html.ts";
 * import assert from "node:assert/strict";
 * assert.equal(await textResponse(200, "a: 1\n").text(), "a: 1\n");
 * ```
 */
export function textResponse(status: number, text: string): Response {
  return new Response(text, {
    status,
    headers: {
      "content-type": "text/plain; charset=utf-8",
      "x-content-type-options": "nosniff",
      "cache-control": "no-store",
    },
  });
}

const MEDIA: Record<string, PageFormat> = {
  "text/html": "html",
  "application/xhtml+xml": "html",
  "application/json": "json",
  "text/plain": "text",
};

/**
 * The format a request asks for: `?format=html|json|text` first; else the `Accept` media type
 * (HTML, JSON or plain text) with the highest quality, the first listed on a tie; else
 * `fallback` (wildcards such as curl's `*` + `/*` choose nothing).
 *
 * @param req The request.
 * @param fallback The format when neither says (braft prints text to non-browsers).
 * @returns The format, or `null` for an unknown `?format=`.
 *
 * @example
 * ```ts
 * import { chooseFormat } from "./html.ts";
 * import assert from "node:assert/strict";
 * const get = (url: string, accept?: string) =>
 *   new Request(url, accept === undefined ? {} : { headers: { accept } });
 * assert.equal(chooseFormat(get("http://h/raft_stat", "text/html,*\/*;q=0.8")), "html");
 * assert.equal(chooseFormat(get("http://h/raft_stat", "application/json")), "json");
 * assert.equal(chooseFormat(get("http://h/raft_stat?format=json", "text/html")), "json");
 * assert.equal(chooseFormat(get("http://h/raft_stat", "*\/*")), "text");
 * assert.equal(chooseFormat(get("http://h/raft_stat?format=xml")), null);
 * ```
 */
export function chooseFormat(req: Request, fallback: PageFormat = "text"): PageFormat | null {
  const asked = new URL(req.url).searchParams.get("format");
  if (asked !== null) {
    return asked === "html" || asked === "json" || asked === "text" ? asked : null;
  }
  let best: PageFormat | null = null;
  let bestQ = 0;
  for (const part of (req.headers.get("accept") ?? "").split(",")) {
    const [type = "", ...params] = part.split(";").map((s) => s.trim().toLowerCase());
    const format = MEDIA[type];
    if (format === undefined) continue;
    let q = 1;
    for (const p of params) {
      const m = /^q=([0-9.]+)$/.exec(p);
      if (m !== null) q = Number(m[1]);
    }
    if (Number.isFinite(q) && q > bestQ) {
      best = format;
      bestQ = q;
    }
  }
  return best ?? fallback;
}
