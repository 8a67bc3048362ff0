/**
 * Generators of hostile input shared by the fuzz targets: extreme numbers, odd strings, nasty
 * values (deep, wide, wrong types), raw CBOR items that no encoder would write (cycles, bigints,
 * lying lengths, unknown references), byte mutations of valid encodings, and splicing a raw CBOR
 * item into a valid encoding in place of one field.
 */

import fc from "fast-check";
import { encode } from "cbor-x";

/** Numbers that break careless checks. */
export const extremeNumber: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(
    NaN,
    Infinity,
    -Infinity,
    -0,
    -1,
    0.5,
    1e-300,
    2 ** 31,
    -(2 ** 31),
    2 ** 32 - 1,
    2 ** 32,
    2 ** 53 - 1,
    2 ** 53,
    2 ** 53 + 2,
    2 ** 64,
    1e308,
    65535,
    65536,
    Number.MIN_VALUE,
  ),
  fc.integer(),
  fc.double(),
);

/** Strings that break careless parsers: unicode oddities, separators, huge and empty ones. */
export const oddString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    "",
    " ",
    "\u0000",
    "\uD800",
    "\uDFFF",
    "\uFEFF127.0.0.1:8100:0",
    "𝕏",
    "١٢٧.٠.٠.١:٨١٠٠",
    "１２７.0.0.1:8100",
    "127.0.0.1:8100:0",
    "127.0.0.1:8100:0:1",
    "127.0.0.1:8100:0:2",
    " 127.0.0.1:8100 ",
    "127.0.0.1:65536",
    "127.0.0.1:-1",
    "127.0.0.1:8100:9007199254740993",
    "256.1.1.1:80",
    "[::1]:8100:0",
    "[::1:8100",
    "::1:8100",
    "[fe80::1%eth0]:1:0",
    "a..b:1",
    "-a:1",
    "a".repeat(254) + ":1",
    "x".repeat(5000),
    "..",
    "../etc/passwd",
    "/abs",
    "C:\\x",
    "a/b/../c",
    "__proto__",
    "constructor",
    "toString",
    "hasOwnProperty",
    "%",
    "%00",
    "%2e%2e",
    "a,b,,c",
    ",",
    "\n",
    "v1 0 " + "0".repeat(64),
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "&lt;&amp;",
  ),
  fc.string(),
  fc.string({ unit: "binary" }),
  fc.string({ unit: "grapheme" }),
  fc.string({ unit: fc.constantFrom("1", ".", ":", ",", "[", "]", "0", "9", "a", " ") }),
);

/** Field names that our decoders look for, plus prototype-ish keys. */
export const FIELD_NAMES = [
  "g",
  "m",
  "u",
  "t",
  "type",
  "from",
  "to",
  "term",
  "index",
  "entries",
  "meta",
  "conf",
  "peers",
  "oldPeers",
  "learners",
  "oldLearners",
  "verb",
  "group_id",
  "peer_id",
  "leader_id",
  "new_peers",
  "old_peers",
  "readerId",
  "name",
  "offset",
  "count",
  "value",
  "files",
  "firstLogIndex",
  "resetPending",
  "votedFor",
  "lastIncludedIndex",
  "lastIncludedTerm",
  "checksum",
  "size",
  "userMeta",
  "__proto__",
  "constructor",
];

const leaf: fc.Arbitrary<unknown> = fc.oneof(
  extremeNumber,
  oddString,
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
  fc.uint8Array({ maxLength: 32 }),
  fc.date({ noInvalidDate: false }),
);

/** Any value: leaves of every type, arrays and maps up to a few levels, odd keys. */
export const nastyValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    leaf,
    fc.array(tie("value"), { maxLength: 5 }),
    fc.dictionary(fc.oneof(fc.constantFrom(...FIELD_NAMES), oddString), tie("value"), {
      maxKeys: 5,
    }),
  ),
})).value;

/** A value JSON can carry (for JSON routes). */
export const nastyJson: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.oneof(extremeNumber.filter(Number.isFinite), oddString, fc.boolean(), fc.constant(null)),
    fc.array(tie("value"), { maxLength: 5 }),
    fc.dictionary(fc.oneof(fc.constantFrom(...FIELD_NAMES), oddString), tie("value"), {
      maxKeys: 5,
    }),
  ),
})).value;

