/**
 * `serve()` on Node when an optional dependency is missing: a Node child (the `node`
 * devDependency, whatever runtime runs this test) whose module resolution refuses `ws` or
 * `@hono/node-server` must get EINVAL naming the package and the install command, and must
 * succeed once the package resolves again in the same process.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const serveModule = new URL("../../../transports/http/serve.ts", import.meta.url).href;

// Runs in the child: hides `missing` from resolution, tries serve, un-hides it, tries again.
const childSource = (missing: string) => `
import { registerHooks } from "node:module";
import { Hono } from "hono";
let hidden = true;
registerHooks({
  resolve(specifier, context, next) {
    if (hidden && specifier === ${JSON.stringify(missing)}) {
      const e = new Error("Cannot find package " + specifier);
      e.code = "ERR_MODULE_NOT_FOUND";
      throw e;
    }
    return next(specifier, context);
  },
});
const { serve } = await import(${JSON.stringify(serveModule)});
const app = new Hono().get("/", (c) => c.text("ok"));
const out = {};
try {
  await serve(app, { hostname: "127.0.0.1", port: 0 });
  out.first = "served";
} catch (e) {
  out.first = { code: e.status?.code, message: e.message };
}
hidden = false;
const server = await serve(app, { hostname: "127.0.0.1", port: 0 });
out.second = await (await fetch("http://127.0.0.1:" + server.port + "/")).text();
await server.shutdown();
console.log(JSON.stringify(out));
`;

function runChild(missing: string): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(
    `${root}node_modules/.bin/node`,
    ["--input-type=module", "-e", childSource(missing)],
    { cwd: root, stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  let err = "";
  child.stdout!.on("data", (d) => out += d);
  child.stderr!.on("data", (d) => err += d);
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, out, err })));
}

describe("serve on Node without its optional dependencies", () => {
  for (const missing of ["@hono/node-server", "ws"]) {
    it(`fails with EINVAL naming ${missing}, and serves once it resolves`, async () => {
      const { code, out, err } = await runChild(missing);
      assert.equal(code, 0, err);
      const got = JSON.parse(out.trim()) as {
        first: { code: number; message: string } | string;
        second: string;
      };
      assert.equal(typeof got.first, "object", `serve succeeded without ${missing}`);
      const first = got.first as { code: number; message: string };
      assert.equal(first.code, 22); // EINVAL
      assert.ok(first.message.includes(`"${missing}"`), first.message);
      assert.ok(first.message.includes("npm install @hono/node-server ws"), first.message);
      assert.equal(got.second, "ok");
    });
  }
});
