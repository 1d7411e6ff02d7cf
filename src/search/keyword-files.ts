import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { rename } from "node:fs/promises";
import { fsyncFile, writeFileAtomicAsync } from "../util/atomic-file";
import { ANALYZER_VERSION } from "./analyzer";
import { KeywordIndex } from "./keyword-index";
import { BLOCK, Bitset, META, Segment, TermTable } from "./segment";

/**
 * The keyword index on disk, as Lucene keeps one: immutable segment files, written once
 * (temp file, fsync, rename), and a manifest naming them with their checksums, each
 * segment's deleted chunks, and the change sequence the whole reflects. The manifest is
 * replaced atomically after the segments it names are durable, so a crash at any point
 * leaves the previous state or the new one; a file that does not match its checksum means a
 * rebuild from SQLite, never a wrong load.
 */
const MANIFEST = "keyword.json";
const MAGIC = 0x574b4752; // "RGKW"
const FORMAT = 1;

interface Manifest {
  format: number;
  analyzer: string;
  seq: number;
  maxId: number;
  /** A hash of the newest chunk's text: tells a database restored from a backup from this one. */
  newest: string | null;
  segments: { name: string; bytes: number; hash: string; deleted: string | null; deletedDf: Record<string, number> | null }[];
}

const hashOf = (bytes: Uint8Array) => Bun.hash.wyhash(bytes, 0x5241_4744n).toString(16);
const align8 = (n: number) => (n + 7) & ~7;

function encode(seg: Segment): Uint8Array {
  const terms = [...seg.terms.entries()];
  const enc = new TextEncoder();
  const names = terms.map(([t]) => enc.encode(t));
  const nameBytes = names.reduce((a, b) => a + b.length, 0);
  let postings = 0;
  let blocks = 0;
  for (const [, p] of terms) {
    postings += p.docs.length;
    blocks += p.blockMaxTf.length;
  }
  const n = seg.size;
  const layout = [
    32, // header
    n * 8, // ids
    n * 4, // dls
    (terms.length + 1) * 4, // name offsets
    nameBytes,
    terms.length * 16, // per term: postings count, block count, max tf, min dl
    postings * 4, // docs
    postings * 2, // tfs
    blocks * 2, // block max tf
    blocks * 4, // block min dl
  ].map(align8);
  const total = layout.reduce((a, b) => a + b, 0);
  const buf = new ArrayBuffer(total);
  const bytes = new Uint8Array(buf);
  const offsets: number[] = [];
  layout.reduce((at, size) => (offsets.push(at), at + size), 0);
  const header = new Uint32Array(buf, 0, 8);
  header.set([MAGIC, FORMAT, n, terms.length, nameBytes, postings, blocks, 0]);
  new Float64Array(buf, offsets[1], n).set(seg.ids);
  new Uint32Array(buf, offsets[2], n).set(seg.dls);
  const nameOffsets = new Uint32Array(buf, offsets[3], terms.length + 1);
  const table = new Uint32Array(buf, offsets[5], terms.length * 4);
  const docs = new Uint32Array(buf, offsets[6], postings);
  const tfs = new Uint16Array(buf, offsets[7], postings);
  const bmt = new Uint16Array(buf, offsets[8], blocks);
  const bmd = new Uint32Array(buf, offsets[9], blocks);
  let nameAt = 0;
  let at = 0;
  let blockAt = 0;
  terms.forEach(([, p], i) => {
    nameOffsets[i] = nameAt;
    bytes.set(names[i]!, offsets[4]! + nameAt);
    nameAt += names[i]!.length;
    table.set([p.docs.length, p.blockMaxTf.length, p.maxTf, p.minDl], i * 4);
    docs.set(p.docs, at);
    tfs.set(p.tfs, at);
    bmt.set(p.blockMaxTf, blockAt);
    bmd.set(p.blockMinDl, blockAt);
    at += p.docs.length;
    blockAt += p.blockMaxTf.length;
  });
  nameOffsets[terms.length] = nameAt;
  return bytes;
}

