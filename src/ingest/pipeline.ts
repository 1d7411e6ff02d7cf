import { randomUUID } from "node:crypto";
import { metrics } from "../metrics";
import type { EmbeddingProvider } from "../embed/provider";
import { encodeVector } from "../storage/vector-codec";
import { BlobMissing, type BlobStore } from "../storage/blobs";
import type { IngestionRepo, Job, JobOutcome } from "../storage/repos";
import { log } from "../util/log";
import { bytesMissingMessage } from "../errors";
import { chunkSizeOf, resolveChunking, type ChunkSize } from "./chunker";
import type { ParseReply } from "./parse-child";
import { DEFAULT_PARSE_LIMITS, ParseError, type ParseLimits } from "./types";
import type { OcrSettings } from "../ocr/engine";
import { MemoryExceeded, ParseProcessPool, type Outcome } from "./parse-pool";
import { parseFile, Timeout, Transient } from "./parse-file";
import { parseInline, readsInline } from "./parse-inline";
import { detectFromHead } from "./parsers/index";
import type { NativePaths } from "../native/assets";
import { isDiskFull, type DiskSpace } from "../storage/disk-space";
import { coalesced } from "../util/coalesce";
import { ProgressReport } from "./progress";

export interface PipelineOptions {
  concurrency: number;
  timeoutMs: number;
  maxAttempts: number;
  /** Purposes whose files are ingested. */
  purposes: readonly string[];
  /** How long a claim lasts without a heartbeat; a crashed runner's jobs return after this. */
  leaseMs?: number;
  limits?: ParseLimits;
  /** Embeds chunks before they commit; its tokenizer sizes them. */
  embedder: EmbeddingProvider;
  /** How parse workers read images and scanned pages. */
  ocr: OcrSettings;
  /** Native libraries for the parse processes (native/assets.ts). */
  natives: NativePaths;
  /** The command that starts a parse process (see main.ts). */
  parseCommand: string[];
  /** Resident memory one document's parse may use, in bytes. */
  maxMemory: number;
  /** The data volume: while it is full nothing is claimed, and a write that meets it is not the file's fault. */
  disk?: DiskSpace;
  /** Called after a file's chunks committed, to bring the vector index up to date. */
  onCommitted?: () => void;
}

// Chunks go to the embedder in slices, so progress moves and a cancelled file stops early.
const EMBED_SLICE = 256;

const POLL_MS = 1000;
// Files past parsing wait for the embedder while the next ones parse, so the embedder (the
// bottleneck on small files) never waits for a parser and gets full batches: with 2 files in
// flight per parser, small files reached it a few chunks at a time (bench pipeline: 207
// chunks/s; with 8, 272). Each holds its chunks in memory until they commit, so parsing
// pauses while the parsed files hold more than MAX_HELD_CHUNKS (a few megabytes).
const IN_FLIGHT_PER_PARSER = 8;
const MAX_HELD_CHUNKS = 4096;
const EXHAUSTED_EVERY_MS = 5_000;
// Enough of a file to tell its format, or to refuse it, without starting a parser.
const HEAD_BYTES = 8192;


// Server stops (crashes, kill -9, deploys) that may cut a document's runs short before it is
// given up on: they are not the document's fault, so they do not use its attempts.
const MAX_INTERRUPTIONS = 10;

/** Retry delays grow 2 s, 8 s, 32 s, ... capped at 5 minutes. */
const backoffMs = (attempt: number) => Math.min(300_000, 2000 * 4 ** (attempt - 1));

interface Running {
  fileId: string;
  cancelled: boolean;
  settle?: (r: Outcome) => void;
}

/**
 * Runs the ingestion queue: claims jobs, parses each file in a parse process beside the
 * server (parse-pool.ts decides which processes serve another file), embeds the chunks
 * (batched with other files' chunks in the embedder), and commits chunks, vectors and the
 * file's status; the vector index then catches up.
 */
export class IngestPipeline {
  private readonly owner = `ragd-${process.pid}-${randomUUID().slice(0, 8)}`;
  private readonly running = new Map<string, Running>();
  private readonly leaseMs: number;
  private readonly limits: ParseLimits;
  private readonly autoChunking: ChunkSize;
  private readonly pool: ParseProcessPool;
  private parsing = 0;
  private readonly parseWaiters: (() => void)[] = [];
  /** Chunks of parsed files not yet committed, and how many files hold them. */
  private held = { chunks: 0, files: 0 };
  private timer: ReturnType<typeof setTimeout> | null = null;
  private exhaustedAt = 0;
  private stopped = true;
  private readonly pump = coalesced(() => this.pumpOnce());

