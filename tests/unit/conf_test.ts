import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ANY_PEER, Configuration, PeerId } from "../../mod.ts";

describe("PeerId.parse", () => {
  it("accepts host:port as idx 0", () => {
    const p = PeerId.parse("127.0.0.1:8100");
    assert.equal(p.host, "127.0.0.1");
    assert.equal(p.port, 8100);
    assert.equal(p.idx, 0);
    assert.equal(p.role, 0);
    assert.equal(p.toString(), "127.0.0.1:8100:0");
    assert.equal(p.endpoint, "127.0.0.1:8100");
  });

  it("accepts host:port:idx and braft's 4-field form", () => {
    assert.equal(PeerId.parse("10.0.0.1:8100:3").idx, 3);
    const witness = PeerId.parse("10.0.0.1:8100:2:1");
    assert.equal(witness.role, 1);
    assert.ok(witness.isWitness);
    assert.equal(witness.toString(), "10.0.0.1:8100:2:1");
    assert.equal(PeerId.parse("10.0.0.1:8100:2:0").toString(), "10.0.0.1:8100:2");
  });

  it("accepts hostnames and bracketed IPv6 addresses", () => {
    const host = PeerId.parse("raft-0.raft.default.svc.cluster.local:8100:1");
    assert.equal(host.host, "raft-0.raft.default.svc.cluster.local");
    assert.equal(PeerId.parse("localhost:1").endpoint, "localhost:1");
    const v6 = PeerId.parse("[::1]:9000:2");
    assert.equal(v6.host, "::1");
    assert.equal(v6.endpoint, "[::1]:9000");
    assert.equal(v6.toString(), "[::1]:9000:2");
    assert.ok(PeerId.parse(v6.toString()).equals(v6));
    assert.equal(PeerId.parse("[fe80::1%eth0]:80").host, "fe80::1%eth0");
    assert.equal(PeerId.parse("[2001:db8::7]:443:0:1").role, 1);
  });

  it("trims surrounding whitespace", () => {
    assert.equal(PeerId.parse("  127.0.0.1:1:2 ").toString(), "127.0.0.1:1:2");
  });

  const rejects: Array<[string, RegExp]> = [
    ["", /expected host:port/],
    ["abc", /expected host:port/],
    [":8100", /empty host/],
    ["127.0.0.1:", /port "" is not a number/],
    ["127.0.0.1:http", /port "http" is not a number/],
    ["127.0.0.1:70000", /out of range/],
    ["127.0.0.1:-1", /port "-1"/],
    ["127.0.0.1:80:x", /idx "x"/],
    ["127.0.0.1:80:-2", /idx "-2"/],
    ["127.0.0.1:80:0:2", /role "2"/],
    ["127.0.0.1:80:0:0:9", /IPv6 hosts need brackets/],
    ["::1:80", /IPv6 hosts need brackets|invalid host/],
    ["[::1:80", /missing '\]'/],
    ["[::1]80", /expected ':port'/],
    ["[zz]:80", /invalid IPv6/],
    ["300.1.1.1:80", /invalid host/],
    ["bad_host!:80", /invalid host/],
    ["-leading.example:80", /invalid host/],
  ];
  for (const [input, why] of rejects) {
    it(`rejects ${JSON.stringify(input)} with a TypeError quoting it`, () => {
      assert.throws(() => PeerId.parse(input), (e: unknown) => {
        assert.ok(e instanceof TypeError);
        assert.ok(e.message.includes(`"${input}"`), e.message);
        assert.match(e.message, why);
        return true;
      });
    });
  }

  it("rejects non-strings and bad constructor parts", () => {
    assert.throws(() => PeerId.parse(42 as unknown as string), TypeError);
    assert.throws(() => new PeerId("a", 1.5), /port/);
    assert.throws(() => new PeerId("a", 1, -1), /idx/);
    assert.throws(() => new PeerId("a", 1, 0, 3 as 0), /role/);
    assert.throws(() => new PeerId("", 1), /invalid host/);
  });
});

