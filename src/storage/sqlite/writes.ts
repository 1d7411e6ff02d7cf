import type { Repos } from "../repos";

export type RepoName = Exclude<keyof Repos, "close" | "coordination">;

/**
 * The repository methods that write. With a database on disk they run on the writer thread
 * (writer.ts), so a commit's fsync or a large document's chunk insert never holds the event
 * loop; every other method reads through the server's own connection, which is query-only, so
 * a write missing from this list fails loudly instead of blocking requests.
 */
export const WRITE_METHODS: { readonly [R in RepoName]: readonly (keyof Repos[R])[] } = {
  files: ["insert", "remove", "pruneTombstones"],
  ingestion: ["enqueueMissing", "claim", "heartbeat", "finish", "retry", "postpone", "release", "exhausted", "setEmbeddings", "clearEmbeddings"],
  stores: ["ensureDefault", "adoptOrphans", "create", "update", "remove", "attach", "updateAttributes", "detach", "cancelBatch", "touch", "pruneTombstones"],
  chunks: ["pruneChanges", "setMeta"],
  keys: ["createProject", "insertKey", "revoke"],
  responses: ["insert", "update", "remove", "renew", "take", "cancel", "release"],
  uploads: ["insert", "addPart", "claim", "complete", "cancel", "sweep"],
};

/**
 * Writes that never change which chunks a store's search sees (sql-common.ts's visibleInStore
 * reads memberships, a file's status and expiry, and finished jobs): the visibility kept
 * between writes (chunks-repo.ts) outlives them. Without this, an idle server's queue poll
 * (a claim every few seconds) threw it away, and most hybrid searches at 100k chunks asked
 * SQLite again. `exhausted` counts as a change only when it failed a job.
 */
export const KEEPS_VISIBILITY: { readonly [R in RepoName]: readonly (keyof Repos[R])[] } = {
  files: ["pruneTombstones"],
  ingestion: ["claim", "heartbeat", "retry", "postpone", "release", "setEmbeddings", "clearEmbeddings"],
  stores: ["touch", "pruneTombstones"],
  chunks: ["pruneChanges", "setMeta"],
  keys: ["createProject", "insertKey", "revoke"],
  responses: ["insert", "update", "remove", "renew", "take", "cancel", "release"],
  uploads: ["insert", "addPart", "claim", "cancel", "sweep"],
};

/** Whether a write's outcome may have changed what a store's search sees (`failed`: it threw). */
export function changedVisibility(repo: RepoName, method: string, result: unknown, failed: boolean): boolean {
  if (failed) return true;
  if ((KEEPS_VISIBILITY[repo] as readonly string[]).includes(method)) return false;
  if (repo === "ingestion" && method === "exhausted") return !Array.isArray(result) || result.length > 0;
  return true;
}

export interface WriteRequest {
  id: number;
  repo: RepoName;
  method: string;
  args: unknown[];
}

export type WriteReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: { name: string; message: string; code?: string; errno?: number } }
  | { id: 0; ready: true }
  | { id: 0; failed: string }
  /** A sync of the WAL failed: committed writes may not be on disk (writer-worker.ts). */
  | { id: 0; fatal: string }
  | { id: 0; syncs: number };
