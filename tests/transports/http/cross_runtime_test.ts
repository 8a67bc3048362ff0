import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { bytes, connect, startPeer } from "./_helpers.ts";

const root = fileURLToPath(new URL("../../../", import.meta.url));
// Each runtime talks to the next (Deno to Bun, Bun to Node, Node to Deno), so that the suite
// on all three has every runtime on both ends of a socket.
const other = "Deno" in globalThis ? "bun" : "Bun" in globalThis ? "node" : "deno";

describe("HttpTransport across runtimes", () => {
  it(`talks to a peer running on ${other}`, async () => {
    const script = fileURLToPath(new URL("./_peer_main.ts", import.meta.url));
    const child = spawn(
      `${root}node_modules/.bin/${other}`,
      other === "deno" ? ["run", "-A", script] : [script],
      { cwd: root, stdio: ["pipe", "pipe", "inherit"] },
    );
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    const endpoint = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (d) => {
        out += d;
        if (out.includes("\n")) resolve(out.trim());
      });
      child.on("exit", () => reject(new Error(`${other} peer exited before serving`)));
    });
    const a = await startPeer();
    await connect(a.t, endpoint);
    for (let i = 0; i < 50; i++) a.t.send(endpoint, bytes(i));
    const big = new Uint8Array(10_000).map((_, i) => i & 0xff);
    const echoes = await Promise.all(Array.from({ length: 100 }, () => a.t.call(endpoint, big)));
    assert.ok(echoes.every((e) => e.length === big.length && e[9999] === big[9999]));
    // The frames went ahead of these calls on the same socket, so they have arrived.
    const frames = (await a.t.call(endpoint, bytes(0)))[0]!;
    assert.equal(frames, 50);
    child.stdin!.end();
    assert.equal(await exited, 0);
    await a.stop();
  });
});
