// A seeded storm of *valid* API calls, eight in flight, across two projects, while ingestion
// runs in the background; then the invariants that must hold once the server is quiet.
// (test/fuzz.e2e.test.ts covers malformed input; this covers races between valid operations.)
//
// The seed (STORM_SEED) fixes the plan: every operation's kind, project and its own PRNG seed,
// and every uploaded file's bytes. An operation draws its targets from its own PRNG over the
// objects that exist when it starts, so a rerun takes the same steps; only the interleaving
// (and so, now and then, a target) can differ. A failure prints the seed, the problems and the
// operation log's tail with each call's send and answer times (ms since the storm began);
// STORM_LOG=<path> writes the whole log there.
//
//   STORM_SEED=<n> [STORM_OPS=<n>] bun test --timeout 60000 test/concurrency-storm.e2e.test.ts
//
// Races are judged by what the client could know: a 404 is fine once a delete of the object
// had been sent before the answer came; a 2xx (or a listing or search naming the object) is a
// finding when the delete's answer had come before the request was sent; a 404 for objects no
// one had asked to delete is a finding too.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI, { toFile } from "openai";
import { cleanup, createKey, runCli, startRagd, type Ragd } from "./helpers/ragd";
import { createDatabase, dropAllDatabases, postgresMissing } from "./helpers/postgres";
import { errorProblems, prng, Recorder, type LogRec, type Res, type Rng } from "./helpers/storm";

const SEED = Number(process.env.STORM_SEED ?? 20260610);
const OPS = Number(process.env.STORM_OPS ?? 500);
const DUMP = process.env.STORM_LOG;
const IN_FLIGHT = 8;
/** Every file is embedded by the real model: few and small keeps the run short. */
const MAX_FILES = 110;
/** The first operations upload, so that the rest have something to aim at. */
const WARM_UP = 16;
const QUIET_MS = 60_000;

// ---------------------------------------------------------------------------------------
// The files: small texts in four formats, each holding a marker word no other text has
// (a copy of an earlier file shares its bytes, and so its marker).

type Purpose = "assistants" | "user_data" | "knowledge_base";
interface Doc { name: string; bytes: Buffer; marker: string; purpose: Purpose }

const WORDS = "granite harbor lantern meadow orchard quarry ribbon saddle thistle willow basalt canyon ember falcon glacier hollow juniper kettle ledger marble".split(" ");
const SYLLABLES = ["ka", "zo", "vri", "mel", "tun", "qua", "dex", "ol", "bri", "yth", "pog", "sna"];

function makeDocs(r: Rng, n: number): Doc[] {
  const used = new Set<string>();
  const marker = (): string => {
    const w = Array.from({ length: 4 }, () => r.pick(SYLLABLES)).join("");
    return used.has(w) ? marker() : (used.add(w), w);
  };
  const sentence = (m?: string) => {
    const ws = Array.from({ length: 8 + r.int(6) }, () => r.pick(WORDS));
    if (m) ws.splice(r.int(ws.length), 0, m);
    return ws.join(" ");
  };
  const formats = {
    txt: (m: string) => `${sentence(m)}.\n${sentence()}.\n`,
    md: (m: string) => `# ${r.pick(WORDS)} notes\n\n${sentence(m)}.\n\n- ${sentence()}\n- ${sentence()}\n`,
    csv: (m: string) => `term,count,note\n${m},${r.int(100)},${sentence()}\n${r.pick(WORDS)},${r.int(100)},${sentence()}\n`,
    json: (m: string) => JSON.stringify({ title: `${r.pick(WORDS)} report`, body: `${sentence(m)}.`, count: r.int(100) }, null, 1) + "\n",
  };
  const docs: Doc[] = [];
  for (let i = 0; i < n; i++) {
    const purpose = r.pick(["assistants", "user_data", "knowledge_base"] as const);
    if (i > 3 && r.chance(0.15)) {
      const twin = r.pick(docs);
      docs.push({ ...twin, name: `copy${i}-${twin.name}`, purpose });
      continue;
    }
    const ext = r.pick(Object.keys(formats) as (keyof typeof formats)[]);
    const m = marker();
    docs.push({ name: `doc${i}.${ext}`, bytes: Buffer.from(formats[ext](m)), marker: m, purpose });
  }
  return docs;
}

type Attrs = Record<string, string | number | boolean>;
const TIERS = ["gold", "silver", "bronze"];
const genAttrs = (r: Rng): Attrs => ({ tier: r.pick(TIERS), ...(r.chance(0.7) ? { year: 2000 + r.int(25) } : {}), ...(r.chance(0.5) ? { draft: r.chance(0.5) } : {}) });
type Filter = { type: "eq" | "gte" | "lt"; key: string; value: string | number } | { type: "in"; key: string; value: string[] } | { type: "and" | "or"; filters: Filter[] };
const genFilter = (r: Rng): Filter => {
  const leaf = (): Filter =>
    r.weighted<() => Filter>([
      [3, () => ({ type: "eq", key: "tier", value: r.pick(TIERS) })],
      [2, () => ({ type: r.pick(["gte", "lt"] as const), key: "year", value: 2000 + r.int(25) })],
      [1, () => ({ type: "in", key: "tier", value: r.some(TIERS, 2) })],
    ])();
  return r.chance(0.3) ? { type: r.pick(["and", "or"] as const), filters: [leaf(), leaf()] } : leaf();
};
/** OpenAI's filter semantics, to check hits against: a missing key matches no comparison. */
function matches(f: Filter, a: Attrs): boolean {
  if ("filters" in f) return f.type === "and" ? f.filters.every((x) => matches(x, a)) : f.filters.some((x) => matches(x, a));
  const v = a[f.key];
  if (v === undefined) return false;
  if (f.type === "in") return f.value.includes(v as string);
  if (f.type === "eq") return v === f.value;
  if (typeof v !== typeof f.value) return false;
  return f.type === "gte" ? v >= f.value : v < f.value;
}
const genChunking = (r: Rng) => ({ type: "static" as const, static: { max_chunk_size_tokens: r.pick([100, 200, 400]), chunk_overlap_tokens: r.pick([0, 20, 50]) } });

// ---------------------------------------------------------------------------------------
// What the client knows: every object with the times its creation and deletes were sent and
// answered, and each (store, file) pair's attach/update/detach events.

interface FileRec { id: string; proj: number; doc: Doc; done: number; deleteSends: number[]; /** When a delete's 2xx came. */ deletedAt?: number }
interface StoreRec { id: string; proj: number; isDefault: boolean; deleteSends: number[]; deletedAt?: number }
interface BatchRec { id: string; store: StoreRec; proj: number }
/** `attrs` of an "add" without attributes is undefined: the pair keeps those it has ({} when new). */
interface MemberEv { kind: "add" | "update" | "remove"; attrs?: Attrs; sent: number; done?: number; ok?: boolean; n?: number }
type Obj = FileRec | StoreRec;

