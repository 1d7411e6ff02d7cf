import { inflateSync } from "node:zlib";
import type { Raster } from "./raster";

// A fallback TIFF reader for the layouts libvips refuses but libtiff reads, seen in scanners'
// output: bilevel or grayscale pages that carry extra samples (an alpha channel). Strips,
// chunky samples, no compression, PackBits or Deflate; and old-style JPEG pages (compression
// 6) whose JPEG stream is whole, handed to the JPEG decoder. Pages are read in order.

export class TiffError extends Error {}

interface Ifd {
  width: number;
  height: number;
  bits: number;
  samples: number;
  photometric: number;
  compression: number;
  planar: number;
  offsets: number[];
  counts: number[];
  rowsPerStrip: number;
  /** Old-style JPEG (compression 6): where its whole JPEG stream lies (JPEGInterchangeFormat). */
  jpeg: [number, number] | null;
}

/** A page the fallback decoded, or an old-style JPEG page's embedded JPEG, for the JPEG decoder. */
export type TiffPage = Raster | { width: number; height: number; jpeg: Uint8Array };

/** The pages of a TIFF as rasters; each page's pixel count is checked before it is decoded. */
export function decodeTiffFallback(b: Uint8Array, checkSize: (w: number, h: number) => void): TiffPage[] {
  if (b.length < 8) throw new TiffError("the TIFF is truncated");
  const le = b[0] === 0x49;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const u16 = (o: number) => dv.getUint16(o, le);
  const u32 = (o: number) => dv.getUint32(o, le);
  const pages: TiffPage[] = [];
  const seen = new Set<number>();
  for (let ifd = u32(4); ifd && pages.length < 1000; ) {
    if (seen.has(ifd) || ifd + 2 > b.length) break;
    seen.add(ifd);
    const n = u16(ifd);
    const tags = new Map<number, number[]>();
    for (let i = 0; i < n; i++) {
      const o = ifd + 2 + i * 12;
      if (o + 12 > b.length) throw new TiffError("the TIFF directory is truncated");
      const tag = u16(o);
      const type = u16(o + 2);
      const count = u32(o + 4);
      const size = type === 3 ? 2 : type === 4 ? 4 : type === 1 ? 1 : 0;
      if (!size || count > 1_000_000) continue;
      const at = size * count <= 4 ? o + 8 : u32(o + 8);
      if (at + size * count > b.length) throw new TiffError("a TIFF tag points past the end of the file");
      tags.set(tag, Array.from({ length: count }, (_, k) => (size === 2 ? u16(at + k * 2) : size === 4 ? u32(at + k * 4) : b[at + k]!)));
    }
    const one = (t: number, d: number) => tags.get(t)?.[0] ?? d;
    const d: Ifd = {
      width: one(256, 0),
      height: one(257, 0),
      bits: one(258, 1),
      samples: one(277, 1),
      photometric: one(262, 1),
      compression: one(259, 1),
      planar: one(284, 1),
      offsets: tags.get(273) ?? [],
      counts: tags.get(279) ?? [],
      rowsPerStrip: one(278, one(257, 0)),
      jpeg: tags.has(513) && tags.has(514) ? [one(513, 0), one(514, 0)] : null,
    };
    checkSize(d.width, d.height);
    pages.push(decodePage(b, d));
    ifd = u32(ifd + 2 + n * 12);
  }
  if (!pages.length) throw new TiffError("the TIFF has no readable page");
  return pages;
}

function decodePage(b: Uint8Array, d: Ifd): TiffPage {
  if (d.compression === 6) {
    // Old-style JPEG: libtiff reads the stream JPEGInterchangeFormat points at; so do we.
    if (!d.jpeg || d.jpeg[0] + d.jpeg[1] > b.length || d.jpeg[1] < 4) throw new TiffError("old-style JPEG TIFF pages without a whole JPEG stream are not read by the fallback");
    return { width: d.width, height: d.height, jpeg: b.subarray(d.jpeg[0], d.jpeg[0] + d.jpeg[1]) };
  }
  if (d.planar !== 1) throw new TiffError("planar TIFF layouts are not read by the fallback");
  if (d.bits !== 1 && d.bits !== 8) throw new TiffError(`${d.bits}-bit TIFF samples are not read by the fallback`);
  if (![1, 8, 32773, 32946].includes(d.compression)) throw new TiffError(`TIFF compression ${d.compression} is not read by the fallback`);
  if (![0, 1, 2].includes(d.photometric)) throw new TiffError(`TIFF photometric ${d.photometric} is not read by the fallback`);
  const rowBytes = Math.ceil((d.width * d.samples * d.bits) / 8);
  const rows: Uint8Array[] = [];
  for (let s = 0; s < d.offsets.length && rows.length < d.height; s++) {
    const raw = b.subarray(d.offsets[s]!, d.offsets[s]! + (d.counts[s] ?? 0));
    const data = d.compression === 1 ? raw : d.compression === 32773 ? unpackBits(raw, rowBytes * d.rowsPerStrip) : new Uint8Array(inflateSync(raw));
    for (let r = 0; r < d.rowsPerStrip && rows.length < d.height; r++) rows.push(data.subarray(r * rowBytes, (r + 1) * rowBytes));
  }
  const out = new Uint8Array(d.width * d.height * 3);
  const sample = (row: Uint8Array, x: number, k: number) => {
    const i = x * d.samples + k;
    if (d.bits === 8) return row[i] ?? 0;
    return (((row[i >> 3] ?? 0) >> (7 - (i & 7))) & 1) * 255;
  };
  for (let y = 0; y < d.height; y++) {
    const row = rows[y] ?? new Uint8Array(rowBytes);
    for (let x = 0; x < d.width; x++) {
      const o = (y * d.width + x) * 3;
      if (d.photometric === 2 && d.samples >= 3) {
        out[o] = sample(row, x, 0);
        out[o + 1] = sample(row, x, 1);
        out[o + 2] = sample(row, x, 2);
      } else {
        // the first sample is the gray; what follows (alpha) is dropped, as on white paper
        const g = sample(row, x, 0);
        out[o] = out[o + 1] = out[o + 2] = d.photometric === 0 ? 255 - g : g;
      }
    }
  }
  return { width: d.width, height: d.height, data: out };
}

function unpackBits(src: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(size);
  let o = 0;
  for (let i = 0; i < src.length && o < size; ) {
    const n = (src[i++]! << 24) >> 24;
    if (n >= 0) {
      out.set(src.subarray(i, i + n + 1).subarray(0, size - o), o);
      o += n + 1;
      i += n + 1;
    } else if (n !== -128) {
      out.fill(src[i++]!, o, Math.min(size, o + 1 - n));
      o += 1 - n;
    }
  }
  return out;
}
