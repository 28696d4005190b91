// Pure renderers for acc's nginx config (design.md, "Request path" and "nginx at scale").
// Every value written into the config is re-validated here: callers validate user input
// first, so a bad value at this point is a bug, and nothing a user typed may reach nginx's
// parser as syntax.
import type { HomePaths } from "../../core/paths.js";
import { ACME_CHALLENGE_INSTANCE } from "../../core/tls-hosts.js";
import {
  isNginxMapWord,
  isValidHostname,
  isValidInstanceName,
  validateHomePath,
  validateInstanceName,
} from "../../core/validate.js";

export interface MainConfigOptions {
  paths: HomePaths;
  /** An IPv4 address or a bracketed IPv6 one, as in acc.toml's listen_address. */
  listenAddress: string;
  httpPort: number;
  /** acc's own host (acc.toml's admin_host): its requests go to acc server's admin socket. */
  adminHost: string;
  /** The `user` directive is only valid, and only needed, when the master runs as root. */
  isRoot: boolean;
  /** The user nginx's workers run as (as root). */
  workerUser: string;
  /** That user's primary group; nginx otherwise looks up a group named like the user. */
  workerGroup?: string;
  /** acc.toml's instance port range: one upstream server per port in it. */
  instancePorts: PortRange;
  /** How long nginx waits for an instance's answer (acc.toml's request_timeout), in seconds. */
  requestTimeout: number;
  /** Other timeouts instances have (their models' request_timeout), in seconds. */
  otherRequestTimeouts?: readonly number[];
  /** When acc.toml's tls is not off: HTTPS for the instances with a certificate. */
  https?: HttpsOptions;
}

export interface HttpsOptions {
  port: number;
  /** HTTP answers 301 to HTTPS for the hosts served over HTTPS (not the ACME challenge path). */
  redirect: boolean;
  /** tls = "acme": /.well-known/acme-challenge/ goes to acc server, for every host. */
  acme?: boolean;
  /** The domain of HOME/tls/wildcard.crt (*.<domain>), when there is one. */
  wildcardDomain?: string;
}

export interface TlsSiteSpec {
  /** The instance's hosts its certificate covers (or `*.<domain>` for the wildcard). */
  hosts: readonly string[];
  /** Its files without their suffix: nginx loads FILES.crt and FILES.key (certificateFiles). */
  files: string;
}

export interface PortRange {
  min: number;
  max: number;
}

/** nginx's `hash` picks among at most 32768 servers: (crc32 >> 16) & 0x7fff is its whole range. */
export const MAX_PORT_RANGE = 32768;

/**
 * Ports per upstream block. nginx's `hash` finds its server by walking the block's list from the
 * first one (ngx_http_upstream_get_hash_peer), ~5 ns a server: in one block of 10,000 servers the
 * last port's requests cost 50 us more of nginx's CPU than the first's (bench/proxy). Blocks of
 * 128 bound the walk; `proxy_pass http://$acc_upstream` finds the block by a scan of the blocks'
 * names, ~80 at 10,000 ports: both together well under a microsecond.
 */
export const UPSTREAM_GROUP_SIZE = 128;

export interface SiteSpec {
  name: string;
  port: number;
  ports: PortRange;
  /** Lower-case host names, already validated (validateHostname). */
  hosts: readonly string[];
}

export const TEMP_DIRS = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] as const;

export function accessLogPath(paths: HomePaths): string {
  return `${checkPath(paths.nginxLogs)}/access.log`;
}

export function errorLogPath(paths: HomePaths): string {
  return `${checkPath(paths.nginxLogs)}/error.log`;
}

export function sitePath(paths: HomePaths, name: string): string {
  return `${checkPath(paths.nginxSites)}/${checkName(name)}.conf`;
}

/** HOME/nginx/tls/NAME.conf: its hosts' certificate files, as `map` entries. */
export function tlsSitePath(paths: HomePaths, name: string): string {
  return `${checkPath(paths.nginxTls)}/${checkName(name)}.conf`;
}

