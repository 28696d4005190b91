// The hostile values of the bad-input suites: the CLI's (test/bad-input.test.ts) and the same
// through the API (test/api-inputs.test.ts). Each must be refused with one line naming it.

export const HOSTILE = [
  "foo;bar",
  "foo\nbar",
  "foo{",
  "}foo",
  "..",
  "../../etc/passwd",
  "a/b",
  "a'b",
  'a"b',
  "$HOME",
  "a b",
  "café",
  "-rf",
  "x".repeat(10_000),
];

// DNS names, but nginx would read them as syntax in its host map (default, include), or they
// would take requests meant for another site (localhost, a bare address) or another instance
// (NAME.<domain> and what is under it; the domain is localhost in the test homes).
export const UNROUTABLE_HOSTS = [
  "default",
  "include",
  "hostnames",
  "volatile",
  "localhost",
  "127.0.0.1",
  "10.0.0.1",
  "other.localhost",
  "x.other.localhost",
];
