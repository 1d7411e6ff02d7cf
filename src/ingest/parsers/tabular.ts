/**
 * Renders a table row with its header names, so that a chunk read alone still says what
 * each value is: `Region: EU, Revenue: 12`. Empty cells are left out.
 */
export function renderRow(header: string[] | null, row: string[], columnName: (i: number) => string): string {
  const parts: string[] = [];
  for (let i = 0; i < row.length; i++) {
    const v = String(row[i] ?? "").replace(/\s+/g, " ").trim();
    if (!v) continue;
    const h = header?.[i]?.replace(/\s+/g, " ").trim() || (header ? columnName(i) : "");
    parts.push(h ? `${h}: ${v}` : v);
  }
  return parts.join(header ? ", " : " | ");
}

export const isBlankRow = (row: unknown[]) => row.every((c) => String(c ?? "").trim() === "");

const filled = (row: unknown[]) => row.reduce<number>((n, c) => n + (String(c ?? "").trim() ? 1 : 0), 0);

/**
 * The index of the header row: the first row, among the first few, that is about as wide
 * as the table under it. Title lines above a table ("Q3 report") are not its header.
 */
export function findHeader(rows: unknown[][], from = 0): number {
  const window = rows.slice(from, from + 12);
  const widest = Math.max(0, ...window.map(filled));
  for (let i = 0; i < window.length; i++) {
    const n = filled(window[i]!);
    if (n > 0 && n >= Math.max(1, widest * 0.6)) return from + i;
  }
  return from;
}