/** The wildcard's map entry: "_" is in no instance name, so no instance's file is this one. */
export function tlsWildcardSitePath(paths: HomePaths): string {
  return `${checkPath(paths.nginxTls)}/_wildcard.conf`;
}

/**
 * The certificate files of an instance (HOME/tls/instances/NAME), or of the wildcard
 * (HOME/tls/wildcard) without a name, without their suffix: FILES.crt and FILES.key.
 */
export function certificateFiles(paths: HomePaths, name?: string): string {
  if (name === undefined) {
    const cert = checkPath(paths.tlsWildcardCert);
    if (!cert.endsWith(".crt") || paths.tlsWildcardKey !== `${cert.slice(0, -4)}.key`) {
      throw bug("wildcard certificate path", cert);
    }
    return cert.slice(0, -4);
  }
  return `${checkPath(paths.tlsInstances)}/${checkName(name)}`;
}

/** The hosts an instance serves over HTTPS, for http_redirect's map. */
export function tlsHostMapPath(paths: HomePaths, name: string): string {
  return `${checkPath(paths.nginxTls)}/${checkName(name)}.map`;
}

export function certificatePath(paths: HomePaths, name: string): string {
  return `${certificateFiles(paths, name)}.crt`;
}

export function keyPath(paths: HomePaths, name: string): string {
  return `${certificateFiles(paths, name)}.key`;
}

/** HOME/nginx/hosts/NAME.map: the layout before's host entries (now in sites/NAME.conf). */
export function hostMapPath(paths: HomePaths, name: string): string {
  return `${checkPath(paths.nginxHosts)}/${checkName(name)}.map`;
}

/** The folder of the request timeouts of instances whose timeout is not the default one. */
export function timeoutsDir(paths: HomePaths): string {
  return `${checkPath(paths.nginx)}/timeouts`;
}

export function timeoutPath(paths: HomePaths, name: string): string {
  return `${timeoutsDir(paths)}/${checkName(name)}.conf`;
}

/** An instance's request timeout in seconds, for the `map $acc_instance $acc_timeout`. */
export function renderTimeout(name: string, seconds: number): string {
  return `${checkName(name)} ${checkSeconds(seconds)};\n`;
}

const NOT_FOUND_PAGE =
  "<!doctype html><html><head><title>404 Not Found</title></head><body>" +
  "<h1>Not Found</h1><p>No site answers at this address.</p></body></html>\\n";

// $acc_instance is a validated DNS label by then, so it is safe inside HTML.
const STOPPED_PAGE =
  "<!doctype html><html><head><title>503 Service Unavailable</title></head><body>" +
  "<h1>Service Unavailable</h1><p>instance $acc_instance is not running.</p></body></html>\\n";

/**
 * What proxies a request to the instances: nginx waits `seconds` for the answer; a refused
 * connection (the instance does not run) goes to the waker, and a timeout is the client's 504,
 * never the waker's (the app has the request: it must not run twice).
 */
function instanceProxy(seconds: number): string[] {
  return [
    // Its port's upstream block (upstreamBlocks), named by its key; never empty here: without
    // one, the server answers 404 before this.
    "proxy_pass http://$acc_upstream;",
    // Never another server: the next one in the hash ring is another instance.
    "proxy_next_upstream off;",
    // nginx sets X-Acc-Instance itself, so a client cannot wake another instance.
    ...proxyHeaders('""', '""'),
    `proxy_read_timeout ${checkSeconds(seconds)}s;`,
    `proxy_send_timeout ${checkSeconds(seconds)}s;`,
    "error_page 502 = @waker;",
  ];
}

