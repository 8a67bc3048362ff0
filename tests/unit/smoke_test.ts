import { test } from "node:test";
import assert from "node:assert/strict";
import { ChunkChain, crc32c } from "../../mod.ts";

test("crc32c of '123456789' is the Castagnoli check value", () => {
  assert.equal(crc32c(ChunkChain.from("123456789")), 0xe3069283);
});
