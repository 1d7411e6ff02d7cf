import { join } from "node:path";
import { nowSeconds, waitAtMost } from "./util/time";
import { pruneTombstones, TOMBSTONE_SECONDS } from "./storage/sql-common";
import { fileURLToPath } from "node:url";
import { buildApp } from "./app";
import type { Config } from "./config";
import { RateLimiter } from "./http/rate-limit";
import { openProvider, type EmbedConfig } from "./embed/index";
import type { EmbeddingProvider } from "./embed/provider";
import { IngestPipeline } from "./ingest/pipeline";
import { EmbeddingsService } from "./services/embeddings";
import { EMBEDDABLE, FilesService } from "./services/files";
import { KeysService } from "./services/keys";
import { ChatService } from "./services/chat";
import { ConsoleService } from "./services/console";
import { ModelsService } from "./services/models";
import { ResponsesService } from "./services/responses";
import { ModelServers } from "./llm/upstream";
import { SearchService } from "./services/search";
import { VectorStoresService } from "./services/vector-stores";
import { DiskBlobStore, type BlobStore } from "./storage/blobs";
import type { Repos } from "./storage/repos";
import { claimBlobStore } from "./storage/blob-owner";
import { S3BlobStore, parseS3Url } from "./storage/s3-blobs";
import { openRepos } from "./storage/open";
import { installBindings, nativePaths, type NativePaths } from "./native/assets";
import { openBm25Kernel, useBm25Kernel } from "./search/bm25-kernel";
import { openInt8Dots, useInt8Dots } from "./search/int8-dot";
import type { OcrSettings } from "./ocr/engine";
import { log } from "./util/log";
import type { Server } from "bun";
import { serve } from "./http/edge";
import { parseCommand } from "./ingest/parse-command";
import { lockDataDir } from "./storage/data-lock";
import { DiskSpace } from "./storage/disk-space";
import { metrics, type MetricSources } from "./metrics";
import { UploadsService } from "./services/uploads";
import type { ReadyCheck } from "./http/routes/system";
import { errorResponse } from "./http/errors";
import { metricsRefusal } from "./http/metrics-access";

export interface Services {
  repos: Repos;
  disk: DiskSpace;
  files: FilesService;
  uploads: UploadsService;
  keys: KeysService;
  ingest: IngestPipeline;
  embedder: EmbeddingProvider;
  search: SearchService;
  vectorStores: VectorStoresService;
  embeddings: EmbeddingsService;
  models: ModelsService;
  responses: ResponsesService;
  chat: ChatService;
  console: ConsoleService;
  stores: Repos["stores"];
  close(): Promise<void>;
}

// How long a stop waits for open connections (a download, a slow reader) before cutting them.
const SHUTDOWN_GRACE_MS = 10_000;
// An input_file still being ingested is waited for this long before the request is refused.
const FILE_WAIT_MS = 60_000;

const cacheDir = (config: Config) => (process.env.XDG_CACHE_HOME ? join(process.env.XDG_CACHE_HOME, "ragd") : join(config.dataDir, "cache"));

export function ocrSettings(config: Config): OcrSettings {
  return { enabled: config.ocr === "on", embedded: config.ocr === "on" && config.ocrEmbedded === "on", threads: config.ocrThreads, maxPixels: config.ocrMaxMegapixels * 1_000_000 };
}

export function embedConfig(config: Config, natives: NativePaths): EmbedConfig {
  return {
    provider: config.embedProvider,
    precision: config.embedPrecision,
    modelDir: config.embedModelDir,
    url: config.embedUrl,
    apiKey: config.embedApiKey,
    model: config.embedModel,
    maxTokens: config.embedMaxTokens || null,
    threads: config.embedThreads,
    batchSize: config.embedBatch,
    onnxruntime: natives.onnxruntime,
  };
}

/** Just the keys, for the `ragd keys` commands: no model is loaded. */
export async function openKeys(config: Config) {
  const repos = await openRepos(config);
  const keys = new KeysService(repos.keys, config.apiKey);
  await keys.init();
  return { keys, close: () => repos.close() };
}

