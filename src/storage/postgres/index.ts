import { SQL } from "bun";
import type { Repos } from "../repos";
import { PgChunksRepo } from "./chunks-repo";
import { PgCoordinationRepo } from "./coordination-repo";
import { Pg } from "./db";
import { PgFilesRepo } from "./files-repo";
import { PgIngestionRepo } from "./ingestion-repo";
import { PgKeysRepo } from "./keys-repo";
import { PgResponsesRepo } from "./responses-repo";
import { checkSchema, migrate } from "./schema";
import { PgStoresRepo } from "./stores-repo";
import { PgUploadsRepo } from "./uploads-repo";

export { migrate, SchemaError, SCHEMA_VERSION } from "./schema";

/** The database named by a URL, with any password left out, for messages and logs. */
export function describeDatabase(url: string) {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.username ? `${u.username}@` : ""}${u.host}${u.pathname}`;
  } catch {
    return "(an unreadable database URL)";
  }
}

export function connect(url: string, max = 10, prepare = true) {
  return new SQL({ url, max, idleTimeout: 30, connectionTimeout: 10, prepare });
}

/**
 * Metadata in PostgreSQL, shared by every ragd process that names the same database. The
 * schema must be the one this build knows (`ragd migrate` applies it).
 */
// Long enough for every live process to have replayed a change (they look every few seconds).
const CHANGE_LOG_RETENTION_MS = 60 * 60 * 1000;

export async function openPostgresRepos(url: string, options: { max?: number; changeLogRetentionMs?: number } = {}): Promise<Repos> {
  const sql = connect(url, options.max);
  // Attribute filters make query texts without end: those run unprepared, on a pool of their own.
  const adhoc = connect(url, 2, false);
  try {
    await checkSchema(sql, describeDatabase(url));
  } catch (e) {
    await Promise.all([sql.close(), adhoc.close()]);
    throw e;
  }
  const db = new Pg(sql, adhoc);
  return {
    files: new PgFilesRepo(db),
    ingestion: new PgIngestionRepo(db),
    stores: new PgStoresRepo(db),
    chunks: new PgChunksRepo(db, options.changeLogRetentionMs ?? CHANGE_LOG_RETENTION_MS),
    keys: new PgKeysRepo(db),
    responses: new PgResponsesRepo(db),
    uploads: new PgUploadsRepo(db),
    coordination: new PgCoordinationRepo(db),
    // Bun's close waits for queries in flight.
    close: async () => void (await Promise.all([sql.close(), adhoc.close()])),
  };
}

/** `ragd migrate`: brings the database's schema up to this build's. */
export async function migrateDatabase(url: string) {
  const sql = connect(url, 1);
  try {
    return await migrate(sql);
  } finally {
    await sql.close();
  }
}

