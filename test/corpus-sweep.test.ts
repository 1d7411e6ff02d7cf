// Every document of ../shared/corpus through a live server: each must end processed or
// error (never stuck, never a crash), and the known-bad ones must fail for the right reason.
// Skipped when ../shared is absent (a user's fresh clone).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { Database } from "bun:sqlite";
import { ROOT, cleanup, startRagd, type Ragd } from "./helpers/ragd";

const CORPUS = join(ROOT, "../shared/corpus");
const present = existsSync(CORPUS);

// Path patterns (relative to the corpus) and the status_details they must end with.
const EXPECTED_ERRORS: [RegExp, RegExp][] = [
  [/005-libreoffice-writer-password\/.*\.pdf$|pdf\/password\.pdf$|password_protected\.xlsx$/, /^the file is password-protected$/],
  // Image-only PDFs and images whose pictures hold no words: OCR runs and finds none.
  [/007-imagemagick-images\/.*\.pdf$|019-grayscale-image\/.*\.pdf$|023-cmyk-image\/.*\.pdf$/, /^no text found: the PDF's pages are images and OCR read no text/],
  [/img\/example\.jpg$|img\/bmp_24\.bmp$/, /^no text found: OCR read no text/],
  [/017-unreadable-meta-data\/.*\.pdf$/, /corrupt|no text found/],
  [/fake-text-all-whitespace\.txt$|eml\/empty\.eml$/, /^no text found/],
  // Encrypted mail cannot be read without the key; a signed message whose body part is
  // malformed holds only its signature.
  [/fake-encrypted\.(msg|eml)$/, /^the message is encrypted \(PGP\/MIME\)/],
  [/signed-doc\.p7s$/, /nothing readable besides its signature/],
  // The only picture of the deck is a logo without words.
  [/test-image-jpg-mime\.pptx$/, /^no text found/],
  [/\.(wav|heic|zip)$/, /unsupported format/],
];
// Top-level .doc/.ppt/.msg are real OLE files (Word, PowerPoint, Outlook 97-2003);
// language-docs/*.doc and *.ppt are OOXML under an old extension, read as what they are.
const MUST_PROCESS = [
  /loremipsum-flat\.pdf$/, /img\/(?!example\.jpg$|bmp_24\.bmp$).*\.(png|jpe?g|tiff?)$/, /\/srt\//, /language-docs\/.*\.(doc|ppt)$/,
  /\.(docx|pptx|xlsx|csv|tsv|md|html|epub|odt|doc|ppt|msg|rtf|eml)$/,
];
const MAY_FAIL = [/fake-power-point-malformed\.pptx$/, /failure-after-repair\.pdf$/, /empty\.xlsx$/, /password_protected\.xlsx$/];

let ragd: Ragd;
beforeAll(async () => {
  if (present) ragd = await startRagd();
});
afterAll(async () => {
  if (!present) return;
  await ragd.stop();
  cleanup(ragd.dataDir);
});

test.skipIf(!present)(
  "corpus sweep: every file ends processed or error, with the right reason",
  async () => {
    const paths = [...new Bun.Glob("**/*").scanSync({ cwd: CORPUS, onlyFiles: true, dot: false })].sort();
    const client = ragd.client();
    const files: { path: string; id: string | null; started: number; ended: number; status: string; details: string | null }[] = [];
    for (const path of paths) {
      const bytes = readFileSync(join(CORPUS, path));
      const started = performance.now();
      if (bytes.length === 0) {
        // Empty files are refused at upload, before anything is stored.
        const r = await client.files.create({ file: new File([bytes], path.split("/").pop()!), purpose: "assistants" }).then(
          () => 200,
          (e) => e.status,
        );
        expect(r).toBe(400);
        files.push({ path, id: null, started, ended: started, status: "rejected", details: "empty" });
        continue;
      }
      const f = await client.files.create({ file: new File([bytes], path.split("/").pop()!), purpose: "assistants" });
      files.push({ path, id: f.id, started, ended: 0, status: f.status, details: null });
    }
    const deadline = Date.now() + 1_200_000;
    while (files.some((f) => f.status === "uploaded")) {
      if (Date.now() > deadline) throw new Error(`stuck: ${files.filter((f) => f.status === "uploaded").map((f) => f.path)}`);
      const page = await client.files.list({ limit: 10000 } as never);
      const byId = new Map(page.data.map((f) => [f.id, f]));
      for (const f of files) {
        const live = f.id ? byId.get(f.id) : null;
        if (f.status === "uploaded" && live && live.status !== "uploaded") {
          f.status = live.status;
          f.details = live.status_details ?? null;
          f.ended = performance.now();
        }
      }
      await Bun.sleep(100);
    }

    const db = new Database(join(ragd.dataDir, "ragd.db"), { readonly: true });
    const chars = (id: string | null) => (id ? ((db.query(`SELECT length(text) AS n FROM documents WHERE file_id = ?`).get(id) as { n: number } | null)?.n ?? 0) : 0);
    const table = new Map<string, { files: number; processed: number; error: number; rejected: number; chars: number; seconds: number }>();
    const problems: string[] = [];
    for (const f of files) {
      const ext = f.path.includes(".") ? f.path.slice(f.path.lastIndexOf(".") + 1).toLowerCase() : "(none)";
      const row = table.get(ext) ?? { files: 0, processed: 0, error: 0, rejected: 0, chars: 0, seconds: 0 };
      row.files++;
      if (f.status === "processed") row.processed++;
      else if (f.status === "error") row.error++;
      else row.rejected++;
      row.chars += chars(f.id);
      row.seconds = Math.max(row.seconds, (f.ended - f.started) / 1000);
      table.set(ext, row);

      const expected = EXPECTED_ERRORS.find(([p]) => p.test(f.path));
      const mayFail = MAY_FAIL.some((p) => p.test(f.path));
      if (expected && !mayFail) {
        if (f.status !== "error" || !expected[1].test(f.details ?? "")) problems.push(`${f.path}: expected error ${expected[1]}, got ${f.status} ${f.details}`);
      } else if (MUST_PROCESS.some((p) => p.test(f.path)) && !mayFail && f.status !== "processed") {
        problems.push(`${f.path}: expected processed, got ${f.status} ${f.details}`);
      }
      if (f.status === "error" && !(f.details ?? "").trim()) problems.push(`${f.path}: error without a reason`);
    }
    db.close();

    const lines = [`${"format".padEnd(10)}${"files".padStart(7)}${"processed".padStart(11)}${"error".padStart(7)}${"rejected".padStart(10)}${"chars".padStart(12)}${"max s*".padStart(8)}`];
    for (const [ext, r] of [...table].sort((a, b) => b[1].files - a[1].files))
      lines.push(`${ext.padEnd(10)}${String(r.files).padStart(7)}${String(r.processed).padStart(11)}${String(r.error).padStart(7)}${String(r.rejected).padStart(10)}${String(r.chars).padStart(12)}${r.seconds.toFixed(2).padStart(8)}`);
    console.log(`\ncorpus sweep (${files.length} files, ${relative(ROOT, CORPUS)})\n${lines.join("\n")}\n* seconds from upload to final status, queue wait included`);
    console.log(files.filter((f) => f.status === "error").map((f) => `  error  ${f.path}: ${f.details}`).join("\n"));
    expect(problems).toEqual([]);
    expect((await fetch(`${ragd.url}/health`)).status).toBe(200);
    expect(statSync(join(ragd.dataDir, "ragd.db")).size).toBeGreaterThan(0);
  },
  1_500_000,
);