const hex = (s: string): Uint8Array => new Uint8Array(s.match(/../g)!.map((h) => parseInt(h, 16)));

/** Raw CBOR items no well-behaved encoder writes. */
const CBOR_ODDITIES: Uint8Array[] = [
  hex("1bffffffffffffffff"), // 2^64-1: a bigint
  hex("1b0020000000000001"), // 2^53+1
  hex("3bffffffffffffffff"), // -2^64
  hex("c249010000000000000000"), // tag 2: a bigint
  hex("c349010000000000000000"), // tag 3: a negative bigint
  hex("d81ca16161d81d00"), // tag 28/29: a map that contains itself
  hex("d81c82d81d0001"), // an array that contains itself
  hex("d81d05"), // a reference to nothing
  hex("d81b8266526567457870622e2a"), // tag 27: RegExp(".*")
  hex("d81b82654572726f7264626f6f6d"), // tag 27: Error("boom")
  hex("d9010282010101"), // tag 258: Set
  hex("d90103a10102"), // tag 259: Map
  hex("c074323032312d30312d3031543030"), // tag 0: Date
  hex("c1fb7ff0000000000000"), // tag 1: Date(Infinity)
  hex("c48221196ab3"), // tag 4: decimal fraction
  hex("f97e00"), // half NaN
  hex("f97c00"), // half Infinity
  hex("fa7f800000"), // float Infinity
  hex("fb7ff8000000000000"), // double NaN
  hex("f7"), // undefined
  hex("f0"), // simple value 16
  hex("ff"), // a stray break
  hex("9f0102ff"), // indefinite array
  hex("bf6161f5ff"), // indefinite map
  hex("7f6161ff"), // indefinite string
  hex("9affffffff"), // an array declaring 2^32-1 items
  hex("9a05f5e100"), // an array declaring 10^8 items
  hex("ba05f5e100"), // a map declaring 10^8 pairs
  hex("7affffffff"), // a string declaring 4 GiB
  hex("5bffffffffffffffff"), // bytes declaring 2^64-1
  hex("62c328"), // invalid UTF-8 in a text string
  hex("6200d8"), // a lone surrogate's bytes
  hex("a2616101616102"), // a map with a duplicate key
  hex("a1f601"), // a map with a null key
  hex("a1820102f5"), // a map with an array key
  hex("a1695f5f70726f746f5f5fa0"), // { __proto__: {} }
  hex("d9e000"), // a record-definition tag without a value
  hex("d8698361618161610100"), // tag 105: an inline record definition
  hex("d833"), // tag 51 (packed table) with nothing after
  hex("c6"), // tag 6 with nothing after
];

/** One raw CBOR item: an oddity, a deeply nested array, or a value encoded normally. */
export const rawCbor: fc.Arbitrary<Uint8Array> = fc.oneof(
  { arbitrary: fc.constantFrom(...CBOR_ODDITIES), weight: 10 },
  {
    arbitrary: fc.oneof(
      { arbitrary: fc.integer({ min: 1, max: 300 }), weight: 20 },
      { arbitrary: fc.constantFrom(5_000, 100_000), weight: 1 },
    ).map((depth) => {
      const out = new Uint8Array(depth + 1).fill(0x81); // [[[…0…]]]
      out[depth] = 0;
      return out;
    }),
    weight: 2,
  },
  { arbitrary: nastyValue.map((v) => encode(v) as Uint8Array), weight: 10 },
);

/** One edit of a byte string. */
export type Mutation =
  | { op: "flip"; at: number; bit: number }
  | { op: "set"; at: number; byte: number }
  | { op: "u32"; at: number; value: number }
  | { op: "truncate"; at: number }
  | { op: "insert"; at: number; bytes: Uint8Array }
  | { op: "delete"; at: number; n: number }
  | { op: "append"; bytes: Uint8Array };

