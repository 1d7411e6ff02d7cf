import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { rename } from "node:fs/promises";
import { fsyncFile, sha256File, writeFileAtomicAsync } from "../util/atomic-file";
import { fileChecksum, fileChecksumSync } from "../util/file-checksum";
import { int8CosineIndex, type AddonIndex } from "./usearch-addon";
import { int8Codes } from "./vector-codec";

export interface VectorMatch {
  id: number;
  /** Cosine similarity, -1..1. */
  similarity: number;
}

/**
 * Approximate nearest neighbours over chunk ids. Derived data: SQLite holds every vector,
 * so an index can always be rebuilt, and callers check hits against SQLite (a deleted
 * chunk may linger in the index until the next rebuild, never in results). The index
 * lives on a thread of its own (vector-thread.ts), so neither its inserts nor its native
 * save hold the event loop.
 */
export interface VectorIndex {
  readonly dims: number;
  /** Highest chunk id the index has been given; everything after it is added on load. */
  readonly maxId: number;
  /** Changes when the index falls back to its saved state (its thread was replaced). */
  readonly generation: number;
  /** Vectors in the index as of its last answer. */
  size(): number;
  /**
   * Vectors as SQLite stores them (vector-codec.ts): the index keeps their int8 codes.
   * `whole`: nobody is searching yet (start-up), so the batch goes in at once on every core.
   */
  add(ids: number[], stored: Uint8Array[], whole?: boolean): Promise<void>;
  search(query: Float32Array, k: number): Promise<VectorMatch[]>;
  /** Writes the index and its manifest atomically. */
  save(): Promise<void>;
  close(): Promise<void>;
}

export interface Manifest {
  /** The in-memory layout (scalar type, metric, links per node); another means a rebuild. */
  layout: string;
  model: string;
  dims: number;
  maxId: number;
  size: number;
  bytes: number;
  /** fileChecksum()'s; indexes saved before it have `sha256` instead. */
  checksum?: string;
  sha256?: string;
}

// The graph holds each vector as the int8 codes SQLite stores (usearch-addon.ts says why not
// usearch's own cast), and a query is cut to int8 the same way: 512 bytes a vector against
// float16's 1,024, and the exact search recall is measured against is over those same codes.
// At a million vectors (bench `scale`'s cached vectors, the first 200 SciFact train queries
// embedded as queries, one thread, recall@10 of a search asking for 200 against exact cosine
// over the stored vectors; 2026-12-06, AMD EPYC):
// - int8: ef_search 256 / 320 / 384 / 512 gave 0.964 / 0.971 / 0.977 / 0.983 at 1.2 / 1.4 /
//   1.7 / 2.3 ms p50; usearch's build took 123 s on 2 cores;
// - float16 (until 2026-12-06), ef_construction 64: ef_search 256 / 384 / 512 gave 0.962 /
//   0.976 / 0.981 at 1.5-1.8 / 2.3 ms, and the build 200 s (393 CPU-s). With
//   ef_construction 128, 384 gave 0.987 at 2.9 ms and the build took 432 s.
// So int8, 64 and 384: the recall float16 had, sooner, in half the memory.
// usearch searches with the larger of ef_search and the k asked (a search asks for 200).
const CONNECTIVITY = 16;
const EXPANSION_ADD = 64;
const EXPANSION_SEARCH = 384;
// What a saved graph must match to be loaded. ef_construction is not part of it: it shapes
// only the links made while adding, so a graph built with another value loads and takes new
// vectors as well (manifests before 2026-12-06 named it, as "-efc128").
const LAYOUT = `i8-cos-M${CONNECTIVITY}`;
const layoutOf = (named: string | undefined) => named?.replace(/-efc\d+$/, "");

/** The native index, used on the index thread (vector-worker.ts) only. */
export class UsearchIndex {
  private index: AddonIndex;
  private _maxId = 0;

  private constructor(
    private readonly path: string,
    private readonly model: string,
    readonly dims: number,
  ) {
    this.index = UsearchIndex.empty(dims);
  }

  private static empty(dims: number) {
    return int8CosineIndex(dims, CONNECTIVITY, EXPANSION_ADD, EXPANSION_SEARCH);
  }

  /** An empty index, or the saved one when its manifest matches the model and its bytes check out. */
  static open(path: string, model: string, dims: number): { index: UsearchIndex; loaded: boolean; reason?: string } {
    const idx = new UsearchIndex(path, model, dims);
    const reason = idx.tryLoad();
    return { index: idx, loaded: reason === null, reason: reason ?? undefined };
  }

