// Copies the native libraries the single binary must carry into models/dist/native under
// `.bin` names (Bun refuses to import `.node` or `.so` files as assets); src/native/assets.ts
// embeds them and writes them back out at run time. The manifest keeps each file's real
// name (the dynamic loader matches libraries by their soname), size and checksum. ragd's own
// native code (the BM25 and int8 dot-product kernels) is compiled here with the machine's C compiler.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { writeFileAtomic } from "../src/util/atomic-file";
import { fileChecksumSync } from "../src/util/file-checksum";

const pkgDir = (name: string) => dirname(require.resolve(`${name}/package.json`));

export function stageNative(outDir: string) {
  const ort = join(pkgDir("onnxruntime-node"), "bin", "napi-v6", process.platform, process.arch);
  const vipsLib = join(pkgDir(`@img/sharp-libvips-${process.platform}-${process.arch}`), "lib");
  const vips = readdirSync(vipsLib).find((f) => f.startsWith("libvips-cpp.so"));
  if (!vips) throw new Error(`no libvips-cpp.so in ${vipsLib}`);
  const sharpLib = join(pkgDir(`@img/sharp-${process.platform}-${process.arch}`), "lib");
  const sharpNode = readdirSync(sharpLib).find((f) => f.endsWith(".node"));
  if (!sharpNode) throw new Error(`no sharp addon in ${sharpLib}`);
  // staged name -> [real name, source]
  const files: Record<string, [string, string]> = {
    "onnxruntime_binding.node.bin": ["onnxruntime_binding.node", join(ort, "onnxruntime_binding.node")],
    "libonnxruntime.so.1.bin": ["libonnxruntime.so.1", join(ort, "libonnxruntime.so.1")],
    "libvips-cpp.so.bin": [vips, join(vipsLib, vips)],
    "sharp.node.bin": [sharpNode, join(sharpLib, sharpNode)],
    "usearch.node.bin": ["usearch.node", join(pkgDir("usearch"), "prebuilds", `${process.platform}-${process.arch}`, "usearch.node")],
  };
  // Each file's size and checksum too: a start checks the copies it wrote out against these,
  // without reading and hashing the embedded bytes (about 100 MB) every time.
  const manifest: Record<string, { name: string; bytes: number; checksum: string }> = {};
  for (const [staged, [name, src]] of Object.entries(files)) {
    writeFileAtomic(join(outDir, staged), readFileSync(src));
    manifest[staged] = { name, ...fileChecksumSync(join(outDir, staged)) };
  }
  const kernels = compileKernels();
  writeFileAtomic(join(outDir, "libragd_kernels.so.bin"), kernels);
  manifest["libragd_kernels.so.bin"] = { name: "libragd_kernels.so", ...fileChecksumSync(join(outDir, "libragd_kernels.so.bin")) };
  writeFileAtomic(join(outDir, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
}

/**
 * src/search/bm25-kernel.c and int8-dot.c as one shared library. Without a C compiler that can
 * build it, it is left empty and search runs the JavaScript loops instead (same results; BM25
 * about 2.5x slower at 1M chunks, exact search of a narrow store about 30x).
 * -ffp-contract=off: a fused multiply-add would round differently from the JavaScript loops.
 * The kernels use no C library, so they need no libc headers or startup files (a compiler
 * installed without them still builds them) and load on any glibc or musl.
 */
function compileKernels(): Uint8Array {
  const cc = Bun.which("cc") ?? Bun.which("gcc") ?? Bun.which("clang");
  if (!cc) {
    console.warn("stage-native: no C compiler (cc, gcc or clang); search will use its JavaScript loops");
    return new Uint8Array(0);
  }
  const dir = mkdtempSync(join(tmpdir(), "ragd-kernels-"));
  try {
    const out = join(dir, "libragd_kernels.so");
    const flags = ["-O2", "-ffp-contract=off", "-ffreestanding", "-nostdlib", "-fPIC"];
    // Each kernel on its own: one a compiler cannot build leaves the other (its loader then
    // finds no symbols and search runs that JavaScript loop).
    const objects: string[] = [];
    for (const f of ["bm25-kernel.c", "int8-dot.c"]) {
      const src = join(import.meta.dir, "..", "src", "search", f);
      const obj = join(dir, f.replace(/\.c$/, ".o"));
      const r = Bun.spawnSync([cc, ...flags, "-c", "-o", obj, src], { stderr: "pipe" });
      if (r.exitCode === 0) objects.push(obj);
      else console.warn(`stage-native: ${cc} could not build ${src}; search will use its JavaScript loop instead\n${r.stderr.toString()}`);
    }
    if (objects.length === 0) return new Uint8Array(0);
    const r = Bun.spawnSync([cc, ...flags, "-shared", "-o", out, ...objects], { stderr: "pipe" });
    if (r.exitCode !== 0) {
      console.warn(`stage-native: ${cc} could not link the search kernels; search will use its JavaScript loops\n${r.stderr.toString()}`);
      return new Uint8Array(0);
    }
    return readFileSync(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) stageNative(process.argv[2] ?? join(import.meta.dir, "dist", "native"));
