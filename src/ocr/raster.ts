/** An 8-bit RGB image, row-major, 3 bytes per pixel. */
export interface Raster {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Bilinear resize; good enough for the downscales OCR does, and no native call per crop. */
export function resize(src: Raster, width: number, height: number): Raster {
  const out = new Uint8Array(width * height * 3);
  const sx = src.width / width;
  const sy = src.height / height;
  const d = src.data;
  for (let y = 0; y < height; y++) {
    const fy = Math.min(src.height - 1, Math.max(0, (y + 0.5) * sy - 0.5));
    const y0 = Math.floor(fy);
    const y1 = Math.min(src.height - 1, y0 + 1);
    const wy = fy - y0;
    for (let x = 0; x < width; x++) {
      const fx = Math.min(src.width - 1, Math.max(0, (x + 0.5) * sx - 0.5));
      const x0 = Math.floor(fx);
      const x1 = Math.min(src.width - 1, x0 + 1);
      const wx = fx - x0;
      const a = (y0 * src.width + x0) * 3;
      const b = (y0 * src.width + x1) * 3;
      const c = (y1 * src.width + x0) * 3;
      const e = (y1 * src.width + x1) * 3;
      const o = (y * width + x) * 3;
      for (let k = 0; k < 3; k++) {
        const top = d[a + k]! + (d[b + k]! - d[a + k]!) * wx;
        const bottom = d[c + k]! + (d[e + k]! - d[c + k]!) * wx;
        out[o + k] = top + (bottom - top) * wy + 0.5;
      }
    }
  }
  return { width, height, data: out };
}
