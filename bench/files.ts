// Files API benchmarks: upload throughput against a plain dd write on the same disk in
// the same run, the server's RSS growth during uploads, and read latency at 10,000 files.
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ROOT, startServer, table } from "./lib";
import { startEcho } from "./references";

const MB = 1024 * 1024;

function dd(path: string, mb: number): number {
  const t = performance.now();
  const r = Bun.spawnSync(["dd", "if=/dev/zero", `of=${path}`, "bs=1M", `count=${mb}`, "conv=fsync", "status=none"]);
  if (r.exitCode !== 0) throw new Error(r.stderr.toString());
  return (performance.now() - t) / 1000;
}

export async function uploadBench(): Promise<string> {
  const work = mkdtempSync(join(ROOT, ".tmp-bench-"));
  const server = await startServer([], join(work, "data"));
  const rows: (string | number)[][] = [];
  try {
    for (const mb of [1, 64, 512]) {
      const src = join(work, `src-${mb}.bin`);
      Bun.spawnSync(["dd", "if=/dev/urandom", `of=${src}`, "bs=1M", `count=${mb}`, "status=none"]);
      const ddSeconds = dd(join(work, `dd-${mb}.bin`), mb);
      rmSync(join(work, `dd-${mb}.bin`));
      const before = server.rssKb();
      server.resetPeak();
      const t = performance.now();
      const r = Bun.spawn(["curl", "-sS", "-f", "-H", `Authorization: Bearer ${server.key}`, "-F", `file=@${src}`, "-F", "purpose=user_data", `${server.url}/v1/files`], { stdout: "pipe" });
      const body = await new Response(r.stdout).text();
      if ((await r.exited) !== 0) throw new Error(`upload of ${mb} MB failed`);
      const seconds = (performance.now() - t) / 1000;
      const grow = (server.peakRssKb() - before) / 1024;
      const id = JSON.parse(body).id;
      Bun.spawnSync(["curl", "-sS", "-X", "DELETE", "-H", `Authorization: Bearer ${server.key}`, `${server.url}/v1/files/${id}`]);
      rmSync(src);
      rows.push([`${mb} MB`, (mb / seconds).toFixed(0), (mb / ddSeconds).toFixed(0), (ddSeconds / seconds).toFixed(2), grow.toFixed(1)]);
    }
  } finally {
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  }
  return table(["upload (curl, one request)", "ragd MB/s", "dd conv=fsync MB/s", "ragd / dd", "server peak RSS growth MB"], rows);
}

export async function autocannon(url: string, key: string, seconds: number, extra: string[] = ["-c", "32"]) {
  const r = Bun.spawnSync(
    ["node", join(ROOT, "node_modules/autocannon/autocannon.js"), ...extra, "-d", String(seconds), "-j", "-H", `Authorization=Bearer ${key}`, url],
    { stderr: "ignore" },
  );
  const j = JSON.parse(r.stdout.toString());
  if (j.non2xx) throw new Error(`${j.non2xx} non-2xx responses from ${url}`);
  return { rps: j.requests.average, p50: j.latency.p50, p99: j.latency.p99, total: j.requests.total };
}

export async function readBench(files = 10_000, seconds = 3, rounds = 5): Promise<string> {
  const server = await startServer();
  try {
    const ids: string[] = [];
    const t = performance.now();
    // Concurrency 8: as fast as the server takes them, to reach 10,000 files quickly.
    for (let i = 0; i < files; i += 8) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(8, files - i) }, async (_, j) => {
          const fd = new FormData();
          fd.append("file", new Blob([`file number ${i + j}`]), `f${i + j}.txt`);
          fd.append("purpose", "user_data");
          const r = await fetch(`${server.url}/v1/files`, { method: "POST", body: fd, headers: { authorization: `Bearer ${server.key}` } });
          return (await r.json()).id as string;
        }),
      );
      ids.push(...batch);
    }
    const uploadRate = files / ((performance.now() - t) / 1000);
    // Measured once ingestion is over, so that embedding does not share the cores with the reads.
    for (;;) {
      const f = (await (await fetch(`${server.url}/v1/files/${ids.at(-1)}`, { headers: { authorization: `Bearer ${server.key}` } })).json()) as { status: string };
      if (f.status !== "uploaded") break;
      await Bun.sleep(200);
    }
    await Bun.sleep(2000);
    const get = (path: string) => fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${server.key}` } }).then((r) => r.text());
    const rows: (string | number)[][] = [];
    for (const path of [`/v1/files/${ids[files >> 1]}`, "/v1/files?limit=100"]) {
      // The runtime's ceiling: a bare Bun.serve answering the same bytes, no auth, no database.
      const echo = await startEcho(await get(path));
      try {
        const ragd: Awaited<ReturnType<typeof autocannon>>[] = [];
        const plain: Awaited<ReturnType<typeof autocannon>>[] = [];
        for (let round = 0; round < rounds; round++) {
          ragd.push(await autocannon(`${server.url}${path}`, server.key, seconds));
          plain.push(await autocannon(`${echo.url}${path}`, "none", seconds));
        }
        const mid = (xs: typeof ragd) => [...xs].sort((a, b) => a.rps - b.rps)[xs.length >> 1]!;
        const r = mid(ragd);
        const c = mid(plain);
        rows.push([`GET ${path.startsWith("/v1/files?") ? path : "/v1/files/{id}"}`, r.rps.toFixed(0), r.p50, r.p99, c.rps.toFixed(0), (r.rps / c.rps).toFixed(2)]);
      } finally {
        await echo.stop();
      }
    }
    return (
      table(["request (10,000 files stored, 32 connections)", "ragd req/s", "p50 ms", "p99 ms", "Bun.serve, same bytes: req/s", "ratio"], rows) +
      `\n\nMedian of ${rounds} alternating rounds of ${seconds} s (autocannon). Small-file uploads while filling: ${uploadRate.toFixed(0)} files/s (8 concurrent).`
    );
  } finally {
    await server.stop();
  }
}
