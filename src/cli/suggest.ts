// "Did you mean": the known word closest to a mistyped command or option. Written here rather
// than taken from a library: it is a dozen lines, and the CLI entry loads nothing it can spare.

/**
 * Optimal string alignment distance (Damerau–Levenshtein where a transposition is one edit and
 * no substring is edited twice): "creat" -> "create" is 1, "nmae" -> "name" is 1.
 */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row: number[] = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const above = rows[i - 1]!;
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(above[j]! + 1, row[j - 1]! + 1, above[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, rows[i - 2]![j - 2]! + 1);
      row.push(best);
    }
    rows.push(row);
  }
  return rows[a.length]![b.length]!;
}

/**
 * The candidates a mistyped `word` most likely meant, best first (at most 3): those within 2
 * edits (1 for words of 3 letters or fewer, where 2 edits reach almost anything), else those
 * it begins (`cre` -> create). Case is ignored. Empty when nothing is close.
 */
export function suggest(word: string, candidates: readonly string[]): string[] {
  const typed = word.toLowerCase();
  if (typed === "") return [];
  const limit = typed.length <= 3 ? 1 : 2;
  const scored = candidates
    .map((candidate) => ({ candidate, distance: editDistance(typed, candidate.toLowerCase()) }))
    .filter(({ distance }) => distance <= limit);
  if (scored.length > 0) {
    const best = Math.min(...scored.map(({ distance }) => distance));
    return scored
      .filter(({ distance }) => distance === best)
      .map(({ candidate }) => candidate)
      .slice(0, 3);
  }
  if (typed.length < 2) return [];
  return candidates.filter((candidate) => candidate.toLowerCase().startsWith(typed)).slice(0, 3);
}

/**
 * "did you mean create?", "did you mean start or stop?"; undefined when nothing is close.
 * `prefix` is shown before each candidate and not compared (`--` of an option).
 */
export function didYouMean(
  word: string,
  candidates: readonly string[],
  prefix = "",
): string | undefined {
  const typed = word.startsWith(prefix) ? word.slice(prefix.length) : word;
  const found = suggest(typed, candidates).map((candidate) => `${prefix}${candidate}`);
  if (found.length === 0) return undefined;
  const last = found.pop()!;
  return `did you mean ${found.length > 0 ? `${found.join(", ")} or ${last}` : last}?`;
}
