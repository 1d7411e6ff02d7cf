import type { Config } from "../config";
import { openPostgresRepos } from "./postgres";
import type { Repos } from "./repos";
import { openSqliteRepos } from "./sqlite";

/** The metadata store the configuration names: PostgreSQL with --database-url, else the data directory's SQLite. */
export function openRepos(config: Pick<Config, "dataDir" | "databaseUrl">): Promise<Repos> {
  return config.databaseUrl ? openPostgresRepos(config.databaseUrl) : Promise.resolve(openSqliteRepos(config.dataDir));
}