const position = fc.nat({ max: 1 << 20 });
export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant("flip" as const), at: position, bit: fc.nat({ max: 7 }) }),
  fc.record({ op: fc.constant("set" as const), at: position, byte: fc.nat({ max: 255 }) }),
  fc.record({
    op: fc.constant("u32" as const),
    at: position,
    value: fc.oneof(
      fc.constantFrom(0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffff0),
      fc.nat(),
    ),
  }),
  fc.record({ op: fc.constant("truncate" as const), at: position }),
  fc.record({
    op: fc.constant("insert" as const),
    at: position,
    bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  }),
  fc.record({
    op: fc.constant("delete" as const),
    at: position,
    n: fc.integer({ min: 1, max: 8 }),
  }),
  fc.record({
    op: fc.constant("append" as const),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
  }),
);

/** Applies `mutations` to a copy of `bytes` (positions wrap around the current length). */
export function applyMutations(bytes: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let b: Uint8Array = bytes.slice();
  for (const m of mutations) {
    const len = b.length;
    const at = m.op === "append" || len === 0 ? len : m.at % (len + 1);
    switch (m.op) {
      case "flip":
        if (at < len) b[at]! ^= 1 << m.bit;
        break;
      case "set":
        if (at < len) b[at] = m.byte;
        break;
      case "u32":
        if (at + 4 <= len) new DataView(b.buffer).setUint32(at, m.value >>> 0);
        break;
      case "truncate":
        b = b.slice(0, at);
        break;
      case "insert":
        b = concat(b.subarray(0, at), m.bytes, b.subarray(at));
        break;
      case "delete":
        b = concat(b.subarray(0, at), b.subarray(Math.min(len, at + m.n)));
        break;
      case "append":
        b = concat(b, m.bytes);
        break;
    }
  }
  return b;
}

/** Valid bytes from `valid`, then one to four mutations. */
export function mutated(valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc.tuple(valid, fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([b, ms]) =>
    applyMutations(b, ms)
  );
}

/** Concatenates byte strings. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const PLACEHOLDER = "\u0000fuzz-placeholder\u0000";

/**
 * Encodes `value` as CBOR, with the raw item `raw` in place of the field at `path` (a key
 * path into nested maps/arrays; the field is created when missing).
 */
export function spliceCbor(
  value: unknown,
  path: readonly (string | number)[],
  raw: Uint8Array,
): Uint8Array {
  const copy = structuredClone(value) as Record<string | number, unknown>;
  let at: Record<string | number, unknown> = copy;
  for (const key of path.slice(0, -1)) {
    const next = at[key];
    if (typeof next !== "object" || next === null) at[key] = {};
    at = at[key] as Record<string | number, unknown>;
  }
  at[path[path.length - 1]!] = PLACEHOLDER;
  const bytes = encode(copy) as Uint8Array;
  const needle = encode(PLACEHOLDER) as Uint8Array;
  for (let i = 0; i + needle.length <= bytes.length; i++) {
    let same = true;
    for (let j = 0; j < needle.length && same; j++) same = bytes[i + j] === needle[j];
    if (same) return concat(bytes.subarray(0, i), raw, bytes.subarray(i + needle.length));
  }
  return raw; // (`value` was not a plain map, e.g. a Date: the hostile item alone, then)
}

/** Key paths of every field of a plain value (maps and arrays), for {@linkcode spliceCbor}. */
export function fieldPaths(
  value: unknown,
  prefix: (string | number)[] = [],
): (string | number)[][] {
  if (typeof value !== "object" || value === null || value instanceof Uint8Array) return [];
  const out: (string | number)[][] = [];
  for (const [k, v] of Object.entries(value)) {
    const key = Array.isArray(value) ? Number(k) : k;
    out.push([...prefix, key], ...fieldPaths(v, [...prefix, key]));
  }
  return out;
}

/**
 * `value` encoded with one of its fields (or a new one) replaced by a hostile CBOR item.
 * Fields that are arrays of maps reach down into them too.
 */
export function withHostileField(
  value: unknown,
  extraKeys: readonly string[] = [],
): fc.Arbitrary<Uint8Array> {
  const paths = [...fieldPaths(value), ...extraKeys.map((k) => [k])];
  return fc.tuple(fc.constantFrom(...paths), rawCbor).map(([path, raw]) =>
    spliceCbor(value, path, raw)
  );
}
