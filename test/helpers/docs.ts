import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Database } from "bun:sqlite";
import { buildPdf } from "../fixtures/build";

export const FIXTURES = join(import.meta.dir, "../fixtures/docs");
export const fixture = (name: string) => new File([readFileSync(join(FIXTURES, name))], name);

/** A text PDF of `pages` pages (about 3,300 characters each), cached between test files. */
export async function bigPdf(pages: number): Promise<Uint8Array<ArrayBuffer>> {
  const path = join(tmpdir(), `ragd-test-big-${pages}.pdf`);
  if (existsSync(path)) return new Uint8Array(readFileSync(path));
  const bytes = await buildPdf(
    Array.from({ length: pages }, (_, p) =>
      Array.from({ length: 40 }, (_, l) => `Page ${p + 1} line ${l + 1}: the quick brown fox jumps over the lazy dog near the river bank.`),
    ),
  );
  writeFileSync(path, bytes);
  return new Uint8Array(bytes);
}

/** What ingestion left in the database for a file, read straight from SQLite. */
export function stored(dataDir: string, fileId: string) {
  const db = new Database(join(dataDir, "ragd.db"), { readonly: true });
  try {
    const chunks = db.query(`SELECT idx, text, location, char_start, char_end, tokens FROM chunks WHERE file_id = ? ORDER BY idx`).all(fileId) as {
      idx: number;
      text: string;
      location: string;
      char_start: number;
      char_end: number;
      tokens: number;
    }[];
    const doc = db.query(`SELECT format, text FROM documents WHERE file_id = ?`).get(fileId) as { format: string; text: string } | null;
    // The job still to run, if any (ended jobs stay, with their outcome).
    const job = db.query(`SELECT * FROM jobs WHERE file_id = ? AND state IN ('queued', 'running')`).get(fileId);
    return { chunks: chunks.map((c) => ({ ...c, location: JSON.parse(c.location) })), doc, job };
  } finally {
    db.close();
  }
}