/** Views over the file's bytes: nothing is copied but the term names and the term table. */
function decode(bytes: Uint8Array): Segment {
  if (bytes.byteOffset % 8 !== 0) bytes = bytes.slice();
  const buf = bytes.buffer;
  const base = bytes.byteOffset;
  const header = new Uint32Array(buf, base, 8);
  const [magic, format, n, termCount, nameBytes, postings, blocks] = header as unknown as number[];
  if (magic !== MAGIC || format !== FORMAT) throw new Error("not a keyword segment of this format");
  const layout = [32, n! * 8, n! * 4, (termCount! + 1) * 4, nameBytes!, termCount! * 16, postings! * 4, postings! * 2, blocks! * 2, blocks! * 4].map(align8);
  if (layout.reduce((a, b) => a + b, 0) !== bytes.length) throw new Error("the segment's size does not match its header");
  const offsets: number[] = [];
  layout.reduce((at, size) => (offsets.push(base + at), at + size), 0);
  const ids = new Float64Array(buf, offsets[1], n);
  const dls = new Uint32Array(buf, offsets[2], n);
  const nameOffsets = new Uint32Array(buf, offsets[3], termCount! + 1);
  const names = new TextDecoder().decode(new Uint8Array(buf, offsets[4], nameBytes));
  const table = new Uint32Array(buf, offsets[5], termCount! * 4);
  const docs = new Uint32Array(buf, offsets[6], postings);
  const tfs = new Uint16Array(buf, offsets[7], postings);
  const bmt = new Uint16Array(buf, offsets[8], blocks);
  const bmd = new Uint32Array(buf, offsets[9], blocks);
  const slots = new Map<string, number>();
  const meta = new Uint32Array(termCount! * META);
  // Term names are ASCII almost always; byte offsets equal string offsets only then.
  const ascii = names.length === nameBytes;
  const enc = ascii ? null : new TextEncoder().encode(names);
  const dec = new TextDecoder();
  let at = 0;
  let blockAt = 0;
  for (let i = 0; i < termCount!; i++) {
    const count = table[i * 4]!;
    const blockCount = table[i * 4 + 1]!;
    if (count === 0 || blockCount !== Math.ceil(count / BLOCK)) throw new Error("a term's block count does not match its postings");
    const name = ascii ? names.slice(nameOffsets[i]!, nameOffsets[i + 1]!) : dec.decode(enc!.subarray(nameOffsets[i]!, nameOffsets[i + 1]!));
    meta.set([at, count, blockAt, blockCount, table[i * 4 + 2]!, table[i * 4 + 3]!], i * META);
    slots.set(name, i);
    at += count;
    blockAt += blockCount;
    if (at > postings! || blockAt > blocks!) throw new Error("the segment's term table runs past its postings");
  }
  if (at !== postings || blockAt !== blocks) throw new Error("the segment's term table does not cover its postings");
  for (let i = 0; i < n!; i++) if (i > 0 && !(ids[i]! > ids[i - 1]!)) throw new Error("the segment's chunk ids do not ascend");
  return new Segment(ids, dls, new TermTable(slots, meta, docs, tfs, bmt, bmd));
}

export interface KeywordSnapshot {
  segments: { seg: Segment; deleted: Uint32Array | null; deletedDf: Record<string, number> | null }[];
  seq: number;
  maxId: number;
  newest: string | null;
}

export const textHash = (text: string) => Bun.hash.wyhash(text).toString(16);

/** What a save writes: taken at once, so the segments, their deletes and the sequence agree. */
export function snapshot(index: KeywordIndex): KeywordSnapshot {
  index.sealTail();
  return {
    segments: index.segments.map((seg) => ({
      seg,
      deleted: seg.deletedCount ? seg.deleted.words.slice() : null,
      deletedDf: seg.deletedCount ? Object.fromEntries(seg.deletedDf) : null,
    })),
    seq: index.seq,
    maxId: index.maxId,
    newest: null,
  };
}

