/// <reference path="./assets.d.ts" />
// What the bundled embedder needs on disk, as `type: "file"` imports: from source these are
// the real paths; in the single binary (`bun build --compile`) they are embedded and read
// through Bun's virtual filesystem. Only the int8 model is carried (both of its builds, see
// embed/index.ts); fp32 comes from models/dist (RAGD_MODELS_DIR) when run from source.
import int8Model from "../../models/dist/use-lite-int8.onnx" with { type: "file" };
import int8VnniModel from "../../models/dist/use-lite-int8-vnni.onnx" with { type: "file" };
import vocabFile from "../../models/dist/use-lite-vocab.json" with { type: "file" };

// `type: "file"` yields a path; TypeScript only knows JSON imports as their content.
const vocab = vocabFile as unknown as string;

export const BUNDLED = { int8Model, int8VnniModel, vocab };

