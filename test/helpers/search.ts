// A search service over a fresh SQLite data directory with the bundled model, and a second
// connection to write rows straight into the database, as ingestion's commits leave them.
import type { Database } from "bun:sqlite";
import { join } from "node:path";
import { defaults } from "../../src/config";
import { openProvider } from "../../src/embed/index";
import type { EmbeddingProvider } from "../../src/embed/provider";
import { nativePaths } from "../../src/native/assets";
import { embedConfig } from "../../src/server";
import { SearchService } from "../../src/services/search";
import { openSqliteRepos } from "../../src/storage/sqlite";
import { openDatabase } from "../../src/storage/sqlite/db";
import { encodeVector } from "../../src/storage/vector-codec";

/** `project`: false when the data directory already holds project `p`. */
export async function withSearchService(dataDir: string, run: (search: SearchService, db: Database, embedder: EmbeddingProvider) => Promise<void>, o = { project: true }) {
  const repos = openSqliteRepos(dataDir);
  const db = openDatabase(join(dataDir, "ragd.db"));
  const embedder = await openProvider(embedConfig({ ...defaults(), embedThreads: 1 }, nativePaths(join(dataDir, "cache"))));
  try {
    const search = new SearchService(repos.chunks, repos.ingestion, embedder, join(dataDir, "vectors"), join(dataDir, "keyword"));
    await search.start();
    if (o.project) db.query(`INSERT INTO projects (id, name, created_at) VALUES ('p', 'p', 0)`).run();
    await run(search, db, embedder);
    await search.stop();
  } finally {
    await embedder.close();
    db.close();
    repos.close();
  }
}

/** A random unit vector. */
export function unitVector(dims: number) {
  const v = new Float32Array(dims);
  let n = 0;
  for (let i = 0; i < dims; i++) n += (v[i] = Math.random() - 0.5) ** 2;
  for (let i = 0; i < dims; i++) v[i]! /= Math.sqrt(n);
  return v;
}

/**
 * `files` processed files (file-0, file-1, ...) of `perFile` chunks each, written straight into
 * the database as ingestion's commits leave them; `stores(f)` gives file f's memberships, each
 * a store id and its attributes.
 */
export function insertFiles(
  db: Database,
  o: { files: number; perFile: number; text: (f: number, i: number) => string; vector: () => Float32Array; stores: (f: number) => [storeId: string, attributes: string][] },
) {
  const file = db.query(`INSERT INTO files (id, project_id, bytes, created_at, filename, purpose, status, content_type, sha256) VALUES (?, 'p', 1, 0, 'a.txt', 'assistants', 'processed', 'text/plain', 'x')`);
  const member = db.query(`INSERT INTO vector_store_files (store_id, file_id, created_at, attributes) VALUES (?, ?, 0, ?)`);
  const chunk = db.query(`INSERT INTO chunks (file_id, cut, idx, text, location, char_start, char_end, tokens, embedding) VALUES (?, 'auto', ?, ?, '{}', 0, 1, 1, ?)`);
  db.transaction(() => {
    for (let f = 0; f < o.files; f++) {
      const id = `file-${f}`;
      file.run(id);
      for (const [store, attributes] of o.stores(f)) member.run(store, id, attributes);
      for (let i = 0; i < o.perFile; i++) chunk.run(id, i, o.text(f, i), encodeVector(o.vector()));
    }
  })();
}
