// PaddleOCR (PP-OCRv4 mobile) run on onnxruntime: a DB text detector finds line boxes, a
// CRNN recogniser reads each line, CTC greedy decoding turns its output into characters.
// Pre- and post-processing follow PaddleOCR's inference defaults (tools/infer/utility.py),
// so the published models behave as their authors measured them.
import { OrtTensor, openSession, type OrtSession } from "../native/ort";
import { resize, sampleBilinear, type Raster } from "./raster";

type Point = [number, number];

export interface OcrLine {
  text: string;
  /** Mean probability of the characters read, 0..1. */
  score: number;
  /** Top-left, top-right, bottom-right, bottom-left, in image pixels. */
  box: [Point, Point, Point, Point];
}

export interface OcrModels {
  det: Uint8Array;
  rec: Uint8Array;
  /** One character per line; index i + 1 in the recogniser's output (0 is the CTC blank). */
  keys: string;
}

// PaddleOCR defaults: det_limit_side_len 960 (type max), det_db_thresh 0.3,
// det_db_box_thresh 0.6, det_db_unclip_ratio 1.5, rec_image_shape 3,48,320, drop_score 0.5.
const DET_MAX_SIDE = 960;
const BIN_THRESH = 0.3;
const BOX_THRESH = 0.6;
const UNCLIP_RATIO = 1.5;
const MIN_SIDE = 3;
const REC_HEIGHT = 48;
const REC_MIN_RATIO = 320 / 48;
const DROP_SCORE = 0.5;
const MAX_BOXES = 1000;

export class PaddleOcr {
  private readonly charset: string[];

  private constructor(
    private readonly det: OrtSession,
    private readonly rec: OrtSession,
    keys: string,
  ) {
    // The recogniser's classes: blank, the dictionary, then a space (use_space_char).
    this.charset = ["", ...keys.split(/\r?\n/).filter((k, i, all) => k !== "" || i < all.length - 1), " "];
  }

  static open(bindingPath: string, models: OcrModels, threads: number): PaddleOcr {
    return new PaddleOcr(openSession(bindingPath, models.det, threads), openSession(bindingPath, models.rec, threads), models.keys);
  }

  /**
   * The text in reading order: top to bottom, boxes on one line joined by spaces, and a
   * blank line where the vertical gap suggests a new paragraph.
   */
  read(img: Raster): { text: string; lines: OcrLine[] } {
    const boxes = this.detect(img);
    const lines = this.recognise(img, boxes).filter((l) => l.score >= DROP_SCORE && l.text !== "");
    const rows = readingRows(lines);
    let text = "";
    rows.forEach((row, i) => {
      if (i > 0) {
        const prev = rows[i - 1]!;
        const gap = rowTop(row) - rowBottom(prev);
        text += gap > 0.8 * rowHeight(prev) ? "\n\n" : "\n";
      }
      text += row.map((l) => l.text).join(" ");
    });
    return { text, lines: rows.flat() };
  }

  private detect(img: Raster): OcrLine["box"][] {
    const ratio = Math.min(1, DET_MAX_SIDE / Math.max(img.width, img.height));
    const w = Math.max(32, Math.round((img.width * ratio) / 32) * 32);
    const h = Math.max(32, Math.round((img.height * ratio) / 32) * 32);
    const small = resize(img, w, h);
    const input = new Float32Array(3 * w * h);
    // The models were trained on OpenCV's BGR images, normalised with ImageNet statistics
    // listed in that channel order.
    const mean = [0.485, 0.456, 0.406];
    const std = [0.229, 0.224, 0.225];
    const plane = w * h;
    for (let i = 0; i < plane; i++) {
      for (let c = 0; c < 3; c++) input[c * plane + i] = (small.data[i * 3 + (2 - c)]! / 255 - mean[c]!) / std[c]!;
    }
    const out = this.det.run({ [this.det.inputNames[0]!]: new OrtTensor("float32", input, [1, 3, h, w]) })[this.det.outputNames[0]!]!;
    const prob = out.data;
    const sx = img.width / w;
    const sy = img.height / h;
    return findBoxes(prob, w, h).map((box) => box.map(([x, y]) => [clamp(x * sx, 0, img.width), clamp(y * sy, 0, img.height)]) as OcrLine["box"]);
  }

  private recognise(img: Raster, boxes: OcrLine["box"][]): OcrLine[] {
    return boxes.map((box) => {
      const crop = cropBox(img, box);
      let line = this.readLine(crop);
      // A long run of letters with no space is usually words run together: with the box
      // hugging large glyphs, the recogniser drops spaces. Read it again with a margin of
      // background (not by default: on dense small print a margin leaves too few time steps).
      if (GLUED.test(line.text)) {
        const again = this.readLine(margin(crop));
        if (spaces(again.text) > spaces(line.text) && again.score >= line.score - 0.05) line = again;
      }
      return { ...line, box };
    });
  }