/** A delete of it was sent before t (other than the one sent at `except`). */
const sentBefore = (o: Obj, t: number, except?: number) => o.deleteSends.some((s) => s < t && s !== except);
/** A delete of it was answered 2xx before t. */
const deletedBefore = (o: Obj | undefined, t: number) => o?.deletedAt !== undefined && o.deletedAt < t;
const during = (a: MemberEv, b: MemberEv) => a.sent < (b.done ?? Infinity) && (a.done ?? Infinity) > b.sent;

class World {
  files: FileRec[] = [];
  stores: StoreRec[] = [];
  batches: BatchRec[] = [];
  fileById = new Map<string, FileRec>();
  storeById = new Map<string, StoreRec>();
  events = new Map<string, MemberEv[]>();
  /** Ids an answer attributed to a project, checked against the model after the storm. */
  claims: { id: string; proj: number; n: number; where: string }[] = [];
  uploads = 0;
  /** How much of the storm ran beside ingestion: retrieves that saw a file not yet processed, search hits. */
  stats = { ingesting: 0, processed: 0, hits: 0 };

  addFile(f: FileRec) {
    this.files.push(f);
    this.fileById.set(f.id, f);
  }
  addStore(s: StoreRec) {
    this.stores.push(s);
    this.storeById.set(s.id, s);
  }
  evs(s: StoreRec, f: FileRec) {
    const k = `${s.id}|${f.id}`;
    if (!this.events.has(k)) this.events.set(k, []);
    return this.events.get(k)!;
  }
  /** Another event on the pair (of `kind`) that was in flight during `ev`. */
  overlapped(s: StoreRec, f: FileRec, ev: MemberEv, kind?: MemberEv["kind"]) {
    return this.evs(s, f).find((e) => e !== ev && (!kind || e.kind === kind) && during(e, ev));
  }
  /**
   * No add could have made it a member during [sent, done], or every add was undone before.
   * A failed add counts too: an attach can write and then answer 404 (see the attach op).
   */
  certainlyNotMember(s: StoreRec, f: FileRec, sent: number, done: number) {
    const evs = this.evs(s, f);
    return evs
      .filter((e) => e.kind === "add" && e.sent < done)
      .every((a) => a.done !== undefined && evs.some((x) => x.kind === "remove" && x.ok === true && x.sent > a.done! && x.done! < sent));
  }
  /** Attached (answered) before `sent`, and nothing could have removed it before `done`. */
  certainlyMember(s: StoreRec, f: FileRec, sent: number, done: number) {
    if (sentBefore(s, done) || sentBefore(f, done)) return false;
    const evs = this.evs(s, f);
    return evs.some((e) => e.kind === "add" && e.ok === true && e.done! < sent) && !evs.some((e) => e.kind === "remove" && e.sent < done);
  }
}

// ---------------------------------------------------------------------------------------
// The operations. Each gets its own PRNG and aims at what exists when it starts.

let w: World;
let rec: Recorder;
let docs: Doc[];
let clients: OpenAI[];
interface Op { n: number; proj: number; r: Rng; log: LogRec; c: OpenAI }
type OpFn = (o: Op) => Promise<void>;

function pickFile(r: Rng, proj: number, recent = false): FileRec | undefined {
  let pool = w.files.filter((f) => f.proj === proj);
  if (r.chance(0.9)) pool = pool.filter((f) => !f.deleteSends.length);
  if (recent) pool = pool.slice(-4); // likely still ingesting
  return pool.length ? r.pick(pool) : undefined;
}
const pickFiles = (r: Rng, proj: number, n: number) => [...new Set(Array.from({ length: n }, () => pickFile(r, proj)).filter((f) => f !== undefined))];
function pickStore(r: Rng, proj: number, defaultOk: boolean): StoreRec | undefined {
  let pool = w.stores.filter((s) => s.proj === proj && (defaultOk || !s.isDefault));
  if (r.chance(0.9)) pool = pool.filter((s) => !s.deleteSends.length);
  return pool.length ? r.pick(pool) : undefined;
}
/** Mostly a pair that is (or was) attached; else any store and file. */
function pickPair(r: Rng, proj: number): [StoreRec, FileRec] | undefined {
  const pairs = [...w.events.keys()].map((k) => k.split("|")).map(([s, f]) => [w.storeById.get(s!)!, w.fileById.get(f!)!] as [StoreRec, FileRec]);
  const mine = pairs.filter(([s, f]) => s.proj === proj && !s.deleteSends.length && !f.deleteSends.length);
  if (mine.length && r.chance(0.85)) return r.pick(mine);
  const [s, f] = [pickStore(r, proj, true), pickFile(r, proj)];
  return s && f ? [s, f] : undefined;
}
const ids = (xs: { id: string }[]) => xs.map((x) => x.id).join(",");
/** Records an add/update/remove of pairs around its call. */
async function membership<T>(pairs: [StoreRec, FileRec, MemberEv][], call: () => Promise<Res<T>>) {
  for (const [s, f, ev] of pairs) w.evs(s, f).push(Object.assign(ev, { sent: rec.now() }));
  const res = await call();
  for (const [, , ev] of pairs) Object.assign(ev, { done: res.done, ok: res.ok });
  return res;
}
const ev = (n: number, kind: MemberEv["kind"], attrs?: Attrs): MemberEv => ({ n, kind, attrs, sent: 0 });

const upload: OpFn = async (o) => {
  if (w.uploads >= docs.length) return listFiles(o);
  const { n, proj, log, c } = o;
  const doc = docs[w.uploads++]!;
  log.what = doc.name;
  const sent = rec.now();
  const res = await rec.call(log, "files.create", async () => c.files.create({ file: await toFile(doc.bytes, doc.name), purpose: doc.purpose as "assistants" }));
  if (!res.ok) return rec.problem(n, `upload refused: ${res.status} ${res.code}`);
  log.what += ` -> ${res.value.id}`;
  if (res.value.bytes !== doc.bytes.length || res.value.filename !== doc.name) rec.problem(n, `upload answered ${res.value.bytes} bytes as ${res.value.filename}`);
  const f: FileRec = { id: res.value.id, proj, doc, done: res.done, deleteSends: [] };
  w.addFile(f);
  // every indexed upload joins the project's knowledge base
  w.evs(w.stores.find((s) => s.proj === proj && s.isDefault)!, f).push({ n, kind: "add", attrs: {}, sent, done: res.done, ok: true });
};

