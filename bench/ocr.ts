// OCR accuracy and speed. Accuracy: character error rate against the same page's text layer
// (the corpus holds each of these pages as a text PDF and as an image). Speed: pages/s of
// ragd's OCR (one thread, as each parse worker runs it) beside Debian's `tesseract` CLI on the
// same images in the same run, when it is installed (apt-get install tesseract-ocr).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { defaults } from "../src/config";
import { decodeImage, ocrRaster } from "../src/ocr/engine";
import { ocrSettings } from "../src/server";
import { nativePaths } from "../src/native/assets";
import { ROOT, table } from "./lib";

const CORPUS = join(ROOT, "../shared/corpus/unstructured");
const PAIRS = [
  { image: "img/DA-1p.png", pdf: "pdf/DA-1p.pdf" },
  { image: "img/layout-parser-paper-fast.jpg", pdf: "pdf/layout-parser-paper-fast.pdf" },
];

const norm = (s: string) => s.normalize("NFKC").replace(/\s+/g, " ").trim();

function levenshtein(a: string, b: string) {
  let prev = new Uint32Array(b.length + 1);
  let cur = new Uint32Array(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i;
    const ca = a.charCodeAt(i - 1);
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (ca === b.charCodeAt(j - 1) ? 0 : 1));
    [prev, cur] = [cur, prev];
  }
  return prev[b.length]!;
}

/** Edits per reference character, whitespace collapsed. */
export const cer = (hyp: string, ref: string) => levenshtein(norm(hyp), norm(ref)) / norm(ref).length;

/** Share of the reference's words (3+ letters, lowercased) found in the hypothesis: what search needs. */
export function wordRecall(hyp: string, ref: string) {
  const words = (s: string) => s.toLowerCase().match(/[a-z0-9]{3,}/g) ?? [];
  const bag = new Map<string, number>();
  for (const w of words(hyp)) bag.set(w, (bag.get(w) ?? 0) + 1);
  const want = words(ref);
  let hit = 0;
  for (const w of want) {
    const n = bag.get(w) ?? 0;
    if (n > 0) {
      hit++;
      bag.set(w, n - 1);
    }
  }
  return hit / want.length;
}

/** Page 1's text layer, the ground truth. */
async function reference(pdf: string) {
  const { PdfDocument } = await import("../src/ingest/parsers/pdfium");
  const doc = await PdfDocument.open(new Uint8Array(readFileSync(join(CORPUS, pdf))));
  try {
    return doc.text(1) ?? "";
  } finally {
    doc.close();
  }
}

async function tesseract(path: string): Promise<{ text: string; s: number } | null> {
  if (!Bun.which("tesseract")) return null;
  const t = performance.now();
  const p = Bun.spawnSync(["tesseract", path, "stdout", "-l", "eng"], { env: { ...process.env, OMP_THREAD_LIMIT: "1" } });
  if (p.exitCode !== 0) return null;
  return { text: p.stdout.toString(), s: (performance.now() - t) / 1000 };
}

export async function ocrBench(): Promise<string> {
  if (!existsSync(CORPUS)) return "skipped: ../shared/corpus is absent";
  const settings = ocrSettings({ ...defaults(), dataDir: "/nonexistent" });
  const natives = nativePaths("/nonexistent");
  // Load the models outside the timings.
  ocrRaster({ width: 32, height: 32, data: new Uint8Array(32 * 32 * 3).fill(255) }, settings, natives);
  const rows: (string | number)[][] = [];
  let oursS = 0;
  let theirsS = 0;
  for (const pair of PAIRS) {
    const ref = await reference(pair.pdf);
    const bytes = new Uint8Array(readFileSync(join(CORPUS, pair.image)));
    const t = performance.now();
    const img = await decodeImage(bytes, settings, natives);
    const text = ocrRaster(await img.page(0), settings, natives).join("\n\n");
    const s = (performance.now() - t) / 1000;
    oursS += s;
    rows.push([pair.image, "ragd (PP-OCRv4, 1 thread)", cer(text, ref).toFixed(3), wordRecall(text, ref).toFixed(3), s.toFixed(2)]);
    const tess = await tesseract(join(CORPUS, pair.image));
    if (tess) {
      theirsS += tess.s;
      rows.push([pair.image, "tesseract CLI (Debian, 1 thread)", cer(tess.text, ref).toFixed(3), wordRecall(tess.text, ref).toFixed(3), tess.s.toFixed(2)]);
    }
  }
  const lines = [table(["image", "engine", "CER", "word recall", "seconds"], rows)];
  lines.push("", `ragd: ${(PAIRS.length / oursS).toFixed(2)} pages/s.`);
  if (theirsS) lines.push(`tesseract: ${(PAIRS.length / theirsS).toFixed(2)} pages/s; ragd's speed is ${(theirsS / oursS).toFixed(2)}x tesseract's.`);
  else lines.push("tesseract is not installed: no comparison.");
  return lines.join("\n");
}
