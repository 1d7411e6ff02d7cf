// pdf.js looks for DOMMatrix, ImageData and Path2D at load time and, in Node, fetches them
// from @napi-rs/canvas through a require the bundler cannot see; a compiled ragd would then
// fail on every PDF. Importing the native module here makes `bun build --compile` embed it.
import * as napi from "@napi-rs/canvas";

const g = globalThis as Record<string, unknown>;
// Read by pdf.js in the binary instead of its own require (src/build/compile.ts).
g.__ragdCanvasModule ??= napi;
g.DOMMatrix ??= napi.DOMMatrix;
g.ImageData ??= napi.ImageData;
g.Path2D ??= napi.Path2D;

// pdf.js runs its parser in a "fake worker" (same thread) in Node and loads it with a
// dynamic import of ./pdf.worker.mjs, which does not exist inside the binary. Handing it
// the module up front makes that lookup unnecessary; we are already off the HTTP thread.
// @ts-expect-error: pdfjs-dist ships no types for its worker module
import * as pdfWorker from "pdfjs-dist/legacy/build/pdf.worker.mjs";

g.pdfjsWorker ??= pdfWorker;

/**
 * Canvases for rendering pages (OCR of scanned pages) from the module imported above: pdf.js's
 * own factory requires @napi-rs/canvas at run time, which the binary cannot resolve.
 */
export class EmbeddedCanvasFactory {
  create(width: number, height: number) {
    const surface = napi.createCanvas(Math.max(1, Math.floor(width)), Math.max(1, Math.floor(height)));
    return { canvas: surface, context: surface.getContext("2d") };
  }
  reset(cc: { canvas: napi.Canvas }, width: number, height: number) {
    cc.canvas.width = Math.max(1, Math.floor(width));
    cc.canvas.height = Math.max(1, Math.floor(height));
  }
  destroy(cc: { canvas: napi.Canvas | null; context: unknown }) {
    if (cc.canvas) {
      cc.canvas.width = 0;
      cc.canvas.height = 0;
    }
    cc.canvas = null;
    cc.context = null;
  }
}

