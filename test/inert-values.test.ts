import assert from "node:assert/strict";
import { access } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { createAccHome } from "./harness/acc.js";

test(
  "odd but valid values reach the app as text and inject nothing",
  { timeout: 120_000 },
  async (t) => {
    const acc = await createAccHome();
    t.after(() => acc.cleanup());
    await acc.ok(["boot"]);
    const marker = path.join(acc.home, "pwned");
    const greeting = `$(touch ${marker}) \`touch ${marker}\` '; } server { listen 1; } # %(here)s "q" ünï`;
    await acc.ok(["create", "hello", "--name", "odd", "--param", `greeting=${greeting}`]);
    const page = await acc.request("odd.localhost");
    assert.equal(page.status, 200);
    // hello escapes every &<>"' as a numeric entity.
    const escaped = greeting.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
    assert.ok(
      page.body.includes(escaped),
      `the page shows the greeting as given: ${page.body.slice(0, 400)}`,
    );
    await assert.rejects(access(marker), "no shell ran the value");
    const shown = JSON.parse(await acc.ok(["show", "odd", "--json"])) as {
      params: Record<string, string>;
    };
    assert.equal(shown.params.greeting, greeting);
    // nginx still has exactly its own servers: the value never reached its config.
    assert.equal((await acc.request("nobody.localhost")).status, 404);
  },
);
