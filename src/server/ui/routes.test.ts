import assert from "node:assert/strict";
import { test } from "node:test";
import { createInput, instancesQuery, rolloutInput } from "./routes.js";

test("the table's query: unknown sorts and bad pages fall back to the defaults", () => {
  assert.deepEqual(instancesQuery({}), { q: "", state: "", model: "", sort: "name", page: 1 });
  assert.equal(instancesQuery({ sort: "<x>" }).sort, "name");
  assert.equal(instancesQuery({ page: "-1" }).page, 1);
  assert.equal(instancesQuery({ page: "2.5" }).page, 1);
  assert.equal(instancesQuery({ page: "3", sort: "memory" }).page, 3);
});

test("the create form as instance.create's input: empty fields left to defaults", () => {
  assert.deepEqual(createInput({ model: "hello", name: "", hosts: "", "param.greeting": "" }), {
    model: "hello",
    start: false,
  });
  assert.deepEqual(
    createInput({
      model: "hello",
      name: " ua1 ",
      hosts: "a.example b.example",
      "param.greeting": "Hi=there",
      start: "1",
      idle_timeout: "15m",
    }),
    {
      model: "hello",
      name: "ua1",
      hosts: ["a.example", "b.example"],
      params: ["greeting=Hi=there"],
      idle_timeout: "15m",
      start: true,
    },
  );
});

test("a whole model's upgrade form as instance.upgrade's rollout: defaults 1, whole numbers only", () => {
  assert.deepEqual(rolloutInput({ batch: "", max_failures: "" }), {
    batch: 1,
    max_failures: 1,
    verify: false,
  });
  assert.deepEqual(rolloutInput({ batch: " 4 ", max_failures: "2", verify: "1" }), {
    batch: 4,
    max_failures: 2,
    verify: true,
  });
  for (const bad of ["-1", "1.5", "x", "1e3"])
    assert.throws(() => rolloutInput({ batch: bad }), { code: "ACC_INVALID" });
});
