/** An 8-bit RGB image, row-major, 3 bytes per pixel. */
export interface Raster {
  width: number;
  height: number;
  data: Uint8Array;
}

/** The colour between pixel centres at (x, y), clamped to the image, into out[o..o+2]. */
export function sampleBilinear(img: Raster, x: number, y: number, out: Uint8Array, o: number) {
  const cx = Math.min(img.width - 1, Math.max(0, x));
  const cy = Math.min(img.height - 1, Math.max(0, y));
  const x0 = Math.floor(cx);
  const y0 = Math.floor(cy);
  const x1 = Math.min(img.width - 1, x0 + 1);
  const y1 = Math.min(img.height - 1, y0 + 1);
  const wx = cx - x0;
  const wy = cy - y0;
  const d = img.data;
  const a = (y0 * img.width + x0) * 3;
  const b = (y0 * img.width + x1) * 3;
  const c = (y1 * img.width + x0) * 3;
  const e = (y1 * img.width + x1) * 3;
  for (let k = 0; k < 3; k++) {
    const top = d[a + k]! + (d[b + k]! - d[a + k]!) * wx;
    const bottom = d[c + k]! + (d[e + k]! - d[c + k]!) * wx;
    out[o + k] = top + (bottom - top) * wy + 0.5;
  }
}

/** Bilinear resize; good enough for the downscales OCR does, and no native call per crop. */
export function resize(src: Raster, width: number, height: number): Raster {
  const out = new Uint8Array(width * height * 3);
  const sx = src.width / width;
  const sy = src.height / height;
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) sampleBilinear(src, (x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5, out, (y * width + x) * 3);
  return { width, height, data: out };
}
