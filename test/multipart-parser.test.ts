// The upload parser on bodies cut into chunks at every place a network could cut them.
import { describe, expect, test } from "bun:test";
import { boundaryOf, MultipartError, MultipartParser, type PartHead } from "../src/http/multipart-parser";

interface Part {
  head: PartHead;
  body: string;
}

/** Parses `body` delivered in the given chunk sizes; the parts with their bodies as latin1. */
function parse(body: Uint8Array, boundary: string, sizes: (i: number) => number = () => body.length): Part[] {
  const parser = new MultipartParser(boundary);
  const parts: Part[] = [];
  let current: { head: PartHead; bytes: number[] } | null = null;
  for (let at = 0, i = 0; at < body.length; i++) {
    const n = Math.max(1, Math.min(sizes(i), body.length - at));
    // A fresh buffer per chunk, as the network gives them: the parser must not keep views past a call.
    const chunk = new Uint8Array(body.subarray(at, at + n));
    at += n;
    for (const ev of parser.push(chunk)) {
      if (ev.type === "part") current = { head: ev.head, bytes: [] };
      else if (ev.type === "data") current!.bytes.push(...ev.bytes);
      else {
        parts.push({ head: current!.head, body: Buffer.from(current!.bytes).toString("latin1") });
        current = null;
      }
    }
    chunk.fill(0x58); // the network reuses nothing, but a parser that kept a view would now see X
  }
  parser.end();
  return parts;
}

async function formBody(form: FormData) {
  const res = new Response(form);
  const type = res.headers.get("content-type")!;
  return { body: new Uint8Array(await res.arrayBuffer()), boundary: boundaryOf(type)! };
}

describe("multipart parser", () => {
  test("a form as fetch encodes it, cut at every size from 1 byte up", async () => {
    const file = new Uint8Array(3000).map((_, i) => (i * 31 + 7) & 0xff);
    const form = new FormData();
    form.append("purpose", "assistants");
    form.append("file", new Blob([file]), "résumé 履歴書.bin");
    form.append("expires_after[seconds]", "3600");
    const { body, boundary } = await formBody(form);
    const want = parse(body, boundary);
    expect(want.map((p) => p.head.name)).toEqual(["purpose", "file", "expires_after[seconds]"]);
    expect(want[0]!.body).toBe("assistants");
    expect(want[1]!.head.filename).toBe("résumé 履歴書.bin");
    expect(Buffer.from(want[1]!.body, "latin1")).toEqual(Buffer.from(file));
    expect(want[2]!.body).toBe("3600");
    for (let size = 1; size <= 90; size++) expect(parse(body, boundary, () => size)).toEqual(want);
    let seed = 7;
    for (let round = 0; round < 200; round++) expect(parse(body, boundary, () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % 300) + 1)).toEqual(want);
  });

  test("data that looks like a boundary, but is not one, is data", () => {
    const b = "XyZ";
    const tricky = "a\r\n--XyA\r\n--Xy\r\n-\r\n--XyZZ is not it either? no: it is only when followed by CRLF or --";
    // "\r\n--XyZ" always ends a part (RFC 2046); so the tricky body stops short of that.
    const data = tricky.slice(0, tricky.indexOf("\r\n--XyZ"));
    const body = Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="file"; filename="t.txt"\r\nContent-Type: text/plain\r\n\r\n${data}\r\n--${b}--\r\n`);
    for (let size = 1; size <= body.length; size++) {
      const parts = parse(body, b, () => size);
      expect(parts).toEqual([{ head: { name: "file", filename: "t.txt", contentType: "text/plain" }, body: data }]);
    }
  });

  test("preamble, epilogue, transport padding, a quoted boundary and filename*", () => {
    const type = 'multipart/form-data; boundary="a b:c"';
    const b = boundaryOf(type)!;
    expect(b).toBe("a b:c");
    const body = Buffer.from(
      `ignored preamble\r\n--${b}  \r\ncontent-disposition: form-data; name="file"; filename="fallback.txt"; filename*=UTF-8''na%C3%AFve%20%E2%9C%93.txt\r\n\r\nx\r\n--${b}\r\nContent-Disposition: form-data; name="empty"\r\n\r\n\r\n--${b}--\r\nignored epilogue`,
    );
    for (let size = 1; size <= body.length; size += 3)
      expect(parse(body, b, () => size)).toEqual([
        { head: { name: "file", filename: "naïve ✓.txt", contentType: "" }, body: "x" },
        { head: { name: "empty", contentType: "" }, body: "" },
      ]);
  });

  test("a quoted filename: \\\" and \\\\ are escapes, any other backslash is the name's own", () => {
    const b = "xyz";
    const named = (raw: string) => parse(Buffer.from(`--${b}\r\ncontent-disposition: form-data; name="file"; filename="${raw}"\r\n\r\nx\r\n--${b}--`), b)[0]!.head.filename;
    // undici and browsers send a backslash as is; httpx (the Python SDK's client) doubles it
    expect(named("C:\\fakepath\\a.txt")).toBe("C:\\fakepath\\a.txt");
    expect(named("C:\\\\fakepath\\\\a.txt")).toBe("C:\\fakepath\\a.txt");
    expect(named('say \\"hi\\".txt')).toBe('say "hi".txt');
    // the WHATWG escapes of a plain filename (browsers send `"` as %22) are read here, once
    expect(named("a%22b.txt")).toBe('a"b.txt');
  });

  test("what is not a closed form is an error", () => {
    const b = "zzz";
    const bad = [
      "this is not multipart at all \x00\x01\x02",
      `--${b}\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\ncut off`,
      `--${b}\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n`,
      `--${b}\r\nNo-Colon-Here\r\n\r\nx\r\n--${b}--`,
      `--${b}\r\nContent-Type: text/plain\r\n\r\nno disposition\r\n--${b}--`,
      `--${b}\r\nContent-Disposition: form-data; name="a\r\n\r\nx\r\n--${b}--`,
      `--${b}\r\nContent-Disposition: form-data; name="a"; ${"x".repeat(20_000)}\r\n\r\nx\r\n--${b}--`,
      `--${b}garbage\r\n`,
    ];
    for (const text of bad) for (const size of [1, 7, 100_000]) expect(() => parse(Buffer.from(text), b, () => size)).toThrow(MultipartError);
  });

  test("boundaries from Content-Type", () => {
    expect(boundaryOf("multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxk")).toBe("----WebKitFormBoundary7MA4YWxk");
    expect(boundaryOf("multipart/form-data; charset=utf-8; BOUNDARY=abc")).toBe("abc");
    expect(boundaryOf("multipart/form-data")).toBeNull();
    expect(boundaryOf("multipart/form-data; boundary=")).toBeNull();
  });
});
