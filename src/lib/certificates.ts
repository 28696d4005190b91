// Checks a certificate and its key before acc serves them (acc tls import): read with
// node:crypto, nothing written. Every error names what is wrong and the file it came from.
import { X509Certificate, createPrivateKey, type KeyObject } from "node:crypto";
import { dnsNamesOf, hostCovered } from "../core/tls-hosts.js";
import { AccError } from "./errors.js";

/** A certificate expiring sooner than this is accepted with a warning. */
export const EXPIRY_WARNING_MS = 30 * 24 * 3600 * 1000;

export interface CertificateInput {
  /** PEM: the certificate, then its intermediates, each signed by the next. */
  cert: string;
  /** PEM: the private key of the first certificate (not encrypted). */
  key: string;
  /** Names of the files, for the messages. */
  certFile: string;
  keyFile: string;
  /** Every one of these must be covered by the certificate's names. */
  hosts: readonly string[];
  now: Date;
}

export interface CheckedCertificate {
  /** The chain as acc stores it: each certificate in PEM, in order. */
  chainPem: string;
  /** The key re-exported as PKCS#8 PEM (whatever came around it in the file is dropped). */
  keyPem: string;
  /** The certificate's DNS names (subjectAltName). */
  names: string[];
  notAfter: Date;
  warnings: string[];
}

const PEM_CERT_RE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

function invalid(message: string, hint?: string): AccError {
  return new AccError("ACC_INVALID", message, hint === undefined ? {} : { hint });
}

/** The certificates of a PEM text, in order. */
export function parseChain(pem: string, file: string): X509Certificate[] {
  const blocks = pem.match(PEM_CERT_RE) ?? [];
  if (blocks.length === 0) {
    throw invalid(
      `${file} holds no PEM certificate`,
      "give the certificate file (BEGIN CERTIFICATE)",
    );
  }
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch {
      throw invalid(`certificate ${i + 1} in ${file} cannot be read`, "is the file damaged?");
    }
  });
}

function parseKey(pem: string, file: string): KeyObject {
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) {
    throw invalid(`${file} holds no PEM private key`, "give the key file (BEGIN PRIVATE KEY)");
  }
  try {
    return createPrivateKey({ key: pem, format: "pem" });
  } catch {
    throw invalid(
      `the private key in ${file} cannot be read`,
      "an encrypted key must be decrypted first (openssl pkey -in KEY -out PLAIN)",
    );
  }
}

/** Throws ACC_INVALID unless the key, the chain, the dates and the hosts are all right. */
export function checkCertificate(input: CertificateInput): CheckedCertificate {
  const chain = parseChain(input.cert, input.certFile);
  const key = parseKey(input.key, input.keyFile);
  for (let i = 0; i + 1 < chain.length; i++) {
    const cert = chain[i]!;
    const issuer = chain[i + 1]!;
    if (!cert.checkIssued(issuer) || !cert.verify(issuer.publicKey)) {
      throw invalid(
        `certificate ${i + 1} in ${input.certFile} is not signed by certificate ${i + 2}`,
        "the file must hold the certificate first, then each intermediate in order",
      );
    }
  }
  const leaf = chain[0]!;
  if (key.type !== "private" || !leaf.checkPrivateKey(key)) {
    throw invalid(
      `the key in ${input.keyFile} does not match the certificate in ${input.certFile}`,
      "give the key this certificate was issued for",
    );
  }
  const now = input.now.getTime();
  for (const [i, cert] of chain.entries()) {
    const what =
      i === 0
        ? `the certificate in ${input.certFile}`
        : `certificate ${i + 1} in ${input.certFile}`;
    const notAfter = new Date(cert.validTo);
    const notBefore = new Date(cert.validFrom);
    if (notAfter.getTime() <= now) {
      throw invalid(
        `${what} expired on ${notAfter.toISOString()}`,
        "give a certificate that is still valid",
      );
    }
    if (notBefore.getTime() > now) {
      throw invalid(
        `${what} is not valid before ${notBefore.toISOString()}`,
        "check this machine's clock",
      );
    }
  }
  const names = dnsNamesOf(leaf.subjectAltName);
  const missing = input.hosts.filter((host) => !hostCovered(names, host));
  if (missing.length > 0) {
    throw invalid(
      `the certificate in ${input.certFile} does not cover ${missing.join(", ")}`,
      names.length === 0
        ? "it names no DNS host (subjectAltName)"
        : `it covers ${names.join(", ")}`,
    );
  }
  const notAfter = new Date(leaf.validTo);
  const warnings =
    notAfter.getTime() - now < EXPIRY_WARNING_MS
      ? [
          `the certificate in ${input.certFile} expires on ${notAfter.toISOString()}, in less than 30 days`,
        ]
      : [];
  return {
    chainPem: chain.map((cert) => cert.toString().trim()).join("\n") + "\n",
    keyPem: key.export({ type: "pkcs8", format: "pem" }).toString(),
    names,
    notAfter,
    warnings,
  };
}

/** What `acc tls list` shows of a stored certificate. */
export function describeCertificate(
  pem: string,
  file: string,
): { names: string[]; notBefore: Date; notAfter: Date } {
  const leaf = parseChain(pem, file)[0]!;
  return {
    names: dnsNamesOf(leaf.subjectAltName),
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
  };
}