  /**
   * One line at a time: in a batch every line is padded to the widest, and on this CPU that
   * padding cost more than batching saved (a page: 3.3 s at 6 per batch, 2.0 s at 1).
   */
  private readLine(crop: Raster): { text: string; score: number } {
    const width = Math.max(Math.ceil(REC_HEIGHT * REC_MIN_RATIO), Math.ceil((REC_HEIGHT * crop.width) / crop.height));
    const plane = REC_HEIGHT * width;
    const input = new Float32Array(3 * plane);
    const rw = Math.max(1, Math.ceil((REC_HEIGHT * crop.width) / crop.height));
    const r = resize(crop, rw, REC_HEIGHT);
    for (let y = 0; y < REC_HEIGHT; y++)
      for (let x = 0; x < rw; x++) {
        const p = (y * rw + x) * 3;
        for (let c = 0; c < 3; c++) input[c * plane + y * width + x] = r.data[p + (2 - c)]! / 127.5 - 1;
      }
    const out = this.rec.run({ [this.rec.inputNames[0]!]: new OrtTensor("float32", input, [1, 3, REC_HEIGHT, width]) })[this.rec.outputNames[0]!]!;
    const [, steps, classes] = out.dims as [number, number, number];
    return ctcDecode(out.data, 0, steps, classes, this.charset);
  }
}

const GLUED = /[A-Za-z]{16,}/;
const spaces = (t: string) => t.split(" ").length - 1;

function ctcDecode(data: Float32Array, offset: number, steps: number, classes: number, charset: string[]) {
  let text = "";
  let sum = 0;
  let count = 0;
  let prev = -1;
  for (let t = 0; t < steps; t++) {
    let best = 0;
    let bestP = -Infinity;
    const row = offset + t * classes;
    for (let c = 0; c < classes; c++) {
      const p = data[row + c]!;
      if (p > bestP) {
        bestP = p;
        best = c;
      }
    }
    if (best !== 0 && best !== prev) {
      text += charset[best] ?? "";
      sum += bestP;
      count++;
    }
    prev = best;
  }
  return { text: text.trim(), score: count ? sum / count : 0 };
}

/** DB post-processing: connected regions of the probability map become rotated boxes. */
function findBoxes(prob: Float32Array, w: number, h: number): Point[][] {
  const mask = new Uint8Array(w * h);
  for (let i = 0; i < mask.length; i++) if (prob[i]! > BIN_THRESH) mask[i] = 1;
  const seen = new Uint8Array(w * h);
  const stack = new Int32Array(w * h);
  const members = new Int32Array(w * h);
  const boxes: Point[][] = [];
  for (let start = 0; start < mask.length && boxes.length < MAX_BOXES; start++) {
    if (!mask[start] || seen[start]) continue;
    let top = 0;
    let n = 0;
    stack[top++] = start;
    seen[start] = 1;
    while (top > 0) {
      const p = stack[--top]!;
      members[n++] = p;
      const x = p % w;
      const y = (p - x) / w;
      for (let dy = -1; dy <= 1; dy++) {
        const yy = y + dy;
        if (yy < 0 || yy >= h) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx;
          if (xx < 0 || xx >= w) continue;
          const q = yy * w + xx;
          if (mask[q] && !seen[q]) {
            seen[q] = 1;
            stack[top++] = q;
          }
        }
      }
    }
    if (n < 4) continue;
    const rect = minAreaRect(rowExtremes(members, n, w));
    if (Math.min(rect.halfU, rect.halfV) * 2 < MIN_SIDE) continue;
    if (rectScore(prob, w, h, rect) < BOX_THRESH) continue;
    // Unclip: the detector predicts shrunk text kernels; grow by area * ratio / perimeter.
    const area = 4 * rect.halfU * rect.halfV;
    const perimeter = 4 * (rect.halfU + rect.halfV);
    const d = (area * UNCLIP_RATIO) / perimeter;
    const grown = { ...rect, halfU: rect.halfU + d, halfV: rect.halfV + d };
    if (Math.min(grown.halfU, grown.halfV) * 2 < MIN_SIDE + 2) continue;
    boxes.push(corners(grown));
  }
  return boxes;
}

