import type { Repos } from "../repos";

export type RepoName = Exclude<keyof Repos, "close" | "coordination">;

/**
 * The repository methods that write. With a database on disk they run on the writer thread
 * (writer.ts), so a commit's fsync or a large document's chunk insert never holds the event
 * loop; every other method reads through the server's own connection, which is query-only, so
 * a write missing from this list fails loudly instead of blocking requests.
 */
export const WRITE_METHODS: { readonly [R in RepoName]: readonly (keyof Repos[R])[] } = {
  files: ["insert", "remove"],
  ingestion: ["enqueueMissing", "claim", "heartbeat", "finish", "retry", "postpone", "release", "exhausted", "setEmbeddings", "clearEmbeddings"],
  stores: ["ensureDefault", "adoptOrphans", "create", "update", "remove", "attach", "updateAttributes", "detach", "cancelBatch", "touch"],
  chunks: ["pruneChanges", "setMeta"],
  keys: ["createProject", "insertKey", "revoke"],
  responses: ["insert", "update", "remove"],
};

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
  | { id: 0; failed: string };
