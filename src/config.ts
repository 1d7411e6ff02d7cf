import { availableParallelism } from "node:os";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseSize } from "./util/size";

// Every setting is declared once here: its flag, environment variable, default and parser.
// `ragd --help` is generated from this list, so the docs cannot drift from the code.

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  databaseUrl: string | null;
  blobUrl: string | null;
  s3Endpoint: string | null;
  s3Region: string | null;
  s3AccessKeyId: string | null;
  s3SecretAccessKey: string | null;
  apiKey: string | null;
  maxFileSize: number;
  projectQuota: number; // bytes, 0 = unlimited
  rateLimitUploads: number; // per key per minute, 0 = off
  rateLimitRequests: number; // per key per minute, 0 = off
  expirySweepSeconds: number;
  corsOrigins: string;
  idleTimeoutSeconds: number;
  diskReserve: number;
  logLevel: "debug" | "info" | "warn" | "error";
  ingestConcurrency: number;
  ingestTimeoutSeconds: number;
  ingestMaxAttempts: number;
  ingestLeaseSeconds: number;
  ingestMaxMemory: number;
  embedProvider: "bundled" | "onnx" | "openai";
  embedPrecision: "int8" | "fp32";
  embedModelDir: string | null;
  embedUrl: string | null;
  embedApiKey: string | null;
  embedModel: string | null;
  embedMaxTokens: number; // 0 = what the model declares
  embedThreads: number;
  /** Texts per batch; null: 8 for a local model, 32 for a remote API. */
  embedBatch: number | null;
  ocr: "on" | "off";
  ocrEmbedded: "on" | "off";
  ocrThreads: number;
  ocrMaxMegapixels: number;
  llmUrl: string | null;
  llmApiKey: string | null;
  llmModel: string | null;
  llmUpstreams: UpstreamSetting[];
  llmTimeoutSeconds: number;
  llmTools: "auto" | "on" | "off";
  chatGrounding: "off" | "knowledge_base";
  answerMaxResults: number;
  metrics: string;
  metricsKey: string | null;
  logFormat: "text" | "json";
}

/** A named model server (`--llm-upstreams`): requests for one of its models go to it. */
export interface UpstreamSetting {
  name: string;
  url: string;
  apiKey: string | null;
  models: string[];
  tools: "auto" | "on" | "off";
}

type Parsed<T> = { value: T } | { error: string };
type Parser<T> = (raw: string) => Parsed<T>;

interface Setting<K extends keyof Config = keyof Config> {
  key: K;
  flag: string;
  env: string;
  default: Config[K];
  help: string;
  parse: Parser<Config[K]>;
  show?: (v: Config[K]) => string;
}

const int = (min: number, max: number): Parser<number> => (raw) => {
  if (!/^\d+$/.test(raw.trim())) return { error: `expected a whole number, got "${raw}"` };
  const n = Number(raw);
  return n < min || n > max ? { error: `must be between ${min} and ${max}, got ${n}` } : { value: n };
};

const size = (min: number): Parser<number> => (raw) => {
  const n = parseSize(raw);
  if (n === null) return { error: `expected a size such as 512MB, 1GiB or 1048576, got "${raw}"` };
  return n < min ? { error: `must be at least ${min} bytes` } : { value: n };
};

const str: Parser<string> = (raw) => (raw.length ? { value: raw } : { error: "must not be empty" });

const oneOf = <T extends string>(...options: T[]): Parser<T> => (raw) =>
  options.includes(raw as T) ? { value: raw as T } : { error: `must be one of ${options.join(", ")}, got "${raw}"` };

const url: Parser<string> = (raw) => {
  try {
    const u = new URL(raw);
    if (u.protocol !== "http:" && u.protocol !== "https:") return { error: `must be an http(s) URL, got "${raw}"` };
    return { value: raw.replace(/\/+$/, "") };
  } catch {
    return { error: `must be a URL such as http://localhost:11434/v1, got "${raw}"` };
  }
};

