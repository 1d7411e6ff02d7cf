// Upload load from its own process: N loops posting the same multipart body for S seconds.
// Usage: bun bench/upload-load.ts URL KEY CONNECTIONS SECONDS MB PURPOSE
const [url, key, conns, seconds, mb, purpose] = process.argv.slice(2) as [string, string, string, string, string, string];
const size = Number(mb) * 1024 * 1024;
const data = new Uint8Array(size);
crypto.getRandomValues(data.subarray(0, 65536));
for (let i = 65536; i < size; i += 65536) data.set(data.subarray(0, Math.min(65536, size - i)), i);
// For `vision`, a PNG signature so that it is taken as an image; otherwise random bytes,
// which ingestion refuses by their first bytes (binary, no document format).
if (purpose === "vision") data.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const form = new FormData();
form.append("purpose", purpose);
form.append("file", new Blob([data]), purpose === "vision" ? "upload.png" : "upload.bin");
const res = new Response(form);
const type = res.headers.get("content-type")!;
const body = new Uint8Array(await res.arrayBuffer());

let ok = 0;
let failed = 0;
let firstError = "";
const end = performance.now() + Number(seconds) * 1000;
await Promise.all(
  Array.from({ length: Number(conns) }, async () => {
    while (performance.now() < end) {
      const r = await fetch(url, { method: "POST", body, headers: { "content-type": type, authorization: `Bearer ${key}` } });
      const text = await r.text();
      if (r.ok) ok++;
      else {
        failed++;
        firstError ||= `${r.status} ${text.slice(0, 200)}`;
      }
    }
  }),
);
console.log(JSON.stringify({ perSecond: ok / Number(seconds), failed, firstError }));
export {};
