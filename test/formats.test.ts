// What a company drive holds beyond plain documents: charts, SmartArt, pictures inside
// documents, e-mail with attachments, Word and PowerPoint 97-2003, RTF, OpenDocument
// presentations. Built here where the corpus has no example; the corpus files are read when
// ../shared is present.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { strToU8, zipSync } from "fflate";
import { parseDocument } from "../src/ingest/parsers/index";
import { DEFAULT_PARSE_LIMITS, ParseError, type Block } from "../src/ingest/types";
import { nativePaths } from "../src/native/assets";
import { ocrSettings } from "../src/server";
import { defaults } from "../src/config";
import { docx, odp, pptx, xlsxWithChart } from "./fixtures/office";
import { ROOT } from "./helpers/ragd";

const OCR = ocrSettings({ ...defaults(), dataDir: "/nonexistent" });
const NATIVES = nativePaths("/nonexistent");
const IMAGES = join(import.meta.dir, "fixtures/images");
const CORPUS = join(ROOT, "../shared/corpus/unstructured");
const haveCorpus = existsSync(CORPUS);
const image = (name: string) => new Uint8Array(readFileSync(join(IMAGES, name)));
const parse = (filename: string, bytes: Uint8Array, ocr = OCR) => parseDocument({ bytes, filename, limits: DEFAULT_PARSE_LIMITS, progress: () => {}, ocr, natives: NATIVES });
const corpus = (name: string) => parse(name.split("/").pop()!, new Uint8Array(readFileSync(join(CORPUS, name))));
const texts = (blocks: Block[]) => blocks.map((b) => b.text.toLowerCase().replace(/\s+/g, " "));
const at = (blocks: Block[], phrase: string) => {
  const b = blocks.find((x) => x.text.toLowerCase().replace(/\s+/g, " ").includes(phrase));
  if (!b) throw new Error(`no block has "${phrase}": ${JSON.stringify(blocks.map((x) => x.text))}`);
  return b;
};
const failure = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ParseError);
    return e as ParseError;
  }
  throw new Error("parsed without error");
};

const revenue = { title: "Revenue by region", axes: ["Region", "EUR m"] as [string, string], categories: ["EU", "US"], series: [{ name: "2025", values: [12.4, 9.1] }, { name: "2024", values: [10, 8] }] };

describe("charts and SmartArt", () => {
  test("a PPTX chart, chartEx and SmartArt are read at their slide", async () => {
    const d = await parse("deck.pptx", pptx([{ title: "Results", chart: revenue }, { title: "Bridge", chartEx: ["Cash bridge", ["Start", "Sales", "End"], "Cash", [100, 40, 140]] }, { smartArt: ["Plan", "Build", "Ship"] }]));
    expect(at(d.blocks, "revenue by region").loc).toEqual({ slide: 1 });
    expect(at(d.blocks, "revenue by region").text).toBe('Chart "Revenue by region" (Region / EUR m): series 2025: EU 12.4, US 9.1; series 2024: EU 10, US 8');
    expect(at(d.blocks, "cash bridge").text).toBe('Chart "Cash bridge": series Cash: Start 100, Sales 40, End 140');
    expect(at(d.blocks, "cash bridge").loc).toEqual({ slide: 2 });
    expect(at(d.blocks, "plan; build; ship").loc).toEqual({ slide: 3 });
  });

  test("a DOCX chart is read under the heading it stands beneath", async () => {
    const d = await parse("report.docx", docx([[1, "Annual report"], "Opening words.", [2, "Sales"], { chart: revenue }, "Closing words."]));
    expect(at(d.blocks, "revenue by region").loc).toEqual({ headings: ["Annual report", "Sales"] });
    expect(texts(d.blocks)).toContain("closing words.");
  });

  test("an XLSX chart is read with its sheet", async () => {
    const d = await parse("sales.xlsx", xlsxWithChart("Sales", [["Region", "Revenue"], ["EU", "12"]], revenue));
    expect(at(d.blocks, "revenue by region").loc).toEqual({ sheet: "Sales" });
    expect(at(d.blocks, "region: eu").loc).toEqual({ sheet: "Sales", rows: [2, 2] });
  });

  test("a chart part of 100 MB is refused with a reason", async () => {
    const deck = pptx([{ title: "Huge", chart: revenue }]);
    // rebuild the deck with the chart part padded past the limit (spaces inflate 1000x)
    const { unzipSync } = await import("fflate");
    const files = unzipSync(deck);
    files["ppt/charts/chart1.xml"] = strToU8(new TextDecoder().decode(files["ppt/charts/chart1.xml"]!).replace("<c:chart>", `<c:chart>${" ".repeat(100 * 1024 * 1024)}`));
    const limits = { ...DEFAULT_PARSE_LIMITS, maxCompressionRatio: 100_000 };
    const e = await failure(parseDocument({ bytes: zipSync(files), filename: "huge.pptx", limits, progress: () => {}, ocr: OCR, natives: NATIVES }));
    expect(e.message).toBe('"ppt/charts/chart1.xml" is larger than the 16 MB this server reads for such a part');
    expect(e.code).toBe("file_too_large");
  });
});

