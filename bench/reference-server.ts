// The reference servers of bench/references.ts, one per process like ragd itself.
import fs, { readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";

const [mode, path] = process.argv.slice(2) as ["sink" | "echo", string];
const open = promisify(fs.open);
const fsync = promisify(fs.fsync);
const close = promisify(fs.close);
const write = (fd: number, b: Uint8Array) => new Promise<number>((res, rej) => fs.write(fd, b, 0, b.length, null, (e, n) => (e ? rej(e) : res(n))));

let n = 0;
async function sink(req: Request): Promise<Response> {
  const id = `f${++n}`;
  const tmp = join(path, "tmp", id);
  const fd = await open(tmp, "wx");
  let bytes = 0;
  for await (const c of req.body as unknown as AsyncIterable<Uint8Array>) {
    let off = 0;
    while (off < c.length) off += await write(fd, c.subarray(off));
    bytes += c.length;
  }
  await fsync(fd);
  await close(fd);
  renameSync(tmp, join(path, "objects", id));
  const d = await open(join(path, "objects"), "r");
  await fsync(d);
  await close(d);
  // The bytes are not needed after: the disk should not fill over many rounds.
  rmSync(join(path, "objects", id));
  return Response.json({ id, bytes });
}

const body = mode === "echo" ? readFileSync(path, "utf8") : "";
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  maxRequestBodySize: 2 ** 40,
  fetch: mode === "sink" ? sink : () => new Response(body, { headers: { "content-type": "application/json" } }),
});
process.on("SIGTERM", () => {
  if (mode === "sink") rmSync(path, { recursive: true, force: true });
  else rmSync(join(path, ".."), { recursive: true, force: true });
  process.exit(0);
});
console.log(`listening http://127.0.0.1:${server.port}`);
