import type { Database } from "bun:sqlite";
import { join } from "node:path";
import { buildApp } from "./app";
import type { Config } from "./config";
import { RateLimiter } from "./http/rate-limit";
import { IngestPipeline } from "./ingest/pipeline";
import { EMBEDDABLE, FilesService } from "./services/files";
import { KeysService } from "./services/keys";
import { DiskBlobStore } from "./storage/blobs";
import { openDatabase } from "./storage/db";
import { SqliteFilesRepo } from "./storage/files-repo";
import { SqliteJobsRepo } from "./storage/jobs-repo";
import { SqliteKeysRepo } from "./storage/keys-repo";
import { log } from "./util/log";

export interface Services {
  db: Database;
  files: FilesService;
  keys: KeysService;
  ingest: IngestPipeline;
}

/** Opens the data directory: database, blobs and the services over them. */
export async function openServices(config: Config): Promise<Services> {
  const db = openDatabase(join(config.dataDir, "ragd.db"));
  const blobs = new DiskBlobStore(join(config.dataDir, "blobs"));
  const files = new FilesService(new SqliteFilesRepo(db), blobs, { maxFileSize: config.maxFileSize, projectQuota: config.projectQuota });
  const keys = new KeysService(new SqliteKeysRepo(db), config.apiKey);
  await keys.init();
  const ingest = new IngestPipeline(new SqliteJobsRepo(db), blobs, {
    concurrency: config.ingestConcurrency,
    timeoutMs: config.ingestTimeoutSeconds * 1000,
    maxAttempts: config.ingestMaxAttempts,
    purposes: [...EMBEDDABLE],
    leaseMs: config.ingestLeaseSeconds * 1000,
  });
  files.attachIngest(ingest);
  return { db, files, keys, ingest };
}

export interface RunningServer {
  url: string;
  port: number;
  services: Services;
  stop(): Promise<void>;
}

export async function startServer(config: Config): Promise<RunningServer> {
  const services = await openServices(config);
  const r = await services.files.reconcile();
  if (r.incomplete || r.orphans) log.info("recovered after an unclean stop", { incomplete_uploads_removed: r.incomplete, orphan_blobs_removed: r.orphans });

  const limiter = new RateLimiter({ uploads: config.rateLimitUploads, requests: config.rateLimitRequests });
  const app = buildApp({ config, files: services.files, keys: services.keys, limiter });
  app.listen({ hostname: config.host, port: config.port });
  const server = app.server!;

  let sweeping = false;
  const sweep = async () => {
    if (sweeping) return;
    sweeping = true;
    try {
      const n = await services.files.sweepExpired();
      if (n) log.info("deleted expired files", { count: n });
    } catch (e) {
      log.error("expiry sweep failed", { error: String(e) });
    } finally {
      sweeping = false;
    }
  };
  await sweep();
  await services.ingest.start();
  const timer = setInterval(sweep, config.expirySweepSeconds * 1000);

  const shownHost = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host;
  const url = `http://${shownHost}:${server.port}`;
  return {
    url,
    port: server.port!,
    services,
    async stop() {
      clearInterval(timer);
      await app.stop();
      await services.ingest.stop();
      services.db.close();
    },
  };
}
