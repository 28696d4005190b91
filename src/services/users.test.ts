import assert from "node:assert/strict";
import { test } from "node:test";
import { parsePasswd } from "./users.js";

test("parsePasswd: names by uid, the first of a uid wins, bad lines skipped", () => {
  const text = [
    "root:x:0:0:root:/root:/bin/bash",
    "acc-evil:x:100005:100005::/var/lib/acc/instances/evil:/usr/sbin/nologin",
    "toor:x:0:0::/root:/bin/sh",
    "",
    "# a comment",
    "broken:x:notanumber:0::/:/bin/sh",
    ":x:7:7::/:/bin/sh",
    "short",
  ].join("\n");
  assert.deepEqual(
    [...parsePasswd(text)],
    [
      [0, "root"],
      [100005, "acc-evil"],
    ],
  );
});
