/**
 * Fuzzing `PeerId` and `Configuration` parsing: odd strings, peer-shaped strings built from
 * extreme numbers, and non-strings. A parse returns a peer (or configuration) that prints and
 * parses back to an equal one, or throws a TypeError; nothing else.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { PeerId } from "../../src/conf/peer_id.ts";
import { Configuration } from "../../src/conf/configuration.ts";
import { check, expectOnly, instanceOf } from "./_fuzz.ts";
import { extremeNumber, nastyValue, oddString } from "./_arbitraries.ts";
import { peerString } from "./_valid.ts";

const TYPE = instanceOf(TypeError);

function validPeer(p: PeerId): void {
  assert.ok(Number.isInteger(p.port) && p.port >= 0 && p.port <= 65535, `port ${p.port}`);
  assert.ok(Number.isSafeInteger(p.idx) && p.idx >= 0, `idx ${p.idx}`);
  assert.ok(p.role === 0 || p.role === 1);
  const again = PeerId.parse(p.toString());
  assert.ok(again.equals(p) && again.role === p.role, `${p} does not parse back`);
  assert.equal(again.toString(), p.toString());
}

/** Strings shaped like peers, with each part odd or extreme. */
const peerShaped = fc.tuple(
  fc.oneof(
    fc.constantFrom("127.0.0.1", "[::1]", "localhost", "", "[", "a..b", "1.2.3", "999.1.1.1"),
    oddString,
  ),
  fc.oneof(extremeNumber.map(String), oddString),
  fc.option(fc.oneof(extremeNumber.map(String), oddString), { nil: undefined }),
  fc.option(fc.oneof(fc.constantFrom("0", "1", "2", "01", "-0"), oddString), { nil: undefined }),
).map(([h, port, idx, role]) =>
  [h, port, ...(idx === undefined ? [] : [idx]), ...(role === undefined ? [] : [role])].join(":")
);

describe("fuzz: PeerId and Configuration parsing", () => {
  it("PeerId.parse of odd and peer-shaped strings", () => {
    const arb = fc.oneof(oddString, peerShaped, peerString);
    check("PeerId.parse", arb, 15000, (s) => {
      expectOnly(() => PeerId.parse(s), TYPE, `PeerId.parse(${JSON.stringify(s)})`, validPeer);
    });
  });

  it("PeerId.parse and PeerId.from of values that are not strings", () => {
    check("PeerId.parse/non-string", nastyValue, 3000, (v) => {
      expectOnly(() => PeerId.parse(v as string), TYPE, "PeerId.parse", validPeer);
      expectOnly(() => PeerId.from(v as string), TYPE, "PeerId.from", validPeer);
    });
  });

  it("new PeerId with extreme parts", () => {
    const arb = fc.tuple(
      fc.oneof(oddString, fc.constantFrom("127.0.0.1", "::1", "h")),
      extremeNumber,
      extremeNumber,
      fc.oneof(extremeNumber, fc.constantFrom(0, 1)),
    );
    check("new PeerId", arb, 5000, ([host, port, idx, role]) => {
      expectOnly(
        () => new PeerId(host, port, idx, role as 0 | 1),
        TYPE,
        "new PeerId",
        validPeer,
      );
    });
  });

  it("Configuration.parse of comma lists of odd and valid peers", () => {
    const arb = fc.oneof(
      oddString,
      fc.array(fc.oneof(peerString, peerShaped, oddString), { maxLength: 8 }).map((xs) =>
        xs.join(",")
      ),
    );
    check("Configuration.parse", arb, 8000, (s) => {
      expectOnly(() => Configuration.parse(s), TYPE, "Configuration.parse", (conf) => {
        const again = Configuration.parse(conf.toString());
        assert.ok(again.equals(conf));
        for (const p of conf) validPeer(p);
      });
    });
  });

  it("Configuration.from and new Configuration of odd lists and non-strings", () => {
    const arb = fc.oneof(
      fc.array(fc.oneof(peerString, oddString, nastyValue), { maxLength: 6 }),
      nastyValue,
    );
    check("Configuration.from", arb, 4000, (v) => {
      expectOnly(
        () => Configuration.from(v as string[]),
        TYPE,
        "Configuration.from",
        (conf) => {
          for (const p of conf) validPeer(p);
        },
      );
    });
  });
});