  private tryLoad(): string | null {
    const manifestPath = `${this.path}.json`;
    if (!existsSync(this.path) || !existsSync(manifestPath)) return "no saved index";
    let m: Manifest;
    try {
      m = JSON.parse(readFileSync(manifestPath, "utf8"));
    } catch {
      return "the index manifest is unreadable";
    }
    if (m.model !== this.model || m.dims !== this.dims) return `the saved index is for ${m.model} (${m.dims} dimensions)`;
    if (layoutOf(m.layout) !== LAYOUT) return `the saved index has another layout (${m.layout ?? "unknown"})`;
    // usearch trusts its file; a torn or corrupted file must never reach native code.
    // (an index saved before the faster checksum is checked by its SHA-256, not rebuilt)
    const file = m.checksum ? fileChecksumSync(this.path) : sha256File(this.path);
    const same = "checksum" in file ? file.checksum === m.checksum : file.sha256 === m.sha256;
    if (file.bytes !== m.bytes || !same) return "the index file does not match its checksum";
    try {
      this.index.load(this.path);
    } catch (e) {
      this.index = UsearchIndex.empty(this.dims);
      return `the index file could not be loaded: ${String(e)}`;
    }
    if (this.index.size() !== m.size) {
      this.index = UsearchIndex.empty(this.dims);
      return "the index holds a different number of vectors than its manifest";
    }
    this._maxId = m.maxId;
    return null;
  }

  get maxId() {
    return this._maxId;
  }

  size() {
    return this.index.size();
  }

  /** `codes` holds the vectors' stored int8 codes one after another; `threads` 0 means every core. */
  add(ids: ArrayLike<number>, codes: Int8Array, threads = 0) {
    if (ids.length === 0) return;
    const dims = this.dims;
    if (codes.length !== ids.length * dims) throw new Error(`${ids.length} vectors of ${dims} dimensions take ${ids.length * dims} values, not ${codes.length}`);
    const keys = new BigUint64Array(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      keys[i] = BigInt(id);
      if (id > this._maxId) this._maxId = id;
    }
    // usearch refuses a key twice in a non-multi index: a re-embedded chunk replaces its vector
    const held = this.index.contains(keys);
    if (held.some(Boolean)) this.index.remove(keys.filter((_, i) => held[i]));
    this.index.add(keys, codes, threads);
  }

  search(query: Float32Array, k: number): { ids: Float64Array; similarities: Float32Array } {
    const size = this.index.size();
    if (size === 0 || k <= 0) return { ids: new Float64Array(0), similarities: new Float32Array(0) };
    if (query.length !== this.dims) throw new Error(`the query has ${query.length} dimensions, the index ${this.dims}`);
    // The query is cut to int8 like the stored vectors (its own scale): cosine ignores scale.
    const codes = new Int8Array(this.dims);
    int8Codes(query, codes);
    const [keys, distances, counts] = this.index.search(codes, Math.min(k, size), 1);
    const found = Number(counts[0]);
    const ids = new Float64Array(found);
    const similarities = new Float32Array(found);
    for (let i = 0; i < found; i++) {
      ids[i] = Number(keys[i]);
      similarities[i] = 1 - distances[i]!;
    }
    return { ids, similarities };
  }

  /** The native write to `tmp`; publishSnapshot() makes it the saved index. */
  snapshot(tmp: string): Snapshot {
    mkdirSync(dirname(tmp), { recursive: true });
    const meta = { maxId: this._maxId, size: this.index.size() };
    this.index.save(tmp);
    return { ...meta, bytes: statSync(tmp).size };
  }

}

export interface Snapshot {
  maxId: number;
  size: number;
  bytes: number;
}

/**
 * Makes a snapshot written by UsearchIndex.snapshot() the saved index: its checksum is
 * read back while it is fsynced, then it is renamed into place and its
 * manifest written after it.
 */
export async function publishSnapshot(path: string, tmp: string, snap: Snapshot, model: string, dims: number) {
  const [{ bytes, checksum }] = await Promise.all([fileChecksum(tmp), fsyncFile(tmp)]);
  if (bytes !== snap.bytes) throw new Error(`the index snapshot is ${bytes} bytes, ${snap.bytes} were written`);
  const manifest: Manifest = { layout: LAYOUT, model, dims, maxId: snap.maxId, size: snap.size, bytes, checksum };
  // The manifest names the bytes it describes: rename the index first, then the manifest.
  // A crash between the two leaves a checksum mismatch, which means a rebuild, never a wrong load.
  await rename(tmp, path);
  await writeFileAtomicAsync(`${path}.json`, JSON.stringify(manifest));
}

export function discardIndex(path: string) {
  rmSync(path, { force: true });
  rmSync(`${path}.json`, { force: true });
}
