// Hashes files as they are written, reading back what has reached the page cache, so the
// SHA-256 of an upload (about 1 ms per MB) is not computed on the event loop.
import { closeSync, openSync, readSync } from "node:fs";
import type { HashReply, HashRequest } from "./file-hasher";

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
    if (m.op !== "drop" && m.path !== undefined) open.set(m.id, { fd: openSync(m.path, "r"), hash: new Bun.CryptoHasher("sha256"), at: 0 });
    const f = open.get(m.id);
    if (!f) return;
    if (m.op === "drop") {
      open.delete(m.id);
      closeSync(f.fd);
      return;
    }
    while (f.at < m.upTo) {
      const n = readSync(f.fd, buf, 0, Math.min(buf.length, m.upTo - f.at), f.at);
      if (n === 0) throw new Error(`the file ended at ${f.at} bytes, ${m.upTo} were written`);
      f.hash.update(buf.subarray(0, n));
      f.at += n;
    }
    if (m.op === "finish") {
      open.delete(m.id);
      closeSync(f.fd);
      self.postMessage({ id: m.id, sha256: f.hash.digest("hex") } satisfies HashReply);
    }
  } catch (err) {
    const f = open.get(m.id);
    open.delete(m.id);
    if (f) closeSync(f.fd);
    if (m.op !== "drop") self.postMessage({ id: m.id, error: String((err as Error)?.message ?? err) } satisfies HashReply);
  }
};
