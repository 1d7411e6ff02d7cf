import { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { BlobStore } from "./blobs";
import { DiskBlobStore } from "./blobs";
import { Pg } from "./postgres/db";
import { connect } from "./postgres";
import { migrate } from "./postgres/schema";
import { openDatabase } from "./sqlite/db";

// The tables of a data directory's database, parents first. The chunk change log is not
// copied: the triggers write it again as the chunks go in, and each process's indexes follow it.
const TABLES = ["projects", "api_keys", "files", "file_tombstones", "vector_stores", "vector_store_file_batches", "vector_store_files", "vector_store_tombstones", "store_file_tombstones", "jobs", "documents", "chunks", "meta", "responses"];
// Identity columns whose values are copied as they are, then whose sequences are moved past them.
const IDENTITIES: [string, string][] = [["files", "seq"], ["vector_stores", "seq"], ["vector_store_files", "seq"], ["responses", "seq"], ["chunks", "id"]];
const BATCH = 500;

export interface ImportReport {
  files: number;
  bytes: number;
  rows: Record<string, number>;
}

/**
 * `ragd migrate --from-data-dir DIR`: a single-node data directory's metadata into
 * PostgreSQL and its file bytes into the shared blob store. The bytes go first, each checked
 * against the SHA-256 its row recorded; then every row in one transaction, so a failure leaves
 * the database as it was (and the copied bytes to the sweep); then every table's count is
 * compared with the source's.
 */
export async function importDataDir(dataDir: string, databaseUrl: string, target: BlobStore, onProgress: (m: string) => void): Promise<ImportReport> {
  const dbPath = join(dataDir, "ragd.db");
  if (!existsSync(dbPath)) throw new ImportError(`${dataDir} holds no ragd database (ragd.db)`);
  // Brings an older data directory to the current shape first, as a server start would.
  const source = openDatabase(dbPath);
  const sql = connect(databaseUrl, 2);
  try {
    await migrate(sql);
    const pg = new Pg(sql);
    const held = (await pg.get<{ n: number }>(`SELECT (SELECT COUNT(*) FROM files) + (SELECT COUNT(*) FROM projects) AS n`))!.n;
    if (Number(held) > 0) throw new ImportError("the database already holds projects or files; import a data directory into an empty database");

    // The target store becomes this database's, unless it is another's or holds unknown files.
    const databaseId = (await pg.get<{ value: string }>(`SELECT value FROM meta WHERE key = 'database_id'`))!.value;
    const owner = await target.owner();
    if (owner !== null && owner !== databaseId) throw new ImportError(`the target file store belongs to another database (${owner})`);
    if (owner === null) {
      if (!(await target.isEmpty())) throw new ImportError("the target file store already holds files of unknown origin; give the import an empty one");
      await target.setOwner(databaseId);
    }

    const local = new DiskBlobStore(join(dataDir, "blobs"));
    const files = source.query(`SELECT id, bytes, sha256 FROM files ORDER BY seq`).all() as { id: string; bytes: number; sha256: string }[];
    let bytes = 0;
    for (const [i, f] of files.entries()) {
      if (!local.has(f.id)) throw new ImportError(`file ${f.id} has a row but no bytes in ${dataDir}/blobs; the data directory is damaged`);
      const w = await target.create(f.id);
      try {
        const body = await local.read(f.id);
        for await (const chunk of body.stream()) await w.write(chunk);
        const { sha256 } = await w.commit();
        if (sha256 !== f.sha256 || w.bytes !== f.bytes) {
          await target.delete(f.id);
          throw new ImportError(`file ${f.id}: the copy's SHA-256 or size differs from its row (${sha256}, ${w.bytes} bytes)`);
        }
      } catch (e) {
        await w.abort();
        throw e;
      }
      bytes += f.bytes;
      if ((i + 1) % 100 === 0 || i + 1 === files.length) onProgress(`copied ${i + 1} of ${files.length} files`);
    }

    const rows: Record<string, number> = {};
    await pg.tx(async (tx) => {
      for (const table of TABLES) {
        const targetCols = new Set((await tx.all<{ c: string }>(`SELECT column_name AS c FROM information_schema.columns WHERE table_name = $t AND table_schema = current_schema()`, { t: table })).map((r) => r.c));
        const cols = (source.query(`SELECT name FROM pragma_table_info('${table}')`).all() as { name: string }[]).map((r) => r.name).filter((c) => targetCols.has(c));
        const where = table === "meta" ? ` WHERE key <> 'database_id'` : "";
        const overriding = IDENTITIES.some(([t]) => t === table) ? " OVERRIDING SYSTEM VALUE" : "";
        let n = 0;
        const pending: unknown[][] = [];
        const flush = async () => {
          if (!pending.length) return;
          const values = pending.map((_, r) => `(${cols.map((_, c) => `$${r * cols.length + c + 1}`).join(", ")})`).join(", ");
          await tx.sql.unsafe(`INSERT INTO ${table} (${cols.join(", ")})${overriding} VALUES ${values}${table === "meta" ? " ON CONFLICT (key) DO UPDATE SET value = excluded.value" : ""}`, pending.flat());
          n += pending.length;
          pending.length = 0;
        };
        for (const r of source.query(`SELECT ${cols.join(", ")} FROM ${table}${where}`).values() as unknown[][]) {
          // NUL, which SQLite text holds and PostgreSQL's cannot, becomes U+FFFD as in db.ts.
          pending.push(r.map((v) => (typeof v === "string" && v.includes("\0") ? v.replaceAll("\0", "\uFFFD") : v)));
          if (pending.length >= BATCH) await flush();
        }
        await flush();
        rows[table] = n;
        onProgress(`copied ${n} rows of ${table}`);
      }
      // Past every number SQLite gave out, deleted rows' included (a deleted file's position
      // may still be a client's cursor).
      const issued = (name: string) => (source.query(`SELECT seq FROM sqlite_sequence WHERE name = ?`).get(name) as { seq: number } | null)?.seq ?? 0;
      for (const [table, col] of IDENTITIES) {
        const high = Math.max(issued(table), ...(table === "files" ? [issued("file_tombstones"), (source.query(`SELECT COALESCE(MAX(seq), 0) AS m FROM file_tombstones`).get() as { m: number }).m] : []));
        await tx.run(`SELECT setval(pg_get_serial_sequence('${table}', '${col}'), GREATEST($high::bigint, COALESCE((SELECT MAX(${col}) FROM ${table}), 0), 1), GREATEST($high::bigint, COALESCE((SELECT MAX(${col}) FROM ${table}), 0)) > 0)`, { high });
      }
    });

    // Checked after the commit: every table holds what the source held.
    for (const table of TABLES) {
      const where = table === "meta" ? ` WHERE key <> 'database_id'` : "";
      const want = (source.query(`SELECT COUNT(*) AS n FROM ${table}${where}`).get() as { n: number }).n;
      const got = Number((await pg.get<{ n: number }>(`SELECT COUNT(*)::int AS n FROM ${table}${where}`))!.n);
      if (got !== want) throw new ImportError(`${table}: ${got} rows in the database, ${want} in the data directory`);
    }
    return { files: files.length, bytes, rows };
  } finally {
    source.close();
    await sql.close();
  }
}

export class ImportError extends Error {
  override name = "ImportError";
}
