// bench/api: acc server's API with N instances (10,000 by default) over its local socket
// (HOME/run/api.sock): requests per second, p50 and p99 of
// - GET /api/v1/instances?limit=50&offset=K, the pages of the list one after another;
// - the same pages searched and sorted by activity (what the admin UI's table asks);
// - GET /api/v1/instances/{name}, the instance page's data, and its events;
// each with --concurrency clients (8) on keep-alive connections for --seconds (5).
// The rows are written straight into the store and acc server is run by hand on the home
// (bench/list-home.ts). And the admin UI's instances page loaded in Chromium (uiListPageLoad).
// Usage: node dist/bench/api.js [--n 10000] [--seconds 5] [--concurrency 8] [--prefix l] [--ui-loads 10]
import { existsSync } from "node:fs";
import { once } from "node:events";
import http from "node:http";
import net from "node:net";
import { homePaths } from "../src/core/paths.js";
import { createAccHome, type AccHome } from "../test/harness/acc.js";
import {
  apiGet,
  prepareHelloCode,
  seedInstances,
  startAccServer,
  unseedInstances,
  type RunningServer,
} from "./list-home.js";
import { argString, argValue, ms, percentile, printTable } from "./stats.js";

const n = argValue("n", 10_000);
const seconds = argValue("seconds", 5);
const concurrency = argValue("concurrency", 8);
const prefix = argString("prefix", "l");
const PAGE = 50;

interface Load {
  requests: number;
  perSecond: number;
  p50: number;
  p99: number;
}

/**
 * `concurrency` clients, each sending the next path as soon as its answer came, for `seconds`;
 * every answer must be a 200 whose body `check` accepts (a bench of errors measures nothing).
 */
async function load(
  server: RunningServer,
  nextPath: (i: number) => string,
  check: (body: string) => boolean,
): Promise<Load> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const times: number[] = [];
  let issued = 0;
  const started = performance.now();
  const end = started + seconds * 1000;
  const client = async (): Promise<void> => {
    while (performance.now() < end) {
      const path = nextPath(issued++);
      const before = performance.now();
      const answer = await apiGet(server.socketPath, path, agent);
      times.push(performance.now() - before);
      if (answer.status !== 200 || !check(answer.body))
        throw new Error(`GET ${path}: ${answer.status} ${answer.body.slice(0, 300)}`);
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, client));
  } finally {
    agent.destroy();
  }
  const elapsed = (performance.now() - started) / 1000;
  return {
    requests: times.length,
    perSecond: times.length / elapsed,
    p50: percentile(times, 50),
    p99: percentile(times, 99),
  };
}

const isPage = (body: string): boolean => (JSON.parse(body) as unknown[]).length === PAGE;

/**
 * The admin UI's instances page in Debian's Chromium (playwright-core with `executablePath`),
 * signed in with a read token: time from navigation to the page loaded with its table, for the
 * first page, a page deep in the list and a search sorted by activity, p50/p99 of --ui-loads
 * (10) each. acc's nginx is not booted here (acc-ports would hold a port per seeded instance):
 * the browser reaches acc server's admin socket through a byte pipe on a loopback port, so the
 * figures leave out nginx's hop (bench/proxy measures it).
 */
