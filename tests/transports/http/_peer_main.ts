// A peer in a child process for cross_runtime_test.ts: prints its endpoint, echoes calls,
// answers a call [0] with the number of frames received so far; stops when stdin ends.
import process from "node:process";
import { startPeer } from "./_helpers.ts";

const holder: { frames: number } = { frames: 0 };
const peer = await startPeer({
  onCall: (_from, req) =>
    Promise.resolve(req.length === 1 && req[0] === 0 ? new Uint8Array([holder.frames]) : req),
});
Object.defineProperty(holder, "frames", { get: () => peer.frames.length });
console.log(peer.endpoint);
process.stdin.resume();
process.stdin.on("end", async () => {
  await peer.stop();
  process.exit(0);
});