describe("pictures inside documents", () => {
  test("a DOCX whose only text is in pictures is read by OCR, at the picture's heading", async () => {
    const d = await parse("scans.docx", docx([[1, "Meeting notes"], { picture: image("whiteboard.png") }]));
    expect(at(d.blocks, "blue heron project").loc).toEqual({ headings: ["Meeting notes"] });
  });

  test("a PPTX screenshot, an ODP picture and an HTML data: image are read where they stand", async () => {
    const deck = await parse("shots.pptx", pptx([{ title: "Intro" }, { picture: image("transparent.png") }]));
    expect(at(deck.blocks, "emerald dashboard").loc).toEqual({ slide: 2 });
    const pres = await parse("talk.odp", odp([{ texts: ["Welcome"], notes: "Say hello first" }, { texts: ["Findings"], picture: image("whiteboard.png") }]));
    expect(pres.format).toBe("odp");
    expect(at(pres.blocks, "blue heron project").loc).toEqual({ slide: 2 });
    expect(at(pres.blocks, "speaker notes: say hello first").loc).toEqual({ slide: 1 });
    const b64 = Buffer.from(image("receipt.jpg")).toString("base64");
    const html = await parse("page.html", strToU8(`<h1>Expenses</h1><p>See the receipt.</p><img src="data:image/jpeg;base64,${b64}"><p>After.</p>`));
    expect(at(html.blocks, "cinnamon pretzels").loc).toEqual({ headings: ["Expenses"] });
    expect(texts(html.blocks).indexOf("after.")).toBeGreaterThan(texts(html.blocks).findIndex((t) => t.includes("cinnamon")));
  });

  test("--ocr-embedded off leaves pictures unread; tiny pictures are passed over", async () => {
    const off = await parse("shots.pptx", pptx([{ title: "Intro", picture: image("transparent.png") }]), { ...OCR, embedded: false });
    expect(texts(off.blocks)).toEqual(["intro"]);
    const tiny = new Uint8Array(await (await import("sharp")).default(image("whiteboard.png")).resize(16, 8).png().toBuffer());
    const small = await parse("icon.pptx", pptx([{ title: "Icons", picture: tiny }]));
    expect(texts(small.blocks)).toEqual(["icons"]);
  });
});

const CRLF = (lines: string[]) => strToU8(lines.join("\r\n"));
function mail(o: { subject: string; body: string; attachments?: { name: string; type: string; content: Uint8Array }[] }): Uint8Array {
  const boundary = `b${Math.random().toString(36).slice(2)}`;
  const parts = [
    `--${boundary}`,
    "Content-Type: text/plain; charset=utf-8",
    "",
    o.body,
    ...(o.attachments ?? []).flatMap((a) => [`--${boundary}`, `Content-Type: ${a.type}; name="${a.name}"`, `Content-Disposition: attachment; filename="${a.name}"`, "Content-Transfer-Encoding: base64", "", Buffer.from(a.content).toString("base64")]),
    `--${boundary}--`,
    "",
  ];
  return CRLF(["From: Ana Silva <ana@example.com>", "To: team@example.com", `Subject: ${o.subject}`, "Date: Tue, 1 Dec 2026 10:00:00 +0000", "MIME-Version: 1.0", `Content-Type: multipart/mixed; boundary="${boundary}"`, "", ...parts]);
}