const deleteFile: OpFn = async ({ n, proj, r, log, c }) => {
  const f = pickFile(r, proj, r.chance(0.4));
  if (!f) return;
  log.what = f.id;
  const sent = rec.now();
  f.deleteSends.push(sent);
  const res = await rec.call(log, "files.delete", () => c.files.delete(f.id));
  if (!res.ok) return rec.judgeMiss(log, "files.delete", res, sentBefore(f, res.done, sent));
  if (deletedBefore(f, sent)) rec.problem(n, `delete of ${f.id} answered 2xx after an earlier delete was answered`);
  f.deletedAt = Math.min(f.deletedAt ?? Infinity, res.done);
};

const readFile: OpFn = async ({ n, proj, r, log, c }) => {
  const f = pickFile(r, proj);
  if (!f) return;
  log.what = f.id;
  const meta = await rec.call(log, "files.retrieve", () => c.files.retrieve(f.id));
  if (!meta.ok) rec.judgeMiss(log, "files.retrieve", meta, sentBefore(f, meta.done));
  else {
    if (deletedBefore(f, meta.sent)) rec.problem(n, `retrieve of ${f.id} answered 2xx after its delete was answered`);
    if (meta.value.bytes !== f.doc.bytes.length || meta.value.id !== f.id) rec.problem(n, `retrieve: ${JSON.stringify(meta.value)}`);
    if (meta.value.status === "error") rec.problem(n, `file ${f.id} (${f.doc.name}) failed to ingest: ${meta.value.status_details}`);
    w.stats[meta.value.status === "processed" ? "processed" : "ingesting"]++;
  }
  const body = await rec.call(log, "files.content", async () => Buffer.from(await (await c.files.content(f.id)).arrayBuffer()));
  if (!body.ok) return rec.judgeMiss(log, "files.content", body, sentBefore(f, body.done));
  if (deletedBefore(f, body.sent)) rec.problem(n, `content of ${f.id} answered 2xx after its delete was answered`);
  if (!body.value.equals(f.doc.bytes)) rec.problem(n, `content of ${f.id} differs from its upload (${body.value.length} vs ${f.doc.bytes.length} bytes)`);
};

/** Every page in turn: no repeats, nothing deleted before its page was asked for, nothing missing. */
const listFiles: OpFn = async ({ n, proj, r, log, c }) => {
  const limit = r.pick([3, 5, 8, 20]);
  const order = r.pick(["asc", "desc"] as const);
  log.what = `limit=${limit} order=${order}`;
  const start = rec.now();
  const seen = new Set<string>();
  let res = await rec.call(log, "files.list", () => c.files.list({ limit, order }));
  for (;;) {
    if (!res.ok) return rec.judgeMiss(log, "files.list", res, false);
    for (const item of res.value.data) {
      if (seen.has(item.id)) rec.problem(n, `files.list gave ${item.id} twice`);
      seen.add(item.id);
      w.claims.push({ id: item.id, proj, n, where: "files.list" });
      if (deletedBefore(w.fileById.get(item.id), res.sent)) rec.problem(n, `files.list page sent at ${res.sent} lists ${item.id}, whose delete was answered before`);
    }
    if (!res.value.hasNextPage()) break;
    const page = res.value;
    res = await rec.call(log, "files.list(next)", () => page.getNextPage());
  }
  const end = rec.now();
  log.what += ` -> ${seen.size} files`;
  for (const f of w.files)
    if (f.proj === proj && f.done < start && !sentBefore(f, end) && !seen.has(f.id)) rec.problem(n, `files.list missed ${f.id}, uploaded before the listing began and never deleted`);
};

const createStore: OpFn = async ({ n, proj, r, log, c }) => {
  const files = r.chance(0.6) ? pickFiles(r, proj, 1 + r.int(4)) : [];
  const chunking = r.chance(0.3) ? genChunking(r) : undefined;
  log.what = `file_ids=[${ids(files)}]${chunking ? ` static ${chunking.static.max_chunk_size_tokens}/${chunking.static.chunk_overlap_tokens}` : ""}`;
  const sent = rec.now();
  const res = await rec.call(log, "vectorStores.create", () =>
    c.vectorStores.create({ name: `storm ${n}`, ...(files.length ? { file_ids: files.map((f) => f.id) } : {}), ...(chunking ? { chunking_strategy: chunking } : {}) }),
  );
  const raced = files.some((f) => sentBefore(f, res.done));
  if (!res.ok) return rec.judgeMiss(log, "vectorStores.create", res, raced);
  log.what += ` -> ${res.value.id}`;
  const s: StoreRec = { id: res.value.id, proj, isDefault: false, deleteSends: [] };
  w.addStore(s);
  for (const f of files) {
    if (deletedBefore(f, res.sent)) rec.problem(n, `store created with ${f.id}, whose delete was answered before`);
    w.evs(s, f).push({ n, kind: "add", attrs: {}, sent, done: res.done, ok: true });
  }
  if (res.value.file_counts.total !== files.length && !raced) rec.problem(n, `new store counts ${JSON.stringify(res.value.file_counts)} for ${files.length} file_ids`);
};

const attach: OpFn = async ({ n, proj, r, log, c }) => {
  const [s, f] = [pickStore(r, proj, r.chance(0.2)), pickFile(r, proj)];
  if (!s || !f) return;
  const attrs = r.chance(0.6) ? genAttrs(r) : undefined;
  const chunking = r.chance(0.2) ? genChunking(r) : undefined;
  log.what = `${s.id} ${f.id} attrs=${JSON.stringify(attrs ?? null)}${chunking ? " static" : ""}`;
  const e = ev(n, "add", attrs);
  const before = finalMembership(w.evs(s, f).filter((x) => x !== e));
  const res = await membership([[s, f, e]], () =>
    rec.call(log, "vectorStores.files.create", () => c.vectorStores.files.create(s.id, { file_id: f.id, ...(attrs ? { attributes: attrs } : {}), ...(chunking ? { chunking_strategy: chunking } : {}) })),
  );
  if (!res.ok) {
    // The attach writes and then reads the membership back: a detach landing between the two
    // turns a done attach into a 404 "No such vector store file".
    const detach = w.overlapped(s, f, e, "remove");
    const why = detach ? `store and file exist; a detach of the pair (#${detach.n}) ran meanwhile, after this attach had written` : undefined;
    return rec.judgeMiss(log, "vectorStores.files.create", res, sentBefore(s, res.done) || sentBefore(f, res.done), why);
  }
  if (deletedBefore(s, res.sent) || deletedBefore(f, res.sent)) rec.problem(n, `attach answered 2xx though its store's or file's delete was answered before`);
  // (read back after the write: another write to the pair meanwhile may show in the answer)
  // (without attributes, the pair keeps its own: known when the writes before it are)
  const want = attrs ?? (before === "absent" || before === null ? {} : before);
  if (res.value.id !== f.id || (!w.overlapped(s, f, e) && want !== undefined && JSON.stringify(res.value.attributes) !== JSON.stringify(want))) rec.problem(n, `attach answered ${JSON.stringify(res.value)}`);
};

