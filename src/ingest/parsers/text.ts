import { decodeText } from "../encoding";
import { tooMuchText, type Block, type ParseInput, type ParsedDocument } from "../types";
import { HeadingPath } from "./headings";

/**
 * Plain text, source code, JSON and Markdown: paragraphs separated by blank lines, each
 * with its line range. Markdown headings start a new section and extend the heading path;
 * fenced code stays in one block so a chunk does not split a snippet mid-fence when it fits.
 */
export function textToBlocks(text: string, markdown: boolean): Block[] {
  const lines = text.split(/\r\n|\r|\n/);
  const blocks: Block[] = [];
  const headings = new HeadingPath();
  let start = -1;
  let buf: string[] = [];
  let fence: string | null = null;
  let boundary = false;

  const flush = (end: number) => {
    // (trimEnd, not /\s+$/: that tries every run of spaces inside the text to its end)
    const t = buf.join("\n").trimEnd();
    if (t.trim()) {
      blocks.push({
        text: t.replace(/^\n+/, ""),
        loc: { lines: [start + 1, end], ...headings.loc() },
        ...(boundary ? { boundary: true } : {}),
      });
      boundary = false;
    }
    buf = [];
    start = -1;
  };

  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (markdown) {
      const f = /^\s{0,3}(```|~~~)/.exec(line);
      if (f) {
        if (fence === null) {
          flush(i);
          fence = f[1]!;
        } else if (f[1] === fence) {
          buf.push(line);
          if (start < 0) start = i;
          fence = null;
          flush(i + 1);
          continue;
        }
      }
      const h = fence === null ? atxHeading(line) : null;
      if (h) {
        flush(i);
        headings.enter(h.level, h.title);
        boundary = true;
        start = i;
        buf.push(h.title);
        flush(i + 1);
        continue;
      }
    }
    if (fence === null && line.trim() === "") {
      flush(i);
      continue;
    }
    if (start < 0) start = i;
    buf.push(line);
  }
  flush(lines.length);
  return blocks;
}

export async function parseText(input: ParseInput, format: string): Promise<ParsedDocument> {
  const text = decodeText(input.bytes);
  if (text.length > input.limits.maxTextChars) throw tooMuchText(input.limits.maxTextChars);
  return { format, blocks: textToBlocks(text, format === "markdown") };
}

const HEADING_OPENS = /^\s{0,3}(#{1,6})\s+/;

/**
 * A Markdown heading line ("## Title", "## Title ##"): its level and title, else null. Read in
 * steps, not by one pattern: a lazy title followed by optional spaces and #s to the line's end
 * tried every split of a long run of spaces (a 4 KB line held the server 15 s).
 */
function atxHeading(line: string): { level: number; title: string } | null {
  const open = HEADING_OPENS.exec(line);
  if (!open) return null;
  let end = line.length;
  const space = (c: number) => c === 0x20 || c === 0x09 || (c >= 0x0a && c <= 0x0d) || c === 0xa0 || c > 0x7f && /\s/.test(String.fromCharCode(c));
  while (end > open[0].length && space(line.charCodeAt(end - 1))) end--;
  while (end > open[0].length && line.charCodeAt(end - 1) === 0x23) end--;
  while (end > open[0].length && space(line.charCodeAt(end - 1))) end--;
  return { level: open[1]!.length, title: line.slice(open[0].length, end) };
}