describe("PeerId identity", () => {
  it("ignores role in equality, compares endpoint and idx", () => {
    const a = PeerId.parse("1.2.3.4:5:0:0");
    assert.ok(a.equals("1.2.3.4:5:0:1"));
    assert.ok(a.equals("1.2.3.4:5"));
    assert.ok(!a.equals("1.2.3.4:5:1"));
    assert.ok(!a.equals("1.2.3.4:6"));
    assert.equal(a.key(), PeerId.parse("1.2.3.4:5:0:1").key());
  });

  it("orders by host, port, idx", () => {
    const sorted = ["b:1:0", "a:2:0", "a:1:1", "a:1:0"].map(PeerId.parse).sort(PeerId.compare);
    assert.deepEqual(sorted.map(String), ["a:1:0", "a:1:1", "a:2:0", "b:1:0"]);
  });

  it("is immutable, so parsing the same text shares one instance (many groups, one PeerId)", () => {
    const a = PeerId.parse("10.9.8.7:8100:0");
    assert.equal(PeerId.parse("10.9.8.7:8100:0"), a);
    assert.equal(a.key(), "10.9.8.7:8100:0");
    assert.equal(a.key(), PeerId.parse("10.9.8.7:8100:0").key());
    assert.ok(Object.isFrozen(a));
    assert.ok(Object.isFrozen(new PeerId("h", 1)));
    assert.throws(() => {
      (a as { port: number }).port = 1;
    }, TypeError);
    assert.equal(PeerId.parse("10.9.8.7:8100:0").port, 8100);
    // a bad string is still refused every time
    assert.throws(() => PeerId.parse("10.9.8.7:99999"), /out of range/);
    assert.throws(() => PeerId.parse("10.9.8.7:99999"), /out of range/);
  });

  it("ANY_PEER is the empty id 0.0.0.0:0:0", () => {
    assert.ok(ANY_PEER.isEmpty());
    assert.ok(ANY_PEER.equals("0.0.0.0:0:0"));
    assert.ok(!PeerId.parse("0.0.0.0:0:1").isEmpty());
    assert.equal(PeerId.from(ANY_PEER), ANY_PEER);
  });
});

describe("Configuration", () => {
  it("parses, sorts, skips empty fields and trailing commas", () => {
    const conf = Configuration.parse("127.0.0.1:8102:0, 127.0.0.1:8100:0,,127.0.0.1:8101:0,");
    assert.equal(conf.size, 3);
    assert.equal(conf.toString(), "127.0.0.1:8100:0,127.0.0.1:8101:0,127.0.0.1:8102:0");
    assert.ok(Configuration.parse(conf.toString()).equals(conf));
    assert.ok(Configuration.parse("").isEmpty());
    assert.ok(Configuration.parse(" , ,").isEmpty());
  });

  it("collapses duplicates, including ones differing only by role", () => {
    const conf = Configuration.parse("a:1:0,a:1,a:1:0:1");
    assert.equal(conf.size, 1);
  });

  it("add, remove and contains keep set semantics", () => {
    const conf = new Configuration(["a:1", "c:1"]);
    assert.equal(conf.add("b:1"), true);
    assert.equal(conf.add(PeerId.parse("b:1:0")), false);
    assert.deepEqual(conf.peers.map(String), ["a:1:0", "b:1:0", "c:1:0"]);
    assert.ok(conf.contains("c:1"));
    assert.equal(conf.remove("c:1"), true);
    assert.equal(conf.remove("c:1"), false);
    assert.ok(!conf.contains("c:1"));
    assert.deepEqual([...conf].map(String), ["a:1:0", "b:1:0"]);
  });

  it("peers returns a copy and clone is independent", () => {
    const conf = Configuration.parse("a:1,b:1");
    conf.peers.pop();
    assert.equal(conf.size, 2);
    const copy = conf.clone();
    copy.add("c:1");
    assert.equal(conf.size, 2);
    assert.equal(copy.size, 3);
  });

  it("equals is set equality", () => {
    assert.ok(Configuration.parse("a:1,b:1").equals("b:1:0,a:1:0"));
    assert.ok(!Configuration.parse("a:1,b:1").equals("a:1"));
    assert.ok(!Configuration.parse("a:1,b:1").equals("a:1,c:1"));
  });

  it("diff lists added and removed peers", () => {
    const old = Configuration.parse("a:1,b:1,c:1");
    const next = Configuration.parse("b:1,c:1,d:1,e:1");
    const { added, removed } = old.diff(next);
    assert.deepEqual(added.map(String), ["d:1:0", "e:1:0"]);
    assert.deepEqual(removed.map(String), ["a:1:0"]);
    const none = old.diff(old.clone());
    assert.equal(none.added.length + none.removed.length, 0);
  });

  it("from accepts configurations, strings and peer lists", () => {
    const conf = Configuration.parse("a:1");
    assert.equal(Configuration.from(conf), conf);
    assert.equal(Configuration.from("a:1,b:1").size, 2);
    assert.equal(Configuration.from([PeerId.parse("x:1"), "y:2"]).size, 2);
  });

  it("rejects a bad field with a TypeError quoting the input", () => {
    assert.throws(() => Configuration.parse("a:1,nonsense"), (e: unknown) => {
      assert.ok(e instanceof TypeError);
      assert.match(e.message, /Cannot parse configuration "a:1,nonsense"/);
      assert.match(e.message, /"nonsense"/);
      return true;
    });
    assert.throws(() => Configuration.parse(undefined as unknown as string), TypeError);
    assert.throws(() => new Configuration(["a:99999"]), TypeError);
  });
});
