import type { BlobStore } from "./blobs";
import type { ChunksRepo } from "./repos";

/**
 * Ties a blob store to the database whose rows name its files. The orphan sweep deletes
 * blobs that no row names, so run against another database (a data directory switched to
 * PostgreSQL, two deployments sharing one --blob-url) it would delete every file: a store
 * marked for another database, or holding files with no mark where they may not be this
 * database's, is refused before anything touches it.
 */
export async function claimBlobStore(blobs: BlobStore, where: string, chunks: ChunksRepo, options: { unmarkedFilesAreOurs: boolean }) {
  const databaseId = await databaseIdOf(chunks);
  const current = await blobs.owner().catch((e: unknown) => {
    throw new BlobStoreError(`could not read the file store ${where}: ${(e as Error)?.message ?? e}`);
  });
  if (current === databaseId) return;
  if (current !== null)
    throw new BlobStoreError(`the file store ${where} belongs to another database (${current}; this one is ${databaseId}); point --blob-url or --data-dir at this database's files`);
  if (!options.unmarkedFilesAreOurs && !(await blobs.isEmpty()))
    throw new BlobStoreError(`the file store ${where} holds files of unknown origin (no database id); ragd will not risk deleting them: give this database a store of its own`);
  await blobs.setOwner(databaseId).catch((e: unknown) => {
    throw new BlobStoreError(`could not write to the file store ${where}: ${(e as Error)?.message ?? e}`);
  });
}

export class BlobStoreError extends Error {
  override name = "BlobStoreError";
}

/** The database's id: made by `ragd migrate` on PostgreSQL, on first use in SQLite (one process). */
async function databaseIdOf(chunks: ChunksRepo) {
  const found = await chunks.getMeta("database_id");
  if (found) return found;
  const id = crypto.randomUUID();
  await chunks.setMeta("database_id", id);
  return id;
}
