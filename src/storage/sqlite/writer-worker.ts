// The writer thread: one connection that makes every write (writes.ts lists them).
import { openDatabase } from "./db";
import { sqliteRepos } from "./index";
import type { WriteReply, WriteRequest } from "./writes";

declare const self: Worker;

let repos: ReturnType<typeof sqliteRepos> | null = null;

const reply = (m: WriteReply) => self.postMessage(m);

self.onmessage = async (e: MessageEvent<WriteRequest | { init: string } | { close: true }>) => {
  const msg = e.data;
  if ("init" in msg) {
    try {
      repos = sqliteRepos(openDatabase(msg.init));
      reply({ id: 0, ready: true });
    } catch (err) {
      reply({ id: 0, failed: String((err as Error)?.message ?? err) });
    }
    return;
  }
  if ("close" in msg) {
    repos?.close();
    repos = null;
    process.exit(0);
  }
  try {
    const repo = repos![msg.repo] as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    reply({ id: msg.id, ok: true, value: await repo[msg.method]!(...msg.args) });
  } catch (err) {
    const x = err as { name?: string; message?: string; code?: unknown; errno?: unknown };
    reply({
      id: msg.id,
      ok: false,
      error: {
        name: String(x?.name ?? "Error"),
        message: String(x?.message ?? err),
        ...(typeof x?.code === "string" ? { code: x.code } : {}),
        ...(typeof x?.errno === "number" ? { errno: x.errno } : {}),
      },
    });
  }
};
