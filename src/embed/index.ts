import { existsSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { OnnxProvider } from "./onnx-provider";
import type { EmbeddingProvider } from "./provider";
import { EmbedError } from "./provider";
import { RemoteProvider } from "./remote-provider";
import { BUNDLED } from "./assets";
import { hasVnni } from "./cpu";

export interface EmbedConfig {
  provider: "bundled" | "onnx" | "openai";
  precision: "int8" | "fp32";
  /** onnx: a directory with a sentence-transformers ONNX export and tokenizer.json. */
  modelDir: string | null;
  /** openai: base URL, key and model name. */
  url: string | null;
  apiKey: string | null;
  model: string | null;
  maxTokens: number | null;
  threads: number;
  /** null: 8 for a local model, 32 for a remote API. */
  batchSize: number | null;
  /** onnxruntime's addon, from native/assets.ts. */
  onnxruntime: string;
}

/**
 * The bundled model's files: embedded in the binary (int8), or from models/dist
 * (RAGD_MODELS_DIR overrides). int8 comes in two builds of the same quantised model, whose
 * vectors agree to a cosine of 0.9999: int8 weights for CPUs with VNNI, uint8 for the rest.
 */
function bundledModel(precision: "int8" | "fp32") {
  const dir = process.env.RAGD_MODELS_DIR;
  const vnni = precision === "int8" && hasVnni();
  if (!dir && precision === "int8") return { modelPath: vnni ? BUNDLED.int8VnniModel : BUNDLED.int8Model, vocabPath: BUNDLED.vocab };
  const from = dir ?? resolve(import.meta.dir, "../../models/dist");
  const vnniPath = join(from, `use-lite-${precision}-vnni.onnx`);
  // a models directory built before the VNNI build existed still serves
  return { modelPath: vnni && existsSync(vnniPath) ? vnniPath : join(from, `use-lite-${precision}.onnx`), vocabPath: join(from, "use-lite-vocab.json") };
}

const LOCAL_BATCH = 8;
const REMOTE_BATCH = 32;

/** The default model: Universal Sentence Encoder Lite, int8, 512 dimensions. */
export const BUNDLED_MODEL_ID = "use-lite-int8";

export async function openProvider(c: EmbedConfig): Promise<EmbeddingProvider> {
  if (c.provider === "bundled") {
    const { modelPath, vocabPath } = bundledModel(c.precision);
    if (!existsSync(modelPath))
      throw new EmbedError(`the ${c.precision} embedding model is not at ${modelPath}; run \`make models\`${c.precision === "fp32" ? " (the single binary carries only int8)" : ""}`);
    return OnnxProvider.open({
      id: `use-lite-${c.precision}`,
      modelPath,
      bindingPath: c.onnxruntime,
      tokenizer: { kind: "unigram", vocabPath },
      maxTokens: 128,
      keepLastToken: false,
      // a small model: a worker per core, each on one thread (see onnx-provider.ts)
      workers: c.threads,
      threads: 1,
      batchSize: c.batchSize ?? LOCAL_BATCH,
      ownedBy: "ragd",
    });
  }
  if (c.provider === "onnx") {
    if (!c.modelDir) throw new EmbedError("--embed-provider onnx needs --embed-model-dir (a directory with model.onnx and tokenizer.json)");
    const dir = resolve(c.modelDir);
    const modelPath = [join(dir, "model.onnx"), join(dir, "onnx", "model.onnx")].find(existsSync);
    if (!modelPath) throw new EmbedError(`no model.onnx in ${dir} or ${dir}/onnx`);
    if (!existsSync(join(dir, "tokenizer.json"))) throw new EmbedError(`no tokenizer.json in ${dir}`);
    return OnnxProvider.open({
      id: c.model ?? basename(dir),
      modelPath,
      bindingPath: c.onnxruntime,
      tokenizer: { kind: "hf", dir },
      maxTokens: c.maxTokens ?? (await modelMaxLength(dir)),
      keepLastToken: true,
      // a model of the user's, possibly of a gigabyte: one session (one copy in memory), its
      // products spread over the threads
      workers: 1,
      threads: c.threads,
      batchSize: c.batchSize ?? LOCAL_BATCH,
      ownedBy: "local",
    });
  }
  if (!c.url || !c.apiKey || !c.model) throw new EmbedError("--embed-provider openai needs --embed-url, --embed-api-key and --embed-model");
  return RemoteProvider.open({ url: c.url, apiKey: c.apiKey, model: c.model, maxTokens: c.maxTokens ?? 8191, batchSize: c.batchSize ?? REMOTE_BATCH });
}

async function modelMaxLength(dir: string): Promise<number> {
  for (const [file, key] of [["tokenizer_config.json", "model_max_length"], ["config.json", "max_position_embeddings"]] as const) {
    const path = join(dir, file);
    if (!existsSync(path)) continue;
    const v = (await Bun.file(path).json())[key];
    if (typeof v === "number" && v > 0 && v <= 32768) return v;
  }
  return 512;
}