  constructor(
    private readonly jobs: IngestionRepo,
    private readonly blobs: BlobStore,
    private readonly opts: PipelineOptions,
  ) {
    this.leaseMs = opts.leaseMs ?? 15_000;
    this.limits = opts.limits ?? DEFAULT_PARSE_LIMITS;
    this.autoChunking = resolveChunking({ type: "auto" }, opts.embedder.model.maxTokens);
    this.pool = new ParseProcessPool({ command: opts.parseCommand, max: opts.concurrency, memoryLimit: opts.maxMemory });
    opts.disk?.onRecovered(() => this.wake());
  }

  async start() {
    this.stopped = false;
    this.exhaustedAt = 0;
    const missing = await this.jobs.enqueueMissing(this.opts.purposes, Date.now());
    if (missing) log.info("queued files that had no ingestion job", { count: missing });
    this.wake();
  }

  /** Wakes the loop: a job was queued or a slot freed. */
  wake() {
    if (!this.stopped) void this.pump();
  }

  /** The file is gone: stop its parses now. Its job rows went with the file. */
  cancel(fileId: string) {
    for (const r of this.running.values()) if (r.fileId === fileId) this.stopRun(r);
  }

  private stopRun(r: Running) {
    r.cancelled = true;
    // settling a parse kills its process
    r.settle?.(new Transient("cancelled"));
  }

  get active() {
    return this.running.size;
  }