async function uiListPageLoad(acc: AccHome, _server: RunningServer): Promise<[string, string][]> {
  const chromiumPath = "/usr/bin/chromium";
  if (!existsSync(chromiumPath))
    return [
      [
        "UI list page load in Chromium",
        "not measured: no /usr/bin/chromium (apt-get install chromium)",
      ],
    ];
  const { chromium } = await import("playwright-core");
  const secret = (
    JSON.parse(await acc.ok(["token", "create", "--scope", "read", "--json"])) as { token: string }
  ).token;
  const adminSocket = homePaths(acc.home).adminSocket;
  const pipe = net.createServer((client) => {
    const upstream = net.connect(adminSocket);
    client.pipe(upstream).pipe(client);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", close);
    upstream.on("error", close);
  });
  pipe.listen(0, "127.0.0.1");
  await once(pipe, "listening");
  const port = (pipe.address() as net.AddressInfo).port;
  const base = `http://127.0.0.1:${port}`;
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: process.getuid?.() === 0 ? ["--no-sandbox"] : [],
  });
  try {
    const page = await browser.newPage();
    await page.goto(`${base}/ui/signin`);
    await page.getByLabel("Token").fill(secret);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(/\/ui\/instances/);
    const loads = argValue("ui-loads", 10);
    const rows: [string, string][] = [];
    const pages: [string, (i: number) => string][] = [
      ["UI /ui/instances, first page", () => "/ui/instances"],
      [
        "UI /ui/instances, a page deep in the list",
        (i) => `/ui/instances?page=${100 + ((i * 37) % Math.max(1, Math.floor(n / PAGE) - 100))}`,
      ],
      ["UI /ui/instances?q=1&sort=activity", (i) => `/ui/instances?q=${i % 10}&sort=activity`],
    ];
    for (const [label, path] of pages) {
      const times: number[] = [];
      for (let i = 0; i < loads; i++) {
        const started = performance.now();
        const answer = await page.goto(`${base}${path(i)}`, { waitUntil: "load" });
        if (answer?.status() !== 200) throw new Error(`${path(i)}: HTTP ${answer?.status()}`);
        await page.locator("table").first().waitFor();
        times.push(performance.now() - started);
      }
      times.sort((x, y) => x - y);
      rows.push([
        label,
        `p50 ${ms(percentile(times, 50))}, p99 ${ms(percentile(times, 99))} (${loads} loads, Chromium, to the table shown)`,
      ]);
    }
    return rows;
  } finally {
    await browser.close();
    pipe.close();
  }
}

const acc = await createAccHome();
let server: RunningServer | undefined;
try {
  await seedInstances(acc.home, n, prefix);
  await prepareHelloCode(acc);
  server = await startAccServer(acc);
  const running = server;
  const pages = Math.floor(n / PAGE);
  // Warm: the routes' first calls compile their validators and load their modules.
  for (const path of [
    `/api/v1/instances?limit=${PAGE}`,
    `/api/v1/instances/${prefix}1`,
    `/api/v1/events?name=${prefix}1&lines=20`,
  ]) {
    const answer = await apiGet(running.socketPath, path);
    if (answer.status !== 200) throw new Error(`GET ${path}: ${answer.status} ${answer.body}`);
  }

  const list = await load(
    running,
    (i) => `/api/v1/instances?limit=${PAGE}&offset=${(i % pages) * PAGE}`,
    isPage,
  );
  // Searching "1" keeps about half of the names; each page sorted by last activity.
  const searched = await load(
    running,
    (i) => `/api/v1/instances?q=1&sort=activity&limit=${PAGE}&offset=${(i % 40) * PAGE}`,
    isPage,
  );
  const show = await load(
    running,
    (i) => `/api/v1/instances/${prefix}${(i * 7919) % n}`,
    (body) => (JSON.parse(body) as { name?: unknown }).name !== undefined,
  );
  const events = await load(
    running,
    (i) => `/api/v1/events?name=${prefix}${(i * 7919) % n}&lines=20`,
    (body) => Array.isArray(JSON.parse(body)),
  );
  const ui = await uiListPageLoad(acc, running);

  console.log(
    `bench/api: ${n} instances, acc server's local socket, ${concurrency} clients on keep-alive connections, ${seconds} s each`,
  );
  const row = (label: string, figures: Load): [string, string] => [
    label,
    `${figures.perSecond.toFixed(0)} req/s, p50 ${ms(figures.p50)}, p99 ${ms(figures.p99)} (${figures.requests} requests)`,
  ];
  printTable([
    row(`GET /api/v1/instances?limit=${PAGE}&offset=K (every page)`, list),
    row(`GET /api/v1/instances?q=1&sort=activity&limit=${PAGE}&offset=K`, searched),
    row("GET /api/v1/instances/{name} (the instance page)", show),
    row("GET /api/v1/events?name={name}&lines=20 (its events)", events),
    ...ui,
  ]);
} finally {
  await server?.stop();
  unseedInstances(acc.home);
  await acc.cleanup();
}