/** `--llm-upstreams`: a JSON array, inline or `@file`, of {name, url, api_key?, models, tools?}. */
const upstreams: Parser<UpstreamSetting[]> = (raw) => {
  let text = raw.trim();
  if (text.startsWith("@")) {
    try {
      text = readFileSync(text.slice(1), "utf8");
    } catch (e) {
      return { error: `cannot read ${text.slice(1)}: ${(e as Error).message}` };
    }
  }
  let list: unknown;
  try {
    list = JSON.parse(text);
  } catch {
    return { error: 'expected a JSON array such as [{"name":"vllm","url":"http://vllm:8000/v1","models":["llama-3.1-8b"]}], or @file holding one' };
  }
  if (!Array.isArray(list)) return { error: "expected a JSON array of upstreams" };
  const out: UpstreamSetting[] = [];
  for (const [i, u] of list.entries()) {
    const at = `upstream ${i}`;
    if (typeof u !== "object" || u === null) return { error: `${at}: expected an object` };
    const { name, url: address, api_key, models, tools, ...rest } = u as Record<string, unknown>;
    if (Object.keys(rest).length) return { error: `${at}: unknown field ${Object.keys(rest)[0]} (name, url, api_key, models, tools)` };
    if (typeof name !== "string" || !/^[A-Za-z0-9._-]{1,64}$/.test(name)) return { error: `${at}: name must be 1-64 letters, digits, '.', '_' or '-'` };
    if (out.some((o) => o.name === name)) return { error: `${at}: the name ${name} is used twice` };
    const parsed = typeof address === "string" ? url(address) : { error: "url is required" };
    if ("error" in parsed) return { error: `${at} (${name}): ${parsed.error}` };
    if (api_key !== undefined && api_key !== null && typeof api_key !== "string") return { error: `${at} (${name}): api_key must be a string` };
    if (!Array.isArray(models) || !models.length || models.some((m) => typeof m !== "string" || !m)) return { error: `${at} (${name}): models must list the model ids it serves` };
    if (tools !== undefined && tools !== "auto" && tools !== "on" && tools !== "off") return { error: `${at} (${name}): tools must be auto, on or off` };
    out.push({ name, url: parsed.value, apiKey: (api_key as string | null | undefined) ?? null, models: models as string[], tools: (tools as UpstreamSetting["tools"]) ?? "auto" });
  }
  return { value: out };
};

