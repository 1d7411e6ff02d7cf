import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../util/atomic-file";
import type { ChunksRepo } from "./repos";

/**
 * Ties a blob directory to the database whose rows name its files. The start-up sweep deletes
 * blobs that no row names, so run against another database (a data directory switched to
 * PostgreSQL, two deployments sharing one --blob-url) it would delete every file: a directory
 * marked for another database, or holding files with no mark where they may not be this
 * database's, is refused before anything touches it.
 */
export async function claimBlobDir(root: string, chunks: ChunksRepo, options: { unmarkedFilesAreOurs: boolean }) {
  const databaseId = await databaseIdOf(chunks);
  const marker = join(root, "database-id");
  const current = existsSync(marker) ? readFileSync(marker, "utf8").trim() : null;
  if (current === databaseId) return;
  if (current !== null)
    throw new BlobDirError(`the file directory ${root} belongs to another database (${current}; this one is ${databaseId}); point --blob-url or --data-dir at this database's files`);
  const objects = join(root, "objects");
  if (!options.unmarkedFilesAreOurs && existsSync(objects) && readdirSync(objects).length > 0)
    throw new BlobDirError(`the file directory ${root} holds files of unknown origin (no database-id); ragd will not risk deleting them: give this database a directory of its own`);
  writeFileAtomic(marker, `${databaseId}\n`);
}

export class BlobDirError extends Error {
  override name = "BlobDirError";
}

/** The database's id: made by `ragd migrate` on PostgreSQL, on first use in SQLite (one process). */
async function databaseIdOf(chunks: ChunksRepo) {
  const found = await chunks.getMeta("database_id");
  if (found) return found;
  const id = crypto.randomUUID();
  await chunks.setMeta("database_id", id);
  return id;
}
