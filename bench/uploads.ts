// Uploads against the plain streaming sink of bench/references.ts, in alternating rounds of
// the same run: 32 concurrent 1 MB uploads (stored and ingested; stored only), and one 512 MB
// upload with the server's resident memory growth until its ingestion has ended, sent whole
// and through the Uploads API in parts.
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

/** The file sent through the Uploads API as it is split (parts of 64 MB, `inFlight` at a time), completed; the seconds from create to the completed upload. */
async function partsUpload(server: Server, parts: string[], bytes: number, inFlight: number): Promise<{ seconds: number; completeSeconds: number; fileId: string }> {
  const auth = { authorization: `Bearer ${server.key}` };
  const t = performance.now();
  const post = async (path: string, body: unknown) => {
    const r = await fetch(`${server.url}/v1/uploads${path}`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify(body) });
    if (!r.ok) throw new Error(`POST /v1/uploads${path}: ${r.status} ${await r.text()}`);
    return (await r.json()) as { id: string; file?: { id: string } };
  };
  const u = await post("", { filename: "big.bin", purpose: "user_data", bytes, mime_type: "application/octet-stream" });
  const ids: string[] = new Array(parts.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      for (let i = next++; i < parts.length; i = next++) {
        const p = Bun.spawn(["curl", "-sS", "-f", "-H", `Authorization: Bearer ${server.key}`, "-F", `data=@${parts[i]}`, `${server.url}/v1/uploads/${u.id}/parts`], { stdout: "pipe" });
        const body = await new Response(p.stdout).text();
        if ((await p.exited) !== 0) throw new Error(`part ${i} of ${u.id} failed`);
        ids[i] = (JSON.parse(body) as { id: string }).id;
      }
    }),
  );
  const c = performance.now();
  const done = await post(`/${u.id}/complete`, { part_ids: ids });
  const end = performance.now();
  return { seconds: (end - t) / 1000, completeSeconds: (end - c) / 1000, fileId: done.file!.id };
}

/** Deleted between rounds, so each round writes to the same disk. */
async function deleteFile(server: Server, id: string) {
  const r = await fetch(`${server.url}/v1/files/${id}`, { method: "DELETE", headers: { authorization: `Bearer ${server.key}` } });
  if (!r.ok) throw new Error(`DELETE ${id}: ${r.status}`);
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
    if (Bun.spawnSync(["dd", "if=/dev/urandom", `of=${big}`, "bs=1M", "count=512", "status=none"]).exitCode !== 0) throw new Error("dd failed");
    const BIG_ROUNDS = Math.min(ROUNDS, 3);
    /** Rounds of a 512 MB send through ragd (until its ingestion ended, the file deleted after), alternating with the sink's one upload. */
    const bigRounds = async (send: () => Promise<{ seconds: number; fileId: string; completeSeconds?: number }>) => {
      const r = { mbs: [] as number[], plain: [] as number[], growth: [] as number[], complete: [] as number[] };
      for (let round = 0; round < BIG_ROUNDS; round++) {
        const before = server.rssKb();
        server.resetPeak();
        const up = await send();
        await waitIngested(server, up.fileId);
        r.growth.push((server.peakRssKb() - before) / 1024);
        await deleteFile(server, up.fileId);
        r.mbs.push(512 / up.seconds);
        if (up.completeSeconds !== undefined) r.complete.push(up.completeSeconds);
        r.plain.push(512 / (await curlUpload(sink!.url, "none", big)).seconds);
      }
      return r;
    };
    const one = await bigRounds(async () => {
      const up = await curlUpload(`${server.url}/v1/files`, server.key, big);
      return { seconds: up.seconds, fileId: (JSON.parse(up.body) as { id: string }).id };
    });
    rows.push([
      "one 512 MB upload (curl), until its ingestion ended",
      `${spread(one.mbs)} MB/s`,
      `${spread(one.plain)} MB/s`,
      (median(one.mbs) / median(one.plain)).toFixed(2),
      `${spread(one.growth)} MB`,
    ]);

    // The same bytes as the SDKs send a large file: parts of 64 MB (the Uploads API's limit), two at a time, then a complete.
    if (Bun.spawnSync(["split", "-b", "64M", "-d", big, join(work, "part-")]).exitCode !== 0) throw new Error("split failed");
    const parts = [...new Bun.Glob("part-*").scanSync({ cwd: work })].sort().map((p) => join(work, p));
    const inParts = await bigRounds(() => partsUpload(server, parts, 512 * 1024 * 1024, 2));
    rows.push([
      `the same 512 MB through the Uploads API: ${parts.length} parts of 64 MB, 2 at a time, and its complete; until its ingestion ended`,
      `${spread(inParts.mbs)} MB/s (${(median(inParts.mbs) / median(one.mbs)).toFixed(2)}x the one upload; the complete, which copies the parts into the file: ${spread(inParts.complete, 2)} s)`,
      `${spread(inParts.plain)} MB/s (one upload)`,
      `${(median(inParts.mbs) / median(inParts.plain)).toFixed(2)} (parts and a copy against one body)`,
      `${spread(inParts.growth)} MB`,
    ]);
    return (
      table(["path", "ragd, median (min–max)", "plain streaming sink, same run", "ratio of medians", "ragd resident growth"], rows) +
      `\n\n${ROUNDS} alternating rounds of ${SECONDS} s (the 512 MB rows: ${BIG_ROUNDS}); load from a separate process on the same machine. The sink is a bare Bun.serve that streams each body to a file, fsyncs it, renames it and fsyncs the directory: ragd's durability without parsing, hashing or a database.`
    );
  } finally {
    await sink?.stop();
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  }
}
