/**
 * Bytes to text: a BOM decides (UTF-8, UTF-16 LE/BE, UTF-32 LE/BE); otherwise UTF-16 without
 * BOM when every other byte is zero, then strict UTF-8, then Windows-1252.
 */
export function decodeText(b: Uint8Array): string {
  if (b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) return new TextDecoder("utf-8").decode(b.subarray(3));
  if (b[0] === 0xff && b[1] === 0xfe && b[2] === 0 && b[3] === 0) return decodeUtf32(b.subarray(4), true);
  if (b[0] === 0 && b[1] === 0 && b[2] === 0xfe && b[3] === 0xff) return decodeUtf32(b.subarray(4), false);
  if (b[0] === 0xff && b[1] === 0xfe) return new TextDecoder("utf-16le").decode(b.subarray(2));
  if (b[0] === 0xfe && b[1] === 0xff) return new TextDecoder("utf-16be").decode(b.subarray(2));
  // ASCII in UTF-16 is valid UTF-8 too (with a NUL in every other byte): look for that first.
  const guess = utf16WithoutBom(b);
  if (guess) return new TextDecoder(guess).decode(b);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(b);
  } catch {}
  return decodeCp1252(b);
}

function decodeUtf32(b: Uint8Array, le: boolean): string {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const parts: string[] = [];
  for (let i = 0; i + 4 <= b.length; i += 4) {
    const cp = dv.getUint32(i, le);
    parts.push(cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff) ? String.fromCodePoint(cp) : "\ufffd");
  }
  return parts.join("");
}

function utf16WithoutBom(b: Uint8Array): "utf-16le" | "utf-16be" | null {
  if (b.length < 4 || b.length % 2) return null;
  let evenZero = 0;
  let oddZero = 0;
  const n = Math.min(b.length, 4096);
  for (let i = 0; i < n; i += 2) {
    if (b[i] === 0) evenZero++;
    if (b[i + 1] === 0) oddZero++;
  }
  const half = n / 2;
  if (oddZero > half * 0.4 && evenZero < half * 0.05) return "utf-16le";
  if (evenZero > half * 0.4 && oddZero < half * 0.05) return "utf-16be";
  return null;
}

// Windows-1252's 0x80-0x9F; the rest of the byte range is Latin-1.
const CP1252_HIGH = [
  0x20ac, 0xfffd, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0xfffd, 0x017d, 0xfffd,
  0xfffd, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0xfffd, 0x017e, 0x0178,
];

export function decodeCp1252(b: Uint8Array): string {
  let out = "";
  const CHUNK = 8192;
  for (let i = 0; i < b.length; i += CHUNK) {
    const codes = Array.from(b.subarray(i, i + CHUNK), (x) => (x >= 0x80 && x <= 0x9f ? CP1252_HIGH[x - 0x80]! : x));
    out += String.fromCharCode(...codes);
  }
  return out;
}
