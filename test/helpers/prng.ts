// A seeded PRNG (mulberry32) for the generated-request tests: one seed gives one sequence, so
// a failure reproduces.
export function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return {
    int,
    chance: (p: number) => next() < p,
    pick: <T>(xs: readonly T[]): T => xs[int(xs.length)]!,
    /** Up to n distinct elements (none from an empty list). */
    some: <T>(xs: readonly T[], n: number): T[] => (xs.length ? [...new Set(Array.from({ length: n }, () => xs[int(xs.length)]!))] : []),
    base62: (n: number) => Array.from({ length: n }, () => "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"[int(62)]).join(""),
    /** Picks by weight. */
    weighted: <T>(xs: readonly [number, T][]): T => {
      let r = next() * xs.reduce((s, [w]) => s + w, 0);
      for (const [w, x] of xs) if ((r -= w) < 0) return x;
      return xs[xs.length - 1]![1];
    },
  };
}
export type Rng = ReturnType<typeof prng>;
