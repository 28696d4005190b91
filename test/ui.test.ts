import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { cp, mkdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import http from "node:http";
import { homePaths } from "../src/core/paths.js";
import path from "node:path";
import { test, type TestContext } from "node:test";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { ACC_ROOT, createAccHome, type AccHome } from "./harness/acc.js";
import { NO_DATABASE } from "./harness/api.js";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = path.join(ACC_ROOT, "test-artifacts", "ui");

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

async function token(acc: AccHome, scope: string): Promise<string> {
  const out = await acc.ok(["token", "create", "--scope", scope, "--json"]);
  return (JSON.parse(out) as { token: string }).token;
}

/** GET through nginx's admin socket with a bearer token, as nginx passes it on. */
function apiGet(
  home: string,
  url: string,
  bearer: string,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath: homePaths(home).adminSocket,
        path: url,
        headers: { "x-real-ip": "127.0.0.7", authorization: `Bearer ${bearer}` },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
      },
    );
    req.on("error", reject);
    req.end();
  });
}

async function signIn(page: Page, base: string, secret: string): Promise<void> {
  await page.goto(`${base}/`);
  assert.match(page.url(), /\/ui\/signin$/);
  await page.getByLabel("Token").fill(secret);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForLoadState();
}

/** The instance's state as its page's badge shows it. */
async function badge(page: Page): Promise<string> {
  return ((await page.locator("#facts .badge").first().textContent()) ?? "").trim();
}

async function stateOf(acc: AccHome, name: string): Promise<string> {
  const view = JSON.parse(await acc.ok(["show", name, "--json"])) as { state: string };
  return view.state;
}

/** A booted home (no Postgres), an admin token, and Chromium on a fresh page, closed after t. */
async function uiHome(
  t: TestContext,
  options: { acceptDownloads?: boolean; timeoutMs: number },
): Promise<
  | {
      acc: AccHome;
      base: string;
      admin: string;
      browser: Browser;
      context: BrowserContext;
      page: Page;
      dialogs: string[];
    }
  | undefined
