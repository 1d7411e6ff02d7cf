// A full disk is a clear answer, never a crash: uploads get 507 insufficient_storage naming the
// volume, deletes still work at 0 bytes free (the server's reserve is released for them), and
// everything resumes by itself once space returns. The data directory sits on a small tmpfs,
// which needs root; elsewhere the test is skipped.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, mkdirSync, openSync, readdirSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { cleanup, startRagd, tempDir, type Ragd } from "./helpers/ragd";

const mountPoint = tempDir("ragd-tmpfs-");
const mounted = process.getuid?.() === 0 && Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", mountPoint]).exitCode === 0;
if (!mounted) console.warn("disk-full tests skipped: mounting a tmpfs needs root");

/** Writes zeros into `path` until the volume refuses more. */
function fill(path: string) {
  const fd = openSync(path, "w");
  const block = new Uint8Array(1 << 20);
  try {
    for (;;) writeSync(fd, block);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e;
  } finally {
    closeSync(fd);
  }
}

describe.skipIf(!mounted)("a full disk", () => {
  let ragd: Ragd;
  const dataDir = join(mountPoint, "data");
  beforeAll(async () => {
    mkdirSync(dataDir);
    ragd = await startRagd({ dataDir, args: ["--disk-reserve", "4MiB"] });
  });
  afterAll(async () => {
    await ragd?.stop();
    Bun.spawnSync(["umount", mountPoint]);
    cleanup(mountPoint);
  });

  test("uploads get 507 naming the volume; deletes work at 0 bytes free; uploads resume when space returns", async () => {
    const client = ragd.client();
    const upload = (mb: number) =>
      client.files.create({ file: new File([crypto.getRandomValues(new Uint8Array(65536)), new Uint8Array(mb * 1024 * 1024)], "block.bin"), purpose: "user_data" });
    const kept: string[] = [];
    let refused: { status: number; error: { type: string; code: string; message: string } } | null = null;
    for (let i = 0; i < 40 && !refused; i++) {
      await upload(4).then(
        (f) => kept.push(f.id),
        (e) => (refused = e),
      );
    }
    expect(refused).not.toBeNull();
    expect(refused!.status).toBe(507);
    expect(refused!.error).toMatchObject({ type: "api_error", code: "insufficient_storage" });
    expect(refused!.error.message).toContain(dataDir);
    expect(kept.length).toBeGreaterThan(3);
    expect(readdirSync(join(dataDir, "blobs/tmp")).filter((n) => n.endsWith(".part"))).toEqual([]);
    // Reads still work.
    expect((await client.files.list()).data.length).toBe(kept.length);

    // Something else takes the last byte of the volume.
    const filler = join(mountPoint, "filler");
    fill(filler);
    // Deleting is how space is freed, so it works even now.
    expect(await client.files.delete(kept.pop()!)).toMatchObject({ deleted: true });
    expect(await client.files.delete(kept.pop()!)).toMatchObject({ deleted: true });
    expect(ragd.proc.exitCode).toBeNull();
    expect(await upload(1).then(() => 200, (e) => e.status)).toBe(507);

    // Space comes back: uploads work again without a restart.
    rmSync(filler);
    for (const id of kept.splice(0, 2)) await client.files.delete(id);
    let status = 0;
    const until = Date.now() + 20_000;
    while (status !== 200 && Date.now() < until) {
      status = await upload(1).then(() => 200, (e) => e.status);
      if (status !== 200) await Bun.sleep(250);
    }
    expect(status).toBe(200);
    // The server said so once, not in a loop.
    expect(ragd.stderr().match(/disk is full/g)?.length ?? 0).toBeLessThan(5);
  }, 120_000);
});
