import { afterAll, expect, test } from "bun:test";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { toFile } from "openai";
import { DiskBlobStore } from "../src/storage/blobs";
import { blobFiles, cleanup, startRagd, tempDir } from "./helpers/ragd";

const dataDir = tempDir();
afterAll(() => cleanup(dataDir));

const partFiles = () => readdirSync(join(dataDir, "blobs/tmp")).map((n) => statSync(join(dataDir, "blobs/tmp", n)).size);

test("kill -9 during an upload leaves no partial file, listed or stored", async () => {
  let ragd = await startRagd({ dataDir });
  const kept = await ragd.client().files.create({ file: await toFile(Buffer.from("committed before the crash"), "kept.txt"), purpose: "assistants" });

  // An upload that sends 4 MB of its file, then stalls as a slow client would.
  const boundary = "crashboundary";
  const chunk = new Uint8Array(1 << 20).fill(97);
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      if (sent === 0) ctrl.enqueue(new TextEncoder().encode(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="partial.bin"\r\n\r\n`));
      if (sent < 4) {
        ctrl.enqueue(chunk);
        sent++;
      } else await new Promise((r) => setTimeout(r, 60_000));
    },
  });
  const upload = fetch(`${ragd.baseURL}/files`, {
    method: "POST",
    body,
    headers: { authorization: `Bearer ${ragd.key}`, "content-type": `multipart/form-data; boundary=${boundary}` },
    // @ts-ignore: Bun streams request bodies
    duplex: "half",
  }).catch((e) => e);

  const deadline = Date.now() + 10_000;
  while (!partFiles().some((n) => n >= 2 << 20)) {
    if (Date.now() > deadline) throw new Error("the upload never reached the disk");
    await Bun.sleep(20);
  }
  await ragd.kill9();
  expect(await upload).toBeInstanceOf(Error);
  expect(partFiles().length).toBe(1); // the half-written upload is there until restart

  ragd = await startRagd({ dataDir });
  try {
    const files = (await ragd.client().files.list()).data;
    expect(files.map((f) => f.id)).toEqual([kept.id]);
    expect(partFiles()).toEqual([]);
    expect(blobFiles(dataDir).length).toBe(1);
    expect(await (await ragd.client().files.content(kept.id)).text()).toBe("committed before the crash");
  } finally {
    await ragd.stop();
  }
});

test("a blob whose row never committed (crash between rename and commit) is removed after start", async () => {
  const dir = tempDir();
  try {
    let ragd = await startRagd({ dataDir: dir });
    const f = await ragd.client().files.create({ file: await toFile(Buffer.from("real"), "real.txt"), purpose: "assistants" });
    await ragd.kill9();
    // Exactly what a crash leaves between the blob's rename and the row's commit.
    const w = await new DiskBlobStore(join(dir, "blobs")).create("file-AAAAAAAAAAAAAAAAAAAAAAAA");
    await w.write(new TextEncoder().encode("orphan bytes"));
    await w.commit();
    expect(blobFiles(dir).length).toBe(2);
    ragd = await startRagd({ dataDir: dir });
    try {
      // swept beside requests once the server answers
      for (let t = Date.now(); blobFiles(dir).length > 1 && Date.now() - t < 20_000; ) await Bun.sleep(20);
      expect(blobFiles(dir).length).toBe(1);
      expect((await ragd.client().files.list()).data.map((x) => x.id)).toEqual([f.id]);
    } finally {
      await ragd.stop();
    }
  } finally {
    cleanup(dir);
  }
});
