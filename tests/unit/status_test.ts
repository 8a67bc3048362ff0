import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { errorName, RaftError, RaftException, Status } from "../../mod.ts";

describe("Status and RaftError", () => {
  it("uses braft's numbers for the raft-specific codes", () => {
    const expected: Record<string, number> = {
      ERAFTTIMEDOUT: 10001,
      ESTATEMACHINE: 10002,
      ECATCHUP: 10003,
      ELEADERREMOVED: 10004,
      ESETPEER: 10005,
      ENODESHUTDOWN: 10006,
      EHIGHERTERMREQUEST: 10007,
      EHIGHERTERMRESPONSE: 10008,
      EBADNODE: 10009,
      EVOTEFORCANDIDATE: 10010,
      ENEWLEADER: 10011,
      ELEADERCONFLICT: 10012,
      ETRANSFERLEADERSHIP: 10013,
      ELOGDELETED: 10014,
      ENOMOREUSERLOG: 10015,
      EREADONLY: 10016,
    };
    for (const [name, code] of Object.entries(expected)) {
      assert.equal((RaftError as Record<string, number>)[name], code, name);
      assert.equal(errorName(code), name);
    }
  });

  it("uses Linux errno values for the POSIX codes", () => {
    assert.equal(RaftError.EPERM, 1);
    assert.equal(RaftError.ENOENT, 2);
    assert.equal(RaftError.EINTR, 4);
    assert.equal(RaftError.EIO, 5);
    assert.equal(RaftError.EAGAIN, 11);
    assert.equal(RaftError.EACCES, 13);
    assert.equal(RaftError.EBUSY, 16);
    assert.equal(RaftError.EINVAL, 22);
    assert.equal(RaftError.ESHUTDOWN, 108);
    assert.equal(RaftError.EHOSTUNREACH, 113);
    assert.equal(RaftError.ESTALE, 116);
    assert.equal(RaftError.ECANCELED, 125);
    assert.equal(errorName(4242), "E4242");
  });

  it("Status reports ok and prints its code name", () => {
    assert.ok(Status.OK().ok());
    assert.equal(Status.OK().toString(), "OK");
    const s = Status.error(RaftError.EBUSY, "Doing another configuration change");
    assert.ok(!s.ok());
    assert.equal(s.code, 16);
    assert.equal(s.toString(), "EBUSY: Doing another configuration change");
  });

  it("RaftException carries the status and is an Error", () => {
    const e = RaftException.of(RaftError.EPERM, "Not leader");
    assert.ok(e instanceof Error);
    assert.equal(e.name, "RaftException");
    assert.equal(e.code, RaftError.EPERM);
    assert.equal(e.status.message, "Not leader");
    assert.equal(e.message, "EPERM: Not leader");
    const cause = new Error("disk");
    assert.equal(new RaftException(Status.error(5, "x"), { cause }).cause, cause);
  });
});