const SETTINGS: Setting[] = [
  { key: "host", flag: "--host", env: "RAGD_HOST", default: "0.0.0.0", help: "address to listen on", parse: str },
  { key: "port", flag: "--port", env: "RAGD_PORT", default: 8080, help: "TCP port (0 picks a free one)", parse: int(0, 65535) },
  { key: "dataDir", flag: "--data-dir", env: "RAGD_DATA_DIR", default: "./ragd-data", help: "where the database, file bytes and indexes live", parse: str },
  {
    key: "databaseUrl", flag: "--database-url", env: "RAGD_DATABASE_URL", default: null,
    help: "postgres://user@host/db: metadata in PostgreSQL instead of the data directory's SQLite (apply its schema with `ragd migrate`)",
    parse: (raw) => (/^postgres(ql)?:\/\//.test(raw) ? { value: raw } : { error: "must be a postgres:// or postgresql:// URL" }),
    show: (v) => (v ? String(v).replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@") : "none (SQLite in the data directory)"),
  },
  {
    key: "blobUrl", flag: "--blob-url", env: "RAGD_BLOB_URL", default: null,
    help: "s3://bucket/prefix, or file:///shared/dir: file bytes where several ragd processes (with --database-url) share them, instead of the data directory",
    parse: (raw) => (/^file:\/\/\/./.test(raw) || /^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/.test(raw) ? { value: raw } : { error: "must be s3://bucket/prefix or file:///absolute/path" }),
    show: (v) => (v ? String(v) : "none (the data directory)"),
  },
  { key: "s3Endpoint", flag: "--s3-endpoint", env: "RAGD_S3_ENDPOINT", default: null, help: "S3-compatible service URL (AWS when unset; S3_ENDPOINT / AWS_ENDPOINT also read)", parse: str, show: (v) => v ?? "none" },
  { key: "s3Region", flag: "--s3-region", env: "RAGD_S3_REGION", default: null, help: "S3 region (or S3_REGION / AWS_REGION)", parse: str, show: (v) => v ?? "none" },
  { key: "s3AccessKeyId", flag: "--s3-access-key-id", env: "RAGD_S3_ACCESS_KEY_ID", default: null, help: "S3 access key id (or S3_ACCESS_KEY_ID / AWS_ACCESS_KEY_ID)", parse: str, show: (v) => (v ? "set" : "none") },
  { key: "s3SecretAccessKey", flag: "--s3-secret-access-key", env: "RAGD_S3_SECRET_ACCESS_KEY", default: null, help: "S3 secret key (or S3_SECRET_ACCESS_KEY / AWS_SECRET_ACCESS_KEY)", parse: str, show: (v) => (v ? "set" : "none") },
  {
    key: "apiKey", flag: "--api-key", env: "RAGD_API_KEY", default: null,
    help: "a key bound to the project \"default\" (sidecar use; not stored)",
    parse: (raw) => (raw.length >= 8 ? { value: raw } : { error: "must be at least 8 characters" }),
    show: (v) => (v ? "(set)" : "(none)"),
  },
  { key: "maxFileSize", flag: "--max-file-size", env: "RAGD_MAX_FILE_SIZE", default: 512 * 1024 * 1024, help: "largest accepted upload (512MiB)", parse: size(1) },
  { key: "projectQuota", flag: "--project-quota", env: "RAGD_PROJECT_QUOTA", default: 0, help: "bytes a project may store, 0 = unlimited", parse: size(0) },
  { key: "rateLimitUploads", flag: "--rate-limit-uploads", env: "RAGD_RATE_LIMIT_UPLOADS", default: 0, help: "uploads per key per minute, 0 = off", parse: int(0, 1e9) },
  { key: "rateLimitRequests", flag: "--rate-limit-requests", env: "RAGD_RATE_LIMIT_REQUESTS", default: 0, help: "other API calls per key per minute, 0 = off", parse: int(0, 1e9) },
  { key: "expirySweepSeconds", flag: "--expiry-sweep-interval", env: "RAGD_EXPIRY_SWEEP_INTERVAL", default: 60, help: "seconds between sweeps that delete expired files (and forget the cursors of items deleted over a week ago)", parse: int(1, 86400) },
  { key: "corsOrigins", flag: "--cors-origins", env: "RAGD_CORS_ORIGINS", default: "*", help: "allowed browser origins, comma-separated, * for any", parse: str },
  {
    key: "idleTimeoutSeconds", flag: "--idle-timeout", env: "RAGD_IDLE_TIMEOUT", default: 30,
    help: "seconds a client may stay silent while sending a request before its connection is closed", parse: int(1, 255),
  },
  {
    key: "diskReserve", flag: "--disk-reserve", env: "RAGD_DISK_RESERVE", default: 64 * 1024 * 1024,
    help: "space kept free on the data volume and released when it fills, so deletes still work (64MiB; 0 = none)", parse: size(0),
  },
  {
    key: "ingestConcurrency", flag: "--ingest-concurrency", env: "RAGD_INGEST_CONCURRENCY", default: availableParallelism(),
    help: "documents parsed at once, each in its own worker (default: the number of cores)", parse: int(1, 256),
  },
  {
    key: "ingestTimeoutSeconds", flag: "--ingest-timeout", env: "RAGD_INGEST_TIMEOUT", default: 600,
    help: "seconds one document may take to parse before its file becomes an error", parse: int(1, 86400),
  },
  {
    key: "ingestMaxAttempts", flag: "--ingest-max-attempts", env: "RAGD_INGEST_MAX_ATTEMPTS", default: 3,
    help: "tries per document after crashes or transient failures", parse: int(1, 100),
  },
  {
    key: "ingestLeaseSeconds", flag: "--ingest-lease", env: "RAGD_INGEST_LEASE", default: 15,
    help: "seconds a parse job stays claimed without a heartbeat; after a crash its jobs restart this soon", parse: int(1, 3600),
  },
  {
    key: "ingestMaxMemory", flag: "--ingest-max-memory", env: "RAGD_INGEST_MAX_MEMORY", default: 1024 ** 3,
    help: "memory one document's parse may use (1GiB); past it the file ends in error", parse: size(64 * 1024 * 1024),
  },
  {
    key: "embedProvider", flag: "--embed-provider", env: "RAGD_EMBED_PROVIDER", default: "bundled",
    help: "bundled (the built-in model), onnx (a local sentence-transformers ONNX export) or openai (a remote /v1/embeddings API)",
    parse: oneOf("bundled", "onnx", "openai"),
  },
  {
    key: "embedPrecision", flag: "--embed-precision", env: "RAGD_EMBED_PRECISION", default: "int8",
    help: "the bundled model's weights: int8 (faster) or fp32", parse: oneOf("int8", "fp32"),
  },
  { key: "embedModelDir", flag: "--embed-model-dir", env: "RAGD_EMBED_MODEL_DIR", default: null, help: "onnx: directory with model.onnx (or onnx/model.onnx) and tokenizer.json", parse: str, show: (v) => v ?? "none" },
  { key: "embedUrl", flag: "--embed-url", env: "RAGD_EMBED_URL", default: null, help: "openai: base URL such as https://api.openai.com/v1", parse: str, show: (v) => v ?? "none" },
  { key: "embedApiKey", flag: "--embed-api-key", env: "RAGD_EMBED_API_KEY", default: null, help: "openai: the API key", parse: str, show: (v) => (v ? "set" : "none") },
  { key: "embedModel", flag: "--embed-model", env: "RAGD_EMBED_MODEL", default: null, help: "openai: the model name; onnx: the id to serve it as", parse: str, show: (v) => v ?? "none" },
  { key: "embedMaxTokens", flag: "--embed-max-tokens", env: "RAGD_EMBED_MAX_TOKENS", default: 0, help: "tokens the model reads, 0 = what it declares", parse: int(0, 32768) },
  { key: "embedThreads", flag: "--embed-threads", env: "RAGD_EMBED_THREADS", default: availableParallelism(), help: "the bundled model's Workers (one thread each), or an onnx model's session threads", parse: int(1, 256) },
// Local models run small batches: a search waits at most one batch for a worker while
  // documents ingest (8 full-length texts take about 25 ms on one thread), and 8 ran as fast
  // as 32 in bench model. A remote API gets fewer, larger requests.
  { key: "embedBatch", flag: "--embed-batch", env: "RAGD_EMBED_BATCH", default: null, help: "texts per embedding batch (8 for a local model, 32 for a remote API)", parse: int(1, 1024), show: (v) => (v === null ? "auto" : String(v)) },
  { key: "ocr", flag: "--ocr", env: "RAGD_OCR", default: "on", help: "read images and scanned PDF pages: on or off", parse: oneOf("on", "off") },
  {
    key: "ocrEmbedded", flag: "--ocr-embedded", env: "RAGD_OCR_EMBEDDED", default: "on",
    help: "also read pictures inside documents (DOCX, PPTX, XLSX, ODF, EPUB, HTML, e-mail): on or off", parse: oneOf("on", "off"),
  },
  { key: "ocrThreads", flag: "--ocr-threads", env: "RAGD_OCR_THREADS", default: 1, help: "threads of each OCR session (one per parse worker)", parse: int(1, 256) },
  { key: "ocrMaxMegapixels", flag: "--ocr-max-megapixels", env: "RAGD_OCR_MAX_MEGAPIXELS", default: 50, help: "larger images are refused before decoding", parse: int(1, 1000) },
  {
    key: "llmUrl", flag: "--llm-url", env: "RAGD_LLM_URL", default: null,
    help: "the model server that writes answers: an OpenAI-compatible base URL such as http://localhost:11434/v1 (Ollama), http://vllm:8000/v1", parse: url, show: (v) => v ?? "none",
  },
  { key: "llmApiKey", flag: "--llm-api-key", env: "RAGD_LLM_API_KEY", default: null, help: "the model server's API key, if it wants one", parse: str, show: (v) => (v ? "set" : "none") },
  { key: "llmModel", flag: "--llm-model", env: "RAGD_LLM_MODEL", default: null, help: "the chat model used when a request names none", parse: str, show: (v) => v ?? "none" },
  {
    key: "llmUpstreams", flag: "--llm-upstreams", env: "RAGD_LLM_UPSTREAMS", default: [],
    help: 'more model servers, each with its models: JSON or @file, [{"name","url","api_key","models":[...],"tools":"auto|on|off"}]', parse: upstreams,
    show: (v) => (v as UpstreamSetting[]).map((u) => u.name).join(", ") || "none",
  },
  {
    key: "llmTimeoutSeconds", flag: "--llm-timeout", env: "RAGD_LLM_TIMEOUT", default: 300,
    help: "seconds the model server may take to start answering, and to stay silent mid-answer", parse: int(1, 3600),
  },
  {
    key: "llmTools", flag: "--llm-tools", env: "RAGD_LLM_TOOLS", default: "auto",
    help: "whether --llm-url's models take tool calls: auto (try, and fall back when refused), on or off (ragd searches with the user's input)", parse: oneOf("auto", "on", "off"),
  },
  {
    key: "chatGrounding", flag: "--chat-grounding", env: "RAGD_CHAT_GROUNDING", default: "off",
    help: "ground every /v1/chat/completions request in the project's knowledge base: off or knowledge_base", parse: oneOf("off", "knowledge_base"),
  },
  { key: "answerMaxResults", flag: "--answer-max-results", env: "RAGD_ANSWER_MAX_RESULTS", default: 8, help: "passages put before the model per search, unless a request says", parse: int(1, 50) },
  {
    key: "metrics", flag: "--metrics", env: "RAGD_METRICS", default: "on",
    help: "GET /metrics for Prometheus: on (this port), off, or HOST:PORT to serve it there alone",
    parse: (raw) => (raw === "on" || raw === "off" || /^[^\s:]+:\d{1,5}$/.test(raw) ? { value: raw } : { error: `must be on, off or HOST:PORT, got "${raw}"` }),
  },
  {
    key: "metricsKey", flag: "--metrics-key", env: "RAGD_METRICS_KEY", default: null,
    help: "a bearer token /metrics then requires (Prometheus: authorization.credentials); without one it answers anyone who reaches it",
    // (a header's value reaches the server trimmed: a key with spaces could never match)
    parse: (raw) => (raw.length < 16 ? { error: "must be at least 16 characters" } : /\s/.test(raw) ? { error: "must not hold spaces" } : { value: raw }),
    show: (v) => (v ? "(set)" : "(none)"),
  },
  { key: "logFormat", flag: "--log-format", env: "RAGD_LOG_FORMAT", default: "text", help: "text, or json (one object per line) for log shippers", parse: oneOf("text", "json") },
  {
    key: "logLevel", flag: "--log-level", env: "RAGD_LOG_LEVEL", default: "info", help: "debug, info, warn or error",
    parse: oneOf("debug", "info", "warn", "error"),
  },
] as Setting[];

export class ConfigError extends Error {}

export const defaults = (): Config =>
  Object.fromEntries(SETTINGS.map((s) => [s.key, s.default])) as unknown as Config;

/**
 * Flags win over environment variables, which win over defaults. Unknown flags are errors:
 * a typo must not silently fall back to a default.
 */
export function loadConfig(args: string[], env: Record<string, string | undefined> = process.env): Config {
  const cfg = defaults() as unknown as Record<string, unknown>;
  const apply = (s: Setting, raw: string, source: string) => {
    const r = s.parse(raw);
    if ("error" in r) throw new ConfigError(`${source}: ${r.error}`);
    cfg[s.key] = r.value;
  };
  for (const s of SETTINGS) {
    const raw = env[s.env];
    if (raw !== undefined && raw !== "") apply(s, raw, s.env);
  }
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.indexOf("=");
    const name = eq >= 0 ? arg.slice(0, eq) : arg;
    const s = SETTINGS.find((x) => x.flag === name);
    if (!s) throw new ConfigError(`unknown option ${name}; run "ragd --help" for the list`);
    const raw = eq >= 0 ? arg.slice(eq + 1) : args[++i];
    if (raw === undefined) throw new ConfigError(`${name} needs a value`);
    apply(s, raw, name);
  }
  const out = cfg as unknown as Config;
  out.dataDir = resolve(out.dataDir);
  // Without a shared database each process would take the others' files for leftovers.
  if (out.blobUrl && !out.databaseUrl) throw new ConfigError("--blob-url shares file bytes between ragd processes, which needs --database-url (a database they share)");
  return out;
}

export function settingsHelp(): string {
  const rows = SETTINGS.map((s) => {
    const d = s.show ? s.show(s.default as never) : String(s.default);
    return `  ${(s.flag + " <v>").padEnd(30)}${s.env.padEnd(28)}${s.help} (default ${d})`;
  });
  return rows.join("\n");
}