/** The hull of a region is the hull of each row's leftmost and rightmost pixel. */
function rowExtremes(members: Int32Array, n: number, w: number): Point[] {
  const rows = new Map<number, [number, number]>();
  for (let i = 0; i < n; i++) {
    const p = members[i]!;
    const x = p % w;
    const y = (p - x) / w;
    const r = rows.get(y);
    if (!r) rows.set(y, [x, x]);
    else {
      if (x < r[0]) r[0] = x;
      if (x > r[1]) r[1] = x;
    }
  }
  const pts: Point[] = [];
  for (const [y, [a, b]] of rows) pts.push([a, y], [b, y]);
  return pts;
}

interface Rect {
  cx: number;
  cy: number;
  /** Unit axis along the text line (pointing right) and its perpendicular (pointing down). */
  ux: number;
  uy: number;
  halfU: number;
  halfV: number;
}

function convexHull(points: Point[]): Point[] {
  const pts = points.slice().sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  if (pts.length < 3) return pts;
  const cross = (o: Point, a: Point, b: Point) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const lower: Point[] = [];
  for (const p of pts) {
    while (lower.length >= 2 && cross(lower[lower.length - 2]!, lower[lower.length - 1]!, p) <= 0) lower.pop();
    lower.push(p);
  }
  const upper: Point[] = [];
  for (let i = pts.length - 1; i >= 0; i--) {
    const p = pts[i]!;
    while (upper.length >= 2 && cross(upper[upper.length - 2]!, upper[upper.length - 1]!, p) <= 0) upper.pop();
    upper.push(p);
  }
  return lower.slice(0, -1).concat(upper.slice(0, -1));
}

/** Rotating calipers: the smallest rectangle has a side on one of the hull's edges. */
function minAreaRect(points: Point[]): Rect {
  const hull = convexHull(points);
  let best: Rect | null = null;
  let bestArea = Infinity;
  const edges = hull.length > 1 ? hull.length : 1;
  for (let i = 0; i < edges; i++) {
    const a = hull[i]!;
    const b = hull[(i + 1) % hull.length]!;
    let ux = b[0] - a[0];
    let uy = b[1] - a[1];
    const len = Math.hypot(ux, uy);
    if (len === 0) {
      ux = 1;
      uy = 0;
    } else {
      ux /= len;
      uy /= len;
    }
    let minU = Infinity, maxU = -Infinity, minV = Infinity, maxV = -Infinity;
    for (const [x, y] of hull) {
      const u = x * ux + y * uy;
      const v = -x * uy + y * ux;
      if (u < minU) minU = u;
      if (u > maxU) maxU = u;
      if (v < minV) minV = v;
      if (v > maxV) maxV = v;
    }
    const area = (maxU - minU) * (maxV - minV);
    if (area < bestArea) {
      bestArea = area;
      const cu = (minU + maxU) / 2;
      const cv = (minV + maxV) / 2;
      best = { cx: cu * ux - cv * uy, cy: cu * uy + cv * ux, ux, uy, halfU: (maxU - minU) / 2, halfV: (maxV - minV) / 2 };
    }
  }
  return orient(best!);
}

/** Makes u the axis nearest to horizontal, pointing right, so boxes read left to right. */
function orient(r: Rect): Rect {
  let { ux, uy, halfU, halfV } = r;
  if (Math.abs(ux) < Math.abs(uy)) {
    [ux, uy] = [-uy, ux];
    [halfU, halfV] = [halfV, halfU];
  }
  if (ux < 0) {
    ux = -ux;
    uy = -uy;
  }
  return { ...r, ux, uy, halfU, halfV };
}

function corners(r: Rect): [Point, Point, Point, Point] {
  // v = (-uy, ux) points down when u points right.
  const vx = -r.uy;
  const vy = r.ux;
  const at = (su: number, sv: number): Point => [r.cx + su * r.halfU * r.ux + sv * r.halfV * vx, r.cy + su * r.halfU * r.uy + sv * r.halfV * vy];
  return [at(-1, -1), at(1, -1), at(1, 1), at(-1, 1)];
}

/** Mean probability inside the rectangle (PaddleOCR's "fast" box score). */
function rectScore(prob: Float32Array, w: number, h: number, r: Rect): number {
  const pts = corners(r);
  const x0 = Math.max(0, Math.floor(Math.min(...pts.map((p) => p[0]))));
  const x1 = Math.min(w - 1, Math.ceil(Math.max(...pts.map((p) => p[0]))));
  const y0 = Math.max(0, Math.floor(Math.min(...pts.map((p) => p[1]))));
  const y1 = Math.min(h - 1, Math.ceil(Math.max(...pts.map((p) => p[1]))));
  let sum = 0;
  let n = 0;
  for (let y = y0; y <= y1; y++)
    for (let x = x0; x <= x1; x++) {
      const dx = x - r.cx;
      const dy = y - r.cy;
      const u = dx * r.ux + dy * r.uy;
      const v = -dx * r.uy + dy * r.ux;
      if (Math.abs(u) <= r.halfU + 0.5 && Math.abs(v) <= r.halfV + 0.5) {
        sum += prob[y * w + x]!;
        n++;
      }
    }
  return n ? sum / n : 0;
}