const updateAttrs: OpFn = async ({ n, proj, r, log, c }) => {
  const pair = pickPair(r, proj);
  if (!pair) return;
  const [s, f] = pair;
  const attrs = genAttrs(r);
  log.what = `${s.id} ${f.id} attrs=${JSON.stringify(attrs)}`;
  const e = ev(n, "update", attrs);
  const res = await membership([[s, f, e]], () => rec.call(log, "vectorStores.files.update", () => c.vectorStores.files.update(f.id, { vector_store_id: s.id, attributes: attrs })));
  if (!res.ok) return rec.judgeMiss(log, "vectorStores.files.update", res, !w.certainlyMember(s, f, res.sent, res.done), "the file was attached and nothing removed it");
  if (w.certainlyNotMember(s, f, res.sent, res.done)) rec.problem(n, `update answered 2xx for a file that was not a member`);
  if (!w.overlapped(s, f, e) && JSON.stringify(res.value.attributes) !== JSON.stringify(attrs)) rec.problem(n, `update answered attributes ${JSON.stringify(res.value.attributes)}`);
};

const detach: OpFn = async ({ n, proj, r, log, c }) => {
  const pair = pickPair(r, proj);
  if (!pair) return;
  const [s, f] = pair;
  log.what = `${s.id} ${f.id}`;
  const res = await membership([[s, f, ev(n, "remove")]], () => rec.call(log, "vectorStores.files.delete", () => c.vectorStores.files.delete(f.id, { vector_store_id: s.id })));
  if (!res.ok) return rec.judgeMiss(log, "vectorStores.files.delete", res, !w.certainlyMember(s, f, res.sent, res.done), "the file was attached and nothing removed it");
  if (w.certainlyNotMember(s, f, res.sent, res.done)) rec.problem(n, `detach answered 2xx for a file that was not a member`);
};

const createBatch: OpFn = async ({ n, proj, r, log, c }) => {
  const s = pickStore(r, proj, r.chance(0.15));
  const files = pickFiles(r, proj, 1 + r.int(5));
  if (!s || !files.length) return;
  const perFile = r.chance(0.4);
  const shared = !perFile && r.chance(0.5) ? genAttrs(r) : undefined;
  const attrs = files.map(() => (perFile ? genAttrs(r) : shared));
  const chunking = r.chance(0.2) ? genChunking(r) : undefined;
  log.what = `${s.id} [${ids(files)}] ${perFile ? "files" : "file_ids"}${chunking ? " static" : ""}`;
  const body = perFile ? { files: files.map((f, i) => ({ file_id: f.id, attributes: attrs[i] })) } : { file_ids: files.map((f) => f.id), ...(shared ? { attributes: shared } : {}) };
  const evs = files.map((f, i) => [s, f, ev(n, "add", attrs[i])] as [StoreRec, FileRec, MemberEv]);
  const res = await membership(evs, () => rec.call(log, "fileBatches.create", () => c.vectorStores.fileBatches.create(s.id, { ...body, ...(chunking ? { chunking_strategy: chunking } : {}) })));
  const raced = sentBefore(s, res.done) || files.some((f) => sentBefore(f, res.done));
  if (!res.ok) return rec.judgeMiss(log, "fileBatches.create", res, raced);
  log.what += ` -> ${res.value.id}`;
  w.batches.push({ id: res.value.id, store: s, proj });
  if (deletedBefore(s, res.sent) || files.some((f) => deletedBefore(f, res.sent))) rec.problem(n, `batch answered 2xx though its store's or a file's delete was answered before`);
  // a file belongs to the last batch that attached it: a batch running meanwhile may take one
  const contested = evs.some(([st, f, e]) => w.overlapped(st, f, e));
  if (res.value.file_counts.total !== files.length && !raced && !contested) rec.problem(n, `new batch counts ${JSON.stringify(res.value.file_counts)} for ${files.length} files`);
};

const cancelBatch: OpFn = async ({ n, proj, r, log, c }) => {
  const recent = w.batches.filter((b) => b.proj === proj).slice(-5);
  if (!recent.length) return;
  const b = r.pick(recent);
  log.what = `${b.store.id} ${b.id}`;
  const res = await rec.call(log, "fileBatches.cancel", () => c.vectorStores.fileBatches.cancel(b.id, { vector_store_id: b.store.id }));
  if (!res.ok) return rec.judgeMiss(log, "fileBatches.cancel", res, sentBefore(b.store, res.done));
  if (deletedBefore(b.store, res.sent)) rec.problem(n, `cancel answered 2xx for a batch whose store's delete was answered before`);
  // (a batch whose files had all ended stays as it ended: nothing was left to cancel)
  if (res.value.status === "in_progress") rec.problem(n, `cancel answered status ${res.value.status}`);
  if (res.value.status !== "cancelled" && res.value.file_counts.in_progress > 0) rec.problem(n, `cancel answered ${res.value.status} with files still in progress`);
};

const deleteStore: OpFn = async ({ n, proj, r, log, c }) => {
  // now and then the knowledge base, which is documented to refuse (400 default_vector_store)
  const s = pickStore(r, proj, r.chance(0.1));
  if (!s) return;
  log.what = s.id;
  const sent = rec.now();
  if (!s.isDefault) s.deleteSends.push(sent);
  const res = await rec.call(log, "vectorStores.delete", () => c.vectorStores.delete(s.id));
  if (s.isDefault) {
    if (res.ok || res.code !== "default_vector_store") rec.problem(n, `deleting the knowledge base answered ${res.ok ? "2xx" : `${res.status} ${res.code}`}`);
    return;
  }
  if (!res.ok) return rec.judgeMiss(log, "vectorStores.delete", res, sentBefore(s, res.done, sent));
  if (deletedBefore(s, sent)) rec.problem(n, `store delete answered 2xx after an earlier delete was answered`);
  s.deletedAt = Math.min(s.deletedAt ?? Infinity, res.done);
};

