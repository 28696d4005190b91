import assert from "node:assert/strict";
import { test } from "node:test";
import { homePaths } from "../../core/paths.js";
import {
  certificateFiles,
  certificatePath,
  hostMapPath,
  keyPath,
  renderGeneration,
  renderHttpsLocations,
  renderNginxConf,
  renderTlsHostMap,
  renderTlsSite,
  renderSite,
  renderTimeout,
  sitePath,
  tlsSitePath,
  tlsWildcardSitePath,
  type MainConfigOptions,
  crc32,
  hashIndex,
  hashKeyFor,
  siteOfOldLayout,
} from "./render.js";

const paths = homePaths("/home/u/.acc");

const userOptions: MainConfigOptions = {
  paths,
  listenAddress: "127.0.0.1",
  httpPort: 8080,
  adminHost: "acc.localhost",
  isRoot: false,
  workerUser: "acc_nginx",
  instancePorts: { min: 20000, max: 20002 },
  requestTimeout: 300,
};

// String.raw keeps nginx's own "\n" escapes as written in the file.
const expectedUserConf = String.raw`# Written by acc from acc.toml; acc rewrites this file, so change acc.toml instead.
worker_processes auto;
pcre_jit on;
worker_rlimit_nofile 40000;
pid /home/u/.acc/run/nginx.pid;
error_log /home/u/.acc/nginx/logs/error.log warn;

events {
    worker_connections 16384;
}

http {
    # nginx-light's compiled-in temp paths are outside home and not writable by a normal user.
    client_body_temp_path /home/u/.acc/nginx/temp/client_body;
    proxy_temp_path /home/u/.acc/nginx/temp/proxy;
    fastcgi_temp_path /home/u/.acc/nginx/temp/fastcgi;
    uwsgi_temp_path /home/u/.acc/nginx/temp/uwsgi;
    scgi_temp_path /home/u/.acc/nginx/temp/scgi;

    server_tokens off;
    # Only nginx's own pages use these; proxied answers keep the instance's Content-Type.
    types {}
    default_type "text/html; charset=utf-8";

    # The idle clock reads the first two fields: time, then instance (- for unknown hosts).
    log_format acc '$msec $acc_instance $status $request_time $remote_addr "$request" $body_bytes_sent';
    access_log /home/u/.acc/nginx/logs/access.log acc buffer=64k flush=1s;

    # Room for 10,000+ host names of up to 253 characters.
    map_hash_max_size 262144;
    map_hash_bucket_size 512;
    server_names_hash_bucket_size 512;

    map $host $acc_key {
        hostnames;
        default "";
        include /home/u/.acc/nginx/sites/*.conf;
    }

    map $acc_key $acc_upstream {
        default "";
        "~^(?<acc_instance>[a-z0-9-]+)\.([0-9]+)\.[0-9]+$" $2.acc;
    }

    map $http_upgrade $acc_connection {
        default upgrade;
        "" "";
    }

    upstream 0.acc {
        hash $acc_key;
        server 127.0.0.1:20000 max_fails=0;
        server 127.0.0.1:20001 max_fails=0;
        server 127.0.0.1:20002 max_fails=0;
        keepalive 64;
        keepalive_timeout 2s;
    }

    server {
        listen 127.0.0.1:8080 default_server backlog=4096;
        client_max_body_size 1g;
        # The body is read in full before the instance is tried, so @waker can pass it on.
        proxy_request_buffering on;
        # Without it, an error in @waker (acc server down) would not reach @stopped.
        recursive_error_pages on;

        if ($acc_upstream = "") {
            return 404 "<!doctype html><html><head><title>404 Not Found</title></head><body><h1>Not Found</h1><p>No site answers at this address.</p></body></html>\n";
        }

        location / {
            proxy_pass http://$acc_upstream;
            proxy_next_upstream off;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header Connection $acc_connection;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Acc-Instance "";
            proxy_set_header X-Acc-Connect-Time "";
            proxy_read_timeout 300s;
            proxy_send_timeout 300s;
            error_page 502 = @waker;
        }

        location @waker {
            proxy_pass http://unix:/home/u/.acc/waker/waker.sock:;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header Connection $acc_connection;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Acc-Instance $acc_instance;
            proxy_set_header X-Acc-Connect-Time $upstream_connect_time;
            # acc server is on this machine: when it is down, answer at once. It holds a
            # request for a whole start, then applies the instance's own timeout.
            proxy_connect_timeout 2s;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
            error_page 502 504 =503 @stopped;
        }

        location @stopped {
            return 503 "<!doctype html><html><head><title>503 Service Unavailable</title></head><body><h1>Service Unavailable</h1><p>instance $acc_instance is not running.</p></body></html>\n";
        }
    }

    server {
        listen 127.0.0.1:8080;
        server_name acc.localhost;
        client_max_body_size 1m;

        location / {
            proxy_pass http://unix:/home/u/.acc/waker/admin.sock:;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Acc-Instance "";
            proxy_set_header X-Acc-Connect-Time "";
            proxy_buffering off;
            proxy_connect_timeout 2s;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
        }
    }

    # acc asks which generation the workers answering new connections have loaded.
    server {
        listen unix:/home/u/.acc/run/nginx-control.sock;
        access_log off;
        location = /generation {
            include /home/u/.acc/nginx/generation.conf;
        }
        location / {
            return 404;
        }
    }
}
`;

