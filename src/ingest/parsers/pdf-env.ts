// pdf.js looks for DOMMatrix, ImageData and Path2D at load time and, in Node, fetches them
// from @napi-rs/canvas through a require the bundler cannot see; a compiled ragd would then
// fail on every PDF. Importing the native module here makes `bun build --compile` embed it.
import * as canvas from "@napi-rs/canvas";

const g = globalThis as Record<string, unknown>;
g.DOMMatrix ??= canvas.DOMMatrix;
g.ImageData ??= canvas.ImageData;
g.Path2D ??= canvas.Path2D;

// pdf.js runs its parser in a "fake worker" (same thread) in Node and loads it with a
// dynamic import of ./pdf.worker.mjs, which does not exist inside the binary. Handing it
// the module up front makes that lookup unnecessary; we are already off the HTTP thread.
// @ts-expect-error: pdfjs-dist ships no types for its worker module
import * as pdfWorker from "pdfjs-dist/legacy/build/pdf.worker.mjs";

g.pdfjsWorker ??= pdfWorker;