const search: OpFn = async ({ n, proj, r, log, c }) => {
  const [s, f] = [pickStore(r, proj, r.chance(0.4)), pickFile(r, proj)];
  if (!s) return;
  const query = f && r.chance(0.7) ? f.doc.marker : `${r.pick(WORDS)} ${r.pick(WORDS)}`;
  const filters = r.chance(0.35) ? genFilter(r) : undefined;
  const max = r.pick([3, 5, 10]);
  log.what = `${s.id} q="${query}" max=${max}${filters ? ` filters=${JSON.stringify(filters)}` : ""}`;
  const res = await rec.call(log, "vectorStores.search", () => c.vectorStores.search(s.id, { query, max_num_results: max, ...(filters ? { filters } : {}) }));
  if (!res.ok) return rec.judgeMiss(log, "vectorStores.search", res, sentBefore(s, res.done));
  if (deletedBefore(s, res.sent)) rec.problem(n, `search answered 2xx in a store whose delete was answered before`);
  const hits = res.value.data;
  log.what += ` -> ${hits.length} hits`;
  w.stats.hits += hits.length;
  if (hits.length > max) rec.problem(n, `search gave ${hits.length} hits, max_num_results ${max}`);
  for (const h of hits) {
    w.claims.push({ id: h.file_id, proj, n, where: "search" });
    const hf = w.fileById.get(h.file_id);
    if (deletedBefore(hf, res.sent)) rec.problem(n, `search hit ${h.file_id}, whose delete was answered before the search was sent`);
    if (hf && w.certainlyNotMember(s, hf, res.sent, res.done)) rec.problem(n, `search hit ${h.file_id}, which was not a member of ${s.id}`);
    if (filters && !matches(filters, h.attributes as Attrs)) {
      const raced = hf && w.evs(s, hf).some((e) => e.sent < res.done && (e.done ?? Infinity) > res.sent);
      rec.problem(n, `search hit ${h.file_id} with attributes ${JSON.stringify(h.attributes)}, outside its filter${raced ? " (an attributes write to it ran meanwhile)" : ""}`);
    }
  }
};

const listStoreFiles: OpFn = async ({ n, proj, r, log, c }) => {
  const s = pickStore(r, proj, r.chance(0.3));
  if (!s) return;
  const filter = r.chance(0.5) ? r.pick(["in_progress", "completed", "failed", "cancelled"] as const) : undefined;
  const limit = r.pick([2, 5, 20]);
  log.what = `${s.id} limit=${limit}${filter ? ` filter=${filter}` : ""}`;
  const seen = new Set<string>();
  let res = await rec.call(log, "vectorStores.files.list", () => c.vectorStores.files.list(s.id, { limit, ...(filter ? { filter } : {}) }));
  for (;;) {
    if (!res.ok) return rec.judgeMiss(log, "vectorStores.files.list", res, sentBefore(s, res.done));
    if (deletedBefore(s, res.sent)) rec.problem(n, `store files listed in ${s.id} after its delete was answered`);
    for (const item of res.value.data) {
      if (seen.has(item.id)) rec.problem(n, `store listing gave ${item.id} twice`);
      seen.add(item.id);
      w.claims.push({ id: item.id, proj, n, where: "vectorStores.files.list" });
      if (filter && item.status !== filter) rec.problem(n, `filter=${filter} listed ${item.id} as ${item.status}`);
      const f = w.fileById.get(item.id);
      if (deletedBefore(f, res.sent)) rec.problem(n, `store listing names ${item.id}, whose delete was answered before`);
      if (f && w.certainlyNotMember(s, f, res.sent, res.done)) rec.problem(n, `store listing names ${item.id}, which was not a member`);
    }
    if (!res.value.hasNextPage()) break;
    const page = res.value;
    res = await rec.call(log, "vectorStores.files.list(next)", () => page.getNextPage());
  }
  log.what += ` -> ${seen.size}`;
};

/**
 * A delete and a write that names the deleted object, sent together (the delete first): the
 * write may win (2xx) or lose (404), but must not fail.
 */
const deleteRace: OpFn = async ({ n, proj, r, log, c }) => {
  const [s, f] = [pickStore(r, proj, false), pickFile(r, proj)];
  if (!s || !f) return;
  const writes: Record<string, () => Promise<{ id: string; object: string }>> = {
    "vectorStores.files.create": () => c.vectorStores.files.create(s.id, { file_id: f.id }),
    "fileBatches.create": () => c.vectorStores.fileBatches.create(s.id, { file_ids: [f.id] }),
    "vectorStores.create": () => c.vectorStores.create({ file_ids: [f.id] }),
  };
  const write = r.pick(Object.keys(writes));
  const newStore = write === "vectorStores.create";
  const target: Obj = newStore || r.chance(0.6) ? f : s;
  log.what = `delete ${target.id} | ${write} ${newStore ? "" : s.id} ${f.id}`;
  const sent = rec.now();
  target.deleteSends.push(sent);
  const e = ev(n, "add", {});
  const [d, x] = await Promise.all([
    rec.call(log, "delete", (): Promise<unknown> => (target === f ? c.files.delete(f.id) : c.vectorStores.delete(s.id))),
    newStore ? rec.call(log, write, writes[write]!) : membership([[s, f, e]], () => rec.call(log, write, writes[write]!)),
  ]);
  if (d.ok) target.deletedAt = Math.min(target.deletedAt ?? Infinity, d.done);
  else rec.judgeMiss(log, "delete", d, sentBefore(target, d.done, sent));
  if (!x.ok) return rec.judgeMiss(log, write, x, true);
  if (newStore) {
    const created: StoreRec = { id: x.value.id, proj, isDefault: false, deleteSends: [] };
    w.addStore(created);
    w.evs(created, f).push({ ...e, sent: x.sent, done: x.done, ok: true });
  } else if (write === "fileBatches.create") w.batches.push({ id: x.value.id, store: s, proj });
};

/** The other project's key on one of this project's ids: always a 404. */
const probeOther: OpFn = async ({ n, proj, r, log }) => {
  const other = clients[1 - proj]!;
  const [f, s] = [pickFile(r, proj), pickStore(r, proj, true)];
  log.what = `${f?.id ?? ""} ${s?.id ?? ""}`;
  const probes: [string, () => Promise<unknown>][] = [];
  if (f) probes.push(["files.retrieve", () => other.files.retrieve(f.id)], ["files.content", () => other.files.content(f.id)]);
  if (s) probes.push(["vectorStores.retrieve", () => other.vectorStores.retrieve(s.id)], ["vectorStores.search", () => other.vectorStores.search(s.id, { query: "granite" })]);
  for (const [label, fn] of probes) {
    const res = await rec.call(log, `other project ${label}`, fn);
    if (res.ok || (res.status !== 404 && res.status !== 0)) rec.problem(n, `another project's key: ${label} answered ${res.ok ? "2xx" : res.status}`);
  }
};

/** Weights: uploads and attaches most (they feed the rest), deletes enough to race everything. */
const KINDS = Object.entries({ upload: [20, upload], deleteFile: [7, deleteFile], listFiles: [5, listFiles], readFile: [7, readFile], createStore: [6, createStore],
  attach: [11, attach], updateAttrs: [6, updateAttrs], detach: [5, detach], createBatch: [6, createBatch], cancelBatch: [3, cancelBatch], deleteStore: [3, deleteStore],
  search: [10, search], listStoreFiles: [6, listStoreFiles], probeOther: [2, probeOther], deleteRace: [4, deleteRace] } as Record<string, [number, OpFn]>).map(([kind, [weight, fn]]) => [weight, [kind, fn]] as [number, [string, OpFn]]);

