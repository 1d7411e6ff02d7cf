import type { Subprocess } from "bun";
import { readFileSync } from "node:fs";
import { log } from "../util/log";
import { formatSize } from "../util/size";
import type { Format } from "./parsers/index";
import type { CloseRequest, ParseReply, ParseRequest } from "./parse-child";

/**
 * Formats whose reading cannot leave anything behind in the process, so it serves the next
 * file: those read by this project's own code (CSV and TSV by papaparse in array mode, which
 * keys no object by file content), and PDF, read by PDFium inside a WebAssembly instance of
 * its own per document (parsers/pdfium.ts), whose memory goes with the document. Every other
 * format gets a process of its own, killed afterwards; a fresh one is started at once so the
 * next file does not wait for it.
 */
const REUSABLE = new Set<Format>(["text", "markdown", "json", "code", "csv", "tsv", "srt", "vtt", "rtf", "pdf"]);
// Bounds what a long-lived process's heap can accumulate.
const MAX_USES = 500;
const IDLE_MS = 30_000;
// Memory is read this often while a process parses; a document grows by at most what it
// can allocate in this time past the ceiling before it is stopped.
const WATCH_MS = 50;
const PAGE = 4096;

/** The process was stopped because its document needed more memory than the ceiling. */
export class MemoryExceeded extends Error {
  constructor(readonly limitBytes: number) {
    super(`the document needs more than ${formatSize(limitBytes)} of memory to read; split it, or raise --ingest-max-memory`);
  }
}

/** The process died (crashed, killed from outside) while it held a document. */
export class ParserDied extends Error {}

export type Outcome = Exclude<ParseReply, { type: "ready" }> | Error;

export interface ParseProcess {
  readonly proc: Subprocess;
  /** Resolves when the process can take a request. */
  readonly ready: Promise<void>;
  uses: number;
  /** Receives the current file's messages and the process's death; null while idle. */
  handler: ((m: Outcome) => void) | null;
  idleTimer?: ReturnType<typeof setTimeout>;
  dead: boolean;
}

export interface PoolOptions {
  /** The command that starts a parse process (main.ts's PARSE_CHILD_ARG). */
  command: string[];
  /** Idle processes kept for reuse. */
  max: number;
  /** Resident memory a parse process may reach, in bytes. */
  memoryLimit: number;
  /** A process holding more than this after a file is not reused (default: half of memoryLimit, within 128..256 MB). */
  reuseBelow?: number;
}

