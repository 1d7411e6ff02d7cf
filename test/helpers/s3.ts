// An S3-protocol server for tests: s3rver (npm) under Node, on a free port, with its data in a
// temporary directory. Tests that need it skip, saying why, when Node is missing.
import { S3Client } from "bun";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const S3RVER = resolve(import.meta.dir, "../../node_modules/s3rver/bin/s3rver.js");

export const s3Missing: string | null = Bun.which("node") ? null : "no `node` to run s3rver (an S3-protocol server from npm)";
if (s3Missing) console.warn(`skipping S3 tests: ${s3Missing}`);

export interface S3Server {
  endpoint: string;
  bucket: string;
  /** The ragd flags that point at this server. */
  args(prefix?: string): string[];
  client(): S3Client;
  /** Stops the server, keeping its data, until `resume`. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  stop(): Promise<void>;
}

export async function startS3(bucket = "ragd"): Promise<S3Server> {
  const dir = mkdtempSync(join(tmpdir(), "ragd-s3-"));
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  const endpoint = `http://127.0.0.1:${port}`;
  const client = () => new S3Client({ endpoint, bucket, accessKeyId: "S3RVER", secretAccessKey: "S3RVER", region: "us-east-1" });
  // The bucket is made on the first start; a restart finds it in the data directory.
  const spawn = async (first: boolean) => {
    const p = Bun.spawn(["node", S3RVER, "-d", dir, "-a", "127.0.0.1", "-p", String(port), "--silent", ...(first ? ["--configure-bucket", bucket] : [])], {
      stdout: "ignore",
      stderr: "pipe",
      // s3rver makes list continuation tokens with a cipher Node 20's OpenSSL 3 keeps only in its
      // legacy provider: without it, any listing longer than a page fails.
      env: { ...process.env, NODE_OPTIONS: "--openssl-legacy-provider" },
    });
    for (const until = Date.now() + 15_000; ; await Bun.sleep(100)) {
      try {
        await client().list({ maxKeys: 1 });
        return p;
      } catch (e) {
        if (Date.now() > until || p.exitCode !== null) throw new Error(`s3rver did not start: ${String(e)}`);
      }
    }
  };
  let proc = await spawn(true);
  return {
    endpoint,
    bucket,
    args: (prefix = "files") => ["--blob-url", `s3://${bucket}/${prefix}`, "--s3-endpoint", endpoint, "--s3-region", "us-east-1", "--s3-access-key-id", "S3RVER", "--s3-secret-access-key", "S3RVER"],
    client,
    async pause() {
      proc.kill();
      await proc.exited;
    },
    async resume() {
      proc = await spawn(false);
    },
    async stop() {
      proc.kill();
      await proc.exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
