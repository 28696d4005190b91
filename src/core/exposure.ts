/** What is wrong, in words: "listens on 0.0.0.0:20001, beyond 127.0.0.1: ...". */
export function describeExposedEndpoints(endpoints: readonly string[]): string {
  return `listens on ${endpoints.join(", ")}, beyond 127.0.0.1: other hosts reach it without nginx`;
}