> {
  if (!existsSync(CHROMIUM)) {
    // CI installs chromium (.ci/run): there, a missing browser is a failure, never a skip.
    if (process.env.CI === "true") assert.fail(`${CHROMIUM} is missing (apt-get install chromium)`);
    t.skip(`${CHROMIUM} is not installed`);
    return undefined;
  }
  await mkdir(ARTIFACTS, { recursive: true });
  const acc = await createAccHome({ env: NO_DATABASE });
  t.after(() => acc.cleanup());
  await acc.ok(["boot"]);
  const base = `http://acc.localhost:${acc.httpPort}`;
  const admin = await token(acc, "admin");
  const browser: Browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: process.getuid?.() === 0 ? ["--no-sandbox"] : [],
  });
  t.after(() => browser.close());
  const context = await browser.newContext({ acceptDownloads: options.acceptDownloads ?? false });
  context.setDefaultTimeout(options.timeoutMs);
  const page = await context.newPage();
  const dialogs: string[] = [];
  page.on("dialog", (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  return { acc, base, admin, browser, context, page, dialogs };
}

test(
  "admin UI in Chromium: sign in, create from the form, wake, log, stop, back up, destroy; an instance token sees only its page; CSRF refused",
  { timeout: 420_000 },
  async (t) => {
    const ui = await uiHome(t, { acceptDownloads: true, timeoutMs: 15_000 });
    if (ui === undefined) return;
    const { acc, base, admin, browser, context, page, dialogs } = ui;
    await acc.ok(["create", "hello", "--name", "ub1", "--no-start"]);

    // Signed out: every page leads to the sign-in form; a wrong token is refused.
    await page.goto(`${base}/ui/instances`);
    assert.match(page.url(), /\/ui\/signin$/);
    await shot(page, "signin");
    await page
      .getByLabel("Token")
      .fill("acc_000000000000_nopenopenopenopenopenopenopenopenopenopenopen");
    await page.getByRole("button", { name: "Sign in" }).click();
    assert.match(await page.locator(".flash.error").innerText(), /refused/);

    await signIn(page, base, admin);
    assert.match(page.url(), /\/ui\/instances$/);
    const cookie = (await context.cookies()).find((c) => c.name === "acc_session");
    assert.ok(cookie, "a session cookie");
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, "Strict");
    assert.equal(cookie.path, "/ui");
    assert.ok(await page.locator('tr[data-name="ub1"]').isVisible());
    await shot(page, "instances");

    // Create from the form, with a hostile parameter value: shown as text, never run.
    await page.getByRole("link", { name: "Create", exact: true }).click();
    await page.getByLabel("Model", { exact: true }).selectOption("hello");
    await page.getByRole("button", { name: "Choose" }).click();
    await page.locator("#name").fill("ua1");
    const hostile = `<script>alert("x")</script>'"<img src=x onerror=alert(1)>`;
    await page.getByLabel(/greeting/).fill(hostile);
    await page.getByLabel("start it now").uncheck();
    await shot(page, "create");
    await page.getByRole("button", { name: "Create" }).click();
    assert.match(await page.locator(".flash.ok").innerText(), /ua1 created \(stopped\)/);
    await shot(page, "created");
    await page.getByRole("link", { name: "Open ua1's page" }).click();
    assert.equal(await badge(page), "stopped");
    assert.ok((await page.locator("main").innerText()).includes(hostile));

    // Wake it by its URL: the page's live update shows it running, and its log the start.
    const visitor = await context.newPage();
    // A browser may get the waiting page (503, it reloads by itself) until the start is over.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const answer = await visitor.goto(`http://ua1.localhost:${acc.httpPort}/`, {
        timeout: 60_000,
      });
      if (answer?.status() === 200) break;
      assert.equal(answer?.status(), 503, "the waiting page, or the app before it is ready");
      assert.ok(Date.now() < deadline, "ua1 woke within 60 s");
      await visitor.waitForTimeout(500);
    }
    await visitor.close();
    await page.waitForFunction(
      () => document.querySelector("#facts .badge")?.textContent === "running",
      undefined,
      { timeout: 30_000 },
    );
    // The log tail follows (server-sent events through /ui): the start's line arrives without
    // a reload of the page, which was open before the start.
    assert.equal(await page.locator("#log").getAttribute("data-following"), "1");
    await page.locator("#log").filter({ hasText: "ua1 listening" }).waitFor({ timeout: 15_000 });
    await page.reload();
    await shot(page, "instance-running");

    // The table: search by name or host (any case), filter by state, through the form.
    const names = () =>
      page
        .locator("#instances tbody tr")
        .evaluateAll((rows) => rows.map((r) => r.getAttribute("data-name")));
    await page.goto(`${base}/ui/instances`);
    await page.getByLabel("Search name or host").fill("UB1.LOCAL");
    await page.getByRole("button", { name: "Show" }).click();
    assert.deepEqual(await names(), ["ub1"]);
    await page.getByLabel("Search name or host").fill("");
    await page.getByLabel("State").selectOption("running");
    await page.getByLabel("Sort by").selectOption("memory");
    await page.getByRole("button", { name: "Show" }).click();
    assert.match(page.url(), /state=running/);
    assert.deepEqual(await names(), ["ua1"]);
    await page.goto(`${base}/ui/instances/ua1`);

    // Stop, back up, download the backup.
    await page.getByRole("button", { name: "Stop" }).click();
    assert.match(await page.locator(".flash.ok").innerText(), /ua1 stopped/);
    assert.equal(await badge(page), "stopped");
    assert.equal(await stateOf(acc, "ua1"), "stopped");
    await page.getByRole("button", { name: "Back up now" }).click();
    assert.match(await page.locator(".flash.ok").innerText(), /ua1 backed up/);
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.locator("#backups a", { hasText: "Download" }).first().click(),
    ]);
    assert.match(download.suggestedFilename(), /^acc-backup-ua1-\d{8}T\d+Z\.tar$/);
    const saved = path.join(ARTIFACTS, "backup.tar");
    await download.saveAs(saved);
    const listing = execFileSync("tar", ["-tf", saved], { encoding: "utf8" });
    assert.match(listing, /ua1-\d{8}T\d+Z\/manifest\.json/);
    assert.match(listing, /\/env$/m);

    // The same download through the API: admin or the instance's own token only; the id is
    // checked strictly, and a link in the backups folder is never followed.
    const stamp = /ua1-(\d{8}T\d+Z)\//.exec(listing)?.[1] ?? "";
    const downloadUrl = (name: string, id: string) =>
      `/api/v1/instances/${name}/backups/${id}/download`;
    const byAdmin = await apiGet(acc.home, downloadUrl("ua1", stamp), admin);
    assert.equal(byAdmin.status, 200);
    assert.match(
      String(byAdmin.headers["content-disposition"]),
      /^attachment; filename="acc-backup-ua1-/,
    );
    assert.equal(byAdmin.body.length, Number(byAdmin.headers["content-length"]));
    assert.equal(byAdmin.body.subarray(257, 262).toString(), "ustar");
    const read = await token(acc, "read");
    assert.equal((await apiGet(acc.home, downloadUrl("ua1", stamp), read)).status, 403);
    const otherToken = await token(acc, "instance:ub1");
    assert.equal((await apiGet(acc.home, downloadUrl("ua1", stamp), otherToken)).status, 403);
    assert.equal((await apiGet(acc.home, downloadUrl("ua1", "..%2F..%2Fetc"), admin)).status, 400);
    const backupsDir = homePaths(acc.home).backups;
    await symlink(
      path.join(backupsDir, "ua1", stamp),
      path.join(backupsDir, "ua1", "20990101T000000000Z"),
    );
    assert.equal(
      (await apiGet(acc.home, downloadUrl("ua1", "20990101T000000000Z"), admin)).status,
      404,
    );
    await symlink("/etc/passwd", path.join(backupsDir, "ua1", stamp, "passwd"));
    const withLink = await apiGet(acc.home, downloadUrl("ua1", stamp), admin);
    assert.equal(withLink.status, 200);
    assert.ok(!withLink.body.includes("root:x:0:0"), "a link's target is never in the archive");

    // Reveal (admin): the env file with its values.
    await page.getByRole("button", { name: "Reveal secrets" }).click();
    assert.match(await page.locator("main").innerText(), /Environment file/);
    await shot(page, "instance-revealed");

    // CSRF: a POST without the token, or with a wrong one, is refused and changes nothing.
    /** A POST from the page itself (its cookie goes with it): the status and the body. */
    const post = (where: Page, url: string, form: Record<string, string>) =>
      where.evaluate(
        async ([u, f]) => {
          const r = await fetch(u, {
            method: "POST",
            body: new URLSearchParams(f),
            redirect: "manual",
          });
          return { status: r.status, text: await r.text() };
        },
        [url, form] as const,
      );
    const forms: Record<string, string>[] = [
      { confirm: "ub1" },
      { confirm: "ub1", _csrf: "wrong" },
    ];
    for (const form of forms) {
      const refused = await post(page, "/ui/instances/ub1/destroy", form);
      assert.equal(refused.status, 403);
      assert.match(refused.text, /security token/);
    }
    assert.equal((await post(page, "/ui/instances/ub1/start", { _csrf: "x" })).status, 403);
    assert.equal(await stateOf(acc, "ub1"), "stopped");

    // Other pages.
    for (const [href, name, text] of [
      ["/ui/models", "models", "hello"],
      ["/ui/backups", "backups", "ua1"],
      ["/ui/events", "events", "instance.stop by token"],
      ["/ui/status", "status", "supervisord"],
    ] as const) {
      const response = await page.goto(`${base}${href}`);
      assert.equal(response?.status(), 200, href);
      assert.ok((await page.locator("main").innerText()).includes(text), `${href} shows ${text}`);
      await shot(page, name);
    }
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${base}/ui/instances`);
    await shot(page, "instances-phone");
    await page.goto(`${base}/ui/instances/ua1`);
    await shot(page, "instance-phone");
    await page.setViewportSize({ width: 1280, height: 800 });

    // An instance token: its page alone.
    const customer = await token(acc, "instance:ua1");
    const other = await browser.newContext();
    t.after(() => other.close());
    const mine = await other.newPage();
    await signIn(mine, base, customer);
    assert.match(mine.url(), /\/ui\/instances\/ua1$/);
    const text = await mine.locator("body").innerText();
    assert.ok(!text.includes("ub1"), "no other instance named");
    assert.ok(!text.includes("Destroy") && !text.includes("Instances"), "no admin action or page");
    await mine.setViewportSize({ width: 390, height: 844 });
    await shot(mine, "end-user-phone");
    for (const href of ["/ui/instances", "/ui/events", "/ui/status", "/ui/create", "/ui/backups"]) {
      const response = await mine.goto(`${base}${href}`);
      assert.equal(response?.status(), 403, href);
      assert.ok(!(await mine.locator("body").innerText()).includes("ub1"));
    }
    for (const href of [
      "/ui/instances/ub1",
      "/ui/instances/ub1/backups/20260101T000000000Z/download",
    ]) {
      const response = await mine.goto(`${base}${href}`);
      assert.equal(response?.status(), 404, href);
      assert.ok(!(await mine.locator("main").innerText()).includes("ub1"));
    }
    await mine.goto(`${base}/ui/instances/ua1`);
    await mine.getByRole("button", { name: "Wake" }).click();
    assert.match(await mine.locator(".flash.ok").innerText(), /ua1 started/);
    assert.equal(await badge(mine), "running");
    await shot(mine, "end-user");
    // Its stop is not among its page's actions.
    const stop = await mine.evaluate(
      async (csrf) => {
        const body = new URLSearchParams({ _csrf: csrf });
        return (await fetch("/ui/instances/ua1/stop", { method: "POST", body })).status;
      },
      await mine.locator('input[name="_csrf"]').first().inputValue(),
    );
    assert.equal(stop, 404);
    assert.equal(await stateOf(acc, "ua1"), "running");

    // Revoked: its session ends at the next request.
    const tokens = JSON.parse(await acc.ok(["token", "list", "--json"])) as {
      id: string;
      scope: string;
    }[];
    const customerId = tokens.find((tk) => tk.scope === "instance:ua1")?.id ?? "";
    await acc.ok(["token", "revoke", customerId]);
    const ended = await mine.goto(`${base}/ui/instances/ua1`);
    assert.equal(ended?.status(), 401);
    assert.match(await mine.locator(".flash.error").innerText(), /session ended/);

    // Destroy with the typed confirmation: the button waits for the exact name.
    await page.goto(`${base}/ui/instances/ua1`);
    const destroy = page.getByRole("button", { name: "Destroy" });
    await page.getByLabel(/Destroy: type the instance's name/).fill("ua");
    assert.equal(await destroy.isDisabled(), true);
    await page.getByLabel(/Destroy: type the instance's name/).fill("ua1");
    await destroy.click();
    assert.match(page.url(), /\/ui\/instances$/);
    assert.match(await page.locator(".flash.ok").innerText(), /ua1 destroyed/);
    assert.equal((await acc.run(["show", "ua1"])).code, 3);

    // Every change made here is an event naming the token.
    const events = JSON.parse(await acc.ok(["events", "--json", "--lines", "200"])) as {
      message: string | null;
    }[];
    for (const op of ["instance.create", "instance.stop", "instance.backup", "instance.destroy"])
      assert.ok(
        events.some((e) => (e.message ?? "").startsWith(`${op} by token`)),
        `an event for ${op}`,
      );

    // Sign out: the session is gone.
    await page.getByRole("button", { name: "Sign out" }).click();
    assert.match(await page.locator(".flash.ok").innerText(), /Signed out/);
    await page.goto(`${base}/ui/instances`);
    assert.match(page.url(), /\/ui\/signin$/);
    assert.deepEqual(dialogs, [], "no script of an instance's value ran");
  },
);

test(
  "admin UI in Chromium: an upgrade shows its dry run first (diff escaped), then upgrades; roll back; a whole model's rollout; an instance token gets none of it",
  { timeout: 420_000 },
  async (t) => {
    const ui = await uiHome(t, { timeoutMs: 60_000 });
    if (ui === undefined) return;
    const { acc, base, admin, browser, page, dialogs } = ui;
    // On the bundled hello 1.0.0.
    await acc.ok(["create", "hello", "--name", "uu1", "--no-start"]);
    await acc.ok(["create", "hello", "--name", "uu2", "--no-start"]);
    const versionOf = async (name: string) =>
      (JSON.parse(await acc.ok(["show", name, "--json"])) as { model_version: string })
        .model_version;

    await signIn(page, base, admin);
    const main = async () => await page.locator("main").innerText();

    // Already on its model's version: the dry run says so and offers nothing to confirm.
    await page.goto(`${base}/ui/instances/uu1`);
    await page.getByRole("button", { name: "Upgrade…" }).click();
    assert.match(page.url(), /\/ui\/instances\/uu1\/upgrade/);
    assert.match(await main(), /Dry run, nothing changed yet/);
    assert.match(
      await page.locator('tr[data-name="uu1"]').innerText(),
      /skipped: already on 1\.0\.0/,
    );
    assert.match(await main(), /Nothing to upgrade\./);
    assert.equal(await page.getByRole("button", { name: /^Upgrade uu1/ }).count(), 0);
    await shot(page, "upgrade-skipped");

    // Never upgraded: nothing to roll back, said in the flash.
    await page.goto(`${base}/ui/instances/uu1`);
    await page.getByRole("button", { name: "Roll back…" }).click();
    assert.match(await main(), /uu1 is on hello 1\.0\.0/);
    await page.getByRole("button", { name: "Roll back uu1" }).click();
    assert.match(page.url(), /\/ui\/instances\/uu1$/);
    assert.match(await page.locator(".flash.error").innerText(), /uu1 has no upgrade to roll back/);

    // A new version of hello in HOME/models: a parameter more and a template whose text is
    // markup, which the dry run's diff must show as text.
    const models = homePaths(acc.home).models;
    const newHello = async (version: string, serverJs?: string) => {
      const dir = path.join(models, "hello");
      await rm(dir, { recursive: true, force: true });
      await cp(path.join(ACC_ROOT, "models", "hello"), dir, { recursive: true });
      const manifest = await readFile(path.join(dir, "model.toml"), "utf8");
      await writeFile(
        path.join(dir, "model.toml"),
        `${manifest.replace('version = "1.0.0"', `version = "${version}"`)}
