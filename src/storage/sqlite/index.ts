import type { Database } from "bun:sqlite";
import { join } from "node:path";
import { LocalCoordination } from "../local-coordination";
import type { Repos } from "../repos";
import { SqliteChunksRepo } from "./chunks-repo";
import { openDatabase, openPointReads } from "./db";
import { SqliteFilesRepo, type WriteClock } from "./files-repo";
import { SqliteIngestionRepo } from "./ingestion-repo";
import { SqliteKeysRepo } from "./keys-repo";
import { SqliteResponsesRepo } from "./responses-repo";
import { SqliteStoresRepo } from "./stores-repo";
import { SqliteUploadsRepo } from "./uploads-repo";
import { WriterThread } from "./writer";
import { changedVisibility, WRITE_METHODS, type RepoName } from "./writes";

/** Every repository over one connection, reads and writes alike (search's point reads over `points` when given). */
export function sqliteRepos(db: Database, clock: WriteClock | null = null, visibility: WriteClock | null = clock, points?: Database): Repos {
  return {
    files: new SqliteFilesRepo(db, clock),
    ingestion: new SqliteIngestionRepo(db),
    stores: new SqliteStoresRepo(db),
    chunks: new SqliteChunksRepo(db, visibility, points),
    keys: new SqliteKeysRepo(db),
    responses: new SqliteResponsesRepo(db),
    uploads: new SqliteUploadsRepo(db),
    coordination: new LocalCoordination(),
    close: async () => {
      points?.close();
      db.close();
    },
  };
}

/**
 * The embedded metadata store: one SQLite file (WAL) in the data directory. Reads run on the
 * caller's thread; writes on the writer thread (writer.ts). An in-memory database (tests) has
 * a single connection and no thread.
 */
export function openSqliteRepos(dataDir: string): Repos {
  if (dataDir === ":memory:") return sqliteRepos(openDatabase(":memory:"));
  const path = join(dataDir, "ragd.db");
  // Migrations run here, before the writer opens its own connection.
  const db = openDatabase(path);
  const clock: WriteClock = { generation: 0, inflight: 0 };
  const visibility: WriteClock = { generation: 0, inflight: 0 };
  let points: Database | null = null;
  let writer: WriterThread;
  try {
    db.exec("PRAGMA query_only = ON");
    points = openPointReads(path);
    writer = new WriterThread(path);
  } catch (e) {
    points?.close();
    db.close();
    throw e;
  }
  const readers = sqliteRepos(db, clock, visibility, points);
  const write = async (name: RepoName, method: string, args: unknown[]) => {
    clock.inflight++;
    clock.generation++;
    // (while any write is under way, nothing read is kept: its outcome is known only after)
    visibility.inflight++;
    let result: unknown;
    let failed = true;
    try {
      result = await writer.call(name, method, args);
      failed = false;
      return result;
    } finally {
      clock.inflight--;
      clock.generation++;
      visibility.inflight--;
      if (changedVisibility(name, method, result, failed)) visibility.generation++;
    }
  };
  const route = <R extends RepoName>(name: R): Repos[R] => {
    const repo = readers[name] as unknown as Record<string, unknown>;
    const routed: Record<string, unknown> = {};
    for (const method of WRITE_METHODS[name] as readonly string[]) routed[method] = (...args: unknown[]) => write(name, method, args);
    // Methods not listed read through this thread's connection.
    return new Proxy(repo, { get: (target, key) => (typeof key === "string" && key in routed ? routed[key] : (target as Record<string | symbol, unknown>)[key]) }) as unknown as Repos[R];
  };
  return {
    files: route("files"),
    ingestion: route("ingestion"),
    stores: route("stores"),
    chunks: route("chunks"),
    keys: route("keys"),
    responses: route("responses"),
    uploads: route("uploads"),
    coordination: readers.coordination,
    async close() {
      await writer.close();
      points!.close();
      db.close();
    },
  };
}