/** Where file bytes live: the data directory, a shared directory, or an S3 bucket. */
export function openBlobStore(config: Config): BlobStore {
  if (!config.blobUrl) return new DiskBlobStore(join(config.dataDir, "blobs"));
  if (config.blobUrl.startsWith("file:")) return new DiskBlobStore(fileURLToPath(config.blobUrl), { shared: true });
  return new S3BlobStore(
    { ...parseS3Url(config.blobUrl), endpoint: config.s3Endpoint, region: config.s3Region, accessKeyId: config.s3AccessKeyId, secretAccessKey: config.s3SecretAccessKey },
    // Uploads spool here while they stream to the bucket; parsers read copies from here.
    new DiskBlobStore(join(config.dataDir, "blob-spool")),
  );
}

/** Opens the data directory: database, blobs and the services over them. */
export async function openServices(config: Config): Promise<Services> {
  const repos = await openRepos(config);
  const blobs = openBlobStore(config);
  // A data directory's own SQLite file and blobs go together, so unmarked files there (from
  // before the mark existed) are this database's; elsewhere they may not be.
  await claimBlobStore(blobs, config.blobUrl ?? join(config.dataDir, "blobs"), repos.chunks, { unmarkedFilesAreOurs: !config.databaseUrl && !config.blobUrl }).catch(async (e: unknown) => {
    await repos.close();
    throw e;
  });
  // Admission watches the volume that file bytes fill: a shared mount's, when they go there.
  const disk = new DiskSpace(config.blobUrl?.startsWith("file:") ? fileURLToPath(config.blobUrl) : config.dataDir, config.diskReserve);
  const files = new FilesService(repos.files, blobs, { maxFileSize: config.maxFileSize, projectQuota: config.projectQuota }, disk);
  const uploads = new UploadsService(repos.uploads, files, config.maxFileSize);
  const keys = new KeysService(repos.keys, config.apiKey);
  await keys.init();
  const natives = nativePaths(cacheDir(config));
  installBindings(natives);
  useBm25Kernel(natives.kernels ? openBm25Kernel(natives.kernels) : null);
  useInt8Dots(natives.kernels ? openInt8Dots(natives.kernels) : null);
  const embedder = await openProvider(embedConfig(config, natives));
  const search = new SearchService(repos.chunks, repos.ingestion, embedder, join(config.dataDir, "vectors"), join(config.dataDir, "keyword"), natives.usearch);
  const stores = repos.stores;
  const vectorStores = new VectorStoresService(stores, repos.files, search, embedder.model.maxTokens);
  const ingest = new IngestPipeline(repos.ingestion, blobs, {
    concurrency: config.ingestConcurrency,
    timeoutMs: config.ingestTimeoutSeconds * 1000,
    maxAttempts: config.ingestMaxAttempts,
    purposes: [...EMBEDDABLE],
    leaseMs: config.ingestLeaseSeconds * 1000,
    embedder,
    ocr: ocrSettings(config),
    natives,
    parseCommand: parseCommand(),
    maxMemory: config.ingestMaxMemory,
    disk,
    onCommitted: () => search.catchUpSoon(),
  });
  files.attachIngest(ingest);
  vectorStores.attachIngest(ingest);
  const embeddings = new EmbeddingsService(embedder);
  const servers = ModelServers.fromConfig(config);
  const models = new ModelsService(embeddings, servers);
  const responses = new ResponsesService(repos.responses, servers, files, vectorStores, (id) => repos.stores.documentText(id), {
    maxResults: config.answerMaxResults,
    fileWaitMs: FILE_WAIT_MS,
  });
  const chat = new ChatService(servers, vectorStores, { grounding: config.chatGrounding, maxResults: config.answerMaxResults });
  const consoleService = new ConsoleService(files, repos.chunks, repos.keys);
  return {
    repos,
    disk,
    files,
    uploads,
    keys,
    ingest,
    embedder,
    search,
    vectorStores,
    embeddings,
    models,
    responses,
    chat,
    console: consoleService,
    stores,
    async close() {
      disk.stop();
      await embedder.close();
      await repos.close();
    },
  };
}

