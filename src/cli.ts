import { resolve } from "node:path";
import pkg from "../package.json";
import { ConfigError, loadConfig, settingsHelp } from "./config";
import { openBlobStore, openKeys, openServices, startServer } from "./server";
import { importDataDir } from "./storage/import-data-dir";
import { DEFAULT_PROJECT } from "./services/keys";
import { lockDataDir } from "./storage/data-lock";
import { describeDatabase, migrateDatabase } from "./storage/postgres";
import { log, setLogFormat, setLogLevel } from "./util/log";
import { BUNDLED_MODEL_ID } from "./embed/index";
import { OCR_MODEL_ID } from "./ocr/assets";

// Set by `make build` (--define); a run from source says "dev".
declare const RAGD_COMMIT: string | undefined;
const COMMIT = typeof RAGD_COMMIT === "string" ? RAGD_COMMIT : "dev";

const USAGE = `ragd ${pkg.version}: an OpenAI-compatible Files API and knowledge base

Usage:
  ragd serve [options]                    start the server
  ragd keys create --project NAME [opts]  create an API key (printed once) for a project
  ragd keys list [options]                list keys (ids and prefixes, never the keys)
  ragd keys revoke KEY_ID [options]       revoke a key
  ragd reindex [options]                  re-embed every chunk with the configured model
                                          (needed after changing the embedding model)
  ragd migrate --database-url URL         create or upgrade ragd's schema in a PostgreSQL database
       [--from-data-dir DIR --blob-url URL] and import a single-node data directory into it
  ragd version                            print the version

Options (each also read from its environment variable):
${settingsHelp()}
`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === "--help" || cmd === "-h" || cmd === "help") {
    process.stdout.write(USAGE);
    return cmd ? 0 : 2;
  }
  if (cmd === "version" || cmd === "--version" || cmd === "-v") {
    process.stdout.write(
      `ragd ${pkg.version} (commit ${COMMIT})\n` +
        `embedding model: ${BUNDLED_MODEL_ID} (bundled; --embed-provider selects another)\n` +
        `OCR model: ${OCR_MODEL_ID}\n`,
    );
    return 0;
  }
  if (cmd === "serve") return serve(rest);
  if (cmd === "keys") return keys(rest);
  if (cmd === "reindex") return reindex(rest);
  if (cmd === "migrate") return migrateCommand(rest);
  process.stderr.write(`ragd: unknown command "${cmd}"\n\n${USAGE}`);
  return 2;
}