/** The headers every proxied request carries, to the instance and to the waker alike. */
function proxyHeaders(instanceHeader: string, connectTimeHeader: string): string[] {
  return [
    "proxy_http_version 1.1;",
    "proxy_set_header Host $http_host;",
    // An empty Connection keeps the upstream connection alive; "upgrade" passes a websocket on.
    "proxy_set_header Connection $acc_connection;",
    "proxy_set_header Upgrade $http_upgrade;",
    "proxy_set_header X-Real-IP $remote_addr;",
    // Replaced, never appended to: what a client sent itself is not passed on.
    "proxy_set_header X-Forwarded-For $remote_addr;",
    "proxy_set_header X-Forwarded-Proto $scheme;",
    "proxy_set_header X-Forwarded-Host $http_host;",
    `proxy_set_header X-Acc-Instance ${instanceHeader};`,
    `proxy_set_header X-Acc-Connect-Time ${connectTimeHeader};`,
  ];
}

export function renderNginxConf(opts: MainConfigOptions): string {
  const { paths } = opts;
  const listen = `${checkListenAddress(opts.listenAddress)}:${checkPort(opts.httpPort)}`;
  const temp = checkPath(paths.nginxTemp);
  const others = otherTimeouts(opts);
  const user = opts.isRoot
    ? [`user ${checkUser(opts.workerUser)} ${checkUser(opts.workerGroup ?? opts.workerUser)};`]
    : [];
  const lines = [
    `# Written by acc from acc.toml; acc rewrites this file, so change acc.toml instead.`,
    "worker_processes auto;",
    // The regex that reads the instance's name and block out of its key runs for every request.
    "pcre_jit on;",
    "worker_rlimit_nofile 40000;",
    ...user,
    `pid ${checkPath(paths.nginxPid)};`,
    `error_log ${errorLogPath(paths)} warn;`,
    "",
    "events {",
    // A herd of requests held by the waker takes two connections each (client and waker).
    "    worker_connections 16384;",
    "}",
    "",
    "http {",
    "    # nginx-light's compiled-in temp paths are outside home and not writable by a normal user.",
    ...TEMP_DIRS.map((dir) => `    ${dir}_temp_path ${temp}/${dir};`),
    "",
    "    server_tokens off;",
    "    # Only nginx's own pages use these; proxied answers keep the instance's Content-Type.",
    "    types {}",
    '    default_type "text/html; charset=utf-8";',
    "",
    "    # The idle clock reads the first two fields: time, then instance (- for unknown hosts).",
    "    log_format acc '$msec $acc_instance $status $request_time $remote_addr \"$request\" $body_bytes_sent';",
    `    access_log ${accessLogPath(paths)} acc buffer=64k flush=1s;`,
    "",
    "    # Room for 10,000+ host names of up to 253 characters.",
    "    map_hash_max_size 262144;",
    "    map_hash_bucket_size 512;",
    "    server_names_hash_bucket_size 512;",
    "",
    // Each instance's routing is one file, sites/NAME.conf: a line per host with the instance's
    // key, NAME.BLOCK.COUNTER (renderSite). BLOCK names its port's upstream block (BLOCK.acc,
    // UPSTREAM_GROUP_SIZE ports of the instance range each, in order), and nginx's `hash` of
    // the key lands on its port there. So a request costs a map lookup, a short regex, a
    // scan of the blocks' names and a hash with a walk of at most a block, whatever the number
    // of instances; a create changes only that instance's files; nginx -t reads one file per
    // instance (each glob of 10,000 files costs it ~0.1-0.2 s); and the instances of a block
    // share one pool of kept-alive connections (matched by address).
    "    map $host $acc_key {",
    "        hostnames;",
    '        default "";',
    `        include ${checkPath(paths.nginxSites)}/*.conf;`,
    "    }",
    "",
    // One regex reads both the block's upstream and the instance's name, which its named
    // capture sets as $acc_instance: the server's first directive reads $acc_upstream
    // (instanceServer), so $acc_instance is set before anything reads it, and is unset
    // (logged as -) for unknown hosts. A key of another form gives neither: 404.
    "    map $acc_key $acc_upstream {",
    '        default "";',
    `        "${KEY_PATTERN}" $2.acc;`,
    "    }",
    "",
    ...(others.length > 0
      ? [
          "    map $acc_instance $acc_timeout {",
          '        default "";',
          `        include ${timeoutsDir(paths)}/*.conf;`,
          "    }",
          "",
        ]
      : []),
    "    map $http_upgrade $acc_connection {",
    "        default upgrade;",
    '        "" "";',
    "    }",
    "",
    ...upstreamBlocks(opts.instancePorts),
    "    server {",
    `        listen ${listen} default_server backlog=4096;`,
    ...instanceServer(opts, {
      redirect: opts.https?.redirect === true ? opts.https.port : undefined,
      acme: opts.https?.acme === true,
    }).map((line) => (line === "" ? "" : `        ${line}`)),
    "    }",
    "",
    ...(opts.https ? httpsServers(opts, opts.https) : []),
    ...adminServer(listen, opts),
    "",
    "    # acc asks which generation the workers answering new connections have loaded.",
    "    server {",
    `        listen unix:${checkPath(paths.nginxControlSocket)};`,
    "        access_log off;",
    "        location = /generation {",
    `            include ${checkPath(paths.nginxGeneration)};`,
    "        }",
    "        location / {",
    "            return 404;",
    "        }",
    "    }",
    "}",
  ];
  return `${lines.join("\n")}\n`;
}

