import assert from "node:assert/strict";
import { test } from "node:test";
import { describeHomeProcesses } from "./home-processes.js";

test("describeHomeProcesses: one group per kind or instance, led by the pid-file process", () => {
  assert.equal(
    describeHomeProcesses([
      { pid: 10, kind: "nginx", leader: false },
      { pid: 9, kind: "nginx", leader: true },
      { pid: 11, kind: "nginx" },
      { pid: 20, kind: "instance", instance: "shop" },
      { pid: 21, kind: "instance", instance: "blog" },
      { pid: 30, kind: "acc server" },
    ]),
    "nginx (pid 9 and 2 more), instance shop (pid 20), instance blog (pid 21), acc server (pid 30)",
  );
});
