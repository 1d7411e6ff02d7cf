// onnxruntime through its native addon, without onnxruntime-node's JS: importing that (it
// pulls in onnxruntime-common) never finishes inside a Bun Worker (Bun 1.4.5), and the single
// binary can only load the addon from a real file (see native/extract.ts). The embedder and
// OCR both run their models through this, each inside its own Worker.

import { native } from "./guard";

/** What the addon reads from inputs and builds for outputs. */
export class OrtTensor {
  constructor(
    readonly type: string,
    readonly data: BigInt64Array | Float32Array,
    readonly dims: number[],
  ) {}
  get location() {
    return "cpu";
  }
  get size() {
    return this.data.length;
  }
}

export interface OrtSession {
  readonly inputNames: string[];
  readonly outputNames: string[];
  run(feeds: Record<string, OrtTensor>, outputs?: string[]): Record<string, { data: Float32Array; dims: number[] }>;
}

const bindings = new Map<string, any>();

function binding(path: string) {
  let b = bindings.get(path);
  if (!b) {
    b = require(path);
    // Log level 3 = errors only; the Tensor class is how outputs come back.
    b.initOrtOnce(3, OrtTensor, false);
    bindings.set(path, b);
  }
  return b;
}

/** A session on a model held in memory, with `threads` intra-op threads. */
export function openSession(bindingPath: string, model: Uint8Array | ArrayBuffer, threads: number): OrtSession {
  const b = binding(bindingPath);
  const session = new b.InferenceSession();
  const buf = model instanceof Uint8Array ? model.buffer : model;
  const offset = model instanceof Uint8Array ? model.byteOffset : 0;
  // No spinning between ops: parse workers and the HTTP thread share the cores, and cycles
  // spun away are theirs (pipeline throughput on small files +15%, the model alone unchanged).
  const extra = { "session.intra_op.allow_spinning": "0" };
  session.loadModel(buf, offset, model.byteLength, { intraOpNumThreads: Math.max(1, threads), interOpNumThreads: 1, graphOptimizationLevel: "all", extra });
  const inputNames: string[] = session.inputMetadata.map((m: { name: string }) => m.name);
  const outputNames: string[] = session.outputMetadata.map((m: { name: string }) => m.name);
  return {
    inputNames,
    outputNames,
    run(feeds, outputs = outputNames) {
      return native(() => session.run(feeds, Object.fromEntries(outputs.map((n) => [n, null])), {}));
    },
  };
}