/** The request timeouts of instances that have their own, each with its location. */
function otherTimeouts(opts: MainConfigOptions): number[] {
  return [...new Set(opts.otherRequestTimeouts ?? [])]
    .filter((seconds) => checkSeconds(seconds) !== opts.requestTimeout)
    .sort((a, b) => a - b);
}

/** An instance location's directives: its timeout's location, else the default proxy. */
function instanceLocation(opts: MainConfigOptions, others: readonly number[]): string[] {
  return [
    ...(others.length > 0
      ? [
          // An instance with a timeout of its own goes to that timeout's location.
          "error_page 418 = @timeout$acc_timeout;",
          "if ($acc_timeout) {",
          "    return 418;",
          "}",
        ]
      : []),
    ...instanceProxy(opts.requestTimeout),
  ];
}

/**
 * The directives of a server that routes to the instances by $host: the HTTP one, and each
 * HTTPS one (through HOME/nginx/https-locations.conf). With `redirect` (the HTTPS port), HTTP
 * answers 301 for the hosts served over HTTPS, but never on the ACME challenge path.
 */
function instanceServer(
  opts: MainConfigOptions,
  options: { redirect?: number; acme?: boolean },
): string[] {
  const others = otherTimeouts(opts);
  // A unix socket that only root and nginx's workers can open: no other local user can hand the
  // waker a request, nor name the instance it is for.
  const waker = `unix:${checkPath(opts.paths.wakerSocket)}:`;
  const indent = (lines: string[]): string[] => lines.map((line) => `    ${line}`);
  const port = options.redirect === undefined ? undefined : checkPort(options.redirect);
  return [
    "client_max_body_size 1g;",
    "# The body is read in full before the instance is tried, so @waker can pass it on.",
    "proxy_request_buffering on;",
    "# Without it, an error in @waker (acc server down) would not reach @stopped.",
    "recursive_error_pages on;",
    "",
    // An unknown host, or an instance whose key names no upstream block (a file of an older
    // layout not yet rewritten): never proxied, as `proxy_pass` to an empty name would be.
    'if ($acc_upstream = "") {',
    `    return 404 "${NOT_FOUND_PAGE}";`,
    "}",
    "",
    "location / {",
    ...(port === undefined
      ? []
      : [
          "    if ($acc_https) {",
          `        return 301 https://$host${port === 443 ? "" : `:${port}`}$request_uri;`,
          "    }",
        ]),
    ...indent(instanceLocation(opts, others)),
    "}",
    "",
    ...(options.acme === true
      ? [
          "# The CA's HTTP-01 challenges: answered by acc server, never redirected, never sent",
          "# to an instance (nor waking it). One location for every token: no reload per order.",
          ...acmeChallengeLocation(opts),
          "",
        ]
      : port === undefined
        ? []
        : [
            "# Certificate authorities check HTTP-01 challenges over HTTP: never redirected.",
            "location /.well-known/acme-challenge/ {",
            ...indent(instanceLocation(opts, others)),
            "}",
            "",
          ]),
    ...others.flatMap((seconds) => [
      `location @timeout${seconds} {`,
      ...indent(instanceProxy(seconds)),
      "}",
      "",
    ]),
    "location @waker {",
    `    proxy_pass http://${waker};`,
    // X-Acc-Connect-Time is "-" when the instance never accepted the connection, so the
    // request was never sent to it and may be replayed; a number means it may have run.
    ...indent(proxyHeaders("$acc_instance", "$upstream_connect_time")),
    "    # acc server is on this machine: when it is down, answer at once. It holds a",
    "    # request for a whole start, then applies the instance's own timeout.",
    "    proxy_connect_timeout 2s;",
    "    proxy_read_timeout 3600s;",
    "    proxy_send_timeout 3600s;",
    "    error_page 502 504 =503 @stopped;",
    "}",
    "",
    "location @stopped {",
    `    return 503 "${STOPPED_PAGE}";`,
    "}",
  ];
}

