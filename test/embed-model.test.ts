// The bundled model reproduces the original TF.js Universal Sentence Encoder Lite.
import { expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { openProvider, type EmbedConfig } from "../src/embed/index";
import { hasVnni } from "../src/embed/cpu";
import { OnnxProvider } from "../src/embed/onnx-provider";
import { UnigramTokenizer } from "../src/embed/tokenizer";
import { chunkBlocks } from "../src/ingest/chunker";
import { nativePaths } from "../src/native/assets";
import { ROOT, tempDir } from "./helpers/ragd";

interface Reference {
  sentences: { text: string; token_ids: number[]; embedding: number[] }[];
}

const SHARED = join(ROOT, "../shared/models/use-lite-reference.json");
const reference: Reference = JSON.parse(readFileSync(existsSync(SHARED) ? SHARED : join(ROOT, "test/fixtures/use-lite-reference.json"), "utf8"));
const config = (precision: "int8" | "fp32"): EmbedConfig => ({
  provider: "bundled",
  precision,
  modelDir: null,
  url: null,
  apiKey: null,
  model: null,
  maxTokens: null,
  threads: 2,
  batchSize: 8,
  onnxruntime: nativePaths("/nonexistent").onnxruntime,
});

test("the tokenizer yields the reference token ids", () => {
  const t = new UnigramTokenizer(JSON.parse(readFileSync(join(ROOT, "models/dist/use-lite-vocab.json"), "utf8")));
  for (const s of reference.sentences) expect({ text: s.text, ids: t.encode(s.text) }).toEqual({ text: s.text, ids: s.token_ids });
});

test("the tokenizer's reused scratch changes nothing: long and short texts in turn, astral and lone surrogates, runs of spaces", () => {
  const vocab: [string, number][] = JSON.parse(readFileSync(join(ROOT, "models/dist/use-lite-vocab.json"), "utf8"));
  const t = new UnigramTokenizer(vocab);
  // The plain Viterbi over the text's code points, allocating afresh each time.
  const pieces = new Map(vocab.slice(6).map(([p, score], i) => [p, { id: i + 6, score }]));
  const longest = Math.max(...vocab.map(([p]) => [...p].length));
  const plain = (text: string) => {
    if (!text) return [];
    const cps = [..."\u2581" + text.normalize("NFKC").replaceAll(" ", "\u2581")];
    const best = [0, ...cps.map(() => -Infinity)];
    const from: number[] = [];
    const idAt: number[] = [];
    for (let i = 0; i < cps.length; i++) {
      if (best[i] === -Infinity) continue;
      let single = false;
      for (let j = i; j < Math.min(cps.length, i + longest); j++) {
        const p = pieces.get(cps.slice(i, j + 1).join(""));
        if (!p) continue;
        if (j === i) single = true;
        if (best[i]! + p.score > best[j + 1]!) [best[j + 1], from[j + 1], idAt[j + 1]] = [best[i]! + p.score, i, p.id];
      }
      if (!single && best[i]! > best[i + 1]!) [best[i + 1], from[i + 1], idAt[i + 1]] = [best[i]!, i, 0];
    }
    const ids: number[] = [];
    for (let at = cps.length; at > 0; at = from[at]!) ids.push(idAt[at]!);
    return ids.reverse();
  };
  const long = readFileSync(join(ROOT, "README.md"), "utf8").slice(0, 3000);
  const texts = [long, "a", "Hello  world", "emoji 😀 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "lone \ud800 surrogate \udfff end", long.slice(0, 700), "   ", "ﬁne café", "x".repeat(600), "short"];
  for (const text of [...texts, ...texts.reverse()]) expect(t.encode(text)).toEqual(plain(text));
});

test("a text's token count, summed from its words' kept counts, is what encoding the whole text gives", () => {
  const t = new UnigramTokenizer(JSON.parse(readFileSync(join(ROOT, "models/dist/use-lite-vocab.json"), "utf8")));
  // the bundled vocabulary takes the words' path (a vocabulary with a piece across words would not)
  expect((t as unknown as { wordsApart: boolean }).wordsApart).toBe(true);
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const texts = [
    readme,
    ...readme.split("\n"),
    "",
    " ",
    "   ",
    "a",
    " leading",
    "trailing ",
    "two  spaces  between",
    "tab\tand\nnewline kept inside words",
    "no\u00a0break\u2002en space: NFKC makes them spaces",
    "ﬁne café Ⅻ ㍿ fullwidth ＡＢＣ",
    "emoji 😀 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "lone \ud800 surrogate \udfff end",
    "x".repeat(600),
    "日本語のテキスト 中文文本 한국어",
  ];
  // and real prose when the shared corpus is here: SciFact's abstracts, sentence by sentence too
  const scifact = join(ROOT, "../shared/scifact/corpus.jsonl");
  if (existsSync(scifact))
    for (const line of readFileSync(scifact, "utf8").split("\n").filter(Boolean).slice(0, 1500)) {
      const doc = JSON.parse(line) as { title: string; text: string };
      texts.push(doc.title, doc.text, ...doc.text.split(/(?<=\.) /));
    }
  // twice: the second time every word's count is a kept one
  for (let pass = 0; pass < 2; pass++) for (const text of texts) if (t.count(text) !== t.encode(text).length) expect({ text, count: t.count(text) }).toEqual({ text, count: t.encode(text).length });
  // the quick lower bound chunking uses never passes the count
  for (const text of texts) if (t.atLeast(text) > t.count(text)) expect({ text, atLeast: t.atLeast(text) }).toEqual({ text, atLeast: t.count(text) });
  expect(t.atLeast("two  spaces  between")).toBe(5);
  // the text the embedder reads before the model's window: the first tokens are the same
  const window = 128;
  const jamo = "\u1100\u1161\u11a8".repeat(6000);
  for (const text of [...texts, readme.repeat(5), jamo, `${"x ".repeat(20_000)}tail`, " ".repeat(50_000)]) {
    const cut = text.slice(0, window * t.charsPerTokenAtMost);
    if (cut.length < text.length) expect({ text: text.slice(0, 40), ids: t.encode(cut).slice(0, window) }).toEqual({ text: text.slice(0, 40), ids: t.encode(text).slice(0, window) });
  }
});

test("chunks cut with the tokenizer's lower bound are those cut by counting every block whole", () => {
  const t = new UnigramTokenizer(JSON.parse(readFileSync(join(ROOT, "models/dist/use-lite-vocab.json"), "utf8")));
  const counting = { count: (s: string) => t.count(s) };
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const blocks = readme.split("\n\n").map((text, i) => ({ text, loc: { page: 1 + Math.floor(i / 10) }, boundary: i % 10 === 0 }));
  for (const size of [{ max: 128, overlap: 32 }, { max: 40, overlap: 0 }]) expect(chunkBlocks(blocks, size, t)).toEqual(chunkBlocks(blocks, size, counting));
});

const MODELS = join(ROOT, "models/dist");
const openModel = (file: string) =>
  OnnxProvider.open({
    id: file,
    modelPath: join(MODELS, file),
    bindingPath: nativePaths("/nonexistent").onnxruntime,
    tokenizer: { kind: "unigram", vocabPath: join(MODELS, "use-lite-vocab.json") },
    maxTokens: 128,
    keepLastToken: false,
    threads: 2,
    batchSize: 64,
    ownedBy: "ragd",
  });

// The portable int8 build (uint8 weights) is checked on every machine; the one for CPUs with
// VNNI (int8 weights) only where it runs: without VNNI, onnxruntime's kernel for int8 weights
// saturates its 16-bit sums (cosine 0.984 at worst, 0.991 on average, on an AVX2-only AMD EPYC,
// against 0.998 and 0.999 for the portable build), which is why the server
// picks it only on CPUs that have VNNI.
for (const [file, min] of [["use-lite-fp32.onnx", 0.9999], ["use-lite-int8.onnx", 0.995], ["use-lite-int8-vnni.onnx", 0.995]] as const) {
  test.skipIf(file.includes("vnni") && !hasVnni())(`${file}: embeddings match the original model (cosine >= ${min})`, async () => {
    const p = await openModel(file);
    try {
      const { vectors, tokens } = await p.embed(reference.sentences.map((s) => s.text), "ingest");
      reference.sentences.forEach((s, i) => {
        let dot = 0;
        for (let k = 0; k < 512; k++) dot += vectors[i]![k]! * s.embedding[k]!;
        expect({ text: s.text, ok: dot >= min }).toEqual({ text: s.text, ok: true });
        expect(tokens[i]).toBe(Math.min(128, s.token_ids.length));
      });
      // a wrong graph would still give unit vectors; different sentences must differ
      let cross = 0;
      for (let k = 0; k < 512; k++) cross += vectors[0]![k]! * vectors[1]![k]!;
      expect(cross).toBeLessThan(0.9);
    } finally {
      await p.close();
    }
  });

  // int8: the integer products are exact whatever the batch; fp32's float GEMM sums in an
  // order that depends on the batch's rows, so only the last bits may differ there.
  const exact = file !== "use-lite-fp32.onnx";
  test(`${file}: a text's vector is ${exact ? "bit-identical" : "the same to 1e-6"} whatever its batch mates`, async () => {
    const p = await openModel(file);
    try {
      const texts = reference.sentences.map((s) => s.text);
      const long = texts.map((t) => `${t} ${t} ${t} ${t} ${t} ${t}`);
      const alone = await Promise.all(texts.map(async (t) => (await p.embed([t], "ingest")).vectors[0]!));
      const same = (a: Float32Array, b: Float32Array) => (exact ? Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength)) : a.every((x, k) => Math.abs(x - b[k]!) <= 1e-6));
      // one batch: the same texts among longer, shorter and repeated mates, in another order
      const mixed = [...long, ...texts.toReversed(), "a", ...texts, ...long.map((t) => t.slice(0, 200))];
      const { vectors } = await p.embed(mixed, "ingest");
      texts.forEach((t, i) => {
        expect({ t, same: same(vectors[long.length + texts.length - 1 - i]!, alone[i]!) }).toEqual({ t, same: true });
        expect({ t, same: same(vectors[long.length + texts.length + 1 + i]!, alone[i]!) }).toEqual({ t, same: true });
      });
    } finally {
      await p.close();
    }
  });
}

test("the bundled int8 model is picked for the CPU: int8 weights with VNNI, uint8 without", async () => {
  const flags = (f: string) => () => `processor\t: 0\nflags\t\t: fpu sse2 avx2 ${f}\n`;
  if (process.arch === "x64" && process.platform === "linux") {
    expect(hasVnni(flags("avx512f avx512_vnni"))).toBe(true);
    expect(hasVnni(flags("avx_vnni"))).toBe(true);
  }
  expect(hasVnni(flags("avx512f avx512bw"))).toBe(false);
  const p = await openProvider(config("int8"));
  try {
    // the same id either way: the two builds' vectors agree to a cosine of 0.9999
    expect(p.model).toMatchObject({ id: "use-lite-int8", dims: 512, maxTokens: 128 });
    const picked = (await openModel(hasVnni() ? "use-lite-int8-vnni.onnx" : "use-lite-int8.onnx"));
    try {
      const text = reference.sentences[0]!.text;
      expect(Array.from((await p.embed([text], "query")).vectors[0]!)).toEqual(Array.from((await picked.embed([text], "query")).vectors[0]!));
    } finally {
      await picked.close();
    }
  } finally {
    await p.close();
  }
});
