import type { ChunksRepo } from "../storage/repos";
import { waitAtMost } from "../util/time";
import { coalesced } from "../util/coalesce";
import { log } from "../util/log";
import { analyze, containsPhrase, parseQuery, type KeywordQuery } from "./analyzer";
import { B, K1 } from "./segment";
import { bm25Kernel } from "./bm25-kernel";
import { KeywordIndex, type KeywordHit } from "./keyword-index";
import { loadKeywordIndex, saveKeywordIndex, snapshot, textHash } from "./keyword-files";
import { ChunkPlaces } from "./chunk-places";

const BATCH = 2_000;
const PLACES_BATCH = 10_000;
const FRESH_WAIT_MS = 250;
const FRESH_ALWAYS_CHANGES = 5_000;
const FRESH_MAX_WAIT_MS = 2_000;
// Work in slices so requests wait for at most one (analysis costs ~5-20 µs a chunk).
const SLICE_MS = 8;
// A verbatim quoted phrase lifts a chunk's keyword score by this share per phrase.
const PHRASE_BOOST = 0.5;
// A chunk's keyword score also counts its neighbourhood: the chunks of the same file within
// CONTEXT_RADIUS places, scored by BM25 as one passage and weighted by CONTEXT_WEIGHT. A
// chunk whose surroundings speak of the query too is more likely from a document about it.
// On SciFact's train queries (bench/retrieval.ts) hybrid nDCG@10 goes from 0.661 to 0.702
// (weight 2: 0.700, 4: 0.702; radius 2 is below 4); BM25 over whole documents gives 0.701.
const CONTEXT_RADIUS = 4;
const CONTEXT_WEIGHT = 3;

/**
 * Keeps the keyword index in step with SQLite: loaded at start (or rebuilt from the chunks
 * table when missing, corrupt or analysed differently), then fed from the chunk change log
 * (chunk_changes, written by triggers in the same transaction as the chunks), saved now and
 * then with the sequence it reflects, after which the log up to it is pruned. A restart
 * replays the log from the saved sequence instead of rebuilding; any number of processes
 * could each keep a replica fed from the same sequence.
 */
export class KeywordSearch {
  index = new KeywordIndex();
  /** Every chunk's place, at the index's sequence (kept by the same replay of the log). */
  places = new ChunkPlaces();
  dirty = false;
  private saving: Promise<void> = Promise.resolve();

  constructor(
    private readonly chunks: ChunksRepo,
    private readonly dir: string,
  ) {}

  async start() {
    const loaded = loadKeywordIndex(this.dir);
    if ("index" in loaded) {
      const stale = await this.staleness(loaded.index, loaded.newest);
      if (stale) await this.rebuild(stale);
      else {
        // Places are not saved: read from SQLite as they are now, ahead of the index's
        // sequence; the replay below skips what they already hold.
        this.places = await this.readPlaces();
        this.index = loaded.index;
      }
    } else await this.rebuild(loaded.reason);
    await this.catchUp();
    // An index saved while merges ran (a stop mid-build) holds more segments than the policy
    // keeps: they merge now, in the background, and the next save writes the merged ones.
    const index = this.index;
    const before = [...index.segments];
    void index.merge().then(() => {
      if (this.index === index && (index.segments.length !== before.length || index.segments.some((s, i) => s !== before[i]))) this.dirty = true;
    });
    log.info("keyword index ready", { chunks: this.index.size, segments: this.index.segments.length, loaded: "index" in loaded, bm25: bm25Kernel() ? "native kernel" : "JavaScript loop" });
  }

  /**
   * Why a saved index does not describe this database, if it does not: a log pruned past its
   * sequence leaves a gap only a rebuild fills, and a database restored from an older backup
   * is behind the index or has given its chunk ids to other texts.
   */
  private async staleness(index: KeywordIndex, newest: string | null): Promise<string | null> {
    if (!(await this.chunks.changeLogReaches(index.seq))) return "the change log no longer reaches the saved index";
    if ((await this.chunks.chunkIdsIssued()) < index.maxId || (await this.chunks.lastChange()) < index.seq)
      return "the database is older than the saved index (restored from a backup?)";
    const text = (await this.chunks.texts([index.maxId])).get(index.maxId);
    if (newest !== null && text !== undefined && textHash(text) !== newest) return "the saved index describes other chunks than the database holds (restored from a backup?)";
    return null;
  }

