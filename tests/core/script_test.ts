/**
 * Runs the protocol scenario scripts in `testdata/` (see `script_driver.ts`).
 */

import { describe, it } from "node:test";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { runScript } from "./script_driver.ts";

const dir = fileURLToPath(new URL("./testdata/", import.meta.url));

describe("protocol scripts", () => {
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".txt")).sort()) {
    it(file, () => {
      runScript(readFileSync(dir + file, "utf8"), file);
    });
  }
});