/** The whole plan, drawn before anything is sent: kind, project (A twice as often) and seed. */
const plan = (r: Rng) =>
  Array.from({ length: OPS }, (_, n) => {
    const [kind, fn] = n < WARM_UP ? (["upload", upload] as const) : r.weighted(KINDS);
    return { n, kind, fn, proj: r.chance(0.65) ? 0 : 1, seed: r.int(2 ** 32) };
  });

async function storm(ops: ReturnType<typeof plan>) {
  let next = 0;
  const worker = async () => {
    while (next < ops.length) {
      const op = ops[next++]!;
      const log: LogRec = { n: op.n, kind: op.kind, proj: "AB"[op.proj]!, what: "", sent: rec.now(), done: 0, calls: [] };
      rec.log.push(log);
      try {
        await op.fn({ n: op.n, proj: op.proj, r: prng(op.seed), log, c: clients[op.proj]! });
      } catch (e) {
        rec.problem(op.n, `the test's step threw: ${(e as Error)?.stack ?? e}`);
      }
      log.done = rec.now();
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
}

// ---------------------------------------------------------------------------------------
// After the storm, through the API only.

async function all<T>(p: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of p) out.push(x);
  return out;
}

/** Until no store of either project has a file in progress and no file awaits ingestion. */
async function waitQuiet() {
  const deadline = Date.now() + QUIET_MS;
  for (;;) {
    let busy = 0;
    for (const c of clients) {
      for (const s of await all(c.vectorStores.list({ limit: 100 }))) busy += s.file_counts.in_progress;
      busy += (await all(c.files.list({ limit: 1000 }))).filter((f) => f.status === "uploaded").length;
    }
    if (!busy) return;
    if (Date.now() > deadline) throw new Error(`still ${busy} file(s) in progress ${QUIET_MS / 1000} s after the storm`);
    await Bun.sleep(250);
  }
}

/** The call must answer 404 in the OpenAI envelope. */
async function expect404(problems: string[], label: string, fn: () => Promise<unknown>) {
  try {
    await fn();
    problems.push(`${label}: answered 2xx, expected 404`);
  } catch (e) {
    if (!(e instanceof OpenAI.APIError)) return void problems.push(`${label}: ${String(e)}`);
    if (e.status !== 404) problems.push(`${label}: answered ${e.status} ${e.code ?? ""}, expected 404`);
    problems.push(...errorProblems(e).map((p) => `${label}: ${p}`));
  }
}

/**
 * A pair's final state when its last attach/update/detach succeeded and overlapped no other
 * event: the attributes it set (so listed with them), "absent" (detached), else undefined;
 * null when nothing was ever written to it. An attach without attributes leaves the ones
 * the writes before it left ({} for a new pair).
 */
function finalMembership(evs: MemberEv[]): Attrs | "absent" | null | undefined {
  if (!evs.length) return null;
  const last = evs.reduce((a, b) => (b.sent > a.sent ? b : a));
  if (!last.ok || evs.some((e) => e !== last && (e.done === undefined || e.done > last.sent))) return undefined;
  if (last.kind === "remove") return "absent";
  if (last.attrs !== undefined) return last.attrs;
  // (failed writes before it changed nothing: a 404 attach wrote no membership)
  const before = finalMembership(evs.filter((e) => e !== last && e.ok));
  return before === null || before === "absent" ? {} : before;
}

const checked = { stores: 0, members: 0, searches: 0 };
async function checkProject(p: number, problems: string[]) {
  const c = clients[p]!;
  const P = "AB"[p];
  const mine = w.files.filter((f) => f.proj === p);
  const live = mine.filter((f) => !f.deleteSends.length);
  const liveIds = new Set(live.map((f) => f.id));

  // Files: the listing is exactly the live files, each byte-identical; deleted ones are 404s.
  const listed = new Set((await all(c.files.list({ limit: 7 }))).map((f) => f.id));
  for (const id of listed) if (!liveIds.has(id)) problems.push(`${P}: files.list names ${id}, ${w.fileById.get(id) ? "which was deleted" : "which is no file of this project"}`);
  for (const f of live) {
    if (!listed.has(f.id)) problems.push(`${P}: live file ${f.id} is missing from files.list`);
    try {
      const meta = await c.files.retrieve(f.id);
      if (meta.status !== "processed") problems.push(`${P}: ${f.id} (${f.doc.name}) is ${meta.status}: ${meta.status_details}`);
      if (!Buffer.from(await (await c.files.content(f.id)).arrayBuffer()).equals(f.doc.bytes)) problems.push(`${P}: content of ${f.id} differs from its upload`);
    } catch (e) {
      problems.push(`${P}: live file ${f.id}: ${String(e)}`);
    }
  }
  for (const f of mine.filter((f) => f.deletedAt !== undefined)) {
    await expect404(problems, `${P}: files.retrieve(deleted ${f.id})`, () => c.files.retrieve(f.id));
    await expect404(problems, `${P}: files.content(deleted ${f.id})`, () => c.files.content(f.id));
  }

  // Stores: the listing is exactly the live ones; counts agree with their own file listings.
  const stores = new Set((await all(c.vectorStores.list({ limit: 3 }))).map((s) => s.id));
  const liveStores = w.stores.filter((s) => s.proj === p && !s.deleteSends.length);
  for (const id of stores) if (!liveStores.some((l) => l.id === id)) problems.push(`${P}: vectorStores.list names ${id}, which was deleted or is not this project's`);
  for (const s of liveStores) if (!stores.has(s.id)) problems.push(`${P}: live store ${s.id} is missing from vectorStores.list`);
  const r = prng(SEED ^ (p + 1));
  for (const s of liveStores) {
    const got = await c.vectorStores.retrieve(s.id);
    const members = await all(c.vectorStores.files.list(s.id, { limit: 6 }));
    checked.stores++;
    checked.members += members.length;
    const byId = new Map(members.map((m) => [m.id, m]));
    const counts = { in_progress: 0, completed: 0, failed: 0, cancelled: 0, total: members.length };
    for (const m of members) counts[m.status]++;
    if (byId.size !== members.length) problems.push(`${P}: ${s.id}'s listing repeats a file`);
    if (JSON.stringify(got.file_counts) !== JSON.stringify(counts)) problems.push(`${P}: ${s.id} file_counts ${JSON.stringify(got.file_counts)}, its listing ${JSON.stringify(counts)}`);
    if (!(got.usage_bytes >= 0) || (counts.completed === 0 && got.usage_bytes !== 0)) problems.push(`${P}: ${s.id} has usage_bytes ${got.usage_bytes} with ${counts.completed} completed files`);
    for (const status of ["completed", "failed", "cancelled", "in_progress"] as const) {
      const filtered = (await all(c.vectorStores.files.list(s.id, { limit: 20, filter: status }))).map((m) => m.id).sort();
      const want = members.filter((m) => m.status === status).map((m) => m.id).sort();
      if (filtered.join() !== want.join()) problems.push(`${P}: ${s.id} filter=${status} lists [${filtered}], the full listing has [${want}]`);
    }
    for (const m of members) if (!liveIds.has(m.id)) problems.push(`${P}: ${s.id} lists ${m.id}, ${w.fileById.get(m.id) ? "a deleted file" : "no file of this project"}`);
    // Where a pair's last attach/update/detach overlapped nothing, its outcome is known.
    for (const f of live) {
      const want = finalMembership(w.evs(s, f));
      const m = byId.get(f.id);
      if (want === "absent" && m) problems.push(`${P}: ${f.id} is listed in ${s.id} after its detach`);
      else if (want !== undefined && want !== null && want !== "absent") {
        if (!m) problems.push(`${P}: ${f.id} is not listed in ${s.id}, though its last write (attach or update) succeeded`);
        else if (JSON.stringify(m.attributes) !== JSON.stringify(want)) problems.push(`${P}: ${f.id} in ${s.id} has attributes ${JSON.stringify(m.attributes)}, its last write set ${JSON.stringify(want)}`);
      }
    }
    // Search: only completed members; a member's marker finds it (or its identical twin); a
    // filter on a member's tier keeps to that tier and still finds it.
    const completed = members.filter((m) => m.status === "completed");
    const doc = (id: string) => w.fileById.get(id)!.doc;
    const queries: { m: (typeof members)[number]; filters?: Filter }[] = r.some(completed, 3).map((m) => ({ m }));
    const tiered = completed.find((m) => typeof m.attributes?.tier === "string");
    if (tiered) queries.push({ m: tiered, filters: { type: "eq", key: "tier", value: tiered.attributes!.tier as string } });
    for (const { m, filters } of queries) {
      const q = doc(m.id).marker;
      const hits = (await c.vectorStores.search(s.id, { query: q, max_num_results: 10, ...(filters ? { filters } : {}) })).data;
      checked.searches++;
      for (const h of hits) {
        if (byId.get(h.file_id)?.status !== "completed") problems.push(`${P}: search in ${s.id} hit ${h.file_id}, which is ${byId.get(h.file_id)?.status ?? "not a member"}`);
        if (filters && !matches(filters, h.attributes as Attrs)) problems.push(`${P}: filtered search in ${s.id} hit ${h.file_id} with ${JSON.stringify(h.attributes)}`);
      }
      const twins = completed.filter((o) => doc(o.id).bytes.equals(doc(m.id).bytes) && (!filters || matches(filters, o.attributes as Attrs))).map((o) => o.id);
      if (!hits.some((h) => twins.includes(h.file_id))) problems.push(`${P}: search "${q}"${filters ? " (filtered)" : ""} in ${s.id} did not find ${m.id} (${doc(m.id).name}); hits: ${hits.map((h) => h.file_id)}`);
    }
  }
  // Batches of live stores: finished, and counted as their own listing.
  for (const b of w.batches.filter((b) => b.proj === p && !b.store.deleteSends.length)) {
    const got = await c.vectorStores.fileBatches.retrieve(b.id, { vector_store_id: b.store.id });
    const files = await all(c.vectorStores.fileBatches.listFiles(b.id, { vector_store_id: b.store.id, limit: 10 }));
    if (got.status === "in_progress" || got.file_counts.total !== files.length) problems.push(`${P}: batch ${b.id} is ${got.status} with ${JSON.stringify(got.file_counts)}, its listing has ${files.length}`);
  }
}

async function checkIsolation(problems: string[]) {
  for (const p of [0, 1]) {
    const other = clients[1 - p]!;
    const tag = `${"AB"[1 - p]}'s key on ${"AB"[p]}'s`;
    for (const f of w.files.filter((f) => f.proj === p)) {
      await expect404(problems, `${tag} files.retrieve(${f.id})`, () => other.files.retrieve(f.id));
      await expect404(problems, `${tag} files.content(${f.id})`, () => other.files.content(f.id));
    }
    for (const s of w.stores.filter((s) => s.proj === p)) {
      await expect404(problems, `${tag} vectorStores.retrieve(${s.id})`, () => other.vectorStores.retrieve(s.id));
      await expect404(problems, `${tag} vectorStores.files.list(${s.id})`, () => other.vectorStores.files.list(s.id));
      await expect404(problems, `${tag} vectorStores.search(${s.id})`, () => other.vectorStores.search(s.id, { query: "granite" }));
    }
    for (const b of w.batches.filter((b) => b.proj === p))
      await expect404(problems, `${tag} fileBatches.retrieve(${b.id})`, () => other.vectorStores.fileBatches.retrieve(b.id, { vector_store_id: b.store.id }));
  }
  // Every id an answer named during the storm belongs to the project that asked.
  for (const cl of w.claims) {
    const f = w.fileById.get(cl.id);
    if (!f) problems.push(`#${cl.n} ${cl.where} named ${cl.id}, which no upload of the storm returned`);
    else if (f.proj !== cl.proj) problems.push(`#${cl.n} ${cl.where} of project ${"AB"[cl.proj]} named ${cl.id} of project ${"AB"[f.proj]}`);
  }
}

/** Deleting a store: its id is a 404 everywhere, its files stay. */
async function checkStoreDelete(p: number, problems: string[]) {
  const c = clients[p]!;
  for (const s of w.stores.filter((s) => s.proj === p && !s.isDefault && !s.deleteSends.length).slice(0, 2)) {
    const members = await all(c.vectorStores.files.list(s.id, { limit: 100 }));
    const batch = w.batches.find((b) => b.store === s);
    await c.vectorStores.delete(s.id);
    s.deleteSends.push(rec.now());
    const tag = `${"AB"[p]}: deleted store ${s.id}`;
    await expect404(problems, `${tag} retrieve`, () => c.vectorStores.retrieve(s.id));
    await expect404(problems, `${tag} search`, () => c.vectorStores.search(s.id, { query: "granite" }));
    await expect404(problems, `${tag} files.list`, () => c.vectorStores.files.list(s.id));
    await expect404(problems, `${tag} update`, () => c.vectorStores.update(s.id, { name: "x" }));
    await expect404(problems, `${tag} delete again`, () => c.vectorStores.delete(s.id));
    if (members[0]) {
      await expect404(problems, `${tag} files.retrieve`, () => c.vectorStores.files.retrieve(members[0]!.id, { vector_store_id: s.id }));
      await expect404(problems, `${tag} files.create`, () => c.vectorStores.files.create(s.id, { file_id: members[0]!.id }));
    }
    if (batch) await expect404(problems, `${tag} fileBatches.retrieve`, () => c.vectorStores.fileBatches.retrieve(batch.id, { vector_store_id: s.id }));
    if ((await all(c.vectorStores.list({ limit: 100 }))).some((l) => l.id === s.id)) problems.push(`${tag} is still listed`);
    for (const m of members) await c.files.retrieve(m.id).catch((e) => problems.push(`${tag}: its file ${m.id} is gone: ${String(e)}`));
  }
}

// ---------------------------------------------------------------------------------------

// The embedded SQLite, and PostgreSQL where one answers: the races differ (a writer thread
// beside a read connection, or transactions of a pool).
const BACKENDS = ["sqlite", ...(postgresMissing === null ? ["postgres"] : [])] as const;

for (const backend of BACKENDS)
describe(`a storm of valid calls racing each other and ingestion (${backend})`, () => {
  let ragd: Ragd;
  /** How much the server had logged when the storm's test ended. */
  let stormLogged = 0;

  beforeAll(async () => {
    if (backend === "postgres") {
      const database = await createDatabase();
      ragd = await startRagd({ args: ["--database-url", database] });
      const key = runCli(["keys", "create", "--project", "storm-other", "--database-url", database]);
      if (key.code !== 0) throw new Error(`keys create failed: ${key.stderr}`);
      clients = [ragd.client(), ragd.client(key.stdout.trim())];
    } else {
      ragd = await startRagd();
      clients = [ragd.client(), ragd.client(await createKey(ragd.dataDir, "storm-other"))];
    }
    checked.stores = checked.members = checked.searches = 0;
    w = new World();
    rec = new Recorder();
    docs = makeDocs(prng(SEED), MAX_FILES);
    for (const [p, c] of clients.entries()) {
      // listing makes the knowledge base; every indexed upload joins it
      const kb = (await all(c.vectorStores.list({ limit: 100 }))).find((s) => s.name === "knowledge base")!;
      w.addStore({ id: kb.id, proj: p, isDefault: true, deleteSends: [] });
    }
  }, 60_000);

  afterAll(async () => {
    await ragd?.stop();
    if (ragd) cleanup(ragd.dataDir);
    await dropAllDatabases();
  });

  test(`${OPS} operations, ${IN_FLIGHT} in flight (seed ${SEED}): no 5xx, no 403, envelopes, no impossible answers`, async () => {
    const ops = plan(prng(SEED + 1));
    rec.t0 = performance.now();
    await storm(ops);
    const kinds = new Map<string, number>();
    for (const o of ops) kinds.set(o.kind, (kinds.get(o.kind) ?? 0) + 1);
    const st = w.stats;
    console.log(
      `storm (seed ${SEED}): ${ops.length} ops in ${(rec.now() / 1000).toFixed(1)} s; ${w.files.length} files, ${w.stores.length} stores, ${w.batches.length} batches; ` +
        `${st.ingesting} of ${st.ingesting + st.processed} retrieves saw a file still ingesting, ${st.hits} search hits\n  ${[...kinds].map(([k, v]) => `${k} ${v}`).join(", ")}`,
    );
    await Bun.sleep(300); // the log lines of the last answers
    rec.addLoggedFaults(ragd.stderr());
    stormLogged = ragd.stderr().length;
    if (rec.problems.length) throw new Error(rec.report(SEED, DUMP));
  }, 300_000);

  test("after the storm: files, stores, counts, search, deletes and projects agree", async () => {
    const problems: string[] = [];
    const quiet = performance.now();
    await waitQuiet();
    const quietS = ((performance.now() - quiet) / 1000).toFixed(1);
    for (const p of [0, 1]) await checkProject(p, problems);
    console.log(`quiet ${quietS} s after the storm; checked ${checked.stores} stores, ${checked.members} memberships, ${checked.searches} marker searches`);
    await checkIsolation(problems);
    for (const p of [0, 1]) await checkStoreDelete(p, problems);
    // (the storm's own test reported what was logged during it)
    rec.problems = problems.map((text) => ({ n: null, text }));
    rec.addLoggedFaults(ragd.stderr().slice(stormLogged));
    if (rec.problems.length) throw new Error(rec.report(SEED, DUMP));
    expect(ragd.proc.exitCode).toBeNull();
  }, 300_000);
});

// The races the storm found, each sent many times over: what a client is told must be an answer
// one of the two orders could give.
for (const backend of BACKENDS)
describe(`writes racing a delete (${backend})`, () => {
  let ragd: Ragd;
  beforeAll(async () => {
    ragd = await startRagd(backend === "postgres" ? { args: ["--database-url", await createDatabase()] } : {});
  }, 60_000);
  afterAll(async () => {
    await ragd?.stop();
    if (ragd) cleanup(ragd.dataDir);
    await dropAllDatabases();
  });
  const status = (p: Promise<unknown>) => p.then(() => 200, (e: { status?: number }) => e.status ?? -1);

  test("an attach, a batch or a new store naming a file or store deleted meanwhile is a 404 or done, never a 500", async () => {
    const c = ragd.client();
    const seen = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const f = await c.files.create({ file: new File([`race ${i}`], `race-${i}.txt`), purpose: "assistants" });
      const s = await c.vectorStores.create({ name: `race ${i}` });
      const [kind, write] = (
        [
          ["attach", () => c.vectorStores.files.create(s.id, { file_id: f.id })],
          ["batch", () => c.vectorStores.fileBatches.create(s.id, { file_ids: [f.id] })],
          ["store", () => c.vectorStores.create({ file_ids: [f.id] })],
        ] as const
      )[i % 3]!;
      const del = i % 2 ? c.files.delete(f.id) : kind === "store" ? c.files.delete(f.id) : c.vectorStores.delete(s.id);
      const [w, d] = await Promise.all([status(write()), status(del)]);
      seen.add(`${kind} ${w}`);
      expect(`${kind} ${w} beside a delete answering ${d}`).toMatch(new RegExp(`^${kind} (200|404) beside a delete answering 200$`));
    }
    expect(ragd.stderr()).not.toMatch(/unhandled/);
  }, 120_000);

  test("an attach that a detach follows at once is answered as done", async () => {
    const c = ragd.client();
    const f = await c.files.create({ file: new File(["attach and detach"], "ad.txt"), purpose: "assistants" });
    const s = await c.vectorStores.create({ name: "attach and detach" });
    await c.vectorStores.files.create(s.id, { file_id: f.id });
    for (let i = 0; i < 30; i++) {
      const [a, d] = await Promise.all([status(c.vectorStores.files.create(s.id, { file_id: f.id, attributes: { round: i } })), status(c.vectorStores.files.delete(f.id, { vector_store_id: s.id }))]);
      expect(`attach ${a}, detach ${d}`).toMatch(/^attach 200, detach (200|404)$/);
    }
  }, 120_000);
});
