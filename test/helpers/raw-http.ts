// A bare HTTP/1.1 client over a TCP socket, for tests that must send bytes `fetch` will not:
// a request line with raw non-ASCII or `..` segments (fetch normalises and escapes them),
// duplicate headers, a Content-Length that lies, or a body cut short.
import net from "node:net";

export interface RawResponse {
  status: number;
  reason: string;
  /** Header names lower-cased; a repeated header keeps its values joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
}

export type RawOutcome = { ok: true; res: RawResponse; ms: number } | { ok: false; error: string; ms: number; partial: string };

export interface RawOptions {
  /** Give up (and report a hang) after this long. */
  timeoutMs?: number;
  /** Close our side once the bytes are written: a body shorter than its Content-Length then ends. */
  halfClose?: boolean;
  /** A HEAD request's answer has headers only. */
  head?: boolean;
}

/** Writes `request` as is and reads one response; the request should carry `Connection: close`. */
export function rawRequest(port: number, request: Uint8Array, o: RawOptions = {}): Promise<RawOutcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const socket = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
    const finish = (out: RawOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(out);
    };
    const tryParse = (final: boolean) => {
      const parsed = parseResponse(Buffer.concat(chunks), final, o.head ?? false);
      if (parsed) finish({ ok: true, res: parsed, ms: performance.now() - started });
      else if (final) finish({ ok: false, error: chunks.length ? "connection closed mid-response" : "connection closed without a response", ms: performance.now() - started, partial: Buffer.concat(chunks).toString("latin1").slice(0, 500) });
    };
    const timer = setTimeout(
      () => finish({ ok: false, error: `no complete response within ${o.timeoutMs ?? 20000} ms`, ms: performance.now() - started, partial: Buffer.concat(chunks).toString("latin1").slice(0, 500) }),
      o.timeoutMs ?? 20000,
    );
    socket.on("connect", () => {
      socket.write(request, () => {
        if (o.halfClose) socket.end();
      });
    });
    socket.on("data", (d: Buffer) => {
      chunks.push(d);
      tryParse(false);
    });
    socket.on("end", () => tryParse(true));
    socket.on("close", () => tryParse(true));
    // A reset after a complete response is fine (the server refused the rest of our body);
    // a reset before one is reported by the close handler.
    socket.on("error", () => tryParse(true));
  });
}

/** A complete response from `buf`, or null while more is needed (`final`: no more will come). */
function parseResponse(buf: Buffer, final: boolean, head: boolean): RawResponse | null {
  const end = buf.indexOf("\r\n\r\n");
  if (end < 0) return null;
  const lines = buf.toString("latin1", 0, end).split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(lines[0]!);
  if (!m) return final ? { status: 0, reason: `unparseable status line: ${lines[0]}`, headers: {}, body: buf } : null;
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const c = line.indexOf(":");
    if (c <= 0) continue;
    const k = line.slice(0, c).trim().toLowerCase();
    const v = line.slice(c + 1).trim();
    headers[k] = k in headers ? `${headers[k]}, ${v}` : v;
  }
  const status = Number(m[1]);
  const rest = buf.subarray(end + 4);
  // An interim answer (100 Continue) precedes the real one.
  if (status >= 100 && status < 200 && status !== 101) return parseResponse(rest, final, head);
  const res = (body: Buffer): RawResponse => ({ status, reason: m[2]!, headers, body });
  if (head || status === 204 || status === 304 || status === 101) return res(Buffer.alloc(0));
  if (/chunked/i.test(headers["transfer-encoding"] ?? "")) {
    const body = dechunk(rest);
    return body ? res(body) : final ? res(rest) : null;
  }
  if (headers["content-length"] !== undefined) {
    const n = Number(headers["content-length"]);
    if (rest.length >= n) return res(rest.subarray(0, n));
    return final ? res(rest) : null;
  }
  return final ? res(rest) : null;
}

/** The body of a complete chunked encoding, or null if the last chunk has not arrived. */
function dechunk(buf: Buffer): Buffer | null {
  const out: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = buf.indexOf("\r\n", at);
    if (eol < 0) return null;
    const size = parseInt(buf.toString("latin1", at, eol).split(";")[0]!, 16);
    if (Number.isNaN(size)) return null;
    if (size === 0) return Buffer.concat(out);
    if (buf.length < eol + 2 + size + 2) return null;
    out.push(buf.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}
