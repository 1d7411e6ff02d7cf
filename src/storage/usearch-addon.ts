// usearch's native index, without its JavaScript wrapper. The wrapper turns every vector into
// float32 before the addon sees it, and the addon's float-to-int8 cast scales a vector to
// length 127 and truncates: a unit vector of 512 dimensions then uses about ±25 of the ±127
// steps, and recall@10 fell to 0.885-0.908 (bench/README, 2026-12-06). Handed int8 codes, the
// addon keeps them as they are, so the index holds exactly the codes SQLite stores.

/** The addon's CompiledIndex (usearch 2.x, javascript/lib.cpp). */
export interface AddonIndex {
  add(keys: BigUint64Array, vectors: Int8Array, threads: number): void;
  search(queries: Int8Array, k: number, threads: number): [keys: BigUint64Array, distances: Float32Array, counts: BigUint64Array];
  contains(keys: BigUint64Array): boolean[];
  remove(keys: BigUint64Array): number[];
  size(): number;
  save(path: string): void;
  load(path: string): void;
}

/** A cosine index over int8 vectors; the addon must have been loaded (installBindings). */
export function int8CosineIndex(dims: number, connectivity: number, expansionAdd: number, expansionSearch: number): AddonIndex {
  const addon = (globalThis as { __ragdUsearchBinding?: { CompiledIndex: new (...args: unknown[]) => AddonIndex } }).__ragdUsearchBinding;
  if (!addon) throw new Error("usearch's addon was not loaded (installBindings)");
  return new addon.CompiledIndex(dims, "cos", "i8", connectivity, expansionAdd, expansionSearch, false);
}
