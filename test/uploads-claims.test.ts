// The Uploads API's claims, at the service with a clock of its own: what a request meets while
// a complete elsewhere (another process sharing the database) holds the upload.
import { afterEach, expect, test } from "bun:test";
import { join } from "node:path";
import { RagdError } from "../src/errors";
import { FilesService } from "../src/services/files";
import { UploadsService } from "../src/services/uploads";
import { DiskBlobStore } from "../src/storage/blobs";
import { closeProjectRepos, projectRepos } from "./helpers/repos";

afterEach(closeProjectRepos);

async function refusal(p: Promise<unknown>) {
  try {
    await p;
  } catch (e) {
    if (e instanceof RagdError) return { code: e.code, status: e.code === "upload_busy" ? 409 : 400, retryAfter: e.headers["retry-after"], message: e.message };
    throw e;
  }
  throw new Error("expected a refusal");
}

test("an upload held by a complete elsewhere is busy (409, retry-after) for a complete, a cancel and a part, even past its expiry; once the claim lapses, it is what its state says", async () => {
  const { dir, repos } = await projectRepos("ragd-claims-");
  let now = 1_000;
  const files = new FilesService(repos.files, new DiskBlobStore(join(dir, "blobs")), { maxFileSize: 1 << 20, projectQuota: 0 }, null, () => now);
  const uploads = new UploadsService(repos.uploads, files, 1 << 20, () => now);
  const u = await uploads.create("p", { filename: "held.txt", purpose: "assistants", bytes: 4, mimeType: "text/plain" });
  const up = await uploads.beginPart("p", u.id, 4);
  await up.writer.write(new TextEncoder().encode("abcd"));
  const part = await uploads.addPart("p", u.id, up);
  // another process's complete claims it shortly before its hour is up, and is still at it after
  expect(await repos.uploads.claim("p", u.id, "elsewhere", u.expires_at - 10, u.expires_at + 300, "file-AAAAAAAAAAAAAAAAAAAAAAAA")).toBe(true);
  now = u.expires_at + 60;
  for (const r of [await refusal(uploads.complete("p", u.id, [part.id])), await refusal(uploads.cancel("p", u.id)), await refusal(uploads.beginPart("p", u.id, 1))]) {
    expect([r.code, r.status]).toEqual(["upload_busy", 409]);
    expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
  }
  // its claim lapsed (that process died): the upload reads as the expired one it is
  now = u.expires_at + 301;
  const expired = await refusal(uploads.complete("p", u.id, [part.id]));
  expect([expired.code, expired.message]).toEqual(["upload_not_pending", expect.stringContaining("expired")]);
  expect(await files.exists("file-AAAAAAAAAAAAAAAAAAAAAAAA")).toBe(false);
});
