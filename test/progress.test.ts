import { expect, test } from "bun:test";
import { ProgressReport } from "../src/ingest/progress";

test("an estimate appears once a file has taken 10 s, from the pace its step has kept", () => {
  let t = 0;
  const p = new ProgressReport("queued for parsing", () => t);
  p.set("parsing page 1 of 600");
  t = 5_000;
  p.set("parsing page 101 of 600");
  // 5 s in: no estimate yet, whatever the pace.
  expect(p.toString()).toBe("parsing page 101 of 600");
  t = 10_000;
  p.set("parsing page 201 of 600");
  // 200 pages in 10 s: 400 pages left take 20 s.
  expect(p.toString()).toBe("parsing page 201 of 600 (about 20 s left)");
  t = 12_000;
  // Time passing with no new page counts against the estimate.
  expect(p.toString()).toBe("parsing page 201 of 600 (about 18 s left)");
});

test("each step is paced on its own; steps without a count say only what they are", () => {
  let t = 0;
  const p = new ProgressReport("queued for parsing", () => t);
  p.set("parsing page 1 of 10");
  t = 20_000;
  p.set("chunking");
  expect(p.toString()).toBe("chunking");
  p.set("embedding chunk 1 of 5632");
  // Just begun: no pace measured yet.
  expect(p.toString()).toBe("embedding chunk 1 of 5632");
  t = 22_500;
  p.set("embedding chunk 257 of 5632");
  // 256 chunks in 2.5 s: 5,375 left take 52.5 s.
  expect(p.toString()).toBe("embedding chunk 257 of 5632 (about 52 s left)");
  t = 22_500 + 60_000 * 4;
  p.set("embedding chunk 513 of 5632");
  expect(p.toString()).toMatch(/^embedding chunk 513 of 5632 \(about (\d+) min left\)$/);
  t = 3_600_000 * 3;
  p.set("embedding chunk 769 of 5632");
  expect(p.toString()).toMatch(/\(about \d+ h \d+ min left\)$/);
});
