// A stored file's bytes leave the kernel's page cache (src/storage/page-cache.ts): once its
// upload commits, and as it goes while a large one is still arriving; the hashing thread
// that drops them lets go of every file it held. Residency is read with mincore over a
// mapping of the file, which maps without reading anything in.
import { afterAll, expect, test } from "bun:test";
import { dlopen, FFIType, ptr, type Pointer } from "bun:ffi";
import { closeSync, fsyncSync, mkdtempSync, openSync, readdirSync, readlinkSync, rmSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DiskBlobStore } from "../src/storage/blobs";
import { dropCachedPages } from "../src/storage/page-cache";

const PAGE = 4096;
const MB = 1 << 20;
const PROT_READ = 1;
const MAP_SHARED = 1;

const libc =
  process.platform === "linux"
    ? dlopen("libc.so.6", {
        mmap: { args: [FFIType.ptr, FFIType.u64, FFIType.i32, FFIType.i32, FFIType.i32, FFIType.i64], returns: FFIType.ptr },
        munmap: { args: [FFIType.ptr, FFIType.u64], returns: FFIType.i32 },
        mincore: { args: [FFIType.ptr, FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
      })
    : null;

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  libc?.close();
});
const dir = () => {
  const d = mkdtempSync(join(tmpdir(), "ragd-page-cache-"));
  dirs.push(d);
  return d;
};

/** Bytes of the file held in the page cache now. */
function residentBytes(path: string): number {
  const size = statSync(path).size;
  if (size === 0) return 0;
  const fd = openSync(path, "r");
  try {
    const at = libc!.symbols.mmap(null, size, PROT_READ, MAP_SHARED, fd, 0) as Pointer | null;
    // MAP_FAILED is (void *)-1
    if (at === null || Number(at) === -1 || Number(at) >= 2 ** 64 - PAGE) throw new Error("mmap failed");
    try {
      const vec = new Uint8Array(Math.ceil(size / PAGE));
      if (libc!.symbols.mincore(at, size, ptr(vec)) !== 0) throw new Error("mincore failed");
      let pages = 0;
      for (const v of vec) pages += v & 1;
      return pages * PAGE;
    } finally {
      libc!.symbols.munmap(at, size);
    }
  } finally {
    closeSync(fd);
  }
}

const chunk = (i: number) => new Uint8Array(MB).fill(i & 0xff);

function writePlain(path: string, mb: number) {
  const fd = openSync(path, "w");
  for (let i = 0; i < mb; i++) writeSync(fd, chunk(i));
  fsyncSync(fd);
  return fd;
}

// Where the temp directory's file system keeps no page cache to drop (tmpfs), there is
// nothing to see: the tests need a disk.
const canDrop = (() => {
  if (!libc) return false;
  const path = join(dir(), "probe.bin");
  const fd = writePlain(path, 1);
  try {
    return residentBytes(path) === MB && dropCachedPages(fd) && residentBytes(path) === 0;
  } finally {
    closeSync(fd);
  }
})();

async function waitFor(check: () => boolean, ms = 10_000) {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await Bun.sleep(20);
  return check();
}

/** The process's open descriptors on files under `root` (the hashing thread's included). */
function openUnder(root: string) {
  const out: string[] = [];
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(root)) out.push(target);
    } catch {}
  }
  return out;
}

test.skipIf(!canDrop)("a committed upload's bytes leave the page cache; a file written the plain way stays", async () => {
  const root = dir();
  // The same bytes written and fsynced without the store stay cached: the reading is real.
  const plain = join(root, "plain.bin");
  closeSync(writePlain(plain, 4));
  expect(residentBytes(plain)).toBe(4 * MB);

  const store = new DiskBlobStore(root);
  const w = await store.create("file-cached");
  for (let i = 0; i < 4; i++) await w.write(chunk(i));
  await w.commit();
  const path = await store.localPath("file-cached");
  expect(await waitFor(() => residentBytes(path) === 0)).toBe(true);
  // Dropped from memory, not from the disk.
  expect(Buffer.from(await (await store.read("file-cached")).arrayBuffer()).equals(Buffer.concat([0, 1, 2, 3].map(chunk)))).toBe(true);
});

test.skipIf(!canDrop)("a large upload sheds what was hashed while it is still arriving, and the rest at commit", async () => {
  const root = dir();
  const store = new DiskBlobStore(root);
  const w = await store.create("file-large");
  const part = join(root, "tmp", readdirSync(join(root, "tmp"))[0]!);
  // Without shedding every byte written stays cached until commit; with it, pages written
  // back are dropped at each of the hashing thread's steps (every 8 MB).
  let shed = false;
  for (let i = 0; i < 256 && !shed; i++) {
    await w.write(chunk(i));
    if (i % 8 === 7) shed = await waitFor(() => residentBytes(part) <= (i + 1 - 16) * MB, 200);
  }
  expect(shed).toBe(true);
  await w.commit();
  const path = await store.localPath("file-large");
  expect(await waitFor(() => residentBytes(path) === 0)).toBe(true);
});

test.skipIf(process.platform !== "linux")("the hashing thread lets go of every file: committed, aborted, or aborted while it commits", async () => {
  const root = dir();
  const store = new DiskBlobStore(root);
  for (let i = 0; i < 30; i++) {
    const w = await store.create(`file-${i}`);
    await w.write(new Uint8Array(100_000).fill(i));
    if (i % 3 === 0) await w.commit();
    else if (i % 3 === 1) await w.abort();
    else {
      // (FilesService aborts whatever failed, S3's commit included, while the spool commits)
      const committing = w.commit();
      await w.abort();
      await committing;
    }
  }
  expect(await waitFor(() => openUnder(root).length === 0)).toBe(true);
  // What committed stays, whole; what was aborted is gone.
  expect(readdirSync(join(root, "tmp"))).toEqual([]);
  for (let i = 0; i < 30; i++) expect(store.has(`file-${i}`)).toBe(i % 3 !== 1);
});

test("a file the hashing thread could not read fails its commit instead of hanging it", async () => {
  const { fileHasher } = await import("../src/storage/file-hasher");
  const h = fileHasher.start(join(dir(), "never-written.part"));
  // The first step names the file; it cannot be opened, and no one waits for that step. The
  // step after it must not lose the reason.
  h.advance(9 * MB);
  h.advance(18 * MB);
  // (the steps' failure comes back before anyone waits for the hash)
  await Bun.sleep(100);
  await expect(h.finish(18 * MB)).rejects.toThrow(/ENOENT|no such file/i);
  h.drop();
});
