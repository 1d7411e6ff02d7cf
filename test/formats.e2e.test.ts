// Through the server and the official SDK: a phrase from inside a chart, a picture, an
// attachment or a legacy document's body is found by search, at the right location; crafted
// files end in error with their reason while the server keeps serving.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { strToU8 } from "fflate";
import { docx, pptx } from "./fixtures/office";
import { ROOT, cleanup, startRagd, type Ragd } from "./helpers/ragd";

const IMAGES = join(import.meta.dir, "fixtures/images");
const CORPUS = join(ROOT, "../shared/corpus/unstructured");
const image = (name: string) => new Uint8Array(readFileSync(join(IMAGES, name)));

function mail(subject: string, body: string, attachments: { name: string; type: string; content: Uint8Array }[] = []): Uint8Array<ArrayBuffer> {
  const b = "frontier";
  const lines = ["From: Ana Silva <ana@example.com>", "To: team@example.com", `Subject: ${subject}`, "MIME-Version: 1.0", `Content-Type: multipart/mixed; boundary="${b}"`, "", `--${b}`, "Content-Type: text/plain", "", body];
  for (const a of attachments) lines.push(`--${b}`, `Content-Type: ${a.type}; name="${a.name}"`, `Content-Disposition: attachment; filename="${a.name}"`, "Content-Transfer-Encoding: base64", "", Buffer.from(a.content).toString("base64"));
  lines.push(`--${b}--`, "");
  return new Uint8Array(strToU8(lines.join("\r\n")));
}

describe("formats through the server", () => {
  let ragd: Ragd;
  beforeAll(async () => {
    ragd = await startRagd();
  });
  afterAll(async () => {
    await ragd?.stop();
    cleanup(ragd?.dataDir);
  });

  test("charts, pictures, attachments and legacy bodies are found at their place", async () => {
    const client = ragd.client();
    const uploads: [File, string, Record<string, unknown>][] = [
      [new File([pptx([{ title: "Results" }, { title: "By region", chart: { title: "Revenue by region", categories: ["EU", "US"], series: [{ name: "2025", values: [12.4, 9.1] }] } }])], "results.pptx"), "revenue by region", { slide: 2 }],
      [new File([docx([[1, "Planning"], { picture: image("whiteboard.png") }])], "scans.docx"), "blue heron project", { headings: ["Planning"] }],
      [new File([mail("Expenses", "The receipt is attached.", [{ name: "receipt.jpg", type: "image/jpeg", content: image("receipt.jpg") }])], "expenses.eml"), "cinnamon pretzels", { attachment: "receipt.jpg" }],
    ];
    if (existsSync(CORPUS)) {
      const corpus = (name: string) => new File([readFileSync(join(CORPUS, name))], name);
      uploads.push(
        [corpus("fake-power-point.ppt"), "bullet slide layout", { slide: 1 }],
        [corpus("simple.doc"), "favorite things", {}],
        [corpus("fake-email-attachment.msg"), "fake attachment", { attachment: "fake-attachment.txt" }],
        [corpus("fake-doc.rtf"), "first paragraph", {}],
      );
    }
    const files = await Promise.all(uploads.map(([file]) => client.files.create({ file, purpose: "assistants" })));
    for (const f of files) {
      const done = await client.files.waitForProcessing(f.id, { pollInterval: 100, maxWait: 60_000 });
      expect(`${done.filename}: ${done.status} ${done.status_details}`).toBe(`${done.filename}: processed null`);
    }
    const kb = (await client.vectorStores.list()).data[0]!.id;
    for (let i = 0; i < uploads.length; i++) {
      const [, phrase, where] = uploads[i]!;
      const r = await client.vectorStores.search(kb, { query: phrase, max_num_results: 3 });
      const hit = r.data.find((h) => h.file_id === files[i]!.id);
      expect(`${phrase}: ${hit ? "found" : "missing"}`).toBe(`${phrase}: found`);
      expect(hit!.content[0]!.text.toLowerCase()).toContain(phrase.split(" ")[0]!);
      expect((hit as unknown as { location: Record<string, unknown> }).location).toMatchObject(where);
    }
  }, 180_000);

  test("crafted files end in error with a reason; the server keeps serving", async () => {
    const client = ragd.client();
    let loop = mail("level 0", "deepest");
    for (let i = 1; i <= 5; i++) loop = mail(`level ${i}`, "wrapper", [{ name: `m${i}.eml`, type: "message/rfc822", content: loop }]);
    const many = mail("many", "x", Array.from({ length: 10_000 }, (_, i) => ({ name: `a${i}.txt`, type: "text/plain", content: strToU8("x") })));
    const ole = new Uint8Array(4096);
    ole.set([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]);
    const cases: [File, RegExp][] = [
      [new File([loop], "loop.eml"), /^the message nests other messages more than 3 deep$/],
      [new File([many], "many.eml"), /more than 500 attachments/],
      [new File([ole], "broken.msg"), /damaged Office container/],
    ];
    const files = await Promise.all(cases.map(([file]) => client.files.create({ file, purpose: "assistants" })));
    for (let i = 0; i < cases.length; i++) {
      const f = await client.files.waitForProcessing(files[i]!.id, { pollInterval: 100, maxWait: 60_000 });
      expect(f.status).toBe("error");
      expect(f.status_details ?? "").toMatch(cases[i]![1]);
    }
    expect((await fetch(`${ragd.url}/health`)).status).toBe(200);
  }, 120_000);
});