/** The location of the CA's HTTP-01 challenges (tls = "acme"): to acc server's waker socket. */
function acmeChallengeLocation(opts: MainConfigOptions): string[] {
  return [
    "location ^~ /.well-known/acme-challenge/ {",
    `    proxy_pass http://unix:${checkPath(opts.paths.wakerSocket)}:;`,
    ...proxyHeaders(ACME_CHALLENGE_INSTANCE, "-").map((line) => `    ${line}`),
    "    proxy_connect_timeout 2s;",
    "    proxy_read_timeout 10s;",
    "}",
  ];
}

/** HOME/nginx/https-locations.conf: what each HTTPS server block includes. */
export function renderHttpsLocations(opts: MainConfigOptions): string {
  return `# Written by acc: the locations of every HTTPS server block.\n${instanceServer(opts, {}).join("\n")}\n`;
}

/**
 * The HTTPS side of nginx.conf. Layout (bench/tls.ts, README "TLS"): one server whose
 * certificate and key are files named by a `map $ssl_server_name` (HOME/nginx/tls/NAME.conf:
 * `host HOME/tls/instances/NAME;`), which a worker loads at each full handshake. The map's
 * entries are short, so a test and a reload stay cheap at 10,000 certificates; the price is
 * that the workers read the key files (root:nginx's group, 0640), where the layout before held
 * them inline in the map, read by the master (root) at reload: the workers held every key in
 * memory in both. A server block per certificate costs an OpenSSL context each (~7x the memory
 * and the reload time at 1,000).
 */
function httpsServers(opts: MainConfigOptions, https: HttpsOptions): string[] {
  const listen = `${checkListenAddress(opts.listenAddress)}:${checkPort(https.port)}`;
  const tlsDir = checkPath(opts.paths.nginxTls);
  return [
    // TLS 1.2+ and the session cache, as Mozilla's "intermediate" profile; no OCSP stapling
    // (nginx's default): it fetches from the CA in the workers, which a manual CA may not offer.
    "    ssl_protocols TLSv1.2 TLSv1.3;",
    "    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;",
    "    ssl_prefer_server_ciphers off;",
    "    ssl_session_cache shared:acc_tls:10m;",
    "    ssl_session_timeout 1d;",
    "    ssl_session_tickets off;",
    "",
    // Only with the redirect, its one user: each map of 10,000 files costs nginx -t ~0.13 s.
    ...(https.redirect
      ? [
          "    # The hosts served over HTTPS, for the redirect.",
          "    map $host $acc_https {",
          "        hostnames;",
          "        default 0;",
          ...(https.wildcardDomain === undefined
            ? []
            : [
                `        ~^[a-z0-9-]+\\.${checkServerName(https.wildcardDomain).replaceAll(".", "\\.")}$ 1;`,
              ]),
          `        include ${tlsDir}/*.map;`,
          "    }",
          "",
        ]
      : []),
    "    # Each name's certificate files (exact names first, then *.<domain>): only paths acc",
    "    # wrote, never the name the client sent. None: no HOME/nginx/.crt, the handshake fails.",
    "    map $ssl_server_name $acc_tls_files {",
    "        hostnames;",
    '        default "";',
    `        include ${tlsDir}/*.conf;`,
    "    }",
    "",
    "    server {",
    // `listen ... ssl http2` is what nginx 1.22 (Debian 12) knows; 1.25.1+ (Debian 13's 1.26)
    // still accepts it, with a deprecation warning in favour of `http2 on`.
    `        listen ${listen} ssl http2 default_server;`,
    "        ssl_certificate $acc_tls_files.crt;",
    "        ssl_certificate_key $acc_tls_files.key;",
    `        include ${checkPath(opts.paths.nginxHttpsLocations)};`,
    "    }",
    "",
  ];
}

