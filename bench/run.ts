// `make bench`: every benchmark, figures printed as markdown and kept in bench/results/.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cpus, totalmem } from "node:os";
import { readBench, uploadBench } from "./files";
import { latencyBench, parseBench, searchBusyBench } from "./ingest";
import { ROOT } from "./lib";
import { retrievalBench } from "./retrieval";
import { ocrBench } from "./ocr";
import { scaleBench } from "./scale";
import { pipelineBench } from "./pipeline";
import { answersBench } from "./answers";
import { consoleBench } from "./console";
import { keywordBench } from "./keyword";
import { uploadsBench } from "./uploads";
import { scaleoutBench } from "./scaleout";
import { modelBench } from "./model";

const only = process.argv.slice(2);
const suites: Record<string, () => Promise<string>> = {
  upload: uploadBench,
  uploads: uploadsBench,
  read: () => readBench(),
  parse: parseBench,
  "ingest-latency": () => latencyBench(),
  "search-busy": () => searchBusyBench(),
  model: modelBench,
  pipeline: pipelineBench,
  answers: answersBench,
  console: consoleBench,
  retrieval: () => retrievalBench(),
  ocr: ocrBench,
  scale: scaleBench,
  keyword: keywordBench,
  scaleout: scaleoutBench,
};

const out: string[] = [
  `# ragd benchmarks, ${new Date().toISOString()}`,
  `${cpus().length} cores (${cpus()[0]?.model}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Bun ${Bun.version}`,
];
for (const [name, run] of Object.entries(suites)) {
  if (only.length && !only.includes(name)) continue;
  process.stderr.write(`bench: ${name}...\n`);
  out.push(`\n## ${name}\n\n${await run()}`);
}
const text = out.join("\n") + "\n";
process.stdout.write(text);
mkdirSync(join(ROOT, "bench/results"), { recursive: true });
writeFileSync(join(ROOT, "bench/results", `bench-${Date.now()}.md`), text);