/** Values a user could try to slip into nginx's config. */
const INJECTIONS = [
  "foo;",
  "foo\nbar",
  "foo{",
  "foo}",
  'foo"',
  "foo'",
  "foo$host",
  "foo bar",
  "foo\\",
  "foo#",
  "",
];

test("renderNginxConf: a normal user's config, exactly", () => {
  assert.equal(renderNginxConf(userOptions), expectedUserConf);
});

test("renderNginxConf: as root, workers run as nginx_user and its group", () => {
  const conf = renderNginxConf({
    ...userOptions,
    isRoot: true,
    workerUser: "acc_nginx",
    workerGroup: "nogroup",
  });
  assert.equal(
    conf,
    expectedUserConf.replace(
      "worker_rlimit_nofile 40000;\n",
      "worker_rlimit_nofile 40000;\nuser acc_nginx nogroup;\n",
    ),
  );
  const sameName = renderNginxConf({ ...userOptions, isRoot: true, workerUser: "acc_nginx" });
  assert.match(sameName, /^user acc_nginx acc_nginx;$/m);
});

test("renderNginxConf: IPv6 listen address", () => {
  const conf = renderNginxConf({ ...userOptions, listenAddress: "[::]" });
  assert.match(conf, /^ {8}listen \[::\]:8080 default_server backlog=4096;$/m);
});

test("renderNginxConf: refuses values that could inject config", () => {
  for (const bad of INJECTIONS) {
    assert.throws(
      () => renderNginxConf({ ...userOptions, listenAddress: bad }),
      /bug: invalid listen address/,
    );
    assert.throws(
      () => renderNginxConf({ ...userOptions, isRoot: true, workerUser: bad }),
      /bug: invalid user/,
    );
    assert.throws(
      () => renderNginxConf({ ...userOptions, isRoot: true, workerGroup: bad }),
      /bug: invalid user or group/,
    );
    assert.throws(
      () => renderNginxConf({ ...userOptions, adminHost: `acc.${bad}` }),
      /bug: invalid server name/,
    );
  }
  for (const bad of INJECTIONS.filter(Boolean)) {
    assert.throws(
      () => renderNginxConf({ ...userOptions, paths: homePaths(`/home/${bad}`) }),
      /bug: invalid path/,
    );
  }
  for (const address of ["0.0.0.0:80", "256.0.0.1", "localhost", "[::1]; evil"]) {
    assert.throws(
      () => renderNginxConf({ ...userOptions, listenAddress: address }),
      /listen address/,
    );
  }
  for (const port of [0, -1, 65536, 80.5, Number.NaN]) {
    assert.throws(() => renderNginxConf({ ...userOptions, httpPort: port }), /bug: invalid port/);
  }
  assert.throws(
    () => renderNginxConf({ ...userOptions, paths: homePaths("/home/../etc") }),
    /bug: invalid path/,
  );
  assert.throws(
    () => renderNginxConf({ ...userOptions, paths: homePaths("relative") }),
    /bug: invalid path/,
  );
});