describe("e-mail", () => {
  test("headers, body and attachments (a PDF, a picture, a forwarded message), each located", async () => {
    const inner = mail({ subject: "Original", body: "The forwarded note about the walnut harvest." });
    const d = await parse(
      "thread.eml",
      mail({
        subject: "Q3 figures",
        body: "Please find the report attached.",
        attachments: [
          { name: "report.pdf", type: "application/pdf", content: new Uint8Array(readFileSync(join(import.meta.dir, "fixtures/docs/report.pdf"))) },
          { name: "board.png", type: "image/png", content: image("whiteboard.png") },
          { name: "original.eml", type: "message/rfc822", content: inner },
        ],
      }),
    );
    expect(d.format).toBe("eml");
    expect(d.blocks[0]!.text).toBe("From: Ana Silva <ana@example.com>\nTo: team@example.com\nSubject: Q3 figures\nDate: 2026-12-01T10:00:00.000Z");
    expect(texts(d.blocks)).toContain("please find the report attached.");
    expect(at(d.blocks, "revenue grew by twelve percent").loc).toMatchObject({ attachment: "report.pdf", page: 2 });
    expect(at(d.blocks, "blue heron project").loc).toEqual({ attachment: "board.png" });
    expect(at(d.blocks, "walnut harvest").loc).toEqual({ attachment: "original.eml" });
  });

  test("a loop of messages inside messages, and 10,000 attachments, are refused with a reason", async () => {
    let nested = mail({ subject: "level 0", body: "deepest" });
    for (let i = 1; i <= 5; i++) nested = mail({ subject: `level ${i}`, body: "wrapper", attachments: [{ name: `level${i - 1}.eml`, type: "message/rfc822", content: nested }] });
    expect((await failure(parse("loop.eml", nested))).message).toBe("the message nests other messages more than 3 deep");
    const many = mail({ subject: "many", body: "x", attachments: Array.from({ length: 10_000 }, (_, i) => ({ name: `a${i}.txt`, type: "text/plain", content: strToU8("x") })) });
    const e = await failure(parse("many.eml", many));
    expect(e.message).toBe("the message has more than 500 attachments, past what one file may hold here");
  }, 30_000);

  test.skipIf(!haveCorpus)("an Outlook message with a broken directory is an error, not a crash", async () => {
    const msg = new Uint8Array(readFileSync(join(CORPUS, "fake-email.msg")).subarray(0, 4096));
    // keep the header, break the directory's sector chain
    msg.fill(0xff, 512, 4096);
    const e = await failure(parse("broken.msg", msg));
    expect(e.message).toMatch(/damaged Office container|could not be read/);
  });
});

describe.skipIf(!haveCorpus)("the corpus (../shared)", () => {
  test("e-mail: every message of eml/ is read or refused for a reason", async () => {
    for (const name of ["eml/fake-email-attachment.eml", "eml/fake-email-utf-16-be.eml", "eml/mime-word-encoded-subject.eml", "eml/mime-html-only.eml", "fake-email.msg", "fake-email-attachment.msg"]) {
      const d = await corpus(name);
      expect(`${name}: ${d.blocks.length > 1}`).toBe(`${name}: true`);
    }
    expect(texts((await corpus("eml/mime-word-encoded-subject.eml")).blocks)[0]).toContain("simple email with ☸☿ unicode subject");
    expect(at((await corpus("fake-email-attachment.msg")).blocks, "hey this is a fake attachment").loc).toEqual({ attachment: "fake-attachment.txt", lines: [1, 1] });
    expect((await failure(corpus("fake-encrypted.msg"))).message).toBe("the message is encrypted (PGP/MIME); its content cannot be read without the recipient's key");
    expect((await failure(corpus("eml/fake-encrypted.eml"))).message).toStartWith("the message is encrypted (PGP/MIME)");
  });

  test("Word and PowerPoint 97-2003, RTF, and pictures in corpus documents", async () => {
    expect(texts((await corpus("simple.doc")).blocks)).toContain("this is my first thought. this is my second thought.");
    const ppt = await corpus("fake-power-point.ppt");
    expect(at(ppt.blocks, "adding a bullet slide").loc).toEqual({ slide: 1 });
    expect(texts((await corpus("fake-doc.rtf")).blocks)).toEqual(expect.arrayContaining(["my first heading", "my first paragraph."]));
    expect(texts((await corpus("picture.pptx")).blocks)).toEqual(["python powered"]);
    expect(texts((await corpus("fake-html-with-base64-image.html")).blocks).join(" ")).toContain("unst");
    const pics = await corpus("contains-pictures.docx");
    expect(pics.blocks[0]!.text).toBe("Header: An inline picture in the header.");
    const hf = await corpus("docx-hdrftr.docx");
    expect(texts(hf.blocks).join(" ")).not.toContain("i should not be included"); // a merged-away table cell
  });
});
