import assert from "node:assert/strict";
import { test } from "node:test";
import type { ListedInstance } from "../../services/instance-view.js";
import { createInput, filterInstances, instancesQuery } from "./routes.js";

const row = (name: string, extra: Partial<ListedInstance>): ListedInstance =>
  ({
    name,
    hosts: [`${name}.localhost`],
    state: "stopped",
    model: "hello",
    last_activity_at: null,
    memory_mb: null,
    ...extra,
  }) as ListedInstance;

test("the table's query: unknown sorts and bad pages fall back to the defaults", () => {
  assert.deepEqual(instancesQuery({}), { q: "", state: "", model: "", sort: "name", page: 1 });
  assert.equal(instancesQuery({ sort: "<x>" }).sort, "name");
  assert.equal(instancesQuery({ page: "-1" }).page, 1);
  assert.equal(instancesQuery({ page: "2.5" }).page, 1);
  assert.equal(instancesQuery({ page: "3", sort: "memory" }).page, 3);
});

test("search by name or host, filters by state and model, sorts by activity and memory", () => {
  const all = [
    row("alpha", { state: "running", memory_mb: 10, last_activity_at: "2026-01-02T00:00:00Z" }),
    row("beta", { hosts: ["shop.example.com"], memory_mb: 50 }),
    row("gamma", { model: "guestbook", last_activity_at: "2026-01-03T00:00:00Z" }),
  ];
  const q = instancesQuery({});
  assert.deepEqual(
    filterInstances(all, { ...q, q: "SHOP" }).map((i) => i.name),
    ["beta"],
  );
  assert.deepEqual(
    filterInstances(all, { ...q, state: "running" }).map((i) => i.name),
    ["alpha"],
  );
  assert.deepEqual(
    filterInstances(all, { ...q, model: "guestbook" }).map((i) => i.name),
    ["gamma"],
  );
  assert.deepEqual(
    filterInstances(all, { ...q, sort: "memory" }).map((i) => i.name),
    ["beta", "alpha", "gamma"],
  );
  assert.deepEqual(
    filterInstances(all, { ...q, sort: "activity" }).map((i) => i.name),
    ["gamma", "alpha", "beta"],
  );
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