test("crc32 is the standard one nginx uses", () => {
  assert.equal(crc32("123456789"), 0xcbf43926);
  assert.equal(crc32(""), 0);
});

/** The instance and port nginx sends a key to: the map from the key, then `hash` in its block. */
function routeNginxPicks(conf: string, key: string): { name: string; port: number } | undefined {
  const source = /^\s+"~(\^.*\$)" \$2\.acc;$/m.exec(conf)?.[1];
  assert.ok(source, "the map from key to upstream block");
  // nginx's named capture sets $acc_instance; JavaScript's regexes read it the same way.
  const match = new RegExp(source).exec(key);
  const name = match?.groups?.acc_instance;
  const block = match?.[2];
  if (name === undefined || block === undefined) return undefined;
  const body = new RegExp(`^ {4}upstream ${block}\\.acc \\{\\n([^}]*)\\}`, "m").exec(conf)?.[1];
  assert.ok(body, `upstream ${block}.acc`);
  assert.match(body, /^\s+hash \$acc_key;$/m);
  const servers = [...body.matchAll(/^\s+server 127\.0\.0\.1:(\d+) max_fails=0;$/gm)].map((m) =>
    Number(m[1]),
  );
  const port = servers[hashIndex(key, servers.length)];
  return port === undefined ? undefined : { name, port };
}