/** HOME/nginx/tls/NAME.conf: a `map` entry per host, its certificate files (certificateFiles). */
export function renderTlsSite(spec: TlsSiteSpec): string {
  const hosts = [...new Set(spec.hosts.map(checkMapHost))];
  if (hosts.length === 0) throw bug("host list", spec.hosts);
  const files = checkPath(spec.files);
  return hosts.map((host) => `${host} ${files};\n`).join("");
}

/** A host, or a wildcard `*.<domain>` (the wildcard's entry). */
function checkMapHost(host: string): string {
  return host.startsWith("*.") ? `*.${checkHost(host.slice(2))}` : checkHost(host);
}

/** HOME/nginx/tls/NAME.map: its hosts served over HTTPS (http_redirect's map). */
export function renderTlsHostMap(hosts: readonly string[]): string {
  return [...new Set(hosts.map(checkHost))].map((host) => `${host} 1;\n`).join("");
}

/**
 * acc's own host: the API and the admin UI of acc server, on a socket only nginx's workers and
 * root can open. nginx picks a server by its exact server_name before the default server, so
 * this host never reaches the instances' map, whatever an instance claims; and this server has
 * no way to the waker.
 */
function adminServer(listen: string, opts: MainConfigOptions): string[] {
  const socket = `unix:${checkPath(opts.paths.adminSocket)}:`;
  const host = checkServerName(opts.adminHost);
  const https = opts.https;
  const location = (redirect: boolean): string[] => [
    // Forms and JSON only: backups are downloaded, never uploaded through this host.
    "        client_max_body_size 1m;",
    "",
    "        location / {",
    ...(redirect && https !== undefined
      ? [
          "            if ($acc_https) {",
          `                return 301 https://$host${https.port === 443 ? "" : `:${checkPort(https.port)}`}$request_uri;`,
          "            }",
        ]
      : []),
    `            proxy_pass http://${socket};`,
    "            proxy_http_version 1.1;",
    '            proxy_set_header Connection "";',
    "            proxy_set_header Host $host;",
    // Overwritten, never appended to: acc server rate-limits sign-ins by this address, so a
    // client must not be able to choose it.
    "            proxy_set_header X-Real-IP $remote_addr;",
    "            proxy_set_header X-Forwarded-For $remote_addr;",
    "            proxy_set_header X-Forwarded-Proto $scheme;",
    "            proxy_set_header X-Forwarded-Host $host;",
    '            proxy_set_header X-Acc-Instance "";',
    '            proxy_set_header X-Acc-Connect-Time "";',
    // Logs and events follow as server-sent events: passed on as they come, open for long.
    "            proxy_buffering off;",
    "            proxy_connect_timeout 2s;",
    "            proxy_read_timeout 1h;",
    "            proxy_send_timeout 1h;",
    "        }",
  ];
  const server = (listenLine: string, extra: string[], inner: string[]): string[] => [
    "    server {",
    listenLine,
    `        server_name ${host};`,
    ...extra,
    ...inner,
    "    }",
  ];
  return [
    ...server(
      `        listen ${listen};`,
      [],
      [
        ...location(https?.redirect === true),
        // The admin host's own certificate (tls = "acme") is validated like an instance's.
        ...(https?.acme === true
          ? acmeChallengeLocation(opts).map((line) => `        ${line}`)
          : []),
      ],
    ),
    // Over HTTPS too when tls is on: with its own certificate or the wildcard's, by SNI as an
    // instance's; API tokens and the UI's session cookie then never need to cross in clear.
    ...(https === undefined
      ? []
      : server(
          `        listen ${checkListenAddress(opts.listenAddress)}:${checkPort(https.port)} ssl http2;`,
          [
            "        ssl_certificate $acc_tls_files.crt;",
            "        ssl_certificate_key $acc_tls_files.key;",
          ],
          location(false),
        )),
  ];
}

