import assert from "node:assert/strict";
import { test } from "node:test";
import { decideExitCause } from "./crashes.js";

test("an exit's cause: status, signal (supervisord's -1, or 128+N), and OOM when the cgroup says so", () => {
  assert.deepEqual(decideExitCause({ exitStatus: 5 }), {
    cause: "exit",
    description: "exited with status 5",
  });
  assert.deepEqual(decideExitCause({ exitStatus: 0 }).description, "exited with status 0");
  assert.deepEqual(decideExitCause({ exitStatus: 137 }), {
    cause: "signal",
    description: "killed by SIGKILL (exit status 137)",
  });
  assert.deepEqual(decideExitCause({ exitStatus: -1 }).cause, "signal");
  // 128+N for a signal acc does not name stays a status.
  assert.equal(decideExitCause({ exitStatus: 200 }).description, "exited with status 200");
  assert.equal(decideExitCause({ exitStatus: 137 }, { oomKilled: true }).cause, "oom");
  assert.equal(decideExitCause(null).description, "exited");
});
