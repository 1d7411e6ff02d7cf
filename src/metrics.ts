import client from "prom-client";
import { RequestMetrics } from "./metrics-requests";

// What ragd measures about itself, for Prometheus (`GET /metrics`). One registry per process;
// the modules that do the work record into it through the methods below, which cost nothing
// when metrics are off. Gauges of state (jobs, indexes, disk) are read when scraped.

/** Where scrape-time gauges read the server's state. */
export interface MetricSources {
  /** Called as a scrape begins: what the gauges read is read once per scrape. */
  beginScrape?(): void;
  jobs(): Promise<{ states: Record<string, number>; oldestQueuedMs: number | null }>;
  vectorIndex(): { size: number; lastSaveMs: number | null; exactBytes: number };
  keywordIndexSize(): Promise<number>;
  projectBytes(): Promise<{ project: string; bytes: number }[]>;
}

const SCRAPE_EVERY_MS = 1_000;
const SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const SLOW_SECONDS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

class Metrics {
  private on = false;
  readonly registry = new client.Registry();
  private readonly r = [this.registry];

  private readonly requests = new RequestMetrics(
    { name: "ragd_http_requests_total", help: "HTTP requests by method, route template and status" },
    { name: "ragd_http_request_duration_seconds", help: "Time to the response's headers (a stream's body may go on after), by method and route template", buckets: SECONDS },
  );
  private readonly parseSeconds = new client.Histogram({ name: "ragd_ingest_parse_duration_seconds", help: "Parse and chunk time of a document, by format", labelNames: ["format"], buckets: SLOW_SECONDS, registers: this.r });
  private readonly embedSeconds = new client.Histogram({ name: "ragd_ingest_embed_duration_seconds", help: "Embedding time of a document's chunks, by format", labelNames: ["format"], buckets: SLOW_SECONDS, registers: this.r });
  private readonly outcomes = new client.Counter({ name: "ragd_ingest_documents_total", help: "Documents ingested, by outcome (processed, or the error code)", labelNames: ["outcome"], registers: this.r });
  private readonly chunks = new client.Counter({ name: "ragd_ingest_chunks_embedded_total", help: "Chunks embedded and committed", registers: this.r });
  private readonly ocr = new client.Counter({ name: "ragd_ocr_pages_total", help: "Pages and pictures read by OCR", registers: this.r });
  private readonly pdfRanges = new client.Counter({
    name: "ragd_ingest_pdf_ranges_total",
    help: "Page ranges of long PDFs read side by side; reader: the file's own parse process or another that was free",
    labelNames: ["reader"],
    registers: this.r,
  });
  private readonly searchSeconds = new client.Histogram({ name: "ragd_search_duration_seconds", help: "Search time, by kind (hybrid, keyword, vector)", labelNames: ["kind"], buckets: SECONDS, registers: this.r });
  private readonly upstreamSeconds = new client.Histogram({
    name: "ragd_model_server_request_duration_seconds",
    help: "Model server calls until their answer ends, by upstream and outcome",
    labelNames: ["upstream", "outcome"],
    buckets: SLOW_SECONDS,
    registers: this.r,
  });

  constructor() {
    for (const m of this.requests.metrics()) this.registry.registerMetric(m as never);
  }

  get enabled() {
    return this.on;
  }

