import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { reservedNameFindings } from "./doctor.js";

describe("doctor: instances that bear acc's admin host", () => {
  const instances = [
    { name: "acc", hosts: ["acc.example.com"] },
    { name: "shop", hosts: ["shop.example.com", "ACC.example.com"] },
    { name: "crm", hosts: ["crm.example.com", "acc.other.org"] },
  ];

  it("names the instance named like the host's first label and the one that took the host", () => {
    const findings = reservedNameFindings(instances, "acc.example.com");
    assert.deepEqual(
      findings.map((f) => f.problem.split(":")[0]),
      ["acc", "shop"],
    );
    assert.match(findings[0]?.problem ?? "", /first label of acc's admin host acc\.example\.com/);
    assert.match(findings[1]?.problem ?? "", /has acc's admin host acc\.example\.com as a host/);
    assert.ok(findings.every((f) => !f.repaired && f.advisory !== true));
    assert.match(findings[0]?.repair ?? "", /acc restore NEWNAME BACKUP --as-new/);
  });

  it("finds nothing when the admin host is free", () => {
    assert.deepEqual(reservedNameFindings(instances, "admin.example.net"), []);
  });
});
