// Test certificates made with Debian's openssl at test time: a test CA, an intermediate, and
// leaves signed by it, in a temp folder. EC P-256 keys: quick to make.
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

async function openssl(args: string[], cwd: string): Promise<void> {
  await run("openssl", args, { cwd, timeout: 30_000 });
}

/** YYYYMMDDHHMMSSZ, as `openssl ca -startdate` takes it. */
function asn1Time(ms: number): string {
  return `${new Date(ms).toISOString().replace(/[-:T]/g, "").slice(0, 14)}Z`;
}

export interface TestCa {
  dir: string;
  /** The root: what clients trust. */
  rootPem: string;
  /**
   * Makes a leaf for `names` (DNS names, or IP addresses such as 127.0.0.1), signed by the intermediate: FILE.crt (leaf then
   * intermediate), FILE.rev (the other way round), FILE.leaf and FILE.key.
   */
  issue(
    file: string,
    names: string[],
    options?: { days?: number; expired?: boolean },
  ): Promise<{ cert: string; key: string; leaf: string; chainReversed: string }>;
}

export async function createTestCa(dir: string): Promise<TestCa> {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await openssl(
    [
      "req",
      "-x509",
      ...ec,
      "-keyout",
      "root.key",
      "-out",
      "root.crt",
      "-days",
      "400",
      "-subj",
      "/CN=acc test root",
      "-addext",
      "basicConstraints=critical,CA:true",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ],
    dir,
  );
  await openssl(
    [
      "req",
      ...ec,
      "-keyout",
      "inter.key",
      "-out",
      "inter.csr",
      "-subj",
      "/CN=acc test intermediate",
    ],
    dir,
  );
  await writeFile(
    path.join(dir, "inter.ext"),
    "basicConstraints=critical,CA:true,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n",
  );
  await openssl(
    [
      "x509",
      "-req",
      "-in",
      "inter.csr",
      "-CA",
      "root.crt",
      "-CAkey",
      "root.key",
      "-CAcreateserial",
      "-days",
      "400",
      "-out",
      "inter.crt",
      "-extfile",
      "inter.ext",
    ],
    dir,
  );
  await writeFile(path.join(dir, "index.txt"), "");
  await writeFile(path.join(dir, "serial"), "1000\n");
  const rootPem = await readFile(path.join(dir, "root.crt"), "utf8");
  return {
    dir,
    rootPem,
    async issue(file, names, options = {}) {
      await openssl(
        ["req", ...ec, "-keyout", `${file}.key`, "-out", `${file}.csr`, "-subj", `/CN=${names[0]}`],
        dir,
      );
      // `openssl ca` takes start and end dates (x509 -req cannot back-date): an expired one too.
      const hour = 3600_000;
      const from = options.expired === true ? Date.now() - 48 * hour : Date.now() - hour;
      const to =
        options.expired === true
          ? Date.now() - 24 * hour
          : Date.now() + (options.days ?? 90) * 24 * hour;
      await writeFile(
        path.join(dir, `${file}.cnf`),
        [
          "[ca]",
          "default_ca = d",
          "[d]",
          "database = index.txt",
          "new_certs_dir = .",
          "serial = serial",
          "default_md = sha256",
          "policy = p",
          "unique_subject = no",
          "[p]",
          "commonName = supplied",
          "[ext]",
          `subjectAltName = ${names.map((n) => `${isIP(n) === 0 ? "DNS" : "IP"}:${n}`).join(",")}`,
          "basicConstraints = CA:false",
          "",
        ].join("\n"),
      );
      await openssl(
        [
          "ca",
          "-config",
          `${file}.cnf`,
          "-batch",
          "-notext",
          "-cert",
          "inter.crt",
          "-keyfile",
          "inter.key",
          "-startdate",
          asn1Time(from),
          "-enddate",
          asn1Time(to),
          "-extensions",
          "ext",
          "-in",
          `${file}.csr`,
          "-out",
          `${file}.leaf`,
        ],
        dir,
      );
      const leaf = await readFile(path.join(dir, `${file}.leaf`), "utf8");
      const inter = await readFile(path.join(dir, "inter.crt"), "utf8");
      await writeFile(path.join(dir, `${file}.crt`), leaf + inter);
      await writeFile(path.join(dir, `${file}.rev`), inter + leaf);
      return {
        cert: path.join(dir, `${file}.crt`),
        key: path.join(dir, `${file}.key`),
        leaf: path.join(dir, `${file}.leaf`),
        chainReversed: path.join(dir, `${file}.rev`),
      };
    },
  };
}
