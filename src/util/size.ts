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

export function formatSize(bytes: number): string {
  for (const [unit, n] of [["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]] as const)
    if (bytes >= n && bytes % n === 0) return `${bytes / n} ${unit}`;
  if (bytes >= 1e9 && bytes % 1e9 === 0) return `${bytes / 1e9} GB`;
  if (bytes >= 1e6 && bytes % 1e6 === 0) return `${bytes / 1e6} MB`;
  if (bytes >= 1e3 && bytes % 1e3 === 0) return `${bytes / 1e3} KB`;
  return `${bytes} bytes`;
}
