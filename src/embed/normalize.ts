/** L2-normalises each `dims`-long row in place; a zero row stays zero. */
export function normalizeRows(v: Float32Array, dims: number) {
  for (let at = 0; at < v.length; at += dims) {
    let ss = 0;
    for (let d = 0; d < dims; d++) ss += v[at + d]! * v[at + d]!;
    const inv = 1 / Math.max(Math.sqrt(ss), 1e-12);
    for (let d = 0; d < dims; d++) v[at + d]! *= inv;
  }
  return v;
}
