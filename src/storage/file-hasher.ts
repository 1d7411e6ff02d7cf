import { IN_BINARY } from "../native/extract";

const WORKER_URL = IN_BINARY ? "./storage/hash-worker.ts" : new URL("./hash-worker.ts", import.meta.url).href;

// The first message about a file names its path; a small file needs just one message.
export type HashRequest = { op: "advance" | "finish"; id: number; upTo: number; path?: string } | { op: "drop" | "evict"; id: number };
export type HashReply = { id: number; sha256: string } | { id: number; error: string };

/** A file's SHA-256, computed on another thread while the file is written. */
export interface FileHash {
  /** The first `bytes` of the file are written: hash them when the thread gets to it. */
  advance(bytes: number): void;
  /** The file is `bytes` long and complete: its digest in hex. */
  finish(bytes: number): Promise<string>;
  /** The file is durable (fsynced): its pages leave the page cache, and the thread lets it go. */
  evict(): void;
  /** The thread lets the file go as it is. One of evict or drop ends every hash, finished or not. */
  drop(): void;
}

const ADVANCE_EVERY = 8 << 20;

/** One thread hashes every file being written; it is started on first use. */
export const fileHasher = { start: (path: string) => shared().start(path) };
let sharedHasher: FileHasher | null = null;
const shared = () => (sharedHasher ??= new FileHasher());

class FileHasher {
  private worker: Worker | null = null;
  private next = 1;
  private readonly waiting = new Map<number, { resolve: (h: string) => void; reject: (e: Error) => void }>();

  start(path: string): FileHash {
    const worker = (this.worker ??= this.spawn());
    const id = this.next++;
    let ended = false;
    let released = false;
    let posted = 0;
    // Each message costs the event loop tens of microseconds: the thread hears of progress only
    // every few megabytes, which still keeps what it reads back in the page cache.
    const post = (op: "advance" | "finish", upTo: number) => {
      worker.postMessage({ op, id, upTo, ...(posted === 0 ? { path } : {}) } satisfies HashRequest);
      posted = Math.max(posted, upTo, 1);
    };
    const handle: FileHash = {
      advance: (upTo) => {
        if (!ended && this.worker === worker && upTo - posted >= ADVANCE_EVERY) post("advance", upTo);
      },
      finish: (upTo) => {
        ended = true;
        // (the thread would keep the file open for a release that has already been)
        if (released) return Promise.reject(new Error("the file's hash was dropped before it was finished"));
        if (this.worker !== worker) return Promise.reject(new Error("the hashing thread stopped"));
        return new Promise((resolve, reject) => {
          this.waiting.set(id, { resolve, reject });
          post("finish", upTo);
        });
      },
      evict: () => release("evict"),
      drop: () => release("drop"),
    };
    const release = (op: "evict" | "drop") => {
      if (released) return;
      released = ended = true;
      if (this.worker === worker && posted > 0) worker.postMessage({ op, id } satisfies HashRequest);
    };
    return handle;
  }

  private spawn(): Worker {
    const worker = new Worker(WORKER_URL);
    // An idle hashing thread must not keep a finished process (a CLI command, a test) alive.
    (worker as unknown as { unref(): void }).unref();
    worker.onmessage = (e: MessageEvent<HashReply>) => {
      const w = this.waiting.get(e.data.id);
      if (!w) return;
      this.waiting.delete(e.data.id);
      if ("sha256" in e.data) w.resolve(e.data.sha256);
      else w.reject(new Error(`could not hash the stored file: ${e.data.error}`));
    };
    const stopped = () => {
      if (this.worker !== worker) return;
      this.worker = null;
      for (const w of this.waiting.values()) w.reject(new Error("the hashing thread stopped"));
      this.waiting.clear();
    };
    worker.onerror = stopped;
    worker.addEventListener("close", stopped);
    return worker;
  }
}
