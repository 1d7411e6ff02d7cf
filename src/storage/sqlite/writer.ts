import { IN_BINARY } from "../../native/extract";
import { waitAtMost } from "../../util/time";
import { log } from "../../util/log";
import type { RepoName, WriteReply, WriteRequest } from "./writes";

const WORKER_URL = IN_BINARY ? "./storage/sqlite/writer-worker.ts" : new URL("./writer-worker.ts", import.meta.url).href;

interface Waiting {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/**
 * A thread with its own connection to the database, which makes every write: SQLite commits
 * and their fsync block the thread that runs them, and the event loop must not wait for a
 * disk. Calls run in the order they were made; each answers after its transaction committed
 * and the WAL holding it was synced (writes that end together share one sync), so what a
 * request acknowledges is on disk.
 */
// How long a server whose sync failed goes on before it exits: the writes it refuses meanwhile
// (and those that were waiting for the sync) get their 503s out first.
const FATAL_EXIT_DELAY_MS = 500;

/** A write refused, or never confirmed, because the WAL could not be synced (storage/open.ts: a 503, database unavailable). */
export const syncFailed = (message: string) => Object.assign(new Error(message), { code: "RAGD_DATABASE_SYNC_FAILED" });

export class WriterThread {
  private worker: Worker | null = null;
  private readonly waiting = new Map<number, Waiting>();
  private readonly inflight = new Set<Promise<unknown>>();
  private next = 1;
  private closing: Promise<void> | null = null;
  private syncsAsked: ((n: number) => void)[] = [];
  private fatal: string | null = null;

  constructor(
    private readonly path: string,
    /** A sync failed: what readers already see may not be on disk, so nothing can go on. */
    private readonly onFatal: (message: string) => void = (message) => {
      log.error(`${message}; ragd stops (exit 70): restart it once the disk is healthy`);
      setTimeout(() => process.exit(70), FATAL_EXIT_DELAY_MS);
    },
  ) {}

  /** How many times the writer has synced the WAL (group commit: fewer than the writes). */
  syncs(): Promise<number> {
    if (this.fatal) return Promise.reject(syncFailed(this.fatal));
    if (this.closing) return Promise.reject(new Error("the database is closed"));
    const worker = (this.worker ??= this.spawn());
    return new Promise((resolve) => {
      this.syncsAsked.push(resolve);
      worker.postMessage({ syncs: true });
    });
  }

  call(repo: RepoName, method: string, args: unknown[]): Promise<unknown> {
    if (this.closing) return Promise.reject(new Error("the database is closed"));
    if (this.fatal) return Promise.reject(syncFailed(this.fatal));
    const worker = (this.worker ??= this.spawn());
    const id = this.next++;
    const call = new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      try {
        worker.postMessage({ id, repo, method, args } satisfies WriteRequest);
      } catch (e) {
        this.waiting.delete(id);
        reject(e as Error);
      }
    });
    this.inflight.add(call);
    const settled = () => this.inflight.delete(call);
    call.then(settled, settled);
    return call;
  }

  /** Waits for the writes already asked for, then closes the thread's connection and stops it. */
  close(): Promise<void> {
    return (this.closing ??= (async () => {
      const worker = this.worker;
      if (!worker) return;
      await Promise.allSettled(this.inflight);
      // The thread closes its connection and exits; a thread that does not is stopped anyway.
      const exited = new Promise<void>((r) => worker.addEventListener("close", () => r(), { once: true }));
      worker.postMessage({ close: true });
      await waitAtMost(exited, 5000);
      worker.terminate();
      this.worker = null;
    })());
  }

  private spawn(): Worker {
    const worker = new Worker(WORKER_URL);
    worker.onmessage = (e: MessageEvent<WriteReply>) => {
      const m = e.data;
      if ("ready" in m) return;
      if ("syncs" in m) return this.syncsAsked.shift()?.(m.syncs);
      if ("fatal" in m) {
        // no new thread takes writes after this: nothing committed since can be promised
        this.fatal = m.fatal;
        // every call still waiting is told first, then the server stops
        this.fail(worker, syncFailed(m.fatal));
        return this.onFatal(m.fatal);
      }
      if ("failed" in m) return this.fail(worker, new Error(`the database writer could not open ${this.path}: ${m.failed}`));
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (m.ok) w.resolve(m.value);
      else w.reject(Object.assign(new Error(m.error.message), m.error));
    };
    worker.onerror = (e) => this.fail(worker, new Error(`the database writer failed: ${e.message}`));
    worker.addEventListener("close", () => this.fail(worker, new Error("the database writer stopped")));
    worker.postMessage({ init: this.path });
    return worker;
  }

  /** Its calls cannot be answered any more; the next call starts a new thread. */
  private fail(worker: Worker, e: Error) {
    if (this.worker !== worker) return;
    this.worker = null;
    // A thread still running could commit a write whose caller was told it failed, after the
    // write clock said the write was over (caches kept between writes would miss it).
    worker.terminate();
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    for (const r of this.syncsAsked.splice(0)) r(NaN);
    for (const w of waiting) w.reject(e);
  }
}