/** Writes the segments not yet on disk, then the manifest; removes segment files no longer named. */
export async function saveKeywordIndex(dir: string, snap: KeywordSnapshot, keep: Iterable<string> = []) {
  mkdirSync(dir, { recursive: true });
  for (const { seg } of snap.segments) {
    if (seg.file) continue;
    const bytes = encode(seg);
    const name = `kw-${Date.now().toString(36)}-${randomBytes(4).toString("hex")}.seg`;
    const tmp = join(dir, `${name}.tmp`);
    await Bun.write(tmp, bytes);
    await fsyncFile(tmp);
    await rename(tmp, join(dir, name));
    seg.file = { name, hash: hashOf(bytes), bytes: bytes.length };
  }
  await fsyncFile(dir);
  const manifest: Manifest = {
    format: FORMAT,
    analyzer: ANALYZER_VERSION,
    seq: snap.seq,
    maxId: snap.maxId,
    newest: snap.newest,
    segments: snap.segments.map(({ seg, deleted, deletedDf }) => ({
      ...seg.file!,
      deletedDf,
      deleted: deleted ? Buffer.from(deleted.buffer, deleted.byteOffset, deleted.byteLength).toString("base64") : null,
    })),
  };
  await writeFileAtomicAsync(join(dir, MANIFEST), JSON.stringify(manifest));
  // Segments the index holds now (merged since the snapshot) are not yet named but are kept.
  const named = new Set([...manifest.segments.map((s) => s.name), ...keep]);
  for (const f of readdirSync(dir)) if (/^kw-[a-z0-9-]+\.seg$/.test(f) && !named.has(f)) rmSync(join(dir, f), { force: true });
}

/** The saved index, or why there is none that can be trusted. */
export function loadKeywordIndex(dir: string): { index: KeywordIndex; newest: string | null } | { reason: string } {
  const path = join(dir, MANIFEST);
  if (!existsSync(path)) return { reason: "no saved index" };
  let m: Manifest;
  try {
    m = JSON.parse(readFileSync(path, "utf8"));
  } catch {
    return { reason: "the keyword index manifest is unreadable" };
  }
  if (m.format !== FORMAT) return { reason: `the saved keyword index has another format (${m.format})` };
  if (m.analyzer !== ANALYZER_VERSION) return { reason: `the saved keyword index was made by another analyzer (${m.analyzer})` };
  const index = new KeywordIndex();
  for (const s of m.segments) {
    const file = join(dir, s.name);
    if (!/^kw-[a-z0-9-]+\.seg$/.test(s.name) || !existsSync(file)) return { reason: `the keyword segment ${s.name} is missing` };
    // a view of what was read: new Uint8Array(buffer) would copy it (a second 175 MB at 1M chunks)
    const read = readFileSync(file);
    const bytes = new Uint8Array(read.buffer, read.byteOffset, read.byteLength);
    if (bytes.length !== s.bytes || hashOf(bytes) !== s.hash) return { reason: `the keyword segment ${s.name} does not match its checksum` };
    let seg: Segment;
    try {
      seg = decode(bytes);
    } catch (e) {
      return { reason: `the keyword segment ${s.name} is unreadable: ${(e as Error).message}` };
    }
    seg.file = { name: s.name, bytes: s.bytes, hash: s.hash };
    if (s.deleted) {
      const words = new Uint32Array(new Uint8Array(Buffer.from(s.deleted, "base64")).buffer);
      const bits = new Bitset(seg.size, words);
      for (let o = 0; o < seg.size; o++) if (bits.has(o)) seg.delete(seg.ids[o]!, []);
      seg.deletedDf = new Map(Object.entries(s.deletedDf ?? {}));
    }
    index.segments.push(seg);
  }
  index.seq = m.seq;
  index.maxId = m.maxId;
  return { index, newest: m.newest ?? null };
}