/** Parse processes: started ahead of need, reused for the formats above, watched for memory. */
export class ParseProcessPool {
  private idle: ParseProcess[] = [];
  private busy = new Set<ParseProcess>();
  private closed = false;
  private watcher: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly o: PoolOptions) {}

  acquire(): ParseProcess {
    const p = this.idle.pop() ?? this.spawn();
    clearTimeout(p.idleTimer);
    this.busy.add(p);
    this.watch();
    return p;
  }

  /** Sends one document; the answer and the process's death come to `p.handler`. */
  async send(p: ParseProcess, req: ParseRequest | CloseRequest) {
    await p.ready;
    if (p.dead) {
      p.handler?.(new ParserDied("the parser exited before it was given the file"));
      return;
    }
    try {
      p.proc.send(req);
    } catch (e) {
      p.handler?.(new ParserDied(`the parser could not be reached: ${String((e as Error)?.message ?? e)}`));
    }
  }

  /** Back to the pool when its last file was of a reusable format, else killed. */
  release(p: ParseProcess, format: Format | null) {
    p.handler = null;
    p.uses++;
    this.busy.delete(p);
    // Its allocator keeps freed memory (see spawn), so a process that read a large file
    // would go on holding it: ending the process gives it back at once.
    const reuseBelow = this.o.reuseBelow ?? Math.min(256 * 1024 ** 2, Math.max(128 * 1024 ** 2, this.o.memoryLimit / 2));
    if (this.closed || p.dead || !format || !REUSABLE.has(format) || p.uses >= MAX_USES || this.idle.length >= this.o.max || residentBytes(p.proc.pid) > reuseBelow) {
      this.discard(p);
      return;
    }
    this.park(p);
  }

  /** A process taken but never given a file: back to the idle ones as it was. */
  giveBack(p: ParseProcess) {
    p.handler = null;
    this.busy.delete(p);
    if (this.closed || p.dead || this.idle.length >= this.o.max) this.discard(p);
    else this.park(p);
  }

  /** Kills it: always safe for the server, whatever the process was doing. */
  discard(p: ParseProcess) {
    p.handler = null;
    this.busy.delete(p);
    clearTimeout(p.idleTimer);
    this.idle = this.idle.filter((x) => x !== p);
    if (!p.dead) p.proc.kill("SIGKILL");
    p.dead = true;
    // One warm process keeps the next document from waiting for a start.
    if (!this.closed && this.idle.length === 0) this.park(this.spawn());
  }

  async close() {
    this.closed = true;
    if (this.watcher) clearInterval(this.watcher);
    this.watcher = null;
    const all = [...this.idle, ...this.busy];
    this.idle = [];
    for (const p of all) this.discard(p);
    await Promise.all(all.map((p) => p.proc.exited));
  }

  /** Processes alive now, for tests. */
  get size() {
    return this.idle.length + this.busy.size;
  }

  private park(p: ParseProcess) {
    p.idleTimer = setTimeout(() => {
      this.idle = this.idle.filter((x) => x !== p);
      p.proc.kill("SIGKILL");
      p.dead = true;
    }, IDLE_MS);
    p.idleTimer.unref?.();
    this.idle.push(p);
  }

  private spawn(): ParseProcess {
    let markReady!: () => void;
    const ready = new Promise<void>((r) => (markReady = r));
    const p: ParseProcess = { proc: null as unknown as Subprocess, ready, uses: 0, handler: null, dead: false };
    let stderrTail = "";
    const proc = Bun.spawn(this.o.command, {
      // The server's own working directory may not exist for it (started by chroot or from a
      // directory since removed); a parse process needs none.
      cwd: "/",
      // mimalloc handing freed pages back to the kernel after every file cost a small file
      // more system time than its parse (3.6 ms of CPU a SciFact abstract, 1.7 without);
      // processes end instead (reuse limits in release, idle timeout, memory watch).
      env: { ...process.env, RAGD_PARENT_PID: String(process.pid), MIMALLOC_PURGE_DELAY: "-1" },
      stdin: "ignore",
      stdout: "ignore",
      stderr: "pipe",
      serialization: "json",
      ipc: (m: ParseReply) => {
        if (m.type === "ready") markReady();
        else p.handler?.(m);
      },
    });
    (p as { proc: Subprocess }).proc = proc;
    void (async () => {
      const dec = new TextDecoder();
      for await (const c of proc.stderr as ReadableStream<Uint8Array>) {
        const text = dec.decode(c);
        stderrTail = (stderrTail + text).slice(-2000);
        // Libraries' warnings about one document are not the operator's concern, but can help debugging.
        log.debug("parse process output", { pid: proc.pid, text: text.trim().slice(0, 500) });
      }
    })().catch(() => {});
    void proc.exited.then((code) => {
      const wasDead = p.dead;
      p.dead = true;
      markReady();
      this.idle = this.idle.filter((x) => x !== p);
      this.busy.delete(p);
      if (wasDead) return;
      const how = proc.signalCode ? `was killed by ${proc.signalCode}` : `exited with code ${code}`;
      const last = stderrTail.trim().split("\n").at(-1)?.slice(0, 200);
      p.handler?.(new ParserDied(`the parser ${how}${last ? ` (${last})` : ""}`));
    });
    return p;
  }

  /** While any process parses, its resident memory is read against the ceiling. */
  private watch() {
    if (this.watcher) return;
    this.watcher = setInterval(() => {
      if (this.busy.size === 0) {
        clearInterval(this.watcher!);
        this.watcher = null;
        return;
      }
      for (const p of this.busy) {
        if (p.dead) continue;
        const rss = residentBytes(p.proc.pid);
        if (rss > this.o.memoryLimit) {
          const handler = p.handler;
          p.dead = true;
          p.proc.kill("SIGKILL");
          handler?.(new MemoryExceeded(this.o.memoryLimit));
        }
      }
    }, WATCH_MS);
    this.watcher.unref?.();
  }
}

/** Resident set size of a process from /proc; 0 when it is gone. */
export function residentBytes(pid: number): number {
  try {
    const statm = readFileSync(`/proc/${pid}/statm`, "latin1");
    return Number(statm.split(" ")[1]) * PAGE;
  } catch {
    return 0;
  }
}
