// OCR on committed images (built by test/fixtures/build-images.ts) and, when ../shared is
// beside the project, on real scans from the corpus. Runs the real models on onnxruntime.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseDocument } from "../src/ingest/parsers/index";
import { DEFAULT_PARSE_LIMITS, ParseError, type ParseInput } from "../src/ingest/types";
import { ocrSettings } from "../src/server";
import { nativePaths } from "../src/native/assets";
import { NativeLoadError } from "../src/native/sharp";
import { PDFDocument, PDFName, StandardFonts } from "pdf-lib";
import { defaults } from "../src/config";

const IMAGES = join(import.meta.dir, "fixtures/images");
const CORPUS = join(import.meta.dir, "../../shared/corpus");
const OCR = ocrSettings({ ...defaults(), dataDir: "/nonexistent" });
const NATIVES = nativePaths("/nonexistent");

async function parse(path: string, over: Partial<ParseInput> = {}) {
  const progress: string[] = [];
  const doc = await parseDocument({
    bytes: new Uint8Array(readFileSync(path)),
    filename: path.split("/").pop()!,
    limits: DEFAULT_PARSE_LIMITS,
    progress: (m) => progress.push(m),
    ocr: OCR,
    natives: NATIVES,
    ...over,
  });
  return { ...doc, text: doc.blocks.map((b) => b.text).join("\n"), progress };
}

async function failure(path: string, over: Partial<ParseInput> = {}) {
  try {
    await parse(path, over);
  } catch (e) {
    if (e instanceof ParseError) return e.message;
    throw e;
  }
  throw new Error(`${path} parsed, but it should have failed`);
}

// Lowercased with runs of spaces collapsed: the test is about reading the words.
const norm = (s: string) => s.toLowerCase().replace(/\s+/g, " ");

describe("OCR: every image format and variant", () => {
  const cases: [string, string][] = [
    ["whiteboard.png", "the blue heron project ships on thursday"],
    ["receipt.jpg", "two cinnamon pretzels and one walnut loaf"],
    ["slide.webp", "otter sanctuary"],
    ["banner.gif", "volunteers welcome at the harbour festival"],
    ["memo.bmp", "memo about the granite quarry inspection"],
    ["phone-photo.jpg", "parking permit for the violet garage"], // EXIF orientation 6
    ["print-cmyk.jpg", "printer proof of the saffron catalogue"],
    ["scan-16bit-gray.png", "archive scan of the copper mine ledger"],
    ["transparent.png", "screenshot of the emerald dashboard"], // black text on alpha
    ["bilevel-alpha.tiff", "fax of the indigo lighthouse permit"], // libvips refuses it: our own TIFF reader
    ["old-jpeg.tiff", "scan of the saffron ferry timetable"], // libvips cannot decode old-style JPEG: its JPEG stream, read
  ];
  for (const [file, phrase] of cases)
    test(file, async () => {
      const doc = await parse(join(IMAGES, file));
      expect(doc.format).toBe("image");
      expect(norm(doc.text)).toContain(phrase);
      expect(doc.blocks.every((b) => b.loc.page === 1)).toBe(true);
      expect(doc.progress).toContain("OCR page 1 of 1");
    });

  test("multi-page TIFF: each page read, located by page", async () => {
    const doc = await parse(join(IMAGES, "two-pages.tiff"));
    expect(doc.progress).toEqual(["OCR page 1 of 2", "OCR page 2 of 2"]);
    const page = (n: number) => norm(doc.blocks.filter((b) => b.loc.page === n).map((b) => b.text).join(" "));
    expect(page(1)).toContain("amber valley");
    expect(page(2)).toContain("cobalt ridge");
  });
});

