// A document cannot take more than its share: each known bomb, built here from a few bytes,
// ends that one file in `error` with its reason, once (never retried), while the server's own
// memory (read from /proc) stays small. The time budget counts the document's own parse, not
// the time it waits for the shared embedder.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import zlib from "node:zlib";
import { strToU8, zipSync } from "fflate";
import { cleanup, startRagd, type Ragd } from "./helpers/ragd";
import { stored } from "./helpers/docs";

/** Peak resident memory of a process (VmHWM), in bytes. */
const peakBytes = (pid: number) => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024;

/** A one-page PDF whose content stream inflates to `bytes` bytes of spaces. */
async function flateBombPdf(bytes: number): Promise<Uint8Array<ArrayBuffer>> {
  const deflate = zlib.createDeflate();
  const out: Buffer[] = [];
  deflate.on("data", (c: Buffer) => out.push(c));
  const block = Buffer.alloc(16 << 20, 0x20);
  for (let left = bytes; left > 0; left -= block.length) {
    if (!deflate.write(left >= block.length ? block : block.subarray(0, left))) await once(deflate, "drain");
  }
  deflate.end();
  await once(deflate, "end");
  const stream = Buffer.concat(out);
  const parts: (string | Buffer)[] = [];
  const offsets: number[] = [];
  let at = 0;
  const push = (p: string | Buffer) => {
    parts.push(p);
    at += typeof p === "string" ? Buffer.byteLength(p) : p.length;
  };
  push("%PDF-1.4\n");
  const obj = (n: number, body: string | Buffer[]) => {
    offsets[n] = at;
    push(`${n} 0 obj\n`);
    if (typeof body === "string") push(body);
    else body.forEach(push);
    push("\nendobj\n");
  };
  obj(1, "<< /Type /Catalog /Pages 2 0 R >>");
  obj(2, "<< /Type /Pages /Kids [3 0 R] /Count 1 >>");
  obj(3, "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << >> >>");
  obj(4, [Buffer.from(`<< /Length ${stream.length} /Filter /FlateDecode >>\nstream\n`), stream, Buffer.from("\nendstream")]);
  const xref = at;
  push(`xref\n0 5\n0000000000 65535 f \n${[1, 2, 3, 4].map((n) => `${String(offsets[n]).padStart(10, "0")} 00000 n \n`).join("")}`);
  push(`trailer\n<< /Size 5 /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`);
  return new Uint8Array(Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p) : p))));
}

function odsBomb(): Uint8Array<ArrayBuffer> {
  const ns = `xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"`;
  return new Uint8Array(
    zipSync({
      mimetype: [strToU8("application/vnd.oasis.opendocument.spreadsheet"), { level: 0 }],
      "content.xml": strToU8(
        `<?xml version="1.0"?><office:document-content ${ns}><office:body><office:spreadsheet><table:table table:name="S"><table:table-row table:number-rows-repeated="1048576"><table:table-cell table:number-columns-repeated="1024" office:value-type="string"><text:p>boom</text:p></table:table-cell></table:table-row></table:table></office:spreadsheet></office:body></office:document-content>`,
      ),
    }),
  );
}

describe("documents within their share of memory", () => {
  let ragd: Ragd;
  beforeAll(async () => {
    ragd = await startRagd({ args: ["--ingest-max-memory", "512MB", "--ingest-max-attempts", "3"] });
  });
  afterAll(async () => {
    await ragd?.stop();
    cleanup(ragd?.dataDir);
  });

  test("bombs end in error once, with their reason; the server's memory stays small", async () => {
    const client = ragd.client();
    const pdf = await flateBombPdf(1024 ** 3);
    expect(pdf.length).toBeLessThan(2 * 1024 * 1024);
    const ods = odsBomb();
    expect(ods.length).toBeLessThan(1000);
    // One line of 110 million characters: past what one document may hold.
    const csv = new Uint8Array(110_000_010);
    csv.set(strToU8("name,note\n"));
    csv.fill(0x61, 10);
    const cases: [File, RegExp][] = [
      [new File([pdf], "inflates-to-1GiB.pdf"), /^the document needs more than 512 MB of memory to read; split it, or raise --ingest-max-memory$/],
      [new File([ods], "repeats.ods"), /^the spreadsheet holds more than 2,000,000 cells with content/],
      [new File([csv], "one-line.csv"), /^the document holds more than 100 million characters of text/],
    ];
    const files = await Promise.all(cases.map(([file]) => client.files.create({ file, purpose: "assistants" })));
    for (let i = 0; i < cases.length; i++) {
      const f = await client.files.waitForProcessing(files[i]!.id, { pollInterval: 200, maxWait: 120_000 });
      expect(`${f.filename}: ${f.status}`).toBe(`${f.filename}: error`);
      // a reason about the document, not "failed after 3 attempts": it was never retried
      expect(f.status_details ?? "").toMatch(cases[i]![1]);
      expect(stored(ragd.dataDir, f.id).chunks).toHaveLength(0);
    }
    // The parse processes held the bombs; the server itself never came near them.
    expect(peakBytes(ragd.proc.pid)).toBeLessThan(700 * 1024 * 1024);
    expect(ragd.proc.exitCode).toBeNull();
    const ok = await client.files.create({ file: new File(["granite quarries of the north"], "after.txt"), purpose: "assistants" });
    expect((await client.files.waitForProcessing(ok.id, { pollInterval: 100 })).status).toBe("processed");
  }, 240_000);
});

describe("the time budget is the document's own", () => {
  let ragd: Ragd;
  beforeAll(async () => {
    ragd = await startRagd({ args: ["--ingest-timeout", "2", "--embed-threads", "1"] });
  });
  afterAll(async () => {
    await ragd?.stop();
    cleanup(ragd?.dataDir);
  });

  test("a document that parses in a moment but takes longer than the budget to embed is processed", async () => {
    const client = ragd.client();
    // A parse process is started and kept warm first: starting one on a loaded machine can take
    // a good part of the 2 s, which would make the budget's test a test of the machine.
    const warm = await client.files.create({ file: new File(["a warm-up note about granite"], "warm.txt"), purpose: "assistants" });
    expect((await client.files.waitForProcessing(warm.id, { pollInterval: 50 })).status).toBe("processed");
    // ~700 chunks: parsed in well under a second, embedded in several seconds on one thread.
    const text = Array.from({ length: 7000 }, (_, i) => `Paragraph ${i} describes granite, basalt and slate quarries in region ${i % 97}, with their yields.`).join("\n\n");
    const started = Date.now();
    const f = await client.files.create({ file: new File([text], "long-notes.txt"), purpose: "assistants" });
    const done = await client.files.waitForProcessing(f.id, { pollInterval: 100, maxWait: 120_000 });
    expect(`${done.status} ${done.status_details}`).toBe("processed null");
    expect(Date.now() - started).toBeGreaterThan(2000);
    expect(stored(ragd.dataDir, f.id).chunks.length).toBeGreaterThan(500);
  }, 180_000);
});
