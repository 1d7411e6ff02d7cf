// A sentence-transformers-shaped ONNX export small enough to write in a test: a BERT WordPiece
// tokenizer.json (lowercasing, punctuation split, [CLS] ... [SEP]) and a graph whose
// `last_hidden_state` is a word vector plus a token-type vector per token. Words of one topic
// share a direction, so search can tell topics apart. The [PAD] row is large on purpose: a
// pooling that counted padding would move every vector of a mixed-length batch.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DataType, encodeModel } from "../../models/onnx-proto";

export const DIMS = 16;
export const MAX_TOKENS = 16;
const SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"];
const TOPICS: Record<string, string[]> = {
  geology: ["basalt", "granite", "rock", "volcanic", "lava", "quarry", "mineral", "crust"],
  cooking: ["bread", "oven", "flour", "yeast", "bake", "dough", "salt", "butter"],
  astronomy: ["star", "orbit", "planet", "telescope", "galaxy", "comet", "moon", "nebula"],
};
const COMMON = ["the", "a", "of", "and", "in", "is", "on", "with", "##s", "##ed", "!", ".", ","];

export interface TinyModel {
  vocab: string[];
  /** The vector a sentence-transformers mean pooling gives for these token ids, normalised. */
  reference(ids: number[]): Float32Array;
}

/** Writes model.onnx, tokenizer.json and tokenizer_config.json into `dir`. */
export function writeTinySentenceModel(dir: string): TinyModel {
  const vocab = [...SPECIAL, ...COMMON, ...Object.values(TOPICS).flat()];
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  const table = new Float32Array(vocab.length * DIMS);
  vocab.forEach((word, id) => {
    const topic = Object.keys(TOPICS).findIndex((t) => TOPICS[t]!.includes(word));
    for (let d = 0; d < DIMS; d++) table[id * DIMS + d] = word === "[PAD]" ? 5 : 0.15 * rand() + (topic >= 0 && d === topic ? 1 : 0);
  });
  const types = new Float32Array(2 * DIMS).map((_, i) => (i < DIMS ? 0.01 : 0.5));
  const model = encodeModel({
    graphName: "tiny-sentence-model",
    producer: "ragd test/helpers/tiny-sentence-model.ts",
    nodes: [
      { op: "Gather", inputs: ["word_vectors", "input_ids"], outputs: ["words"] },
      { op: "Gather", inputs: ["type_vectors", "token_type_ids"], outputs: ["types"] },
      { op: "Add", inputs: ["words", "types"], outputs: ["last_hidden_state"] },
    ],
    initializers: [
      { name: "word_vectors", type: DataType.FLOAT, dims: [vocab.length, DIMS], data: table },
      { name: "type_vectors", type: DataType.FLOAT, dims: [2, DIMS], data: types },
    ],
    inputs: [
      { name: "input_ids", type: DataType.INT64, shape: ["batch", "sequence"] },
      { name: "attention_mask", type: DataType.INT64, shape: ["batch", "sequence"] },
      { name: "token_type_ids", type: DataType.INT64, shape: ["batch", "sequence"] },
    ],
    outputs: [{ name: "last_hidden_state", type: DataType.FLOAT, shape: ["batch", "sequence", DIMS] }],
    opsets: { "": 17 },
  });
  const special = (content: string) => ({ id: vocab.indexOf(content), content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const tokenizer = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: SPECIAL.map(special),
    normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "[SEP]", type_id: 0 } }],
      pair: [
        { SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "[SEP]", type_id: 0 } },
        { Sequence: { id: "B", type_id: 1 } }, { SpecialToken: { id: "[SEP]", type_id: 1 } },
      ],
      special_tokens: Object.fromEntries(["[CLS]", "[SEP]"].map((t) => [t, { id: t, ids: [vocab.indexOf(t)], tokens: [t] }])),
    },
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: { type: "WordPiece", unk_token: "[UNK]", continuing_subword_prefix: "##", max_input_chars_per_word: 100, vocab: Object.fromEntries(vocab.map((w, i) => [w, i])) },
  };
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "model.onnx"), model);
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tokenizer));
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ model_max_length: MAX_TOKENS, do_lower_case: true, tokenizer_class: "BertTokenizer" }));
  return {
    vocab,
    reference(ids) {
      const v = new Float32Array(DIMS);
      for (const id of ids) for (let d = 0; d < DIMS; d++) v[d]! += table[id * DIMS + d]! + types[d]!;
      const norm = Math.hypot(...v);
      return v.map((x) => x / norm);
    },
  };
}
