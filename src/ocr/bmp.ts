import type { Raster } from "./raster";

/** Thrown for a BMP this reader cannot decode; the caller words it for the user. */
export class BmpError extends Error {}

/**
 * Windows bitmaps, which libvips (sharp) does not read: 1/4/8-bit palettes, 16/24/32-bit
 * direct colour with or without bit fields, bottom-up or top-down. RLE compression is
 * refused. `checkSize` sees the dimensions before anything is allocated, and may throw.
 */
export function decodeBmp(b: Uint8Array, checkSize: (width: number, height: number) => void): Raster {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length < 26 || b[0] !== 0x42 || b[1] !== 0x4d) throw new BmpError("not a BMP file");
  const dataOffset = dv.getUint32(10, true);
  const headerSize = dv.getUint32(14, true);
  let width: number, height: number, bpp: number, compression = 0, paletteSize = 0;
  if (headerSize === 12) {
    width = dv.getUint16(18, true);
    height = dv.getInt16(20, true);
    bpp = dv.getUint16(24, true);
  } else {
    if (b.length < 54) throw new BmpError("the BMP header is truncated");
    width = dv.getInt32(18, true);
    height = dv.getInt32(22, true);
    bpp = dv.getUint16(28, true);
    compression = dv.getUint32(30, true);
    paletteSize = dv.getUint32(46, true);
  }
  const topDown = height < 0;
  height = Math.abs(height);
  if (width <= 0 || height <= 0) throw new BmpError("the BMP has no pixels");
  checkSize(width, height);
  if (compression !== 0 && compression !== 3 && compression !== 6) throw new BmpError("compressed (RLE) BMP files are not supported");

  let masks: [number, number, number] | null = null;
  if (compression === 3 || compression === 6) {
    // Masks follow a 40-byte header; larger headers hold them in place.
    masks = [dv.getUint32(54, true), dv.getUint32(58, true), dv.getUint32(62, true)];
  } else if (bpp === 16) masks = [0x7c00, 0x03e0, 0x001f];
  else if (bpp === 32) masks = [0xff0000, 0x00ff00, 0x0000ff];

  const palette: number[][] = [];
  if (bpp <= 8) {
    const entry = headerSize === 12 ? 3 : 4;
    const count = paletteSize || 1 << bpp;
    const start = 14 + headerSize;
    for (let i = 0; i < count && start + i * entry + 2 < b.length; i++) {
      const p = start + i * entry;
      palette.push([b[p + 2]!, b[p + 1]!, b[p]!]);
    }
  } else if (bpp !== 16 && bpp !== 24 && bpp !== 32) throw new BmpError(`${bpp}-bit BMP files are not supported`);

  const stride = Math.floor((width * bpp + 31) / 32) * 4;
  if (dataOffset + stride * height > b.length) throw new BmpError("the BMP is truncated");
  const out = new Uint8Array(width * height * 3);
  const channel = (v: number, mask: number) => {
    if (!mask) return 0;
    const shift = 31 - Math.clz32(mask & -mask);
    const max = mask >>> shift;
    return Math.round((((v & mask) >>> shift) * 255) / max);
  };
  for (let y = 0; y < height; y++) {
    const row = dataOffset + (topDown ? y : height - 1 - y) * stride;
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      let rgb: number[];
      if (bpp <= 8) {
        const bit = x * bpp;
        const byte = b[row + (bit >> 3)]!;
        const idx = (byte >> (8 - bpp - (bit & 7))) & ((1 << bpp) - 1);
        rgb = palette[idx] ?? [0, 0, 0];
      } else if (bpp === 24) {
        const p = row + x * 3;
        rgb = [b[p + 2]!, b[p + 1]!, b[p]!];
      } else {
        const v = bpp === 16 ? dv.getUint16(row + x * 2, true) : dv.getUint32(row + x * 4, true);
        rgb = [channel(v, masks![0]), channel(v, masks![1]), channel(v, masks![2])];
      }
      out[o] = rgb[0]!;
      out[o + 1] = rgb[1]!;
      out[o + 2] = rgb[2]!;
    }
  }
  return { width, height, data: out };
}