/** The box's pixels, straightened; tall boxes (vertical text) are turned to read across. */
function cropBox(img: Raster, box: OcrLine["box"]): Raster {
  const [tl, tr, br, bl] = box;
  const width = Math.max(1, Math.round(Math.max(dist(tl, tr), dist(bl, br))));
  const height = Math.max(1, Math.round(Math.max(dist(tl, bl), dist(tr, br))));
  const out = new Uint8Array(width * height * 3);
  const ax = (tr[0] - tl[0]) / width, ay = (tr[1] - tl[1]) / width;
  const bx = (bl[0] - tl[0]) / height, by = (bl[1] - tl[1]) / height;
  for (let v = 0; v < height; v++)
    for (let u = 0; u < width; u++) {
      const x = tl[0] + (u + 0.5) * ax + (v + 0.5) * bx - 0.5;
      const y = tl[1] + (u + 0.5) * ay + (v + 0.5) * by - 0.5;
      sampleBilinear(img, x, y, out, (v * width + u) * 3);
    }
  const crop = { width, height, data: out };
  return height / width >= 1.5 ? rotateLeft(crop) : crop;
}

// Share of the line height added around a crop, in its background colour.
const MARGIN = 0.25;

/**
 * Surrounds a line with background. Growing the box instead would take in the neighbouring
 * lines of dense text.
 */
function margin(img: Raster): Raster {
  const pad = Math.round(img.height * MARGIN);
  if (pad < 1) return img;
  const bg = borderColour(img);
  const width = img.width + 2 * pad;
  const height = img.height + 2 * pad;
  const out = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) out.set(bg, i * 3);
  for (let y = 0; y < img.height; y++) out.set(img.data.subarray(y * img.width * 3, (y + 1) * img.width * 3), ((y + pad) * width + pad) * 3);
  return { width, height, data: out };
}

function borderColour(img: Raster): [number, number, number] {
  const sum = [0, 0, 0];
  let n = 0;
  const add = (x: number, y: number) => {
    const o = (y * img.width + x) * 3;
    for (let k = 0; k < 3; k++) sum[k]! += img.data[o + k]!;
    n++;
  };
  for (let x = 0; x < img.width; x++) {
    add(x, 0);
    add(x, img.height - 1);
  }
  for (let y = 0; y < img.height; y++) {
    add(0, y);
    add(img.width - 1, y);
  }
  return sum.map((v) => Math.round(v / n)) as [number, number, number];
}

/** 90 degrees counter-clockwise, as numpy's rot90 in PaddleOCR. */
function rotateLeft(img: Raster): Raster {
  const { width: w, height: h } = img;
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const s = (y * w + x) * 3;
      const d = ((w - 1 - x) * h + y) * 3;
      out[d] = img.data[s]!;
      out[d + 1] = img.data[s + 1]!;
      out[d + 2] = img.data[s + 2]!;
    }
  return { width: h, height: w, data: out };
}

const cy = (l: OcrLine) => (l.box[0][1] + l.box[3][1] + l.box[1][1] + l.box[2][1]) / 4;
const hgt = (l: OcrLine) => Math.max(1, (dist(l.box[0], l.box[3]) + dist(l.box[1], l.box[2])) / 2);
const rowTop = (row: OcrLine[]) => Math.min(...row.map((l) => Math.min(l.box[0][1], l.box[1][1])));
const rowBottom = (row: OcrLine[]) => Math.max(...row.map((l) => Math.max(l.box[2][1], l.box[3][1])));
const rowHeight = (row: OcrLine[]) => Math.max(...row.map(hgt));

/**
 * Top to bottom, and left to right within a line: boxes whose vertical centres are within
 * half a line height of each other are one line.
 */
function readingRows(lines: OcrLine[]): OcrLine[][] {
  const sorted = lines.slice().sort((a, b) => cy(a) - cy(b));
  const rows: OcrLine[][] = [];
  for (const l of sorted) {
    const row = rows[rows.length - 1];
    if (row && Math.abs(cy(l) - cy(row[0]!)) < Math.min(hgt(l), hgt(row[0]!)) / 2) row.push(l);
    else rows.push([l]);
  }
  for (const row of rows) row.sort((a, b) => a.box[0][0] - b.box[0][0]);
  return rows;
}

const dist = (a: Point, b: Point) => Math.hypot(a[0] - b[0], a[1] - b[1]);
const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
