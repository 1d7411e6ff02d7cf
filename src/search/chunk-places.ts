import { groupKey, type AttributeFilter, type ChunksRepo } from "../storage/repos";

/** Where a chunk sits: its file, the cut it belongs to, and its position in that cut. */
export interface ChunkPlace {
  fileId: string;
  cut: string;
  idx: number;
}

/** A file's cut: the chunks one ingestion wrote, in order. */
export interface Group {
  /** groupKey(fileId, cut) */
  key: string;
  fileId: string;
  cut: string;
  count: number;
  minId: number;
  maxId: number;
  /** The position of the chunk at maxId. */
  maxIdx: number;
  /** Every chunk was added at the next id and the next position, so ids follow positions. */
  inOrder: boolean;
}

const NONE = 0;
// Chunk ids are never reused, so the highest grows with every chunk ever written: the map is
// kept in pages of ids, and a page whose chunks are all gone is dropped.
// (Ids are doubles past 2^32 in PostgreSQL: no bit operators on them.)
const PAGE = 65_536;

interface Page {
  /** Group number + 1 by the id's offset in the page (0: not known). */
  groupOf: Int32Array;
  live: number;
}

/**
 * Each chunk's place, kept in memory beside the keyword index and fed from the same change
 * log, so a search finds its hits' files and neighbourhoods without reading a chunk row each
 * (at a million chunks those rows are a 2 GB table read at random). A place never changes
 * while its chunk exists; what this does not know (a chunk it has not seen, a cut whose ids
 * do not follow its positions) the caller reads from the database instead.
 */
export class ChunkPlaces {
  private readonly pages = new Map<number, Page>();
  private readonly groups: Group[] = [];
  private readonly groupByKey = new Map<string, number>();
  /** Slots of groups whose chunks are all gone. */
  private readonly free: number[] = [];
  /** idRanges' runs of a cut whose ids are not all its own, by group slot, until it changes. */
  private readonly runsOf = new Map<number, [number, number][]>();
  private known = 0;

  get size() {
    return this.known;
  }

  add(id: number, place: ChunkPlace) {
    if (this.slot(id) !== NONE) return; // replayed: already here
    this.addTo(this.group(place.fileId, place.cut, id), id, place.idx);
  }

  /** A cut whose ids run from `first` to `last` at `offset` from its positions (id = idx + offset). */
  addRun(fileId: string, cut: string, first: number, last: number, offset: number) {
    const g = this.group(fileId, cut, first);
    for (let id = first; id <= last; id++) if (this.slot(id) === NONE) this.addTo(g, id, id - offset);
    if (this.groups[g]!.count === 0) this.forget(g);
  }

  private slot(id: number) {
    return this.pages.get(Math.floor(id / PAGE))?.groupOf[id % PAGE] ?? NONE;
  }

  private group(fileId: string, cut: string, id: number) {
    const key = groupKey(fileId, cut);
    let g = this.groupByKey.get(key);
    if (g === undefined) {
      const group = { key, fileId, cut, count: 0, minId: id, maxId: id, maxIdx: 0, inOrder: true };
      g = this.free.pop();
      if (g === undefined) g = this.groups.push(group) - 1;
      else this.groups[g] = group;
      this.groupByKey.set(key, g);
    }
    return g;
  }

  private forget(g: number) {
    this.runsOf.delete(g);
    this.groupByKey.delete(this.groups[g]!.key);
    this.free.push(g);
  }

  private addTo(g: number, id: number, idx: number) {
    this.runsOf.delete(g);
    const group = this.groups[g]!;
    if (group.count === 0) {
      group.minId = group.maxId = id;
      group.inOrder = true;
    } else {
      if (!(id === group.maxId + 1 && idx === group.maxIdx + 1)) group.inOrder = false;
      group.minId = Math.min(group.minId, id);
    }
    if (group.count === 0 || id > group.maxId) {
      group.maxId = id;
      group.maxIdx = idx;
    }
    group.count++;
    let page = this.pages.get(Math.floor(id / PAGE));
    if (!page) this.pages.set(Math.floor(id / PAGE), (page = { groupOf: new Int32Array(PAGE), live: 0 }));
    page.groupOf[id % PAGE] = g + 1;
    page.live++;
    this.known++;
  }