describe("OCR: scanned PDF pages", () => {
  test("an image-only PDF is read", async () => {
    const doc = await parse(join(IMAGES, "scanned.pdf"));
    expect(norm(doc.text)).toContain("blue heron project");
    expect(doc.progress.some((m) => m === "OCR page 1 of 1")).toBe(true);
  });

  test("only the page without a text layer is OCRed", async () => {
    const doc = await parse(join(IMAGES, "mixed.pdf"));
    expect(doc.progress.filter((m) => m.startsWith("OCR"))).toEqual(["OCR page 2 of 2"]);
    expect(doc.blocks.find((b) => b.text.includes("tangerine orchard"))!.loc.page).toBe(1);
    expect(norm(doc.blocks.filter((b) => b.loc.page === 2).map((b) => b.text).join(" "))).toContain("maroon glacier");
  });

  test("a blank page or a lone page number is not read by OCR; a picture, a short title, a stamp are", async () => {
    const doc = await PDFDocument.create();
    const font = await doc.embedFont(StandardFonts.Helvetica);
    doc.addPage([400, 300]).drawText("The first page has a text layer of its own, long enough to read.", { x: 10, y: 150, size: 8, font });
    doc.addPage([400, 300]).drawText("5", { x: 200, y: 20, size: 10, font });
    doc.addPage([400, 300]);
    const img = await doc.embedPng(readFileSync(join(IMAGES, "whiteboard.png")));
    doc.addPage([1000, 248]).drawImage(img, { x: 0, y: 0, width: 1000, height: 248 });
    // (its letters may be a font's own codes, which only OCR reads right)
    doc.addPage([400, 300]).drawText("Annual Report", { x: 40, y: 150, size: 36, font });
    // a stamp: an annotation whose appearance draws its words, on a page with no content
    const words = doc.context.flateStream("BT /F1 28 Tf 10 20 Td (Approved by the harbour board) Tj ET", { Type: "XObject", Subtype: "Form", BBox: [0, 0, 580, 80], Resources: { Font: { F1: font.ref } } });
    const stamp = doc.context.obj({ Type: "Annot", Subtype: "Stamp", Rect: [10, 60, 590, 140], F: 4, AP: { N: doc.context.register(words) } });
    doc.addPage([600, 200]).node.set(PDFName.of("Annots"), doc.context.obj([doc.context.register(stamp)]));
    const path = join(tmpdir(), `ragd-little-text-${process.pid}.pdf`);
    writeFileSync(path, await doc.save());
    try {
      const read = await parse(path);
      expect(read.progress.filter((m) => m.startsWith("OCR"))).toEqual(["OCR page 4 of 6", "OCR page 5 of 6", "OCR page 6 of 6"]);
      expect(norm(read.blocks.filter((b) => b.loc.page === 6).map((b) => b.text).join(" "))).toContain("harbour board");
      expect(read.blocks.filter((b) => b.loc.page === 2).map((b) => b.text)).toEqual(["5"]);
      expect(read.blocks.some((b) => b.loc.page === 3)).toBe(false);
      expect(read.blocks.filter((b) => b.loc.page === 4).length).toBeGreaterThan(0);
    } finally {
      rmSync(path, { force: true });
    }
  });
});

describe("OCR: refusals", () => {
  test("a decompression bomb is refused from its header", async () => {
    expect(await failure(join(IMAGES, "bomb.png"))).toMatch(/^the image is too large to read: 60000×60000 .*over the limit of 50\.0/);
  });

  test("the pixel limit is a setting", async () => {
    const msg = await failure(join(IMAGES, "whiteboard.png"), { ocr: { ...OCR, maxPixels: 100_000 } });
    expect(msg).toContain("1000×248");
  });

  test("an image without text is an error, never an empty success", async () => {
    expect(await failure(join(IMAGES, "blank.png"))).toBe("no text found: OCR read no text in the PNG image");
  });

  test("OCR turned off", async () => {
    const off = { ocr: { ...OCR, enabled: false } };
    expect(await failure(join(IMAGES, "receipt.jpg"), off)).toBe("no text found; OCR is disabled");
    expect(await failure(join(IMAGES, "scanned.pdf"), off)).toStartWith("no text found; OCR is disabled");
    // A PDF with a text layer still reads its text pages.
    const mixed = await parse(join(IMAGES, "mixed.pdf"), off);
    expect(mixed.text).toContain("tangerine orchard");
    expect(mixed.text).not.toContain("glacier");
  });

  test("a page with a huge media box is drawn within the pixel limit and read", async () => {
    const doc = await PDFDocument.create();
    const page = doc.addPage([14400, 14400]); // the largest page PDF allows
    const img = await doc.embedPng(readFileSync(join(IMAGES, "whiteboard.png")));
    page.drawImage(img, { x: 200, y: 14400 - 200 - (14000 * img.height) / img.width, width: 14000, height: (14000 * img.height) / img.width });
    const bytes = await doc.save();
    const read = await parse(join(IMAGES, "scanned.pdf"), { bytes, filename: "poster.pdf" });
    expect(norm(read.text)).toContain("blue heron project");
  });

  test("OCR that cannot start is the server's fault, not the file's", async () => {
    const broken = { natives: { ...NATIVES, onnxruntime: "/nonexistent/onnxruntime_binding.node" } };
    const err = await parse(join(IMAGES, "receipt.jpg"), broken).then(() => null, (e) => e);
    expect(err).toBeInstanceOf(NativeLoadError);
    expect(err.message).toStartWith("the OCR models could not be loaded");
  });

  test("a truncated image says it is corrupt", async () => {
    const bytes = new Uint8Array(readFileSync(join(IMAGES, "receipt.jpg"))).slice(0, 600);
    expect(await failure(join(IMAGES, "receipt.jpg"), { bytes })).toMatch(/^the image could not be (read|decoded); it may be corrupt or truncated/);
  });
});

describe.skipIf(!existsSync(CORPUS))("OCR on the corpus (../shared)", () => {
  // Whole pages on one core take seconds each.
  setDefaultTimeout(60_000);
  test("a scanned page reads close to its text-layer twin", async () => {
    const doc = await parse(join(CORPUS, "unstructured/img/DA-1p.png"));
    const text = norm(doc.text);
    for (const phrase of ["we arrived in the dead of night", "spotted me and grinned", "given himself over to the demon"]) expect(text).toContain(phrase);
  });

  test("image-only PDFs: text where there is some, 'no text found' where there is none", async () => {
    const lorem = await parse(join(CORPUS, "unstructured/pdf/loremipsum-flat.pdf"));
    expect(norm(lorem.text)).toContain("lorem ipsum dolor sit amet");
    expect(await failure(join(CORPUS, "py-pdf/007-imagemagick-images/imagemagick-lzw.pdf"))).toStartWith("no text found");
  });
});
