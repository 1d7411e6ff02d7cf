// Stored embeddings: one int8 per dimension plus a float32 scale (4 + d bytes; 516 for 512-d
// against 2048 as float32). Vectors are L2-normalised, so per-vector max-abs scaling keeps
// cosine similarity within about 0.001 of the float values.

export function encodeVector(v: Float32Array): Uint8Array {
  const out = new Uint8Array(4 + v.length);
  const scale = int8Codes(v, new Int8Array(out.buffer, 4));
  new DataView(out.buffer).setFloat32(0, scale, true);
  return out;
}

/**
 * The int8 codes of `v` as they are stored, written to `out`; returns their scale. The vector
 * index (vectors.ts) holds the stored codes and cuts each query to codes the same way.
 */
export function int8Codes(v: ArrayLike<number>, out: Int8Array): number {
  let max = 0;
  for (let i = 0; i < v.length; i++) max = Math.max(max, Math.abs(v[i]!));
  const scale = max / 127 || 1;
  for (let i = 0; i < v.length; i++) out[i] = Math.round(v[i]! / scale);
  return scale;
}

export function decodeVector(bytes: Uint8Array): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const scale = view.getFloat32(0, true);
  const q = new Int8Array(bytes.buffer, bytes.byteOffset + 4, bytes.byteLength - 4);
  const out = new Float32Array(q.length);
  for (let i = 0; i < q.length; i++) out[i] = q[i]! * scale;
  return out;
}

const scaleBytes = new Uint8Array(4);
const scaleView = new DataView(scaleBytes.buffer);

/**
 * Dot product of a float query with a stored vector, without decoding it first. The bytes are
 * read as they are: a view over `bytes.buffer` would first give a row read from SQLite an
 * ArrayBuffer of its own (a copy), for each of a search's hundred or so cosines.
 */
export function dotEncoded(query: Float32Array, bytes: Uint8Array): number {
  for (let i = 0; i < 4; i++) scaleBytes[i] = bytes[i]!;
  const scale = scaleView.getFloat32(0, true);
  let s = 0;
  for (let i = 4; i < bytes.length; i++) s += query[i - 4]! * ((bytes[i]! << 24) >> 24);
  return s * scale;
}
