// Reference servers for the Files benchmarks: what the runtime does with no ragd in between,
// measured in the same run as ragd so that the ratio, not the machine, is the figure.
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./lib";

export interface Reference {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

async function start(args: string[]): Promise<Reference> {
  const proc = Bun.spawn(["bun", join(ROOT, "bench/reference-server.ts"), ...args], { stdout: "pipe", stderr: "inherit" });
  const reader = proc.stdout.getReader();
  let text = "";
  while (!/listening (\S+)/.test(text)) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`the reference server exited: ${text}`);
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return {
    url: /listening (\S+)/.exec(text)![1]!,
    pid: proc.pid,
    async stop() {
      proc.kill();
      await proc.exited;
    },
  };
}

/** A plain Bun.serve that streams each request body to a file with ragd's durability: fsync, rename, fsync the directory. */
export function startSink(): Promise<Reference> {
  const dir = mkdtempSync(join(ROOT, ".tmp-bench-sink-"));
  mkdirSync(join(dir, "tmp"));
  mkdirSync(join(dir, "objects"));
  return start(["sink", dir]);
}

/** A plain Bun.serve answering every request with these bytes as JSON: the runtime's ceiling for a read. */
export function startEcho(body: string): Promise<Reference> {
  const dir = mkdtempSync(join(ROOT, ".tmp-bench-echo-"));
  const path = join(dir, "body.json");
  // Written before the server starts: it reads the file as it starts.
  writeFileSync(path, body);
  return start(["echo", path]);
}
