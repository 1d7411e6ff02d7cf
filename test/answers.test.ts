// The pieces of answering that need no server: reading SSE as it arrives, and reading
// citations out of text that streams in arbitrary pieces.
import { describe, expect, test } from "bun:test";
import { CitationReader, formatSources } from "../src/answers/sources";
import { readSse, SilenceTimeout } from "../src/llm/sse";

const cited = new Map([
  [1, { n: 1, fileId: "file-a", filename: "a.pdf" }],
  [2, { n: 2, fileId: "file-b", filename: "b.txt" }],
  [12, { n: 12, fileId: "file-c", filename: "c.md" }],
]);

describe("citations", () => {
  const text = "Leave is 26 weeks [1]. Flights are economy [2][12], bags [1, 2]. Not a source: [7], [x], [3";

  test("every split of the text gives the same citations, at the same places", () => {
    const whole = new CitationReader(cited).feed(text, true);
    expect(whole.map((c) => [c.fileId, text.slice(c.index, c.index + 3)])).toEqual([
      ["file-a", "[1]"],
      ["file-b", "[2]"],
      ["file-c", "[12"],
      ["file-a", "[1,"],
      ["file-b", "[1,"],
    ]);
    for (let size = 1; size <= 7; size++) {
      const reader = new CitationReader(cited);
      const found = [];
      for (let i = size; i < text.length + size; i += size) found.push(...reader.feed(text.slice(0, i), i >= text.length));
      expect(found).toEqual(whole);
    }
  });

  test("numbers past three digits (passages count across a long conversation)", () => {
    const r = new CitationReader(new Map([[1234, { n: 1234, fileId: "file-d", filename: "d.txt" }]]));
    expect(r.feed("Late [12", false)).toEqual([]);
    expect(r.feed("Late [1234] turn", true)).toEqual([{ fileId: "file-d", filename: "d.txt", index: 5 }]);
  });

  test("a marker split across deltas is read once it closes", () => {
    const r = new CitationReader(cited);
    expect(r.feed("Economy [")).toEqual([]);
    expect(r.feed("Economy [1")).toEqual([]);
    expect(r.feed("Economy [12] and")).toEqual([{ fileId: "file-c", filename: "c.md", index: 8 }]);
    expect(r.feed("Economy [12] and more", true)).toEqual([]);
  });

  test("passages are numbered with their file and where in it they are", () => {
    const out = formatSources([
      { n: 3, fileId: "f", filename: "r.pdf", text: " Revenue grew. ", score: 1, attributes: {}, location: { page: 2 } },
      { n: 4, fileId: "g", filename: "s.xlsx", text: "EU 12", score: 0.5, attributes: {}, location: { sheet: "Sales", rows: [2, 4] } },
    ]);
    expect(out).toBe("[3] r.pdf (page 2)\nRevenue grew.\n\n[4] s.xlsx (sheet Sales rows 2-4)\nEU 12");
    expect(formatSources([])).toBe("No passages matched.");
  });
});

describe("server-sent events", () => {
  const body = (...parts: string[]) =>
    new ReadableStream<Uint8Array>({
      start(c) {
        for (const p of parts) c.enqueue(new TextEncoder().encode(p));
        c.close();
      },
    });
  const all = async (s: ReadableStream<Uint8Array>, idle = 1000) => {
    const out = [];
    for await (const e of readSse(s, idle)) out.push(e);
    return out;
  };

  test("events split anywhere, CRLF, comments, named events and multi-line data", async () => {
    const events = await all(body("data: {\"a\"", ":1}\r\n\r", "\n: keep-alive\n\nevent: ping\ndata: x\ndata: y\n\n", "data: [DONE]"));
    expect(events).toEqual([
      { event: null, data: '{"a":1}' },
      { event: "ping", data: "x\ny" },
      { event: null, data: "[DONE]" },
    ]);
  });

  test("a stream that falls silent ends with SilenceTimeout", async () => {
    const silent = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode("data: 1\n\n"));
      },
    });
    const got: string[] = [];
    const err = await (async () => {
      for await (const e of readSse(silent, 100)) got.push(e.data);
    })().catch((e) => e);
    expect(got).toEqual(["1"]);
    expect(err).toBeInstanceOf(SilenceTimeout);
  });
});