/** What /metrics reads when scraped; jobs are counted once per scrape. */
function metricSources(s: Services): MetricSources {
  let jobs: ReturnType<Repos["ingestion"]["stats"]> | null = null;
  return {
    beginScrape: () => {
      jobs = null;
    },
    jobs: () => (jobs ??= s.repos.ingestion.stats()),
    vectorIndex: () => ({ size: s.search.vectorCount, lastSaveMs: s.search.lastSaveMs, exactBytes: s.search.exactVectorBytes }),
    // the index's own count: SQLite's COUNT(*) read every chunk's place on each scrape
    keywordIndexSize: async () => s.search.keywords.index.size,
    projectBytes: () => s.repos.files.bytesByProject(),
  };
}

// Probes come every few seconds: a good answer holds 5 s, a bad one 1 s (recovery shows fast).
const READY_CACHE_MS = 5_000;
const NOT_READY_CACHE_MS = 1_000;
const READY_TIMEOUT_MS = 5_000;

/** /ready: the indexes are loaded (true once serving) and the embedder answers, checked at most every 5 s. */
function readiness(s: Services): ReadyCheck {
  let last: { at: number; value: Promise<{ ready: boolean; checks: Record<string, string> }> } | null = null;
  const check = async () => {
    const checks: Record<string, string> = { vector_index: `loaded (${s.search.vectorCount} vectors)` };
    try {
      await Promise.race([s.embedder.embed(["ready"], "query"), Bun.sleep(READY_TIMEOUT_MS).then(() => Promise.reject(new Error(`no answer in ${READY_TIMEOUT_MS / 1000} s`)))]);
      checks.embedder = `answers (${s.embedder.model.id})`;
      return { ready: true, checks };
    } catch (e) {
      checks.embedder = `failing: ${String((e as Error)?.message ?? e).slice(0, 200)}`;
      return { ready: false, checks };
    }
  };
  let ok = true;
  return () => {
    if (!last || Date.now() - last.at > (ok ? READY_CACHE_MS : NOT_READY_CACHE_MS))
      last = { at: Date.now(), value: check().then((r) => ((ok = r.ready), r)) };
    return last.value;
  };
}

/** `--metrics HOST:PORT`: /metrics alone, on its own address (an operator's network). */
function serveMetrics(listen: string, key: string | null): Server<unknown> {
  const colon = listen.lastIndexOf(":");
  const refusal = metricsRefusal(key);
  return Bun.serve({
    hostname: listen.slice(0, colon),
    port: Number(listen.slice(colon + 1)),
    reusePort: false,
    async fetch(req) {
      if (new URL(req.url).pathname !== "/metrics") return new Response("not found: this port serves /metrics\n", { status: 404 });
      const refused = refusal(req);
      if (refused) return errorResponse(refused);
      return new Response(await metrics.text(), { headers: { "content-type": metrics.contentType } });
    },
  });
}

export interface RunningServer {
  url: string;
  port: number;
  services: Services;
  stop(): Promise<void>;
}

