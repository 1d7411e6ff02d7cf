const UNITS: Record<string, number> = {
  "": 1, b: 1,
  kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12,
  k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4,
  kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4,
};

/** "512MB", "1GiB", "1048576" -> bytes; null when it is not a size. */
export function parseSize(input: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(input);
  if (!m) return null;
  const unit = UNITS[m[2]!.toLowerCase()];
  if (unit === undefined) return null;
  return Math.floor(Number(m[1]) * unit);
}

/** The largest unit that states the size exactly: 512 MiB, 512 MB, 1 GiB, 1500 bytes. */
export function formatSize(bytes: number): string {
  const units: [string, number][] = [["GiB", 1024 ** 3], ["GB", 1e9], ["MiB", 1024 ** 2], ["MB", 1e6], ["KiB", 1024], ["KB", 1e3]];
  for (const [unit, n] of units) if (bytes >= n && bytes % n === 0) return `${bytes / n} ${unit}`;
  return `${bytes} bytes`;
}