[params.colour]
type = "string"
default = "blue"

[[templates]]
source = "templates/page.html"
target = "page.html"
`,
      );
      await mkdir(path.join(dir, "templates"));
      await writeFile(
        path.join(dir, "templates", "page.html"),
        `<script>alert("diff {{ name }}")</script>\ncolour={{ params.colour }}\n`,
      );
      if (serverJs !== undefined) await writeFile(path.join(dir, "server.js"), serverJs);
    };
    await mkdir(models, { recursive: true });
    await newHello("1.1.0");

    await page.goto(`${base}/ui/instances/uu1/upgrade`);
    const row = await page.locator('tr[data-name="uu1"]').innerText();
    assert.match(row, /hello 1\.0\.0 → 1\.1\.0/);
    assert.match(row, /would upgrade/);
    assert.match(row, /colour/);
    assert.match(row, /\+PARAM_COLOUR/);
    const diff = await page.locator("pre.diff").innerText();
    assert.ok(diff.includes('+<script>alert("diff uu1")</script>'), diff);
    assert.ok(diff.includes("+colour=blue"), diff);
    assert.equal(await page.locator("main script").count(), 0, "the diff's markup is text");
    assert.equal(await page.getByLabel(/verify a\s+stopped instance/).isChecked(), true);
    await shot(page, "upgrade-dry-run");
    assert.equal(await versionOf("uu1"), "1.0.0", "the dry run changed nothing");

    // A confirmation for another version than the page showed is refused.
    /** A POST from the page itself with its session's CSRF token: its status (0: a redirect). */
    const post = (where: Page, url: string, form: Record<string, string>) =>
      where.evaluate(
        async ([u, f]) => {
          const csrf = (document.querySelector('input[name="_csrf"]') as HTMLInputElement).value;
          const r = await fetch(u, {
            method: "POST",
            body: new URLSearchParams({ ...f, _csrf: csrf }),
            redirect: "manual",
          });
          return r.status;
        },
        [url, form] as const,
      );
    assert.equal(await post(page, "/ui/instances/uu1/upgrade", { to: "9.9.9", verify: "1" }), 0);
    assert.equal(await versionOf("uu1"), "1.0.0");
    await page.goto(`${base}/ui/instances/uu1/upgrade`);
    assert.match(await page.locator(".flash.error").innerText(), /changed since this dry run/);

    // The upgrade itself: the flash tells its outcome, the page the new version.
    await page.getByRole("button", { name: "Upgrade uu1" }).click();
    assert.match(page.url(), /\/ui\/instances\/uu1$/);
    const done = await page.locator(".flash.ok").innerText();
    assert.match(done, /Upgrade: 1 upgraded, 0 rolled back, 0 skipped/);
    assert.match(done, /uu1: upgraded \(hello 1\.0\.0 -> 1\.1\.0\)/);
    assert.match(await page.locator("#facts").innerText(), /hello 1\.1\.0/);
    assert.equal(await versionOf("uu1"), "1.1.0");
    assert.equal(await stateOf(acc, "uu1"), "stopped");
    await shot(page, "upgraded");

    // And rolled back through its confirmation page.
    await page.getByRole("button", { name: "Roll back…" }).click();
    await page.getByRole("button", { name: "Roll back uu1" }).click();
    assert.match(
      await page.locator(".flash.ok").innerText(),
      /uu1 rolled back from 1\.1\.0 to 1\.0\.0/,
    );
    assert.equal(await versionOf("uu1"), "1.0.0");

    // The whole model: each instance's line and a summary, then the rollout with its fields.
    await page.goto(`${base}/ui/models`);
    assert.match(
      await page.locator("tr", { hasText: "Upgrade all instances of hello" }).innerText(),
      /2 on 1\.0\.0/,
      "how many instances run each version",
    );
    await page.getByRole("link", { name: "Upgrade all instances of hello" }).click();
    assert.match(page.url(), /\/ui\/models\/hello\/upgrade$/);
    assert.match(await main(), /2 would be upgraded, 0 skipped/);
    for (const name of ["uu1", "uu2"])
      assert.match(await page.locator(`tr[data-name="${name}"]`).innerText(), /would upgrade/);
    assert.equal(await page.getByLabel(/Batch size/).inputValue(), "1");
    assert.equal(await page.getByLabel(/Max failures/).inputValue(), "1");
    await shot(page, "upgrade-model-dry-run");
    await page.getByLabel(/Batch size/).fill("2");
    await page.getByRole("button", { name: "Upgrade the instances of hello" }).click();
    assert.match(page.url(), /\/ui\/instances\?model=hello$/);
    assert.match(
      await page.locator(".flash.ok").innerText(),
      /Upgrade: 2 upgraded, 0 rolled back, 0 skipped/,
    );
    assert.equal(await versionOf("uu1"), "1.1.0");
    assert.equal(await versionOf("uu2"), "1.1.0");
    await page.goto(`${base}/ui/models`);
    assert.match(
      await page.locator("tr", { hasText: "Upgrade all instances of hello" }).innerText(),
      /2 on 1\.1\.0/,
    );
    await page.goto(`${base}/ui/models/hello/upgrade`);
    assert.match(await main(), /Nothing to upgrade: every instance of the model is on its current/);
    assert.equal(await page.getByRole("button", { name: /^Upgrade the instances/ }).count(), 0);

    // A version that cannot start: rolled back, and the flash says why with the last lines.
    await newHello("1.2.0", 'console.log("uu-boom");\nprocess.exit(3);\n');
    await page.goto(`${base}/ui/instances/uu2/upgrade`);
    await page.getByRole("button", { name: "Upgrade uu2" }).click();
    const failed = await page.locator(".flash.error").innerText();
    assert.match(failed, /Upgrade: 0 upgraded, 1 rolled back/);
    assert.match(failed, /uu2: ROLLED BACK \(hello 1\.1\.0 -> 1\.2\.0\)/);
    assert.match(failed, /uu-boom/);
    assert.equal(await versionOf("uu2"), "1.1.0");
    await shot(page, "upgrade-rolled-back");

    // An instance token: no upgrade, no rollback, not even the pages that ask.
    const customer = await token(acc, "instance:uu2");
    const other = await browser.newContext();
    t.after(() => other.close());
    const mine = await other.newPage();
    await signIn(mine, base, customer);
    assert.match(mine.url(), /\/ui\/instances\/uu2$/);
    const text = await mine.locator("main").innerText();
    assert.ok(!/Upgrade|Roll back/.test(text), "no upgrade or rollback button");
    for (const href of ["/ui/instances/uu2/upgrade", "/ui/instances/uu2/rollback"]) {
      assert.equal((await mine.goto(`${base}${href}`))?.status(), 404, href);
    }
    assert.equal((await mine.goto(`${base}/ui/models/hello/upgrade`))?.status(), 403);
    await mine.goto(`${base}/ui/instances/uu2`);
    for (const action of ["upgrade", "rollback"]) {
      const status = await post(mine, `/ui/instances/uu2/${action}`, { to: "1.2.0" });
      assert.equal(status, 404, action);
    }
    assert.equal(await versionOf("uu2"), "1.1.0");

    const events = JSON.parse(await acc.ok(["events", "--json", "--lines", "200"])) as {
      message: string | null;
    }[];
    for (const op of ["instance.upgrade", "instance.rollback"])
      assert.ok(
        events.some((e) => (e.message ?? "").startsWith(`${op} by token`)),
        `an event for ${op}`,
      );
    assert.deepEqual(dialogs, [], "no script of a template ran");
  },
);
