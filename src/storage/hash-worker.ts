// Hashes files as they are written, reading back what has reached the page cache, so the
// SHA-256 of an upload (about 1 ms per MB) is not computed on the event loop. Once the
// writer has made a file durable, the same descriptor drops its pages from the cache
// (page-cache.ts), which for a large file takes longer than the event loop may be held.
import { closeSync, openSync, readSync } from "node:fs";
import type { HashReply, HashRequest } from "./file-hasher";
import { dropCachedPages } from "./page-cache";

declare const self: Worker;

interface Open {
  fd: number;
  hash: Bun.CryptoHasher;
  at: number;
}

const open = new Map<number, Open>();
const buf = new Uint8Array(1 << 20);

self.onmessage = (e: MessageEvent<HashRequest>) => {
  const m = e.data;
  try {
    if ((m.op === "advance" || m.op === "finish") && m.path !== undefined) open.set(m.id, { fd: openSync(m.path, "r"), hash: new Bun.CryptoHasher("sha256"), at: 0 });
    const f = open.get(m.id);
    if (!f) return;
    if (m.op === "advance" || m.op === "finish") {
      while (f.at < m.upTo) {
        const n = readSync(f.fd, buf, 0, Math.min(buf.length, m.upTo - f.at), f.at);
        if (n === 0) throw new Error(`the file ended at ${f.at} bytes, ${m.upTo} were written`);
        f.hash.update(buf.subarray(0, n));
        f.at += n;
      }
      // A large upload sheds what was hashed as it arrives, so it never fills the page cache
      // with dirty pages; the rest goes at evict.
      if (m.op === "advance") dropCachedPages(f.fd, 0, f.at);
      // The descriptor stays open for the writer's evict or drop, which always follows.
      if (m.op === "finish") self.postMessage({ id: m.id, sha256: f.hash.digest("hex") } satisfies HashReply);
      return;
    }
    open.delete(m.id);
    if (m.op === "evict") dropCachedPages(f.fd);
    closeSync(f.fd);
  } catch (err) {
    const f = open.get(m.id);
    open.delete(m.id);
    if (f) closeSync(f.fd);
    if (m.op === "advance" || m.op === "finish") self.postMessage({ id: m.id, error: String((err as Error)?.message ?? err) } satisfies HashReply);
  }
};
