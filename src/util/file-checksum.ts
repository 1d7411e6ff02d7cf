import { closeSync, openSync, readSync } from "node:fs";
import { open } from "node:fs/promises";

// A checksum for derived files of a gigabyte or more (the vector index at a million chunks):
// they are checked at every start, where SHA-256 cost 0.6-0.7 s per GB here and xxHash3
// 0.03 s. It guards against torn and corrupted files, not against someone who can write the
// data directory. Read in blocks so it never holds the file; each block's xxHash3 goes into
// a list that is hashed once more at the end.
const BLOCK = 8 << 20;
export const CHECKSUM_KIND = "xxh3-8m";

function finish(digests: bigint[]): string {
  const all = BigUint64Array.from(digests);
  return `${CHECKSUM_KIND}:${Bun.hash.xxHash3(new Uint8Array(all.buffer)).toString(16)}`;
}

// Blocks are filled before they are hashed: the checksum must not depend on how reads split.
export function fileChecksumSync(path: string): { bytes: number; checksum: string } {
  const buf = new Uint8Array(BLOCK);
  const digests: bigint[] = [];
  const fd = openSync(path, "r");
  let bytes = 0;
  try {
    for (;;) {
      let n = 0;
      for (let r; n < BLOCK && (r = readSync(fd, buf, n, BLOCK - n, null)) > 0; ) n += r;
      if (n === 0) break;
      digests.push(Bun.hash.xxHash3(buf.subarray(0, n)));
      bytes += n;
      if (n < BLOCK) break;
    }
  } finally {
    closeSync(fd);
  }
  return { bytes, checksum: finish(digests) };
}

/** The same, read on the thread pool: the event loop only hashes (about 0.3 ms per block). */
export async function fileChecksum(path: string): Promise<{ bytes: number; checksum: string }> {
  const buf = new Uint8Array(BLOCK);
  const digests: bigint[] = [];
  const fh = await open(path, "r");
  let bytes = 0;
  try {
    for (;;) {
      let n = 0;
      for (let r; n < BLOCK && (r = (await fh.read(buf, n, BLOCK - n, null)).bytesRead) > 0; ) n += r;
      if (n === 0) break;
      digests.push(Bun.hash.xxHash3(buf.subarray(0, n)));
      bytes += n;
      if (n < BLOCK) break;
    }
  } finally {
    await fh.close();
  }
  return { bytes, checksum: finish(digests) };
}
