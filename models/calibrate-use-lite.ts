// Measures the range of every quantised MatMul's input in the fp32 model over varied English
// text (a novel, a 10-K filing, e-mails, subtitles, READMEs from ../shared/corpus; never the
// SciFact benchmark), and writes models/activation-ranges.json, which the int8 build reads.
// Run by hand when the graph changes; the result is committed, so builds need no corpus.
//
//   bun models/calibrate-use-lite.ts
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { calibrationModel, loadWeights, RANGES_FILE, type ActivationRanges } from "./build-use-lite";
import { writeFileAtomic } from "../src/util/atomic-file";
import { UnigramTokenizer } from "../src/embed/tokenizer";
import { nativePaths } from "../src/native/assets";
import { openSession, OrtTensor } from "../src/native/ort";

const CORPUS = join(import.meta.dir, "../../shared/corpus");
const WINDOWS_PER_FILE = 400;
const TOKENS = 128;

function texts(): { name: string; text: string }[] {
  const dir = join(CORPUS, "unstructured");
  const picked = ["book-war-and-peace-1225p.txt", "example-10k.html", "fake-email.txt", "README.md", "README.rst", "ideas-page.html", "fake-html-lang-de.html"];
  const out = picked.filter((f) => existsSync(join(dir, f))).map((f) => ({ name: f, text: readFileSync(join(dir, f), "utf8") }));
  // the UTF-16 and UTF-32 copies would read as noise here
  for (const f of readdirSync(join(CORPUS, "srt"))) if (f.endsWith(".srt") && !/utf-(16|32)/.test(f)) out.push({ name: f, text: readFileSync(join(CORPUS, "srt", f), "utf8") });
  // markup out, so windows hold prose rather than tags
  return out.map((t) => ({ name: t.name, text: t.text.replace(/<(script|style)[\s\S]*?<\/\1>/gi, " ").replace(/<[^>]+>/g, " ").replace(/&[a-z#0-9]+;/gi, " ").replace(/\s+/g, " ") }));
}

if (import.meta.main) {
  if (!existsSync(CORPUS)) throw new Error(`${CORPUS} is absent`);
  const root = join(import.meta.dir, "..");
  const tok = new UnigramTokenizer(JSON.parse(readFileSync(join(root, "models/dist/use-lite-vocab.json"), "utf8")));
  const { weights, version } = loadWeights();
  const { bytes, taps } = calibrationModel(weights, version);
  const session = openSession(nativePaths("/nonexistent").onnxruntime, bytes, 2);
  const names = taps.map((t) => t.output);
  const ranges = new Map<string, [number, number]>();
  let windows = 0;
  for (const { name, text } of texts()) {
    const ids = tok.encode(text);
    // evenly spread windows of full length (and a short one), one text per run: no padding
    const step = Math.max(TOKENS, Math.floor(ids.length / WINDOWS_PER_FILE));
    for (let at = 0; at < ids.length; at += step) {
      const w = ids.slice(at, at + TOKENS);
      for (const seq of [w, w.slice(0, 16)]) {
        const feeds = {
          input_ids: new OrtTensor("int64", BigInt64Array.from(seq.map(BigInt)), [1, seq.length]),
          attention_mask: new OrtTensor("int64", new BigInt64Array(seq.length).fill(1n), [1, seq.length]),
        };
        const out = session.run(feeds, names);
        for (const n of names) {
          const data = out[n]!.data;
          let lo = Infinity;
          let hi = -Infinity;
          for (const v of data) {
            if (v < lo) lo = v;
            if (v > hi) hi = v;
          }
          const r = ranges.get(n) ?? [Infinity, -Infinity];
          ranges.set(n, [Math.min(r[0], lo), Math.max(r[1], hi)]);
        }
        windows++;
      }
    }
    console.log(`${name}: ${ids.length} tokens`);
  }
  console.log(`${windows} windows`);
  const result: ActivationRanges = {};
  for (const t of taps) result[t.name] = ranges.get(t.output)!.map((v) => Number(v.toPrecision(6))) as [number, number];
  writeFileAtomic(RANGES_FILE, JSON.stringify({ source: `model ${version}, ${windows} windows of ../shared/corpus text`, ranges: result }, null, 2) + "\n");
  console.log(result);
}
