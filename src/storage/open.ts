import type { Config } from "../config";
import { openPostgresRepos } from "./postgres";
import type { Repos } from "./repos";
import { openSqliteRepos } from "./sqlite";

/** The metadata store the configuration names: PostgreSQL with --database-url, else the data directory's SQLite. */
export function openRepos(config: Pick<Config, "dataDir" | "databaseUrl">): Promise<Repos> {
  return config.databaseUrl ? openPostgresRepos(config.databaseUrl) : Promise.resolve(openSqliteRepos(config.dataDir));
}

/**
 * Whether an error means the shared database is out of reach for now (down, restarting, failing
 * over), not that the request was wrong: such a request is worth retrying.
 */
export function isStorageUnavailable(e: unknown): boolean {
  const err = e as { name?: string; code?: string; errno?: string } | null;
  if (!err || typeof err !== "object") return false;
  const code = String(err.code ?? "");
  const state = String(err.errno ?? "");
  return (
    code.startsWith("ERR_POSTGRES_CONNECTION") ||
    code === "ERR_POSTGRES_IDLE_TIMEOUT" ||
    ["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT"].includes(code) ||
    // admin_shutdown, crash_shutdown, cannot_connect_now, and the connection exceptions
    /^(57P0[123]|08...)$/.test(state)
  );
}
