// A stored file's bytes leave the kernel's page cache (src/storage/page-cache.ts): at once
// when its upload commits, and as it goes while a large one is still arriving. Residency is
// read with mincore over a mapping of the file, which maps without reading anything in.
import { afterAll, expect, test } from "bun:test";
import { dlopen, FFIType, ptr } from "bun:ffi";
import { fsyncSync, mkdtempSync, openSync, closeSync, readdirSync, rmSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DiskBlobStore } from "../src/storage/blobs";

const linux = process.platform === "linux";
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const dir = () => {
  const d = mkdtempSync(join(tmpdir(), "ragd-page-cache-"));
  dirs.push(d);
  return d;
};

const PAGE = 4096;
const MB = 1 << 20;

/** Bytes of the file held in the page cache now. */
function residentBytes(path: string): number {
  if (statSync(path).size === 0) return 0;
  const libc = dlopen("libc.so.6", { mincore: { args: [FFIType.ptr, FFIType.u64, FFIType.ptr], returns: FFIType.i32 } });
  try {
    const map = Bun.mmap(path, { shared: true });
    const vec = new Uint8Array(Math.ceil(map.length / PAGE));
    if (libc.symbols.mincore(ptr(map), map.length, ptr(vec)) !== 0) throw new Error("mincore failed");
    let pages = 0;
    for (const v of vec) pages += v & 1;
    return pages * PAGE;
  } finally {
    libc.close();
  }
}

async function waitFor(check: () => boolean, ms = 10_000) {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await Bun.sleep(20);
  return check();
}

const chunk = (i: number) => new Uint8Array(MB).fill(i & 0xff);

test.skipIf(!linux)("a committed upload's bytes leave the page cache; a file written the plain way stays", async () => {
  const root = dir();
  // The same bytes written and fsynced without the store stay cached: the reading is real.
  const plain = join(root, "plain.bin");
  const fd = openSync(plain, "w");
  for (let i = 0; i < 4; i++) writeSync(fd, chunk(i));
  fsyncSync(fd);
  closeSync(fd);
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

test.skipIf(!linux)("a large upload sheds what was hashed while it is still arriving", async () => {
  const root = dir();
  const store = new DiskBlobStore(root);
  const w = await store.create("file-large");
  const part = () => join(root, "tmp", readdirSync(join(root, "tmp"))[0]!);
  // Without shedding every byte written stays cached until commit; with it, pages written
  // back are dropped at each of the hashing thread's steps (every 8 MB).
  let shed = false;
  for (let i = 0; i < 256 && !shed; i++) {
    await w.write(chunk(i));
    if (i % 8 === 7) shed = await waitFor(() => residentBytes(part()) <= (i + 1 - 16) * MB, 200);
  }
  expect(shed).toBe(true);
  await w.abort();
  expect(readdirSync(join(root, "tmp"))).toEqual([]);
});
