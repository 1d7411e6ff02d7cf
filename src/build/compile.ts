// `make build`: one executable with every dependency, model and native library inside.
// The CLI's `bun build --compile` cannot take plugins, and one is needed: sharp loads its
// addon with a require that only works inside node_modules, so in the binary its loader module
// is replaced by the binding that src/native/sharp.ts loads from the extracted file.
import { join, resolve } from "node:path";

const [outfile = "dist/ragd", commit = "unknown"] = process.argv.slice(2);
const root = join(import.meta.dir, "../..");

const result = await Bun.build({
  entrypoints: ["src/main.ts", "src/embed/onnx-worker.ts", "src/storage/sqlite/writer-worker.ts", "src/storage/hash-worker.ts", "src/storage/vector-worker.ts"].map((p) => join(root, p)),
  compile: { outfile: resolve(root, outfile) },
  minify: true,
  define: { RAGD_COMMIT: JSON.stringify(commit) },
  plugins: [
    {
      name: "native-bindings",
      setup(build) {
        build.onLoad({ filter: /[\\/]sharp[\\/]dist[\\/]sharp\.(mjs|cjs)$/ }, (args) => ({
          loader: "js",
          contents: args.path.endsWith(".cjs")
            ? "module.exports = globalThis.__ragdSharpBinding;"
            : "const binding = globalThis.__ragdSharpBinding;\nif (!binding) throw new Error(\"sharp's addon was not loaded\");\nexport default binding;",
        }));
      },
    },
  ],
});
if (!result.success) {
  for (const log of result.logs) console.error(log);
  process.exit(1);
}
const size = Bun.file(resolve(root, outfile)).size;
console.log(`${outfile}: ${(size / 2 ** 20).toFixed(1)} MiB`);