async function serve(args: string[]): Promise<number> {
  if (args.includes("--help")) {
    process.stdout.write(USAGE);
    return 0;
  }
  const config = loadConfig(args);
  setLogLevel(config.logLevel);
  setLogFormat(config.logFormat);
  const server = await startServer(config);
  if (!(await server.services.keys.hasKeys())) {
    // A fresh install must be usable at once, and never open: make the first key now.
    const k = await server.services.keys.create(DEFAULT_PROJECT);
    log.warn(`no API keys existed, so one was created for project "${DEFAULT_PROJECT}". It is shown only this once:`);
    process.stderr.write(`\n    ${k.key}\n\n`);
  }
  log.info(`ragd ${pkg.version} listening`, { url: server.url, data_dir: config.dataDir });
  process.stdout.write(`ragd listening on ${server.url}\n`);
  const shutdown = async (signal: string) => {
    log.info("shutting down", { signal });
    await server.stop();
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  return -1; // keep running
}

async function reindex(args: string[]): Promise<number> {
  const config = loadConfig(args);
  setLogLevel(config.logLevel);
  setLogFormat(config.logFormat);
  // Rewriting every vector beside a running server would race its ingestion.
  const lock = lockDataDir(config.dataDir);
  const s = await openServices(config).catch((e) => {
    lock.release();
    throw e;
  });
  try {
    const total = await s.search.reindex((done, all) => process.stderr.write(`\rembedded ${done} of ${all} chunks`));
    process.stderr.write(`\n`);
    process.stdout.write(`re-embedded ${total} chunks with ${s.embedder.model.id} (${s.embedder.model.dims} dimensions)\n`);
    return 0;
  } finally {
    await s.close();
    lock.release();
  }
}

async function migrateCommand(args: string[]): Promise<number> {
  const at = args.indexOf("--from-data-dir");
  const from = at >= 0 ? args[at + 1] : undefined;
  if (at >= 0) {
    if (!from || from.startsWith("--")) throw new ConfigError("--from-data-dir needs the data directory to import");
    args.splice(at, 2);
  }
  const config = loadConfig(args);
  if (!config.databaseUrl) throw new ConfigError("migrate needs --database-url postgres://... (or RAGD_DATABASE_URL); a data directory's SQLite database migrates itself");
  if (from === undefined) {
    const [was, now] = await migrateDatabase(config.databaseUrl);
    process.stdout.write(was === now ? `${describeDatabase(config.databaseUrl)}: schema already at version ${now}\n` : `${describeDatabase(config.databaseUrl)}: schema migrated from version ${was} to ${now}\n`);
    return 0;
  }
  if (!config.blobUrl) throw new ConfigError("--from-data-dir copies the files too: name where they go with --blob-url (s3://bucket/prefix or file:///shared/dir)");
  // No server may change the data directory while it is copied.
  const dir = resolve(from);
  const lock = lockDataDir(dir);
  try {
    const target = openBlobStore({ ...config, dataDir: dir });
    const r = await importDataDir(dir, config.databaseUrl, target, (m) => process.stderr.write(`${m}\n`));
    process.stdout.write(
      `imported ${dir} into ${describeDatabase(config.databaseUrl)} and ${config.blobUrl}: ${r.files} files (${r.bytes} bytes, each checked against its SHA-256), ` +
        `${r.rows.chunks ?? 0} chunks, ${r.rows.vector_stores ?? 0} vector stores, ${r.rows.api_keys ?? 0} keys\n`,
    );
    return 0;
  } finally {
    lock.release();
  }
}

async function keys(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const take = (flag: string) => {
    const i = rest.indexOf(flag);
    if (i < 0) return undefined;
    const v = rest[i + 1];
    rest.splice(i, 2);
    return v;
  };
  if (sub === "create") {
    const project = take("--project");
    if (!project) throw new ConfigError("keys create needs --project NAME");
    const { keys } = await openKeys(loadConfig(rest));
    const k = await keys.create(project);
    process.stderr.write(`created key ${k.id} for project "${k.project.name}"; store it now, it is not shown again:\n`);
    process.stdout.write(`${k.key}\n`);
    return 0;
  }
  if (sub === "list") {
    const { keys } = await openKeys(loadConfig(rest));
    const rows = await keys.list();
    // The project id is how /metrics labels a project (it shows no names: it needs no key).
    process.stdout.write(`${"ID".padEnd(22)}${"PROJECT".padEnd(20)}${"PREFIX".padEnd(16)}${"CREATED".padEnd(22)}${"STATUS".padEnd(9)}PROJECT ID\n`);
    for (const r of rows)
      process.stdout.write(
        `${r.id.padEnd(22)}${r.projectName.padEnd(20)}${(r.prefix + "...").padEnd(16)}${new Date(r.createdAt * 1000).toISOString().slice(0, 19).padEnd(22)}${(r.revokedAt ? "revoked" : "active").padEnd(9)}${r.projectId}\n`,
      );
    return 0;
  }
  if (sub === "revoke") {
    const id = rest.shift();
    if (!id || id.startsWith("--")) throw new ConfigError("keys revoke needs a key id (see `ragd keys list`)");
    const { keys } = await openKeys(loadConfig(rest));
    if (!(await keys.revoke(id))) {
      process.stderr.write(`ragd: no active key with id ${id}\n`);
      return 1;
    }
    process.stdout.write(`revoked ${id}\n`);
    return 0;
  }
  process.stderr.write(`ragd: keys needs create, list or revoke\n\n${USAGE}`);
  return 2;
}

// Exit once what was written has reached the pipe: process.exit drops what is still queued.
const flushed = () => Promise.all([new Promise((r) => process.stdout.write("", r)), new Promise((r) => process.stderr.write("", r))]);

// Some awaits (an S3 request, a database connection being made) do not hold Bun's event loop
// open by themselves; without this a command could end, silently and with status 0, half-way.
const keepAlive = setInterval(() => {}, 1 << 30);

main(process.argv.slice(2)).then(
  async (code) => {
    clearInterval(keepAlive);
    if (code < 0) return;
    await flushed();
    process.exit(code);
  },
  async (e) => {
    clearInterval(keepAlive);
    process.stderr.write(`ragd: ${e instanceof Error ? e.message : String(e)}\n`);
    await flushed();
    process.exit(e instanceof ConfigError ? 2 : 1);
  },
);
