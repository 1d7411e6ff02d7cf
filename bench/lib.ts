import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { listeningUrl } from "../test/helpers/ragd";

export const ROOT = resolve(import.meta.dir, "..");

export interface Server {
  url: string;
  pid: number;
  dataDir: string;
  key: string;
  rssKb(): number;
  /** Resets the kernel's peak-RSS mark, so peakRssKb() covers only what follows. */
  resetPeak(): void;
  peakRssKb(): number;
  /** Stops the server and removes its data directory, unless `keepData`. */
  stop(keepData?: boolean): Promise<void>;
}

/** The real server from source, as `make serve` runs it, on a free port. */
export async function startServer(args: string[] = [], dataDir = mkdtempSync(join(tmpdir(), "ragd-bench-"))): Promise<Server> {
  const key = "sk-bench-key-0123456789";
  const proc = Bun.spawn(["bun", join(ROOT, "src/main.ts"), "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", dataDir, ...args], {
    env: { ...process.env, RAGD_API_KEY: key, RAGD_LOG_LEVEL: "warn" },
    stdout: "pipe",
    stderr: "inherit",
  });
  const url = await listeningUrl(proc, () => "(server stderr is above)");
  return {
    url,
    pid: proc.pid,
    dataDir,
    key,
    rssKb: () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${proc.pid}/status`, "utf8"))![1]),
    resetPeak: () => writeFileSync(`/proc/${proc.pid}/clear_refs`, "5"),
    peakRssKb: () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${proc.pid}/status`, "utf8"))![1]),
    async stop(keepData = false) {
      proc.kill();
      await proc.exited;
      if (!keepData) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Waits until process `pid` has used almost no CPU for 300 ms (a cancelled file's last embedding batch, say). */
export async function waitIdle(pid: number, timeoutMs = 30_000) {
  const ticks = () => {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    // utime and stime, the 14th and 15th fields of the line (11th and 12th after the name)
    return Number(fields[11]) + Number(fields[12]);
  };
  const until = Date.now() + timeoutMs;
  let last = ticks();
  let quiet = 0;
  while (quiet < 3 && Date.now() < until) {
    await Bun.sleep(100);
    const now = ticks();
    quiet = now - last <= 1 ? quiet + 1 : 0;
    last = now;
  }
}

export const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

export function table(head: string[], rows: (string | number)[][]): string {
  const line = (r: (string | number)[]) => `| ${r.join(" | ")} |`;
  return [line(head), line(head.map(() => "---")), ...rows.map(line)].join("\n");
}
