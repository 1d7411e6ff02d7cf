import { decodeText } from "../encoding";
import { ParseError, type Block, type ParseInput, type ParsedDocument } from "../types";

// 00:01:02,345 or 00:01:02.345, hours optional (VTT), milliseconds optional (sloppy SRTs).
const TIME = String.raw`((?:\d+:)?\d{1,2}:\d{1,2}(?:[.,]\d{1,3})?)`;
const TIMING = new RegExp(`^\\s*${TIME}\\s*-->\\s*${TIME}`);

const normTime = (t: string) => {
  const [hms, ms = "0"] = t.split(/[.,]/);
  const parts = hms!.split(":").map(Number);
  while (parts.length < 3) parts.unshift(0);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${pad(parts[0]!)}:${pad(parts[1]!)}:${pad(parts[2]!)}.${ms.padEnd(3, "0").slice(0, 3)}`;
};

/** SRT and WebVTT: one block per cue, located by its time range. Cue numbers are optional. */
export async function parseSubtitles(input: ParseInput, format: "srt" | "vtt"): Promise<ParsedDocument> {
  const lines = decodeText(input.bytes).split(/\r\n|\r|\n/);
  const blocks: Block[] = [];
  let cue: { start: string; end: string; text: string[] } | null = null;
  const flush = () => {
    const text = cue?.text
      // (a tag holds no other tag's opening: a line of unclosed `<` was read to its end from each)
      .map((l) => l.replace(/<[^<>]*>/g, "").replace(/\{\\[^{}]*\}/g, "").trim())
      .filter(Boolean)
      .join("\n");
    if (cue && text) blocks.push({ text, loc: { time: [cue.start, cue.end] } });
    cue = null;
  };
  let inNote = false;
  for (const line of lines) {
    const m = TIMING.exec(line);
    if (m) {
      flush();
      inNote = false;
      cue = { start: normTime(m[1]!), end: normTime(m[2]!), text: [] };
      continue;
    }
    if (line.trim() === "") {
      flush();
      inNote = false;
      continue;
    }
    if (!cue) {
      // Outside a cue: the WEBVTT header, NOTE/STYLE blocks or a cue number.
      if (/^(NOTE|STYLE|REGION)\b/.test(line)) inNote = true;
      continue;
    }
    if (!inNote) cue.text.push(line);
  }
  flush();
  if (blocks.length === 0 && lines.some((l) => l.trim()))
    throw new ParseError(`no subtitle cues found: the ${format.toUpperCase()} file has no "00:00:01,000 --> 00:00:02,000" timing lines`, "no_text");
  return { format, blocks };
}