test("renderSite: each host's key, which nginx's maps and hash send to the instance's own port", () => {
  const ports = { min: 20000, max: 29999 };
  const conf = renderNginxConf({ ...userOptions, instancePorts: ports });
  // Blocks of UPSTREAM_GROUP_SIZE ports: 79 at 10,000, the last of 16.
  assert.equal(conf.match(/^ {4}upstream \d+\.acc \{$/gm)?.length, 79);
  assert.equal(conf.match(/^\s+server 127\.0\.0\.1:\d+ max_fails=0;$/gm)?.length, 10000);
  for (const port of [20000, 20001, 20127, 20128, 25000, 29983, 29984, 29999]) {
    const text = renderSite({ name: "foo-1", port, ports, hosts: ["a.test", "foo.localhost"] });
    const key = /^a\.test (foo-1\.\d+\.\d+);\nfoo\.localhost \1;\n$/.exec(text)?.[1];
    assert.ok(key, text);
    assert.deepEqual(routeNginxPicks(conf, key), { name: "foo-1", port }, key);
  }
  // A key of another form (the one-upstream layout's) gives neither: the server answers 404.
  assert.equal(routeNginxPicks(conf, "foo.1234"), undefined);
  assert.match(conf, /if \(\$acc_upstream = ""\) \{\n\s+return 404 /);
  const small = { min: 20000, max: 20002 };
  assert.equal(
    `foo.localhost ${hashKeyFor("foo.0", 1, 3)};\n`,
    renderSite({ name: "foo", port: 20001, ports: small, hosts: ["foo.localhost"] }),
  );
  assert.throws(
    () => renderSite({ name: "foo", port: 19999, ports, hosts: [] }),
    /outside the instance range/,
  );
  assert.throws(
    () => renderSite({ name: "foo", port: 20000, ports: { min: 20000, max: 60000 }, hosts: [] }),
    /instance port range/,
  );
});

test("siteOfOldLayout: the instance and port of a sites/ file of the layouts before", () => {
  const ports = { min: 20000, max: 29999 };
  for (const port of [20000, 24321, 29999]) {
    // One upstream of the whole range.
    const old = `foo ${hashKeyFor("foo", port - ports.min, 10000)};\n`;
    assert.deepEqual(siteOfOldLayout(old, ports), { name: "foo", port });
    // Blocks, with the hosts in hosts/NAME.map.
    const key = /^\S+ (\S+);/.exec(
      renderSite({ name: "foo", port, ports, hosts: ["x.test"] }),
    )?.[1];
    assert.deepEqual(siteOfOldLayout(`foo ${key};\n`, ports), { name: "foo", port });
  }
  const current = renderSite({ name: "foo", port: 20001, ports, hosts: ["foo.localhost"] });
  assert.equal(siteOfOldLayout(current, ports), undefined);
  assert.equal(siteOfOldLayout("foo bar.12;\n", ports), undefined);
  assert.equal(siteOfOldLayout("foo foo.79.1;\n", ports), undefined);
  assert.equal(siteOfOldLayout("garbage", ports), undefined);
});

test("renderSite: refuses bad names and ports", () => {
  for (const bad of [...INJECTIONS, "Foo", "-foo", "foo-", "a".repeat(41), "../foo"]) {
    assert.throws(
      () =>
        renderSite({
          name: bad,
          port: 20001,
          ports: { min: 20000, max: 20002 },
          hosts: ["foo.localhost"],
        }),
      /bug: invalid instance name/,
    );
  }
  for (const port of [0, 65536, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.throws(
      () => renderSite({ name: "foo", port, ports: { min: 20000, max: 20002 }, hosts: [] }),
      /bug: invalid port/,
    );
  }
  assert.throws(
    () =>
      renderSite({
        name: "foo",
        port: "20001; evil" as unknown as number,
        ports: { min: 20000, max: 20002 },
        hosts: [],
      }),
    /bug: invalid port/,
  );
});

test("renderSite: one line per host, duplicates once", () => {
  const site = (hosts: string[]): string =>
    renderSite({ name: "foo", port: 20001, ports: { min: 20000, max: 20002 }, hosts });
  const key = hashKeyFor("foo.0", 1, 3);
  assert.equal(
    site(["foo.localhost", "www.example.com", "foo.localhost"]),
    `foo.localhost ${key};\nwww.example.com ${key};\n`,
  );
  assert.equal(site([]), "");
  const longest = ["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(61)].join(".");
  assert.equal(site([longest]), `${longest} ${key};\n`);
});

test("renderSite: refuses host names that could inject config or match by pattern", () => {
  const bad = [
    ...INJECTIONS.filter(Boolean).map((value) => `x${value}.example.com`),
    "",
    "*.example.com",
    ".example.com",
    "~^foo",
    "Foo.example.com",
    "foo..example.com",
    "foo.example.com.",
    "a".repeat(64) + ".com",
    ["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(62)].join("."),
    "foo.example.com foo; evil.com",
    // Directives inside a map block, not keys.
    "default",
    "include",
    "hostnames",
    "volatile",
  ];
  for (const host of bad) {
    assert.throws(
      () =>
        renderSite({ name: "foo", port: 20001, ports: { min: 20000, max: 20002 }, hosts: [host] }),
      /bug: invalid host name/,
      host,
    );
  }
  for (const name of INJECTIONS) {
    assert.throws(
      () =>
        renderSite({
          name,
          port: 20001,
          ports: { min: 20000, max: 20002 },
          hosts: ["foo.localhost"],
        }),
      /bug: invalid instance name/,
    );
  }
});

test("renderGeneration: a return the control server includes", () => {
  assert.equal(renderGeneration("lx2k9-0a1b2c3d"), 'return 200 "lx2k9-0a1b2c3d\\n";\n');
  for (const bad of [...INJECTIONS, "a".repeat(65)]) {
    assert.throws(() => renderGeneration(bad), /bug: invalid generation/);
  }
});

test("site and host map paths are the instance's own files", () => {
  assert.equal(sitePath(paths, "foo"), "/home/u/.acc/nginx/sites/foo.conf");
  assert.equal(hostMapPath(paths, "foo"), "/home/u/.acc/nginx/hosts/foo.map");
  assert.throws(() => sitePath(paths, "../../etc/x"), /bug: invalid instance name/);
});

test("renderNginxConf: instances with a request timeout of their own get one location per value", () => {
  assert.doesNotMatch(renderNginxConf(userOptions), /acc_timeout|@timeout/);
  const conf = renderNginxConf({ ...userOptions, otherRequestTimeouts: [3, 300, 3, 45] });
  assert.match(conf, /^ {4}map \$acc_instance \$acc_timeout \{$/m);
  assert.match(conf, /^ {8}include \/home\/u\/\.acc\/nginx\/timeouts\/\*\.conf;$/m);
  assert.deepEqual(
    [...conf.matchAll(/^ {8}location (@timeout\d+) \{$/gm)].map((m) => m[1]),
    ["@timeout3", "@timeout45"],
    "one per distinct value, none for the default",
  );
  assert.match(conf, /location @timeout45 \{\n(?:.*\n)*? {12}proxy_read_timeout 45s;/);
  assert.match(conf, /^ {12}error_page 418 = @timeout\$acc_timeout;$/m);
  assert.equal(renderTimeout("crm", 45), "crm 45;\n");
  assert.throws(() => renderTimeout("crm", 0));
  assert.throws(() => renderTimeout("c;rm", 45));
});

test("renderNginxConf with https: one SNI server loading the certificate files a map names, TLS 1.2+, session cache", () => {
  const off = renderNginxConf(userOptions);
  assert.doesNotMatch(off, /ssl|acc_https|acme-challenge/);
  const conf = renderNginxConf({
    ...userOptions,
    https: { port: 8443, redirect: false, wildcardDomain: "example.test" },
  });
  for (const line of [
    "        listen 127.0.0.1:8443 ssl http2 default_server;",
    "    map $ssl_server_name $acc_tls_files {",
    "        ssl_certificate $acc_tls_files.crt;",
    "        ssl_certificate_key $acc_tls_files.key;",
    "    ssl_protocols TLSv1.2 TLSv1.3;",
    "    ssl_session_cache shared:acc_tls:10m;",
    `        include ${paths.nginxTls}/*.conf;`,
    `        include ${paths.nginxHttpsLocations};`,
  ]) {
    assert.ok(conf.split("\n").includes(line), line);
  }
  // The hosts served over HTTPS are mapped only for the redirect.
  assert.doesNotMatch(conf, /acc_https/);
  const redirecting = renderNginxConf({
    ...userOptions,
    https: { port: 8443, redirect: true, wildcardDomain: "example.test" },
  }).split("\n");
  for (const line of [
    "    map $host $acc_https {",
    "        ~^[a-z0-9-]+\\.example\\.test$ 1;",
    `        include ${paths.nginxTls}/*.map;`,
  ]) {
    assert.ok(redirecting.includes(line), line);
  }
  // The client's name only selects an entry: no path is made of it.
  assert.doesNotMatch(conf, /ssl_certificate(_key)? [^;]*\$(ssl_server_name|host)/);
  assert.doesNotMatch(conf, /data:|ssl_stapling on|return 301/);
  const redirect = renderNginxConf({ ...userOptions, https: { port: 443, redirect: true } });
  assert.match(redirect, /if \(\$acc_https\) \{\n\s+return 301 https:\/\/\$host\$request_uri;/);
  assert.match(
    redirect,
    /location \/\.well-known\/acme-challenge\/ \{\n\s+proxy_pass http:\/\/\$acc_upstream;/,
  );
  // The HTTPS servers never redirect (the instances' nor the admin host's).
  for (const block of serverBlocks(redirect).filter((b) => b.includes(" ssl http2"))) {
    assert.doesNotMatch(block, /return 301/);
  }
  const other = renderNginxConf({ ...userOptions, https: { port: 8443, redirect: true } });
  assert.match(other, /return 301 https:\/\/\$host:8443\$request_uri;/);
});

/** The `server { ... }` blocks of a rendered nginx.conf, each as its text. */
function serverBlocks(conf: string): string[] {
  return conf
    .split(/\n {4}server \{\n/)
    .slice(1)
    .map((rest) => rest.slice(0, rest.indexOf("\n    }\n")));
}

test("renderNginxConf: the admin host over HTTPS too when tls is on, its challenges to acc server under acme", () => {
  const off = serverBlocks(renderNginxConf(userOptions)).filter((b) =>
    b.includes("server_name acc.localhost;"),
  );
  assert.equal(off.length, 1);
  const conf = renderNginxConf({
    ...userOptions,
    https: { port: 8443, redirect: true, acme: true, wildcardDomain: "localhost" },
  });
  const admin = serverBlocks(conf).filter((b) => b.includes("server_name acc.localhost;"));
  assert.equal(admin.length, 2);
  const [plain, tls] = admin as [string, string];
  assert.match(plain, /listen 127\.0\.0\.1:8080;/);
  assert.match(plain, /if \(\$acc_https\) \{\n\s+return 301 https:\/\/\$host:8443\$request_uri;/);
  assert.match(
    plain,
    /location \^~ \/\.well-known\/acme-challenge\/ \{\n\s+proxy_pass http:\/\/unix:[^;]*waker\.sock:;[\s\S]*X-Acc-Instance :acme;/,
  );
  assert.match(tls, /listen 127\.0\.0\.1:8443 ssl http2;/);
  assert.match(tls, /ssl_certificate \$acc_tls_files\.crt;/);
  assert.match(tls, /proxy_pass http:\/\/unix:[^;]*admin\.sock:;/);
  assert.doesNotMatch(tls, /return 301|acme-challenge|waker\.sock/);
  // The instances' HTTP server sends challenges to acc server too, for every host.
  const instances = serverBlocks(conf).find((b) => b.includes("default_server backlog"));
  assert.match(
    instances ?? "",
    /location \^~ \/\.well-known\/acme-challenge\/ \{\n\s+proxy_pass http:\/\/unix:[^;]*waker\.sock:;[\s\S]*X-Acc-Instance :acme;/,
  );
});

test("renderHttpsLocations: the instance locations, without the redirect", () => {
  const text = renderHttpsLocations({ ...userOptions, https: { port: 8443, redirect: true } });
  assert.match(text, /location @waker \{/);
  assert.match(text, /proxy_set_header X-Forwarded-Proto \$scheme;/);
  assert.match(text, /proxy_set_header X-Forwarded-For \$remote_addr;/);
  assert.doesNotMatch(text, /return 301|acme-challenge/);
});

test("renderTlsSite: a map entry per host naming the certificate files; nothing else reaches nginx", () => {
  const files = certificateFiles(paths, "shop");
  assert.equal(files, `${paths.tlsInstances}/shop`);
  assert.equal(certificatePath(paths, "shop"), `${files}.crt`);
  assert.equal(keyPath(paths, "shop"), `${files}.key`);
  assert.equal(certificateFiles(paths), paths.tlsWildcardCert.slice(0, -4));
  assert.equal(
    renderTlsSite({ hosts: ["a.example.test", "*.example.test", "a.example.test"], files }),
    `a.example.test ${files};\n*.example.test ${files};\n`,
  );
  assert.equal(tlsSitePath(paths, "shop"), `${paths.nginxTls}/shop.conf`);
  assert.equal(tlsWildcardSitePath(paths), `${paths.nginxTls}/_wildcard.conf`);
  assert.throws(() => renderTlsSite({ hosts: [], files }), /bug/);
  assert.throws(() => renderTlsSite({ hosts: ["a b;"], files }), /bug/);
  assert.throws(() => renderTlsSite({ hosts: ["default"], files }), /bug/);
  assert.throws(() => certificateFiles(paths, "../x"), /bug/);
  for (const bad of [`${files}; x`, "relative/path", `${files}/../../etc/shadow`, `${files}$x`]) {
    assert.throws(() => renderTlsSite({ hosts: ["a.example.test"], files: bad }), /bug/, bad);
  }
  assert.equal(renderTlsHostMap(["a.example.test"]), "a.example.test 1;\n");
});
