// The console and the metrics' cost, with 10,000 files stored (small JSONL files, purpose
// batch: stored, not ingested, so the machine is quiet while measuring):
// - API latency with metrics on and off: the same data directory served by each in turn,
//   three rounds each (GET /v1/files/{id} and GET /v1/files?limit=100, autocannon, 32
//   connections, 5 s); medians of the rounds, and off / on. Target: within 5%.
// - The console's first view in Debian's chromium (signed in, a fresh tab): from navigation
//   to the first page of 50 files drawn; and paging to the next 50. Median of 10 loads.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { autocannon } from "./files";
import { percentile, startServer, table } from "./lib";

const FILES = 10_000;
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const SECONDS = 5;
const CHROMIUM = "/usr/bin/chromium";

export async function consoleBench(): Promise<string> {
  const dataDir = mkdtempSync(join(tmpdir(), "ragd-bench-console-"));
  try {
    let server = await startServer([], dataDir);
    const ids: string[] = [];
    for (let i = 0; i < FILES; i += 16) {
      ids.push(
        ...(await Promise.all(
          Array.from({ length: Math.min(16, FILES - i) }, async (_, j) => {
            const fd = new FormData();
            fd.append("file", new Blob([`{"n":${i + j}}\n`]), `f${i + j}.jsonl`);
            fd.append("purpose", "batch");
            const r = await fetch(`${server.url}/v1/files`, { method: "POST", body: fd, headers: { authorization: `Bearer ${server.key}` } });
            return (await r.json()).id as string;
          }),
        )),
      );
    }
    await server.stop(true);

    const results: Record<"on" | "off", { one: { p50: number; p99: number; rps: number }[]; list: { p50: number; p99: number; rps: number }[] }> = {
      on: { one: [], list: [] },
      off: { one: [], list: [] },
    };
    for (let r = 0; r < ROUNDS; r++)
      for (const mode of ["on", "off"] as const) {
        server = await startServer(["--metrics", mode], dataDir);
        results[mode].one.push(await autocannon(`${server.url}/v1/files/${ids[FILES >> 1]}`, server.key, SECONDS));
        results[mode].list.push(await autocannon(`${server.url}/v1/files?limit=100`, server.key, SECONDS));
        await server.stop(true);
      }
    const med = (xs: number[]) => percentile(xs, 50);
    if (process.env.VERBOSE) console.error(JSON.stringify(results));
    const rows: (string | number)[][] = [];
    for (const [name, key] of [["GET /v1/files/{id}", "one"], ["GET /v1/files?limit=100", "list"]] as const) {
      const on = results.on[key];
      const off = results.off[key];
      rows.push([name, med(on.map((x) => x.rps)).toFixed(0), med(off.map((x) => x.rps)).toFixed(0), med(on.map((x) => x.p99)), med(off.map((x) => x.p99)), `**${((med(on.map((x) => x.p99)) / med(off.map((x) => x.p99))) * 100).toFixed(0)}%**`]);
    }
    const out = [
      `${FILES.toLocaleString()} files stored; ${ROUNDS} alternating rounds per mode, ${SECONDS} s each, 32 connections; medians.`,
      "",
      table(["request", "req/s metrics on", "req/s off", "p99 ms on", "p99 ms off", "p99 on / off"], rows),
    ];

    if (existsSync(CHROMIUM)) {
      server = await startServer([], dataDir);
      const { chromium } = await import("playwright-core");
      const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu"] });
      const first: number[] = [];
      const next: number[] = [];
      const empty: number[] = [];
      try {
        for (let i = 0; i < 10; i++) {
          const context = await browser.newContext();
          await context.addInitScript((key) => sessionStorage.setItem("ragd.key", key), server.key);
          const page = await context.newPage();
          await page.goto(`${server.url}/#files`);
          await page.waitForFunction(() => document.querySelectorAll("#files tbody tr").length === 50);
          await page.click("text=Next");
          await page.waitForFunction(() => document.getElementById("range")?.textContent?.startsWith("51–100"));
          // The page's own clock: from navigation start, and from asking for a page to drawing it.
          const marks = await page.evaluate(() => ({
            drawn: performance.getEntriesByName("ragd:files-drawn").map((e) => e.startTime),
            requested: performance.getEntriesByName("ragd:files-requested").map((e) => e.startTime),
          }));
          first.push(marks.drawn[0]!);
          next.push(marks.drawn.at(-1)! - marks.requested.at(-1)!);
          // The browser's own share: a fresh tab loading a page with nothing in it.
          const blank = await context.newPage();
          await blank.goto(`${server.url}/health`);
          empty.push(await blank.evaluate(() => (performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming).loadEventEnd));
          await context.close();
        }
      } finally {
        await browser.close();
        await server.stop(true);
      }
      out.push(
        "",
        table(
          ["console, 10,000 files (chromium, headless)", "median ms", "p90 ms"],
          [
            ["first view: navigation to the first 50 files drawn (target < 300)", med(first).toFixed(0), percentile(first, 90).toFixed(0)],
            ["next page of 50", med(next).toFixed(0), percentile(next, 90).toFixed(0)],
            ["reference: a fresh tab loading /health (nothing to draw)", med(empty).toFixed(0), percentile(empty, 90).toFixed(0)],
          ],
        ),
      );
    } else out.push("", "console: skipped, /usr/bin/chromium is absent");
    return out.join("\n");
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.main) console.log(await consoleBench());
