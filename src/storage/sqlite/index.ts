import { join } from "node:path";
import type { Repos } from "../repos";
import { SqliteChunksRepo } from "./chunks-repo";
import { openDatabase } from "./db";
import { SqliteFilesRepo } from "./files-repo";
import { SqliteIngestionRepo } from "./ingestion-repo";
import { SqliteKeysRepo } from "./keys-repo";
import { SqliteResponsesRepo } from "./responses-repo";
import { SqliteStoresRepo } from "./stores-repo";

/** The embedded metadata store: one SQLite file (WAL) in the data directory. */
export function openSqliteRepos(dataDir: string): Repos {
  const db = openDatabase(dataDir === ":memory:" ? ":memory:" : join(dataDir, "ragd.db"));
  return {
    files: new SqliteFilesRepo(db),
    ingestion: new SqliteIngestionRepo(db),
    stores: new SqliteStoresRepo(db),
    chunks: new SqliteChunksRepo(db),
    keys: new SqliteKeysRepo(db),
    responses: new SqliteResponsesRepo(db),
    close: () => db.close(),
  };
}
