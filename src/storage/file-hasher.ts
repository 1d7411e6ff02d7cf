import { IN_BINARY } from "../native/extract";

const WORKER_URL = IN_BINARY ? "./storage/hash-worker.ts" : new URL("./hash-worker.ts", import.meta.url).href;

export type HashRequest =
  | { op: "open"; id: number; path: string }
  | { op: "advance" | "finish"; id: number; upTo: number }
  | { op: "drop"; id: number };
export type HashReply = { id: number; sha256: string } | { id: number; error: string };

/** A file's SHA-256, computed on another thread while the file is written. */
export interface FileHash {
  /** The first `bytes` of the file are written: hash them when the thread gets to it. */
  advance(bytes: number): void;
  /** The file is `bytes` long and complete: its digest in hex. */
  finish(bytes: number): Promise<string>;
  drop(): void;
}

/** One thread hashes every file being written; it is started on first use. */
export class FileHasher {
  private worker: Worker | null = null;
  private next = 1;
  private readonly waiting = new Map<number, { resolve: (h: string) => void; reject: (e: Error) => void }>();

  start(path: string): FileHash {
    const worker = (this.worker ??= this.spawn());
    const id = this.next++;
    let ended = false;
    worker.postMessage({ op: "open", id, path } satisfies HashRequest);
    return {
      advance: (upTo) => {
        if (!ended) worker.postMessage({ op: "advance", id, upTo } satisfies HashRequest);
      },
      finish: (upTo) => {
        ended = true;
        if (this.worker !== worker) return Promise.reject(new Error("the hashing thread stopped"));
        return new Promise((resolve, reject) => {
          this.waiting.set(id, { resolve, reject });
          worker.postMessage({ op: "finish", id, upTo } satisfies HashRequest);
        });
      },
      drop: () => {
        if (ended) return;
        ended = true;
        if (this.worker === worker) worker.postMessage({ op: "drop", id } satisfies HashRequest);
      },
    };
  }

  close() {
    this.worker?.terminate();
    this.worker = null;
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
