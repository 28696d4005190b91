import assert from "node:assert/strict";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { parsePasswd, userNamesOf } from "./users.js";

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

test("userNamesOf: the names asked for, and a change to the file is seen at once", async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), "acc-passwd-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, "passwd");
  await writeFile(file, "root:x:0:0:root:/root:/bin/bash\nacc-a:x:1001:1001::/:/bin/sh\n");
  assert.deepEqual([...(await userNamesOf([1001, 1002], file))], [[1001, "acc-a"]]);
  // useradd writes a new file in its place (another inode), the same second or not.
  const next = path.join(dir, "passwd.new");
  await writeFile(
    next,
    "root:x:0:0:root:/root:/bin/bash\nacc-a:x:1001:1001::/:/bin/sh\nacc-b:x:1002:1002::/:/bin/sh\n",
  );
  await rename(next, file);
  assert.deepEqual(
    [...(await userNamesOf([1001, 1002], file))],
    [
      [1001, "acc-a"],
      [1002, "acc-b"],
    ],
  );
  // Rewritten in place, with another size.
  await writeFile(file, "acc-c:x:1002:1002::/:/bin/sh\n");
  assert.deepEqual([...(await userNamesOf([1001, 1002], file))], [[1002, "acc-c"]]);
  await rm(file);
  assert.deepEqual([...(await userNamesOf([1002], file))], []);
});
