import { FFIType } from "bun:ffi";
import { KernelSlot, openKernel } from "../native/kernels";

// ragd_int8_dot_abi() of the int8-dot.c these symbols describe.
const ABI = 1;

const SYMBOLS = {
  ragd_int8_dot_abi: { args: [], returns: FFIType.i32 },
  // codes, scales, n, dims, query codes, query scale, out
  ragd_int8_dots: { args: [FFIType.ptr, FFIType.ptr, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.f32, FFIType.ptr], returns: FFIType.void },
} as const;

/**
 * out[i] = ((float)dot(q, codes of vector i) * qscale) * scales[i] for n vectors of `dims`
 * int8 codes each, laid one after another (see int8-dot.c).
 */
export type Int8Dots = (codes: Int8Array, scales: Float32Array, n: number, dims: number, q: Int16Array, qscale: number, out: Float32Array) => void;

/** The loop int8-dot.c runs, in JavaScript: the same integer sums and float roundings, so the same bits. */
export const jsInt8Dots: Int8Dots = (codes, scales, n, dims, q, qscale, out) => {
  const qs = Math.fround(qscale);
  for (let i = 0, at = 0; i < n; i++, at += dims) {
    let acc = 0;
    for (let j = 0; j < dims; j++) acc += q[j]! * codes[at + j]!;
    out[i] = Math.fround(Math.fround(Math.fround(acc) * qs) * scales[i]!);
  }
};

/** The native loop; null (and a warning) when its library cannot be loaded. */
export function openInt8Dots(path: string): Int8Dots | null {
  const symbols = openKernel(path, SYMBOLS, "ragd_int8_dot_abi", ABI, { kernel: "int8 dot-product kernel", source: "int8-dot.c", instead: "exact vector search uses its JavaScript loop" });
  if (!symbols) return null;
  const fn = symbols.ragd_int8_dots;
  return (codes, scales, n, dims, q, qscale, out) => {
    if (n > 0) fn(codes, scales, n, dims, q, qscale, out);
  };
}

const slot = new KernelSlot(openInt8Dots);

/** The loop exact vector search uses: the native one when it loaded. */
export const int8Dots = (): Int8Dots => slot.get() ?? jsInt8Dots;

/** Sets the native loop (null: the JavaScript one; undefined: loaded on first use); returns the one before. */
export const useInt8Dots = (kernel: Int8Dots | null | undefined) => slot.use(kernel);

/**
 * A query cut to int16 codes for int8Dots, as large as the int32 sums allow at this many
 * dimensions (|sum| <= 128 * dims * max code < 2^31, whatever int8 codes are stored); returns
 * the codes' scale. At 512 dimensions a code is within 1/65,534 of the query's largest component.
 */
export function int16Query(v: Float32Array, out: Int16Array): number {
  const top = Math.min(32767, Math.floor(0x7fffffff / (128 * v.length)));
  let max = 0;
  for (let i = 0; i < v.length; i++) max = Math.max(max, Math.abs(v[i]!));
  const scale = max / top || 1;
  for (let i = 0; i < v.length; i++) out[i] = Math.round(v[i]! / scale);
  return scale;
}