  /** Turns recording on, with the gauges read at each scrape and the process's own metrics. */
  enable(sources: MetricSources) {
    if (this.on) return;
    this.on = true;
    this.sources = sources;
    client.collectDefaultMetrics({ register: this.registry });
    const r = this.r;
    new client.Gauge({
      name: "ragd_ingest_jobs",
      help: "Ingestion jobs by state (queued, running, done, failed)",
      labelNames: ["state"],
      registers: r,
      async collect() {
        const { states } = await sources.jobs();
        for (const s of ["queued", "running", "done", "failed"]) this.set({ state: s }, states[s] ?? 0);
      },
    });
    new client.Gauge({
      name: "ragd_ingest_queue_depth",
      help: "Jobs waiting or running",
      registers: r,
      async collect() {
        const { states } = await sources.jobs();
        this.set((states.queued ?? 0) + (states.running ?? 0));
      },
    });
    new client.Gauge({
      name: "ragd_ingest_oldest_job_age_seconds",
      help: "Age of the oldest job waiting or running; 0 when none is",
      registers: r,
      async collect() {
        const { oldestQueuedMs } = await sources.jobs();
        this.set(oldestQueuedMs === null ? 0 : Math.max(0, (Date.now() - oldestQueuedMs) / 1000));
      },
    });
    new client.Gauge({
      name: "ragd_vector_index_vectors",
      help: "Vectors in the HNSW index",
      registers: r,
      collect() {
        this.set(sources.vectorIndex().size);
      },
    });
    new client.Gauge({
      name: "ragd_vector_index_last_save_timestamp_seconds",
      help: "When the vector index was last saved; 0 before its first save",
      registers: r,
      collect() {
        const at = sources.vectorIndex().lastSaveMs;
        this.set(at === null ? 0 : at / 1000);
      },
    });
    new client.Gauge({
      name: "ragd_exact_search_vector_bytes",
      help: "Bytes of narrow stores' vectors held in memory for exact search (bounded at 128 MiB)",
      registers: r,
      collect() {
        this.set(sources.vectorIndex().exactBytes);
      },
    });
    new client.Gauge({
      name: "ragd_keyword_index_chunks",
      help: "Chunks in the keyword (BM25) index",
      registers: r,
      async collect() {
        this.set(await sources.keywordIndexSize());
      },
    });
    new client.Gauge({
      name: "ragd_project_stored_bytes",
      help: "Bytes of files stored, by project id (ragd keys list names them; /metrics needs no key, so names are not shown)",
      labelNames: ["project"],
      registers: r,
      async collect() {
        this.reset();
        for (const p of await sources.projectBytes()) this.set({ project: p.project }, p.bytes);
      },
    });
  }

  request(method: string, route: string, status: number, seconds: number) {
    if (!this.on) return;
    this.requests.record(method, route, status, seconds);
  }

  parsed(format: string, seconds: number) {
    if (this.on) this.parseSeconds.observe({ format }, seconds);
  }

  embedded(format: string, seconds: number, chunks: number) {
    if (!this.on) return;
    this.embedSeconds.observe({ format }, seconds);
    this.chunks.inc(chunks);
  }

  ingested(outcome: string) {
    if (this.on) this.outcomes.inc({ outcome });
  }

  pdfRange(byOwnProcess: boolean) {
    if (this.on) this.pdfRanges.inc({ reader: byOwnProcess ? "own" : "other" });
  }

  ocrPages(n: number) {
    if (this.on && n) this.ocr.inc(n);
  }

  searched(kind: "hybrid" | "keyword" | "vector", seconds: number) {
    if (this.on) this.searchSeconds.observe({ kind }, seconds);
  }

  modelServer(upstream: string, outcome: string, seconds: number) {
    if (this.on) this.upstreamSeconds.observe({ upstream, outcome }, seconds);
  }

  private sources: MetricSources | null = null;
  private last: { at: number; text: Promise<string> } | null = null;

  /**
   * The exposition, made at most once a second: scrapes are unauthenticated, and each reads
   * counts from storage, so a flood of them costs one read a second.
   */
  text(): Promise<string> {
    if (this.last && Date.now() - this.last.at < SCRAPE_EVERY_MS) return this.last.text;
    this.sources?.beginScrape?.();
    const text = this.registry.metrics();
    this.last = { at: Date.now(), text };
    text.catch(() => (this.last = null));
    return text;
  }

  get contentType() {
    return this.registry.contentType;
  }
}

export const metrics = new Metrics();
