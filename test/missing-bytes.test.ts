// A file's bytes that are not in the file store, at the service: gone while the file is listed
// (removed outside ragd) is stored_bytes_missing; gone because a delete raced the read is the
// 404 a request a moment later gets.
import { afterEach, expect, test } from "bun:test";
import { join } from "node:path";
import { RagdError } from "../src/errors";
import { FilesService } from "../src/services/files";
import { DiskBlobStore } from "../src/storage/blobs";
import { closeProjectRepos, projectRepos } from "./helpers/repos";

afterEach(closeProjectRepos);

/** A disk store that runs `beforeRead` as a read begins: what another request does meanwhile. */
class RacedStore extends DiskBlobStore {
  beforeRead: (() => Promise<void>) | null = null;
  override async read(key: string, range?: { start: number; end: number }) {
    const hook = this.beforeRead;
    this.beforeRead = null;
    await hook?.();
    return super.read(key, range);
  }
}

const code = (p: Promise<unknown>) => p.then(() => "read", (e) => (e instanceof RagdError ? e.code : `failed: ${e}`));

test("bytes gone under a listed file are stored_bytes_missing; a file deleted while its content is read is not found", async () => {
  const { dir, repos } = await projectRepos("ragd-missing-");
  const blobs = new RacedStore(join(dir, "blobs"));
  const files = new FilesService(repos.files, blobs, { maxFileSize: 1 << 20, projectQuota: 0 }, null);
  const make = async (text: string) => {
    const up = await files.beginUpload("p", text.length);
    await up.writer.write(new TextEncoder().encode(text));
    return files.create("p", up, { filename: "a.txt", purpose: "assistants" });
  };
  const lost = await make("bytes removed outside ragd");
  await blobs.delete(lost.id);
  expect(await code(files.content("p", lost.id))).toBe("stored_bytes_missing");
  const raced = await make("bytes of a file deleted meanwhile");
  blobs.beforeRead = async () => void (await files.delete("p", raced.id));
  expect(await code(files.content("p", raced.id))).toBe("not_found");
  const kept = await make("bytes still here");
  expect(await code(files.content("p", kept.id))).toBe("read");
});