  /** Builds the index from every stored chunk; changes committed meanwhile are replayed after. */
  async rebuild(reason: string) {
    (reason === "no saved index" ? log.info : log.warn)("building the keyword index from SQLite", { reason });
    const index = new KeywordIndex();
    index.seq = await this.chunks.lastChange();
    let clock = performance.now();
    for (let after = 0; ; ) {
      const rows = await this.chunks.textsAfter(after, BATCH);
      if (rows.length === 0) break;
      for (const r of rows) {
        index.add(r.id, analyze(r.text));
        if (performance.now() - clock > SLICE_MS) {
          await new Promise((r) => setTimeout(r, 0));
          clock = performance.now();
        }
      }
      after = rows[rows.length - 1]!.id;
    }
    // One segment, the fastest to search: the merge takes about a second at a million chunks.
    await index.mergeAll();
    // Read after the index's sequence was taken: the replay that follows brings both to one.
    this.places = await this.readPlaces();
    this.index = index;
    this.dirty = true;
  }

  /** Every stored chunk's place: a cut's run at once where its ids follow its positions, chunk by chunk where not. */
  private async readPlaces() {
    const places = new ChunkPlaces();
    let clock = performance.now();
    for (let after = null; ; ) {
      const runs = await this.chunks.placeRuns(after, PLACES_BATCH);
      if (runs.length === 0) return places;
      for (const r of runs) {
        if (r.lo === r.hi && r.last - r.first + 1 === r.count) places.addRun(r.fileId, r.cut, r.first, r.last, r.lo);
        else for (const c of await this.chunks.placesOf(r.fileId, r.cut)) places.add(c.id, { fileId: r.fileId, cut: r.cut, idx: c.idx });
        if (performance.now() - clock > SLICE_MS) {
          await new Promise((r) => setTimeout(r, 0));
          clock = performance.now();
        }
      }
      after = runs[runs.length - 1]!;
    }
  }

  /** Applies every committed change after the index's sequence. */
  readonly catchUp = coalesced(async () => {
    let clock = performance.now();
    for (;;) {
      const rows = await this.chunks.changesAfter(this.index.seq, BATCH);
      if (rows.length === 0) return;
      // The log has no gaps: a first change past the next one means entries this index needed
      // were pruned (by another process sharing the database, which saved before this one).
      if (rows[0]!.seq !== this.index.seq + 1) {
        await this.rebuild("the change log was pruned past this index");
        continue;
      }
      for (const r of rows) {
        if (r.op === "delete") {
          this.index.delete(r.id, r.text === null ? [] : analyze(r.text));
          this.places.delete(r.id);
        }
        // An add whose chunk is gone by now has its delete later in the log.
        else if (r.text !== null) {
          this.index.add(r.id, analyze(r.text));
          if (r.fileId !== null) this.places.add(r.id, { fileId: r.fileId, cut: r.cut!, idx: r.idx! });
        }
        this.index.seq = r.seq;
        this.dirty = true;
        if (performance.now() - clock > SLICE_MS) {
          await new Promise((r) => setTimeout(r, 0));
          clock = performance.now();
        }
      }
    }
  });

  /** Writes the index if it changed, then drops the log it no longer needs. One save at a time. */
  save(): Promise<void> {
    const run = this.saving.then(() => this.saveNow());
    this.saving = run.catch(() => {});
    return run;
  }

  private async saveNow() {
    if (!this.dirty) return;
    this.dirty = false;
    const snap = snapshot(this.index);
    try {
      const newest = (await this.chunks.texts([snap.maxId])).get(snap.maxId);
      snap.newest = newest === undefined ? null : textHash(newest);
      await saveKeywordIndex(this.dir, snap, this.index.segments.flatMap((s) => (s.file ? [s.file.name] : [])));
      await this.chunks.pruneChanges(snap.seq);
    } catch (e) {
      this.dirty = true;
      throw e;
    }
  }

