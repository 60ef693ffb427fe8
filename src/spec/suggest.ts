// "did you mean …?" suggestions for misspelt keys and values (Damerau-Levenshtein distance).

export function editDistance(a: string, b: string): number {
  const d: number[][] = []
  for (let i = 0; i <= a.length; i++) d.push([i, ...new Array(b.length).fill(0)])
  for (let j = 0; j <= b.length; j++) d[0][j] = j
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1)
    }
  }
  return d[a.length][b.length]
}

/** The closest candidate if it is close enough to be a likely typo, else undefined. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/_/g, '-')
  const w = norm(word)
  let best: string | undefined
  let bestD = Infinity
  for (const c of candidates) {
    const dist = editDistance(w, norm(c))
    if (dist < bestD) {
      best = c
      bestD = dist
    }
  }
  if (best === undefined) return undefined
  const limit = Math.max(1, Math.floor(Math.max(w.length, best.length) / 3))
  return bestD <= limit ? best : undefined
}

export function didYouMean(word: string, candidates: readonly string[]): string {
  const c = closest(word, candidates)
  return c === undefined ? '' : ` (did you mean "${c}"?)`
}