/** An instance's key is NAME.BLOCK.COUNTER: the name ($acc_instance), then its block ($2). */
const KEY_PATTERN = "~^(?<acc_instance>[a-z0-9-]+)\\.([0-9]+)\\.[0-9]+$";

/**
 * sites/NAME.conf, for `map $host $acc_key`: a line per host with the instance's key,
 * `NAME.BLOCK.COUNTER`. BLOCK is its port's upstream block (upstreamBlocks), and nginx's `hash`
 * of the key lands on its port in that block.
 */
export function renderSite(spec: SiteSpec): string {
  const index = checkPort(spec.port) - spec.ports.min;
  if (index < 0 || spec.port > spec.ports.max) {
    throw new Error(
      `bug: port ${spec.port} outside the instance range ${spec.ports.min}-${spec.ports.max}`,
    );
  }
  const size = rangeSize(spec.ports);
  const block = Math.floor(index / UPSTREAM_GROUP_SIZE);
  const servers = Math.min(UPSTREAM_GROUP_SIZE, size - block * UPSTREAM_GROUP_SIZE);
  const name = checkName(spec.name);
  const hosts = [...new Set(spec.hosts.map(checkHost))];
  const key = hashKeyFor(`${name}.${block}`, index % UPSTREAM_GROUP_SIZE, servers);
  return hosts.map((host) => `${host} ${key};\n`).join("");
}

/**
 * The instance and port of a sites/ file of a layout before, whose hosts were in hosts/NAME.map
 * and whose key was alone in it: `NAME NAME.COUNTER;` (one upstream of the whole range) or
 * `NAME NAME.BLOCK.COUNTER;` (blocks, as now). Undefined for any other text.
 */
export function siteOfOldLayout(
  text: string,
  ports: PortRange,
): { name: string; port: number } | undefined {
  const match = /^([a-z0-9-]+) (\1(?:\.([0-9]+))?\.[0-9]+);\n?$/.exec(text);
  if (!match || !isValidInstanceName(match[1]!)) return undefined;
  const size = rangeSize(ports);
  const key = match[2]!;
  if (match[3] === undefined) return { name: match[1]!, port: ports.min + hashIndex(key, size) };
  const first = Number(match[3]) * UPSTREAM_GROUP_SIZE;
  if (first >= size) return undefined;
  const servers = Math.min(UPSTREAM_GROUP_SIZE, size - first);
  return { name: match[1]!, port: ports.min + first + hashIndex(key, servers) };
}

function rangeSize(ports: PortRange): number {
  const size = checkPort(ports.max) - checkPort(ports.min) + 1;
  if (size < 1 || size > MAX_PORT_RANGE)
    throw new Error(`bug: instance port range of ${size} ports`);
  return size;
}

/**
 * The instance range's upstream blocks, 0.acc, 1.acc...: UPSTREAM_GROUP_SIZE ports each. nginx
 * finds a block by comparing its name to each block's name of the same length: a name that
 * starts with its number differs from the others at its first character.
 */