  async stop() {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const r of this.running.values()) this.stopRun(r);
    await this.pool.close();
    await this.jobs.release(this.owner);
  }

  /** Claims what there is room for; a wake while it runs makes it run once more. */
  private async pumpOnce() {
    if (this.stopped) return;
    try {
      if (!this.opts.disk?.full) {
        // Before the first claim after a start (a crash loop is caught there), then every few
        // seconds: not at every wake, which under load is every job.
        if (Date.now() - this.exhaustedAt >= EXHAUSTED_EVERY_MS) {
          await this.jobs.exhausted(this.opts.maxAttempts, this.opts.maxAttempts + MAX_INTERRUPTIONS, Date.now());
          this.exhaustedAt = Date.now();
        }
        while (!this.stopped && !this.opts.disk?.full && this.running.size < this.opts.concurrency * IN_FLIGHT_PER_PARSER) {
          const job = await this.jobs.claim(this.owner, Date.now(), this.leaseMs, this.opts.maxAttempts, this.opts.maxAttempts + MAX_INTERRUPTIONS);
          if (!job) break;
          const slot: Running = { fileId: job.fileId, cancelled: false };
          const key = `${job.fileId} ${job.cut}`;
          this.running.set(key, slot);
          void this.run(job, slot).finally(() => {
            this.running.delete(key);
            this.wake();
          });
        }
      }
    } catch (e) {
      if (isDiskFull(e)) this.opts.disk?.exhausted(String(e));
      else log.error("ingestion queue error", { error: String(e) });
    }
    await this.schedule();
  }

  private async schedule() {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    // At capacity nothing could be claimed before a run ends, and its end wakes the loop.
    const full = this.running.size >= this.opts.concurrency * IN_FLIGHT_PER_PARSER;
    const next = full ? null : await this.jobs.nextRunAfter().catch(() => null);
    const wait = next === null ? POLL_MS * 5 : Math.max(50, Math.min(POLL_MS * 5, next - Date.now() + 10));
    this.timer = setTimeout(() => this.wake(), wait);
    this.timer.unref?.();
  }

  private async run(job: Job, slot: Running) {
    let started = Date.now();
    const progress = new ProgressReport("queued for parsing");
    let heartbeatFailed = false;
    const beat = setInterval(async () => {
      try {
        if (!(await this.jobs.heartbeat(job, this.owner, Date.now(), this.leaseMs, progress.toString()))) {
          heartbeatFailed = true;
          this.stopRun(slot);
        }
      } catch (e) {
        log.warn("heartbeat failed", { file_id: job.fileId, error: String(e) });
      }
    }, Math.max(100, Math.min(2000, Math.floor(this.leaseMs / 3))));
    let localCopy = false;
    let holding = 0;
    const readable = async <T>(read: () => Promise<T>) => {
      try {
        return await read();
      } catch (e) {
        // A full disk (copying a stored file here) postpones the job, as anywhere else.
        if (isDiskFull(e)) throw e;
        // (gone for good: no later attempt finds them either)
        if (e instanceof BlobMissing) throw new ParseError(bytesMissingMessage("this file", "Delete the file and upload it again."), "server_error");
        throw new Transient(`could not read the stored file: ${String((e as Error)?.message ?? e)}`);
      }
    };
    try {
      let reply: ParseReply;
      try {
        const head = await readable(async () => new Response(await this.blobs.read(job.fileId, { start: 0, end: HEAD_BYTES - 1 })).bytes());
        if (slot.cancelled) return;
        // A file refused by its first bytes costs no parse process, nor a local copy of it
        // (a download, when the bytes are in a bucket).
        const headFormat = detectFromHead(head, job.filename);
        const parsed = (r: ParseReply) => {
          if (r.type !== "done") return r;
          metrics.parsed(r.format, (Date.now() - started) / 1000);
          metrics.ocrPages(r.ocrPages);
          // counted before the slot goes to the next file, which the count may hold back
          holding = r.chunks.length;
          if (holding) {
            this.held.chunks += holding;
            this.held.files++;
          }
          return r;
        };
        if (head.length < HEAD_BYTES && readsInline(headFormat)) {
          // A small plain-text file, whole in its first read: read here (see parse-inline.ts).
          started = Date.now();
          const { limits } = this;
          const { ocr, natives } = this.opts;
          reply = parsed(await parseInline({ bytes: head, filename: job.filename, limits, ocr, natives }, chunkSizeOf(job.cut, this.autoChunking), this.opts.embedder.tokenizerSpec));
        } else {
          // The slot before the local copy: files waiting for a parser hold no copy (a download
          // of the whole file, when the bytes are in a bucket).
          await this.parseSlot();
          try {
            if (slot.cancelled) return;
            const path = await readable(() => this.blobs.localPath(job.fileId));
            localCopy = true;
            if (slot.cancelled) return;
            // the time budget counts from here: waiting for a parser is not the file's doing
            started = Date.now();
            progress.set("parsing");
            reply = parsed(await this.parse(job, slot, path, (m) => progress.set(m), headFormat === "pdf"));
          } finally {
            this.releaseParseSlot();
          }
        }
      } catch (e) {
        if (e instanceof ParseError) reply = { type: "failed", code: e.code, message: e.message };
        else if (e instanceof MemoryExceeded) reply = { type: "failed", code: "file_too_large", message: e.message };
        else throw e;
      }
      if (slot.cancelled || heartbeatFailed) return;
      let outcome: JobOutcome;
      if (reply.type === "failed" && reply.retry) throw new Transient(reply.message, reply.code);
      if (reply.type === "failed") outcome = { status: "failed", code: reply.code, message: reply.message };
      else if (reply.type === "done" && reply.chunks.length === 0) outcome = { status: "failed", code: "no_text", message: NO_TEXT };
      else if (reply.type === "done") {
        const embedStart = performance.now();
        const embeddings = await this.embed(reply.chunks.map((c) => c.text), slot, (m) => progress.set(m));
        if (slot.cancelled || heartbeatFailed) return;
        metrics.embedded(reply.format, (performance.now() - embedStart) / 1000, reply.chunks.length);
        outcome = {
          status: "processed",
          format: reply.format,
          text: reply.text,
          chunks: reply.chunks.map((c, i) => ({
            text: c.text,
            location: c.loc,
            charStart: c.charStart,
            charEnd: c.charEnd,
            tokens: c.tokens,
            embedding: embeddings[i]!,
          })),
        };
      } else throw new Transient("the parser ended without a result");
      const commitStart = performance.now();
      const ok = await this.jobs.finish(job, this.owner, outcome, Date.now());
      const commitMs = Math.round(performance.now() - commitStart);
      if (ok && outcome.status === "processed") this.opts.onCommitted?.();
      if (ok) metrics.ingested(outcome.status === "processed" ? "processed" : outcome.code);
      log.info("ingested", {
        file_id: job.fileId,
        ...(job.cut === "auto" ? {} : { cut: job.cut }),
        status: outcome.status,
        ...(outcome.status === "processed" ? { format: outcome.format, chunks: outcome.chunks.length } : { code: outcome.code, reason: outcome.message }),
        ms: Date.now() - started,
        commit_ms: commitMs,
        ...(ok ? {} : { discarded: "lease lost" }),
      });
    } catch (e) {
      if (slot.cancelled) return;
      const msg = String((e as Error)?.message ?? e);
      if (isDiskFull(e)) {
        // Not the file's doing: it waits, without losing an attempt, until space returns.
        this.opts.disk?.exhausted(msg);
        await this.jobs.postpone(job, this.owner, Date.now()).catch(() => {});
        return;
      }
      if (e instanceof Timeout) {
        log.warn("ingestion timed out", { file_id: job.fileId });
        // If this write fails the lease runs out and the next attempt meets the same budget.
        await this.jobs.finish(job, this.owner, { status: "failed", code: "timeout", message: msg }, Date.now()).catch((err: unknown) =>
          log.error("could not record the timeout", { file_id: job.fileId, error: String(err) }),
        );
        return;
      }
      const attempt = job.attempts + 1;
      log.warn("ingestion attempt failed, will retry", { file_id: job.fileId, attempt, error: msg });
      const code = e instanceof Transient ? e.code : "server_error";
      await this.jobs.retry(job, this.owner, Date.now() + backoffMs(attempt), { code, message: msg }).catch(() => {});
    } finally {
      clearInterval(beat);
      if (holding) {
        this.held.chunks -= holding;
        this.held.files--;
        this.grantParseSlots();
      }
      if (localCopy) await this.blobs.release(job.fileId).catch((e) => log.warn("could not drop a local copy of a stored file", { file_id: job.fileId, error: String(e) }));
    }
  }

  /**
   * The embedder is shared by every file and by searches, so time spent here (mostly waiting
   * for other files' batches) does not count against this file's time budget.
   */
  private async embed(texts: string[], slot: Running, onProgress: (m: string) => void): Promise<Uint8Array[]> {
    const out: Uint8Array[] = [];
    for (let at = 0; at < texts.length; at += EMBED_SLICE) {
      if (slot.cancelled) return out;
      onProgress(`embedding chunk ${at + 1} of ${texts.length}`);
      let vectors: Float32Array[];
      try {
        ({ vectors } = await this.opts.embedder.embed(texts.slice(at, at + EMBED_SLICE), "ingest"));
      } catch (e) {
        throw new Transient(`embedding failed: ${String((e as Error)?.message ?? e)}`);
      }
      for (const v of vectors) out.push(encodeVector(v));
    }
    return out;
  }

  private parseSlot(): Promise<void> {
    return new Promise((resolve) => {
      this.parseWaiters.push(resolve);
      this.grantParseSlots();
    });
  }

  private releaseParseSlot() {
    this.parsing--;
    this.grantParseSlots();
  }

  private grantParseSlots() {
    while (this.parseWaiters.length && this.parsing < this.opts.concurrency && (this.held.chunks < MAX_HELD_CHUNKS || this.held.files === 0)) {
      this.parsing++;
      this.parseWaiters.shift()!();
    }
  }

  /** A slot for a range of a file already parsing, only when no other file waits for one. */
  private tryParseSlot(): boolean {
    if (this.parseWaiters.length || this.parsing >= this.opts.concurrency || this.held.chunks >= MAX_HELD_CHUNKS) return false;
    this.parsing++;
    return true;
  }

  private parse(job: Job, slot: Running, path: string, onProgress: (m: string) => void, pdf: boolean): Promise<ParseReply> {
    // before a process is taken: a throw here must not strand one
    const chunking = chunkSizeOf(job.cut, this.autoChunking);
    return parseFile({
      pool: this.pool,
      slots: { take: () => this.tryParseSlot(), give: () => this.releaseParseSlot(), othersWaiting: () => this.parseWaiters.length > 0 },
      request: { path, filename: job.filename, limits: this.limits, chunking, tokenizer: this.opts.embedder.tokenizerSpec, ocr: this.opts.ocr, natives: this.opts.natives },
      pdf,
      timeoutMs: this.opts.timeoutMs,
      onProgress,
      onStart: (settle) => (slot.settle = settle),
    });
  }
}


// Parsers that can say more (scanned pages, OCR off) throw their own "no text found: ...".
const NO_TEXT = "no text found: the document is empty or holds no extractable text";
