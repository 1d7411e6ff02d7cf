// The sweep for orphan blobs runs beside requests: it removes blobs no row names (a crash
// between a blob's commit and its row's), never the blob of an upload still in flight.
import { afterEach, expect, test } from "bun:test";
import { join } from "node:path";
import { FilesService } from "../src/services/files";
import { UploadsService } from "../src/services/uploads";
import { DiskBlobStore } from "../src/storage/blobs";
import type { FilesRepo } from "../src/storage/repos";
import { blobFiles } from "./helpers/ragd";
import { closeProjectRepos, projectRepos } from "./helpers/repos";

afterEach(closeProjectRepos);

async function setUp(hold: "insert" | "remove" = "insert") {
  const { dir, repos } = await projectRepos("ragd-orphans-");
  const blobs = new DiskBlobStore(join(dir, "blobs"));
  // The row's insert (or, for a delete, the answer after the row's removal) waits for the
  // test to let it go, so the sweep can run in between.
  let letGo!: () => void;
  const held = new Promise<void>((r) => (letGo = r));
  let inserting!: () => void;
  const reachedInsert = new Promise<void>((r) => (inserting = r));
  let holding = 0;
  const repo = new Proxy(repos.files, {
    get: (target, key) =>
      key === "insert" && hold === "insert"
        ? async (...args: Parameters<FilesRepo["insert"]>) => {
            inserting();
            await held;
            return target.insert(...args);
          }
        : key === "remove" && hold === "remove"
          ? async (...args: Parameters<FilesRepo["remove"]>) => {
              const removed = await target.remove(...args);
              // only the first delete is held
              if (holding++ === 0) {
                inserting();
                await held;
              }
              return removed;
            }
          : (target as unknown as Record<string | symbol, unknown>)[key],
  }) as FilesRepo;
  const files = new FilesService(repo, blobs, { maxFileSize: 1 << 20, projectQuota: 0 });
  return { dir, blobs, files, letGo, reachedInsert };
}

async function orphan(blobs: DiskBlobStore, id: string) {
  const w = await blobs.create(id);
  await w.write(new TextEncoder().encode("left by a crash"));
  await w.commit();
}

test("the sweep removes a blob no row names and keeps an upload's blob between its commit and its row's", async () => {
  const { dir, blobs, files, letGo, reachedInsert } = await setUp();
  await orphan(blobs, "file-AAAAAAAAAAAAAAAAAAAAAAAA");

  const up = await files.beginUpload("p");
  await up.writer.write(new TextEncoder().encode("in flight"));
  const created = files.create("p", up, { filename: "a.txt", purpose: "assistants" });
  await reachedInsert;
  // the upload's blob is committed, its row not yet
  expect(blobFiles(dir).length).toBe(2);

  expect(await files.removeOrphans()).toBe(1);
  expect(blobFiles(dir).length).toBe(1);

  letGo();
  const file = await created;
  expect(file.id).toBe(up.id);
  expect(await new Response((await files.content("p", up.id)).body).text()).toBe("in flight");
  // once its row is there, a later sweep finds nothing to remove
  expect(await files.removeOrphans()).toBe(0);
  expect(blobFiles(dir).length).toBe(1);
});

test("an upload given up on (aborted) is no longer in flight: what a crash would leave of it is swept", async () => {
  const { dir, blobs, files } = await setUp();
  const up = await files.beginUpload("p");
  await up.writer.write(new TextEncoder().encode("never finished"));
  await up.writer.abort();
  expect(blobFiles(dir)).toEqual([]);
  // the same key committed by someone else later (a crash's leftover) is an orphan again
  await orphan(blobs, up.id);
  expect(await files.removeOrphans()).toBe(1);
  expect(blobFiles(dir)).toEqual([]);
});

test("a sweep told to stop stops before the next blob", async () => {
  const { dir, blobs, files } = await setUp();
  for (const id of ["file-AAAAAAAAAAAAAAAAAAAAAAAA", "file-BBBBBBBBBBBBBBBBBBBBBBBB"]) await orphan(blobs, id);
  const stop = new AbortController();
  stop.abort();
  expect(await files.removeOrphans(stop.signal)).toBe(0);
  expect(blobFiles(dir).length).toBe(2);
});

test("a delete whose row is gone but not yet answered keeps its blob from the sweep until it ends", async () => {
  const { dir, files, letGo, reachedInsert: removedRow } = await setUp("remove");
  const up = await files.beginUpload("p");
  await up.writer.write(new TextEncoder().encode("to be deleted"));
  await files.create("p", up, { filename: "a.txt", purpose: "assistants" });
  const deleting = files.delete("p", up.id);
  await removedRow;
  // the same id deleted from another project is not found, and its end does not end the owner's
  expect(String(await files.delete("q", up.id).catch((e: Error) => e))).toContain("No such File object");
  // the row's removal is visible, its blob still there: the delete's own business
  expect(await files.removeOrphans()).toBe(0);
  expect(blobFiles(dir).length).toBe(1);
  letGo();
  expect((await deleting).deleted).toBe(true);
  expect(blobFiles(dir)).toEqual([]);
});

test("an upload's parts are kept while their rows are; a part whose row is gone is swept", async () => {
  const { dir, blobs, files } = await setUp();
  const { repos } = await projectRepos("ragd-orphans-uploads-");
  const uploads = new UploadsService(repos.uploads, files, 1 << 20);
  const u = await uploads.create("p", { filename: "big.txt", purpose: "assistants", bytes: 10, mimeType: "text/plain" });
  const up = await uploads.beginPart("p", u.id, 10);
  await up.writer.write(new TextEncoder().encode("0123456789"));
  const part = await uploads.addPart("p", u.id, up);
  await orphan(blobs, "part_AAAAAAAAAAAAAAAAAAAAAAAA");
  expect(await files.removeOrphans()).toBe(1);
  expect(blobFiles(dir).map((p) => p.split("/").pop())).toEqual([part.id]);
});