  delete(id: number) {
    const page = this.pages.get(Math.floor(id / PAGE));
    const g = page?.groupOf[id % PAGE] ?? NONE;
    if (g === NONE) return;
    page!.groupOf[id % PAGE] = NONE;
    this.runsOf.delete(g - 1);
    if (--page!.live === 0) this.pages.delete(Math.floor(id / PAGE));
    this.known--;
    // A cut is deleted whole (a file removed, or a retry clearing what an attempt left); once
    // empty it is forgotten, and chunks written for it again start a new run.
    if (--this.groups[g - 1]!.count === 0) this.forget(g - 1);
  }

  /**
   * The chunks of these cuts (by groupKey) as ascending, disjoint [first, last] id pairs, flat:
   * a cut whose ids are all its own between its first and last is one pair, another is
   * walked id by id.
   */
  idRanges(keys: Iterable<string>): Float64Array {
    const runs: [number, number][] = [];
    for (const key of keys) {
      const g = this.groupByKey.get(key);
      if (g === undefined) continue;
      const group = this.groups[g]!;
      if (group.maxId - group.minId + 1 === group.count) {
        runs.push([group.minId, group.maxId]);
        continue;
      }
      // A cut written while other files were (its batches interleave with theirs) can span
      // many ids: walked once, then kept until the cut changes.
      let own = this.runsOf.get(g);
      if (!own) {
        own = [];
        for (let id = group.minId, start = -1; id <= group.maxId + 1; id++) {
          const mine = id <= group.maxId && this.slot(id) === g + 1;
          if (mine && start < 0) start = id;
          else if (!mine && start >= 0) {
            own.push([start, id - 1]);
            start = -1;
          }
        }
        this.runsOf.set(g, own);
      }
      runs.push(...own);
    }
    runs.sort((a, b) => a[0] - b[0]);
    return Float64Array.from(runs.flat());
  }

  /** The file and cut of a chunk this knows. */
  groupOfChunk(id: number): Readonly<Group> | undefined {
    const g = this.slot(id);
    return g === NONE ? undefined : this.groups[g - 1];
  }

  /**
   * The chunks of the same file and cut within `radius` positions of `id` (itself included),
   * or undefined when this cannot say exactly: the chunk is unknown, or its cut's ids do not
   * run with its positions.
   */
  neighbours(id: number, radius: number): number[] | undefined {
    const g = this.slot(id);
    if (g === NONE) return undefined;
    const group = this.groups[g - 1]!;
    if (!group.inOrder || group.maxId - group.minId + 1 !== group.count) return undefined;
    const out: number[] = [];
    for (let n = Math.max(group.minId, id - radius), to = Math.min(group.maxId, id + radius); n <= to; n++) out.push(n);
    return out;
  }
}

/**
 * Which of these chunks the store's search may see, asked of their files' cuts: hits come
 * from few files (200 hits from about 70 at SciFact's sizes), and a file's row is small where
 * a chunk's is not. Chunks `places` does not know are asked of the database one by one.
 */
export async function visibleByPlace(chunks: ChunksRepo, places: ChunkPlaces, storeId: string, filter: AttributeFilter | null, now: number, ids: number[]): Promise<Set<number>> {
  const groups = new Map<string, Group>();
  const unknown: number[] = [];
  const keys = ids.map((id) => {
    const g = places.groupOfChunk(id);
    if (!g) return void unknown.push(id);
    groups.set(g.key, g);
    return g.key;
  });
  const [seen, visible] = await Promise.all([
    chunks.visibleGroups(storeId, filter, now, [...groups.values()]),
    unknown.length ? chunks.visible(storeId, filter, now, unknown) : new Set<number>(),
  ]);
  ids.forEach((id, i) => keys[i] !== undefined && seen.has(keys[i]) && visible.add(id));
  return visible;
}
