import { guardedTerminate, newGuardBuffer } from "../native/guard";
import type { Format } from "./parsers/index";
import type { ParseReply } from "./parse-worker";

/**
 * Formats read by this project's own code (CSV and TSV by papaparse in array mode, which keys
 * no object by file content), so nothing a crafted file does can outlive its parse: their
 * workers serve the next file.
 * Every other format gets a worker of its own, terminated afterwards. Starting a worker
 * costs ~100 ms of CPU, more than embedding a small file's chunks.
 */
const REUSABLE = new Set<Format>(["text", "markdown", "json", "code", "csv", "tsv", "srt", "vtt"]);
// Bounds what a long-lived worker's heap can accumulate.
const MAX_USES = 500;
const IDLE_MS = 30_000;

export type Outcome = ParseReply | Error;

export interface ParseWorker {
  readonly worker: Worker;
  readonly guard: SharedArrayBuffer;
  uses: number;
  /** Receives the current file's messages and the worker's death; null while idle. */
  handler: ((m: Outcome) => void) | null;
  idleTimer?: ReturnType<typeof setTimeout>;
}

/** Idle parse workers kept for reuse, up to the ingestion concurrency. */
export class ParseWorkerPool {
  private idle: ParseWorker[] = [];
  private closed = false;

  constructor(
    private readonly url: string,
    private readonly max: number,
  ) {}

  acquire(): ParseWorker {
    const w = this.idle.pop();
    if (w) {
      clearTimeout(w.idleTimer);
      return w;
    }
    return this.spawn();
  }

  /** Back to the pool when its last file was of a reusable format, else terminated. */
  release(w: ParseWorker, format: Format | null) {
    w.handler = null;
    w.uses++;
    if (this.closed || !format || !REUSABLE.has(format) || w.uses >= MAX_USES || this.idle.length >= this.max) {
      void this.discard(w);
      return;
    }
    w.idleTimer = setTimeout(() => {
      this.idle = this.idle.filter((x) => x !== w);
      void this.discard(w);
    }, IDLE_MS);
    w.idleTimer.unref?.();
    this.idle.push(w);
  }

  /** Terminates it, waiting until it is outside native code (native/guard.ts). */
  discard(w: ParseWorker) {
    w.handler = null;
    clearTimeout(w.idleTimer);
    return guardedTerminate(w.worker, w.guard);
  }

  async close() {
    this.closed = true;
    const idle = this.idle.splice(0);
    await Promise.all(idle.map((w) => this.discard(w)));
  }

  private spawn(): ParseWorker {
    const worker = new Worker(this.url, { smol: true } as WorkerOptions);
    const w: ParseWorker = { worker, guard: newGuardBuffer(), uses: 0, handler: null };
    worker.onmessage = (e: MessageEvent<ParseReply>) => w.handler?.(e.data);
    worker.onerror = (e) => w.handler?.(new Error(`the parser crashed: ${e.message ?? "unknown error"}`));
    worker.addEventListener("close", () => {
      w.handler?.(new Error("the parser exited unexpectedly"));
      this.idle = this.idle.filter((x) => x !== w);
    });
    return w;
  }
}
