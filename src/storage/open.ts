import type { Config } from "../config";
import { openPostgresRepos } from "./postgres";
import type { Repos } from "./repos";
import { openSqliteRepos } from "./sqlite";

/** The metadata store the configuration names: PostgreSQL with --database-url, else the data directory's SQLite. */
export function openRepos(config: Pick<Config, "dataDir" | "databaseUrl">): Promise<Repos> {
  return config.databaseUrl ? openPostgresRepos(config.databaseUrl) : Promise.resolve(openSqliteRepos(config.dataDir));
}

/**
 * Which shared store an error says is out of reach for now (down, restarting, failing over),
 * as opposed to a request that was wrong: such a request is worth retrying. null otherwise.
 */
export function unavailableStore(e: unknown): "database" | "file store" | null {
  const err = e as { name?: string; code?: string; errno?: string } | null;
  if (!err || typeof err !== "object") return null;
  const code = String(err.code ?? "");
  const state = String(err.errno ?? "");
  if (err.name === "BlobStoreUnavailable") return "file store";
  // SQLite's WAL could not be synced: the server is stopping (sqlite/writer.ts syncFailed).
  if (code === "RAGD_DATABASE_SYNC_FAILED") return "database";
  // Bun's S3 client names the failure to connect in its code (ConnectionRefused, ...).
  if (err.name === "S3Error" && /^(Connection|Timeout|Timed|RequestTimeout|ServiceUnavailable|SlowDown|InternalError)/.test(code)) return "file store";
  if (
    code.startsWith("ERR_POSTGRES_CONNECTION") ||
    code === "ERR_POSTGRES_IDLE_TIMEOUT" ||
    ["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT"].includes(code) ||
    // admin_shutdown, crash_shutdown, cannot_connect_now, and the connection exceptions
    /^(57P0[123]|08...)$/.test(state)
  )
    return "database";
  return null;
}

/**
 * Whether a write failed for naming a row that is gone (a foreign key with nothing to point
 * at), in SQLite or PostgreSQL: a delete committed between the caller's check and its write.
 */
export function missingReference(e: unknown): boolean {
  const err = e as { code?: unknown; errno?: unknown } | null;
  return err?.code === "SQLITE_CONSTRAINT_FOREIGNKEY" || err?.errno === "23503" || err?.code === "23503";
}
