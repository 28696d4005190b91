// A unified diff of two texts, line by line (acc upgrade --dry-run shows the templates' changes).

/** Beyond this many line pairs, the diff says how the sizes changed instead of comparing. */
const MAX_CELLS = 4_000_000;
const CONTEXT = 3;

type Op = { kind: " " | "-" | "+"; line: string };

function splitLines(text: string): string[] {
  if (text === "") return [];
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/** The edit script from a to b, along a longest common subsequence. */
function editScript(a: string[], b: string[]): Op[] {
  const n = a.length;
  const m = b.length;
  // lcs[i][j]: the longest common subsequence of a[i..] and b[j..], in one flat array.
  const width = m + 1;
  const lcs = new Uint32Array((n + 1) * width);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * width + j] =
        a[i] === b[j]
          ? (lcs[(i + 1) * width + j + 1] as number) + 1
          : Math.max(lcs[(i + 1) * width + j] as number, lcs[i * width + j + 1] as number);
    }
  }
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      ops.push({ kind: " ", line: a[i++] as string });
      j++;
    } else if (
      i < n &&
      (j >= m || (lcs[(i + 1) * width + j] as number) >= (lcs[i * width + j + 1] as number))
    ) {
      // Removed lines before added ones, as diff -u shows a change.
      ops.push({ kind: "-", line: a[i++] as string });
    } else {
      ops.push({ kind: "+", line: b[j++] as string });
    }
  }
  return ops;
}

/**
 * `diff -u` of two texts: "" when they are the same. Hunks keep 3 lines of context; the
 * headers name the two sides.
 */
export function unifiedDiff(before: string, after: string, labels: [string, string]): string {
  if (before === after) return "";
  const a = splitLines(before);
  const b = splitLines(after);
  const head = `--- ${labels[0]}\n+++ ${labels[1]}\n`;
  if ((a.length + 1) * (b.length + 1) > MAX_CELLS) {
    return `${head}(too long to compare line by line: ${a.length} lines before, ${b.length} after)\n`;
  }
  const ops = editScript(a, b);
  const out: string[] = [];
  let k = 0;
  while (k < ops.length) {
    if ((ops[k] as Op).kind === " ") {
      k++;
      continue;
    }
    // A hunk: from CONTEXT kept lines before this change to CONTEXT after the last change
    // that is less than 2 * CONTEXT kept lines from the next.
    let start = k;
    while (start > 0 && k - start < CONTEXT && (ops[start - 1] as Op).kind === " ") start--;
    let end = k;
    for (;;) {
      while (end < ops.length && (ops[end] as Op).kind !== " ") end++;
      let kept = end;
      while (kept < ops.length && (ops[kept] as Op).kind === " ") kept++;
      if (kept < ops.length && kept - end <= 2 * CONTEXT) end = kept;
      else {
        end = Math.min(end + CONTEXT, kept);
        break;
      }
    }
    let aLine = 1;
    let bLine = 1;
    for (let x = 0; x < start; x++) {
      if ((ops[x] as Op).kind !== "+") aLine++;
      if ((ops[x] as Op).kind !== "-") bLine++;
    }
    const hunk = ops.slice(start, end);
    const aCount = hunk.filter((op) => op.kind !== "+").length;
    const bCount = hunk.filter((op) => op.kind !== "-").length;
    out.push(
      `@@ -${aCount === 0 ? aLine - 1 : aLine},${aCount} +${bCount === 0 ? bLine - 1 : bLine},${bCount} @@`,
    );
    for (const op of hunk) out.push(`${op.kind}${op.line}`);
    k = end;
  }
  return `${head}${out.join("\n")}\n`;
}
