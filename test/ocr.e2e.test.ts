// OCR through the official SDK against a live server: images and scanned PDFs become
// searchable, progress is reported, the time budget and the off switch hold.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { cleanup, startRagd } from "./helpers/ragd";

const IMAGES = join(import.meta.dir, "fixtures/images");
const image = (name: string) => new File([readFileSync(join(IMAGES, name))], name);
type Hit = { file_id: string; filename: string; location?: { page?: number; pages?: [number, number] }; content: { text: string }[] };

describe("OCR end to end", () => {
  test("an image and a scanned PDF are processed and found by phrases only they contain", async () => {
    const ragd = await startRagd();
    try {
      const client = ragd.client();
      const files = await Promise.all(["receipt.jpg", "scanned.pdf", "two-pages.tiff"].map((n) => client.files.create({ file: image(n), purpose: "assistants" })));
      for (const f of files) expect((await client.files.waitForProcessing(f.id, { pollInterval: 100, maxWait: 60_000 })).status).toBe("processed");
      const kb = (await client.vectorStores.list()).data.find((s) => s.name === "knowledge base")!.id;
      const top = async (query: string) => (await client.vectorStores.search(kb, { query, max_num_results: 3 })).data[0] as unknown as Hit;
      const receipt = await top("cinnamon pretzels walnut loaf");
      expect(receipt.file_id).toBe(files[0]!.id);
      expect(receipt.content[0]!.text.toLowerCase()).toContain("cinnamon pretzels");
      expect((await top("blue heron project")).file_id).toBe(files[1]!.id);
      const ridge = await top("cobalt ridge");
      expect(ridge.file_id).toBe(files[2]!.id);
      // Short pages share a chunk; its location spans them.
      expect(ridge.location?.page === 2 || ridge.location?.pages?.[1] === 2).toBe(true);
    } finally {
      await ragd.stop();
      cleanup(ragd.dataDir);
    }
  }, 120_000);

  test("progress names the OCR page; the per-file time budget and a delete stop a long scan", async () => {
    // 100 pages of text in one TIFF: far more OCR than 3 seconds allow on any CPU.
    const page = await sharp(join(IMAGES, "whiteboard.png")).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const pages = 100;
    const tiff = await sharp(Buffer.concat(Array(pages).fill(page.data)), {
      raw: { width: page.info.width, height: page.info.height * pages, channels: 3, pageHeight: page.info.height },
    })
      .tiff({ compression: "lzw" })
      .toBuffer();
    const ragd = await startRagd({ args: ["--ingest-timeout", "3", "--ingest-concurrency", "1"] });
    try {
      const client = ragd.client();
      const f = await client.files.create({ file: new File([tiff], "long-scan.tiff"), purpose: "assistants" });
      const seen = new Set<string>();
      let last = await client.files.retrieve(f.id);
      while (last.status === "uploaded") {
        if (last.status_details) seen.add(last.status_details);
        await Bun.sleep(100);
        try {
          last = await client.files.retrieve(f.id);
        } catch (e) {
          throw new Error(`the server stopped answering: ${String(e)}\n${ragd.stderr()}`);
        }
      }
      expect([...seen].some((d) => /^OCR page \d+ of 100$/.test(d))).toBe(true);
      expect(last.status).toBe("error");
      expect(last.status_details).toContain("took longer than the 3 s limit per file");

      // Deleting a file mid-OCR stops its worker; the server carries on.
      const g = await client.files.create({ file: new File([tiff], "deleted-scan.tiff"), purpose: "assistants" });
      while (!(await client.files.retrieve(g.id)).status_details?.startsWith("OCR page")) await Bun.sleep(50);
      expect((await client.files.delete(g.id)).deleted).toBe(true);
      await Bun.sleep(500);
      expect((await client.files.list()).data.map((x) => x.id)).not.toContain(g.id);
    } finally {
      await ragd.stop();
      cleanup(ragd.dataDir);
    }
  }, 120_000);

  test("with OCR off, images end in error and say why", async () => {
    const ragd = await startRagd({ args: ["--ocr", "off"] });
    try {
      const client = ragd.client();
      const f = await client.files.create({ file: image("whiteboard.png"), purpose: "assistants" });
      const done = await client.files.waitForProcessing(f.id, { pollInterval: 100 });
      expect(done.status).toBe("error");
      expect(done.status_details).toBe("no text found; OCR is disabled");
    } finally {
      await ragd.stop();
      cleanup(ragd.dataDir);
    }
  }, 60_000);
});