  /**
   * Replays what was committed since the last look, so a chunk committed a moment ago is
   * searchable. Up to FRESH_ALWAYS_CHANGES behind it waits for all of them; behind a larger
   * backlog (a restart's replay, a burst of ingestion elsewhere) it waits at most
   * FRESH_WAIT_MS and answers from the index as it is rather than waiting it out.
   */
  async freshen() {
    const lag = (await this.chunks.lastChange()) - this.index.seq;
    if (lag <= 0) return;
    // A few thousand changes replay in milliseconds: wait them out, so a search sees every
    // file processed before it began, by this process or another sharing the database.
    // Commits that keep arriving extend a catch-up run: bounded all the same.
    await waitAtMost(this.catchUp(), lag <= FRESH_ALWAYS_CHANGES ? FRESH_MAX_WAIT_MS : FRESH_WAIT_MS);
  }

  /**
   * The k best chunks by BM25 for the query, over every chunk or only those in the id
   * ranges `only` (see idRangesOf); quoted phrases found verbatim lift a chunk's score.
   */
  async search(query: string, k: number, only?: Float64Array): Promise<KeywordHit[]> {
    const q = parseQuery(query);
    if (!q) return [];
    let hits = this.index.search(q, k, only);
    if (hits.length === 0) return hits;
    hits = await this.withContext(q, hits);
    if (q.phrases.length > 0) {
      const texts = await this.chunks.texts(hits.map((h) => h.id));
      hits = hits.map((h) => {
        const terms = analyze(texts.get(h.id) ?? "");
        const found = q.phrases.filter((p) => containsPhrase(terms, p)).length;
        return found ? { id: h.id, score: h.score * (1 + PHRASE_BOOST * found) } : h;
      });
    }
    return hits.sort((a, b) => b.score - a.score || a.id - b.id);
  }

  /**
   * The chunk places, while the replay is current with the log (null behind it: a chunk
   * committed or deleted elsewhere since would be answered wrongly). Read before the log's
   * head, so places replaced by a rebuild meanwhile are not mistaken for current.
   */
  async currentPlaces(): Promise<ChunkPlaces | null> {
    const { places, index } = this;
    const seq = index.seq;
    return seq >= (await this.chunks.lastChange()) ? places : null;
  }

  /**
   * Each chunk's neighbourhood, from the places held here while they are current, or from
   * SQLite where they cannot tell (behind the log, a chunk just deleted still has its
   * neighbours here, and none there).
   */
  private async neighbours(ids: number[]): Promise<Map<number, number[]>> {
    const places = await this.currentPlaces();
    if (!places) return this.chunks.neighbours(ids, CONTEXT_RADIUS);
    const out = new Map<number, number[]>();
    const rest: number[] = [];
    for (const id of ids) {
      const near = places.neighbours(id, CONTEXT_RADIUS);
      if (near) out.set(id, near);
      else rest.push(id);
    }
    if (rest.length) for (const [id, near] of await this.chunks.neighbours(rest, CONTEXT_RADIUS)) out.set(id, near);
    return out;
  }

  /** Adds the BM25 of each hit's neighbourhood (term counts summed over it) to the hit's own. */
  private async withContext(q: KeywordQuery, hits: KeywordHit[]): Promise<KeywordHit[]> {
    const near = await this.neighbours(hits.map((h) => h.id));
    const terms = [...q.terms.keys()];
    const weights = terms.map((t) => q.terms.get(t)! * this.index.idf(t));
    const counts = this.index.counts([...new Set([...near.values()].flat())], terms);
    const passages = hits.map((h) => {
      const tfs = new Float64Array(terms.length);
      let dl = 0;
      for (const id of near.get(h.id) ?? [h.id]) {
        const c = counts.get(id);
        if (!c) continue;
        dl += c.dl;
        c.tfs.forEach((tf, i) => (tfs[i]! += tf));
      }
      return { tfs, dl };
    });
    // Passages are measured against the others found for this query: their lengths vary with
    // the files' chunk counts, which no global average captures.
    const avg = passages.reduce((a, p) => a + p.dl, 0) / passages.length || 1;
    return hits.map((h, i) => {
      const p = passages[i]!;
      let s = 0;
      p.tfs.forEach((tf, t) => {
        if (tf > 0) s += (weights[t]! * tf * (K1 + 1)) / (tf + K1 * (1 - B + (B * p.dl) / avg));
      });
      return { id: h.id, score: h.score + CONTEXT_WEIGHT * s };
    });
  }
}
