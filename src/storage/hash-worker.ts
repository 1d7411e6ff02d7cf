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
  /** Where the pages not yet asked to leave the cache start. */
  shedFrom: number;
  /** `at` when they were last asked. */
  shedTo: number;
}

const PAGE = 4096;
const open = new Map<number, Open>();
// Why a file's hashing failed, for its finish (an advance has no one waiting for its answer).
const failed = new Map<number, string>();
const buf = new Uint8Array(1 << 20);

function reply(id: number, r: Omit<HashReply, "id">) {
  self.postMessage({ id, ...r } as HashReply);
}

self.onmessage = (e: MessageEvent<HashRequest>) => {
  const m = e.data;
  try {
    if ((m.op === "advance" || m.op === "finish") && m.path !== undefined) open.set(m.id, { fd: openSync(m.path, "r"), hash: new Bun.CryptoHasher("sha256"), at: 0, shedFrom: 0, shedTo: 0 });
    const f = open.get(m.id);
    if (!f) {
      if (m.op === "finish") reply(m.id, { error: failed.get(m.id) ?? "the hashing thread does not have the file" });
      // (a later step of a failed file keeps its reason for the finish)
      if (m.op !== "advance") failed.delete(m.id);
      return;
    }
    if (m.op === "advance" || m.op === "finish") {
      while (f.at < m.upTo) {
        const n = readSync(f.fd, buf, 0, Math.min(buf.length, m.upTo - f.at), f.at);
        if (n === 0) throw new Error(`the file ended at ${f.at} bytes, ${m.upTo} were written`);
        f.hash.update(buf.subarray(0, n));
        f.at += n;
      }
      if (m.op === "advance") shed(f);
      // The descriptor stays open for the writer's evict or drop, which always follows.
      else reply(m.id, { sha256: f.hash.digest("hex") });
      return;
    }
    open.delete(m.id);
    if (m.op === "evict") dropCachedPages(f.fd);
    closeSync(f.fd);
  } catch (err) {
    const f = open.get(m.id);
    open.delete(m.id);
    if (f) closeSync(f.fd);
    const error = String((err as Error)?.message ?? err);
    if (m.op === "finish") reply(m.id, { error });
    else if (m.op === "advance") failed.set(m.id, error);
  }
};

/**
 * A large upload sheds its pages as it arrives, so only its last steps stay cached: the
 * kernel drops the clean pages of a range and starts writing back its dirty ones, so each
 * call covers the step before (written back since, dropped now) and the new one (written
 * back from now). Whole pages only: a partly written last page dropped would have to be read
 * back for the next write into it.
 */
function shed(f: Open) {
  const to = Math.floor(f.at / PAGE) * PAGE;
  if (to <= f.shedFrom) return;
  dropCachedPages(f.fd, f.shedFrom, to - f.shedFrom);
  f.shedFrom = f.shedTo;
  f.shedTo = to;
}
