// Summarises V8-format heap snapshots (from bench_server's POST /bench/heap_snapshot, or any
// `.heapsnapshot`): self size and count per (node type, constructor/name), largest first. With
// two snapshots, prints the difference divided by --per (e.g. the number of extra groups), to
// find what each group costs. `--by=owner` keys each object by the field that first references
// it (`Owner.field → type name`), which attributes arrays, Maps and closures to the class
// field holding them.
//
//   node bench/heap_summary.mjs A.heapsnapshot [B.heapsnapshot] [--per=999] [--top=40] [--by=owner]
import { readFileSync } from "node:fs";

const argv = process.argv.slice(2);
const files = argv.filter((a) => !a.startsWith("--"));
const flag = (name, def) =>
  argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? def;
const PER = Number(flag("per", "1"));
const TOP = Number(flag("top", "40"));
const BY_OWNER = flag("by", "type") === "owner";

function summarise(path) {
  const snap = JSON.parse(readFileSync(path, "utf8"));
  const meta = snap.snapshot.meta;
  const fields = meta.node_fields;
  const types = meta.node_types[0];
  const width = fields.length;
  const iType = fields.indexOf("type");
  const iName = fields.indexOf("name");
  const iSize = fields.indexOf("self_size");
  const out = new Map();
  const nodes = snap.nodes;
  const label = (i) => {
    const type = types[nodes[i + iType]];
    let name = snap.strings[nodes[i + iName]];
    if (type === "string" || type === "concatenated string" || type === "sliced string") {
      name = "(strings)";
    } else if (type === "code") name = "(code)";
    else if (name.length > 40) name = name.slice(0, 40) + "…";
    return `${type} ${name}`;
  };
  /** node offset → "Owner.field" of the first non-weak edge reaching it. */
  const owner = new Map();
  if (BY_OWNER) {
    const ef = snap.snapshot.meta.edge_fields;
    const et = snap.snapshot.meta.edge_types[0];
    const ew = ef.length;
    const iEdgeCount = fields.indexOf("edge_count");
    let e = 0;
    for (let i = 0; i < nodes.length; i += width) {
      const count = nodes[i + iEdgeCount];
      const parentType = types[nodes[i + iType]];
      const skip = parentType === "synthetic" || parentType === "hidden" ||
        parentType === "code" || parentType === "array" && snap.strings[nodes[i + iName]] === "";
      for (let k = 0; k < count; k++, e += ew) {
        const kind = et[snap.edges[e]];
        if (kind === "weak" || kind === "shortcut") continue;
        const to = snap.edges[e + 2];
        if (owner.has(to) || skip) continue;
        const nameOrIndex = snap.edges[e + 1];
        const field = kind === "element" || kind === "hidden"
          ? `[${nameOrIndex}]`
          : snap.strings[nameOrIndex];
        owner.set(to, {
          parent: i,
          text: `${snap.strings[nodes[i + iName]].slice(0, 30)}.${field}`,
        });
      }
    }
  }
  let total = 0;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + iType]];
    let name = snap.strings[nodes[i + iName]];
    if (type === "string" || type === "concatenated string" || type === "sliced string") {
      name = "(strings)";
    } else if (type === "code") name = "(code)";
    else if (name.length > 60) name = name.slice(0, 60) + "…";
    let key = `${type}\t${name}`;
    if (BY_OWNER) {
      // Two levels: the holder's own holder names the field behind Array.elements, Map.table…
      const o = owner.get(i);
      const up = o === undefined ? undefined : owner.get(o.parent);
      key = `${up?.text ?? "?"} / ${o?.text ?? "?"} → ${label(i)}`;
    }
    const e = out.get(key) ?? { count: 0, bytes: 0 };
    e.count++;
    e.bytes += nodes[i + iSize];
    total += nodes[i + iSize];
    out.set(key, e);
  }
  return { out, total };
}

const a = summarise(files[0]);
if (files.length === 1) {
  console.log(`total self size ${(a.total / 2 ** 20).toFixed(1)} MiB`);
  const rows = [...a.out].sort((x, y) => y[1].bytes - x[1].bytes).slice(0, TOP);
  for (const [k, v] of rows) {
    console.log(`${String(v.bytes).padStart(10)} ${String(v.count).padStart(8)}  ${k}`);
  }
} else {
  const b = summarise(files[1]);
  console.log(
    `total self size ${(a.total / 2 ** 20).toFixed(1)} → ${(b.total / 2 ** 20).toFixed(1)} MiB; ` +
      `${((b.total - a.total) / PER).toFixed(0)} bytes per unit (--per=${PER})`,
  );
  const keys = new Set([...a.out.keys(), ...b.out.keys()]);
  const rows = [...keys].map((k) => {
    const x = a.out.get(k) ?? { count: 0, bytes: 0 };
    const y = b.out.get(k) ?? { count: 0, bytes: 0 };
    return [k, (y.bytes - x.bytes) / PER, (y.count - x.count) / PER];
  }).sort((x, y) => y[1] - x[1]).slice(0, TOP);
  console.log("bytes/unit  count/unit  type  name");
  for (const [k, bytes, count] of rows) {
    console.log(`${bytes.toFixed(0).padStart(10)} ${count.toFixed(2).padStart(10)}  ${k}`);
  }
}