export async function startServer(config: Config): Promise<RunningServer> {
  const lock = lockDataDir(config.dataDir);
  let services: Services;
  try {
    services = await openServices(config);
  } catch (e) {
    lock.release();
    throw e;
  }
  let server: Server<unknown>;
  let metricsServer: Server<unknown> | null = null;
  try {
    services.disk.start();
    await services.search.start();
    // Upkeep for data from older versions; a file deleted meanwhile by another process sharing
    // the database can make it fail, which must not stop this one from starting.
    const adopted = await services.stores.adoptOrphans([...EMBEDDABLE], Math.floor(Date.now() / 1000)).catch((e: unknown) => {
      log.warn("could not add earlier files to their project's knowledge base; the next start tries again", { error: String(e) });
      return 0;
    });
    if (adopted) log.info("added earlier files to their project's knowledge base", { files: adopted });
    const incomplete = await services.files.removeIncomplete();
    if (incomplete) log.info("recovered after an unclean stop", { incomplete_uploads_removed: incomplete });
    const limiter = new RateLimiter({ uploads: config.rateLimitUploads, requests: config.rateLimitRequests }, services.repos.coordination);
    if (config.metrics !== "off") metrics.enable(metricSources(services));
    const app = buildApp({ ...services, config, limiter, ready: readiness(services) });
    if (config.metrics !== "on" && config.metrics !== "off") metricsServer = serveMetrics(config.metrics, config.metricsKey);
    if (config.metrics === "off" && config.metricsKey) log.warn("--metrics-key is set, but --metrics is off: there is no /metrics to guard");
    server = serve((req) => app.handle(req), { hostname: config.host, port: config.port, idleTimeoutSeconds: config.idleTimeoutSeconds, corsOrigins: config.corsOrigins });
  } catch (e) {
    metricsServer?.stop(true);
    await services.search.stop().catch(() => {});
    await services.close();
    lock.release();
    throw e;
  }

  let sweeping = false;
  const sweep = async () => {
    if (sweeping) return;
    sweeping = true;
    try {
      // Processes sharing a database take turns: one sweeps while the others skip.
      await services.repos.coordination.runAlone("expiry-sweep", async () => {
        const n = await services.files.sweepExpired();
        if (n) log.info("deleted expired files", { count: n });
        const parts = await services.uploads.sweepExpired();
        if (parts) log.info("deleted the parts of uploads that expired before they were completed", { parts });
        // (PostgreSQL's deltas of projects' bytes, when no quota check or /metrics read folded them)
        await services.repos.files.foldTotals();
        const forgotten = await pruneTombstones(services.repos, nowSeconds() - TOMBSTONE_SECONDS);
        if (forgotten) log.info("forgot the list places of items deleted over a week ago", { count: forgotten });
      });
    } catch (e) {
      log.error("expiry sweep failed", { error: String(e) });
    } finally {
      sweeping = false;
    }
  };
  await sweep();
  await services.ingest.start();
  await services.responses.start();
  const timer = setInterval(sweep, config.expirySweepSeconds * 1000);
  // Blobs no row names (a crash between a blob's commit and its row's), swept beside requests:
  // it reads every blob's name, so a start does not wait for it. With a shared store, one
  // process sweeps while the others skip.
  const stopOrphanSweep = new AbortController();
  const orphanSweep = services.repos.coordination
    .runAlone("blob-sweep", async () => {
      const orphans = await services.files.removeOrphans(stopOrphanSweep.signal);
      if (orphans) log.info("recovered after an unclean stop", { orphan_blobs_removed: orphans });
    })
    .catch((e) => {
      // (a stop that outlasted the sweep's grace closed what it was reading)
      if (!stopOrphanSweep.signal.aborted) log.warn("the sweep for orphan blobs failed; the next start tries again", { error: String(e) });
    });

  const shownHost = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host;
  const url = `http://${shownHost}:${server.port}`;
  return {
    url,
    port: server.port!,
    services,
    async stop() {
      clearInterval(timer);
      stopOrphanSweep.abort();
      // Answers in progress end first, so no open stream holds the server's stop; a client
      // that keeps a connection past the grace period is cut.
      const closing = server.stop();
      metricsServer?.stop(true);
      services.chat.stop();
      await services.responses.stop();
      await waitAtMost(closing, SHUTDOWN_GRACE_MS);
      await server.stop(true);
      // It stops between blobs (told at the top); a bucket that does not answer a listing is not waited for.
      await waitAtMost(orphanSweep, SHUTDOWN_GRACE_MS);
      await services.ingest.stop();
      await services.search.stop();
      await services.close();
      lock.release();
    },
  };
}