function upstreamBlocks(ports: PortRange): string[] {
  const lines: string[] = [];
  const size = rangeSize(ports);
  for (let block = 0; block * UPSTREAM_GROUP_SIZE < size; block++) {
    lines.push(`    upstream ${block}.acc {`, "        hash $acc_key;");
    const last = Math.min(size, (block + 1) * UPSTREAM_GROUP_SIZE);
    // max_fails=0: a refused connection (a stopped instance) must not mark its port down.
    for (let i = block * UPSTREAM_GROUP_SIZE; i < last; i++)
      lines.push(`        server 127.0.0.1:${ports.min + i} max_fails=0;`);
    lines.push(
      "        keepalive 64;",
      // A pooled idle connection counts as activity for the idle clock: keep it short.
      "        keepalive_timeout 2s;",
      "    }",
      "",
    );
  }
  return lines;
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (IEEE), as nginx's ngx_crc32 computes it, continued from a running state. */
function crcUpdate(state: number, text: string): number {
  let c = state;
  // Keys are ASCII (instance names and digits): one byte per character.
  for (let i = 0; i < text.length; i++)
    c = (CRC_TABLE[(c ^ text.charCodeAt(i)) & 0xff] ?? 0) ^ (c >>> 8);
  return c;
}

/** CRC-32 (IEEE) of an ASCII text. */
export function crc32(text: string): number {
  return (crcUpdate(0xffffffff, text) ^ 0xffffffff) >>> 0;
}

/** The server nginx's `hash $key` (not consistent) picks first: ((crc32(key) >> 16) & 0x7fff) mod N. */
export function hashIndex(key: string, servers: number): number {
  return ((crc32(key) >>> 16) & 0x7fff) % servers;
}

/**
 * A key, made of the instance name and a counter, that nginx hashes to server `index` of
 * `servers`: found by trying counters (about `servers` tries of a few digits each).
 */
export function hashKeyFor(name: string, index: number, servers: number): string {
  const prefix = crcUpdate(0xffffffff, `${name}.`);
  for (let counter = 0; counter < 64 * MAX_PORT_RANGE; counter++) {
    const crc = (crcUpdate(prefix, String(counter)) ^ 0xffffffff) >>> 0;
    if (((crc >>> 16) & 0x7fff) % servers === index) return `${name}.${counter}`;
  }
  throw new Error(`bug: no hash key found for ${name} at ${index} of ${servers}`);
}

/** Included by the control server's /generation location; a new one marks each reload. */
export function renderGeneration(gen: string): string {
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(gen)) throw bug("generation", gen);
  return `return 200 "${gen}\\n";\n`;
}

function bug(what: string, value: unknown): Error {
  return new Error(`bug: invalid ${what} ${JSON.stringify(value)} reached the nginx renderer`);
}

function checkName(name: string): string {
  try {
    return validateInstanceName(name);
  } catch {
    throw bug("instance name", name);
  }
}

function checkHost(host: string): string {
  // Lower case only: $host is lower-cased by nginx, and callers normalise with validateHostname.
  if (typeof host !== "string" || !isValidHostname(host) || isNginxMapWord(host))
    throw bug("host name", host);
  return host;
}

function checkServerName(host: string): string {
  if (typeof host !== "string" || !isValidHostname(host)) throw bug("server name", host);
  return host;
}

function checkPort(port: number): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw bug("port", port);
  return port;
}

function checkPath(path: string): string {
  try {
    return validateHomePath(path);
  } catch {
    throw bug("path", path);
  }
}

function checkListenAddress(address: string): string {
  const ipv4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(address);
  if (ipv4 && ipv4.slice(1).every((octet) => Number(octet) <= 255)) return address;
  if (/^\[[0-9a-f:.]+\]$/i.test(address)) return address;
  throw bug("listen address", address);
}

function checkSeconds(seconds: number): number {
  if (!Number.isSafeInteger(seconds) || seconds < 1) throw bug("timeout", seconds);
  return seconds;
}

function checkUser(user: string): string {
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(user)) throw bug("user or group", user);
  return user;
}
