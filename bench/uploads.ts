// Uploads against the plain streaming sink of bench/references.ts, in alternating rounds of
// the same run: 32 concurrent 1 MB uploads (stored and ingested; stored only), and one 512 MB
// upload with the server's resident memory growth until its ingestion has ended.
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ROOT, startServer, table, type Server } from "./lib";
import { startSink, type Reference } from "./references";

const ROUNDS = Number(process.env.RAGD_BENCH_ROUNDS ?? 5);
const SECONDS = 5;
const CONNECTIONS = 32;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const spread = (xs: number[], digits = 0) => `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`;

async function load(url: string, key: string, purpose: string): Promise<number> {
  const p = Bun.spawn(["bun", join(ROOT, "bench/upload-load.ts"), url, key, String(CONNECTIONS), String(SECONDS), "1", purpose], { stdout: "pipe", stderr: "inherit" });
  const r = JSON.parse(await new Response(p.stdout).text()) as { perSecond: number; failed: number; firstError: string };
  if (r.failed) throw new Error(`${r.failed} uploads to ${url} failed: ${r.firstError}`);
  return r.perSecond;
}

async function curlUpload(url: string, key: string, path: string): Promise<{ seconds: number; body: string }> {
  const t = performance.now();
  const p = Bun.spawn(["curl", "-sS", "-f", "-H", `Authorization: Bearer ${key}`, "-F", `file=@${path};filename=big.bin`, "-F", "purpose=user_data", url], { stdout: "pipe" });
  const body = await new Response(p.stdout).text();
  if ((await p.exited) !== 0) throw new Error(`upload to ${url} failed`);
  return { seconds: (performance.now() - t) / 1000, body };
}

async function waitIngested(server: Server, id: string) {
  for (;;) {
    const r = await fetch(`${server.url}/v1/files/${id}`, { headers: { authorization: `Bearer ${server.key}` } });
    const f = (await r.json()) as { status: string };
    if (f.status !== "uploaded") return f.status;
    await Bun.sleep(20);
  }
}

export async function uploadsBench(): Promise<string> {
  const work = mkdtempSync(join(ROOT, ".tmp-bench-uploads-"));
  const server = await startServer([], join(work, "data"));
  let sink: Reference | null = null;
  try {
    sink = await startSink();
    const rows: (string | number)[][] = [];
    for (const purpose of ["user_data", "vision"]) {
      const ragd: number[] = [];
      const plain: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        ragd.push(await load(`${server.url}/v1/files`, server.key, purpose));
        plain.push(await load(sink.url, "none", purpose));
      }
      rows.push([
        `${CONNECTIONS} concurrent 1 MB uploads, purpose \`${purpose}\`${purpose === "vision" ? " (stored only)" : " (refused by ingestion at its first bytes)"}`,
        `${spread(ragd)} uploads/s`,
        `${spread(plain)} uploads/s`,
        (median(ragd) / median(plain)).toFixed(2),
        "",
      ]);
    }

    const big = join(work, "big.bin");
    Bun.spawnSync(["dd", "if=/dev/urandom", `of=${big}`, "bs=1M", "count=512", "status=none"]);
    const ragdMbs: number[] = [];
    const plainMbs: number[] = [];
    const growth: number[] = [];
    for (let round = 0; round < Math.min(ROUNDS, 3); round++) {
      const before = server.rssKb();
      server.resetPeak();
      const up = await curlUpload(`${server.url}/v1/files`, server.key, big);
      await waitIngested(server, JSON.parse(up.body).id);
      growth.push((server.peakRssKb() - before) / 1024);
      ragdMbs.push(512 / up.seconds);
      plainMbs.push(512 / (await curlUpload(sink.url, "none", big)).seconds);
    }
    rows.push([
      "one 512 MB upload (curl), until its ingestion ended",
      `${spread(ragdMbs)} MB/s`,
      `${spread(plainMbs)} MB/s`,
      (median(ragdMbs) / median(plainMbs)).toFixed(2),
      `${spread(growth)} MB`,
    ]);
    return (
      table(["path", "ragd, median (min–max)", "plain streaming sink, same run", "ratio of medians", "ragd resident growth"], rows) +
      `\n\n${ROUNDS} alternating rounds of ${SECONDS} s (the 512 MB row: ${Math.min(ROUNDS, 3)}); load from a separate process on the same machine. The sink is a bare Bun.serve that streams each body to a file, fsyncs it, renames it and fsyncs the directory: ragd's durability without parsing, hashing or a database.`
    );
  } finally {
    await sink?.stop();
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  }
}
