// The writer thread: one connection that makes every write (writes.ts lists them).
//
// Group commit: the connection commits with synchronous=NORMAL (no fsync), and the replies to
// every write that ended since the last sync wait for one fsync of the WAL that covers them
// all. A reply still means "on disk", as under FULL, but writes that arrive together (the
// uploads of one burst, a claim beside a finish) share an fsync: with 64 writes in flight the
// thread made 18.7-19.3k writes/s against 3.8-4.2k (bench/README, tenth session).
import type { Database } from "bun:sqlite";
import { closeSync, fstatSync, fsyncSync, openSync, statSync } from "node:fs";
import { openDatabase } from "./db";
import { sqliteRepos } from "./index";
import type { WriteReply, WriteRequest } from "./writes";

declare const self: Worker;

let repos: ReturnType<typeof sqliteRepos> | null = null;
/** The WAL SQLite writes (beside the database's real path, symlinks resolved); null: SQLite syncs each commit itself. */
let walPath: string | null = null;
let walFd: number | null = null;
/** Replies whose writes are committed but not yet known to be on disk. */
let unsynced: WriteReply[] = [];
let syncQueued = false;
let syncs = 0;
/** A sync failed: nothing this thread commits can be promised any more. */
let dead: string | null = null;

const SYNC_RETRY_MS = 50;
// Then the WAL is taken as lost: answers cannot wait for ever, nor go out unsynced.
const SYNC_RETRIES = 100;
let retries = 0;

function reply(m: WriteReply) {
  try {
    self.postMessage(m);
  } catch (err) {
    // a value that cannot cross threads: its caller gets an error, the others their answers
    if ("ok" in m) self.postMessage({ id: m.id, ok: false, error: { name: "Error", message: `the write's answer could not be sent: ${String((err as Error)?.message ?? err)}` } } satisfies WriteReply);
  }
}

/** Group commit applies only where the WAL can be synced by name; otherwise every commit syncs (FULL). */
function useGroupCommit(db: Database) {
  const mode = (db.query("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode;
  // (the file as SQLite opened it: a symlinked database's WAL sits beside its target)
  const file = (db.query("PRAGMA database_list").all() as { name: string; file: string }[]).find((d) => d.name === "main")?.file;
  if (mode.toLowerCase() !== "wal" || !file) return;
  db.exec("PRAGMA synchronous = NORMAL");
  walPath = `${file}-wal`;
}

/**
 * fsync the WAL: every frame committed so far reaches the disk, whichever descriptor wrote it.
 * The descriptor is kept, and opened again if SQLite made the file anew. A failure to open
 * it throws `Retry` (descriptors may be short for a moment), fatal after 5 s of retries; a
 * failed fsync is fatal at once.
 */
class Retry extends Error {}
function syncWal() {
  if (walPath === null) return;
  try {
    if (walFd !== null && fstatSync(walFd).ino !== statSync(walPath).ino) {
      closeSync(walFd);
      walFd = null;
    }
    walFd ??= openSync(walPath, "r");
  } catch (err) {
    // While this connection is open in WAL mode its WAL exists; a missing one is not "synced".
    throw new Retry(`the WAL ${walPath} could not be opened: ${String((err as Error)?.message ?? err)}`);
  }
  fsyncSync(walFd);
  syncs++;
}

// After the messages already waiting have run, so their writes share this sync.
function queueSync(delayMs = 0) {
  if (syncQueued) return;
  syncQueued = true;
  const run = () => {
    syncQueued = false;
    try {
      syncWal();
      retries = 0;
    } catch (err) {
      if (err instanceof Retry && ++retries <= SYNC_RETRIES) {
        // the answers wait (never sent before their sync); later writes join them
        queueSync(SYNC_RETRY_MS);
        return;
      }
      // The commits are visible to readers but may not be on disk, and after a failed fsync
      // the kernel may have dropped the pages: no answer can be trusted, so the server stops
      // (as PostgreSQL does) and the next start recovers from what the disk holds.
      dead = `the database could not be synced to disk: ${String((err as Error)?.message ?? err)}`;
      unsynced = [];
      reply({ id: 0, fatal: dead });
      return;
    }
    const ready = unsynced;
    unsynced = [];
    for (const r of ready) reply(r);
  };
  if (delayMs > 0) setTimeout(run, delayMs);
  else setImmediate(run);
}

self.onmessage = async (e: MessageEvent<WriteRequest | { init: string } | { close: true } | { syncs: true }>) => {
  const msg = e.data;
  if ("init" in msg) {
    try {
      const db = openDatabase(msg.init);
      useGroupCommit(db);
      repos = sqliteRepos(db);
      reply({ id: 0, ready: true });
    } catch (err) {
      reply({ id: 0, failed: String((err as Error)?.message ?? err) });
    }
    return;
  }
  if ("close" in msg) {
    repos?.close();
    repos = null;
    if (walFd !== null) closeSync(walFd);
    process.exit(0);
  }
  if ("syncs" in msg) {
    reply({ id: 0, syncs });
    return;
  }
  if (dead) {
    reply({ id: msg.id, ok: false, error: { name: "Error", message: dead } });
    return;
  }
  let r: WriteReply;
  try {
    const repo = repos![msg.repo] as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    r = { id: msg.id, ok: true, value: await repo[msg.method]!(...msg.args) };
  } catch (err) {
    const x = err as { name?: string; message?: string; code?: unknown; errno?: unknown };
    r = {
      id: msg.id,
      ok: false,
      error: {
        name: String(x?.name ?? "Error"),
        message: String(x?.message ?? err),
        ...(typeof x?.code === "string" ? { code: x.code } : {}),
        ...(typeof x?.errno === "number" ? { errno: x.errno } : {}),
      },
    };
  }
  if (dead) return;
  // A failed write may have committed a part (a method of several statements), so its
  // answer waits for the sync too.
  unsynced.push(r);
  queueSync();
};
