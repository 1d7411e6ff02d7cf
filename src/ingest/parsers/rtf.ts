import { tooMuchText, type ParseInput, type ParsedDocument } from "../types";
import { textToBlocks } from "./text";

// RTF: a reader of our own for the text. Control words set state or stand for characters;
// groups nest; destinations that are not text (font and colour tables, pictures, embedded
// objects, document properties, anything marked \*) are skipped whole.

const SKIP = new Set([
  "fonttbl", "colortbl", "stylesheet", "info", "pict", "object", "themedata", "colorschememapping", "datastore", "latentstyles",
  "listtable", "listoverridetable", "rsidtbl", "generator", "xmlnstbl", "mmathPr", "pgdsctbl", "filetbl", "revtbl", "fldinst",
  "header", "headerl", "headerr", "headerf", "footer", "footerl", "footerr", "footerf", "footnote", "annotation", "bkmkstart", "bkmkend",
  "nonshppict", "shppict", "blipuid", "objdata", "datafield", "formfield", "wgrffmtfilter", "docvar", "protusertbl", "passwordhash",
]);
const CHARS: Record<string, string> = {
  par: "\n\n", line: "\n", sect: "\n\n", page: "\n\n", row: "\n", tab: "\t", cell: " | ", emdash: "\u2014", endash: "\u2013",
  bullet: "\u2022", lquote: "\u2018", rquote: "\u2019", ldblquote: "\u201c", rdblquote: "\u201d", emspace: " ", enspace: " ", qmspace: " ",
};

/** The text of an RTF document; `\\ansicpg` picks how `\\'hh` bytes are read (Windows-1252 by default). */
export function rtfToText(rtf: string): string {
  let out = "";
  const stack: { skip: boolean; uc: number }[] = [];
  let skip = false;
  let uc = 1; // characters to drop after each \u
  let pendingSkip = 0;
  let codepage = "windows-1252";
  let bytes: number[] = [];
  const flushBytes = () => {
    if (!bytes.length) return;
    let decoder: TextDecoder;
    try {
      decoder = new TextDecoder(codepage);
    } catch {
      decoder = new TextDecoder("windows-1252");
    }
    if (!skip) out += decoder.decode(new Uint8Array(bytes));
    bytes = [];
  };
  const emit = (s: string) => {
    flushBytes();
    if (!skip) out += s;
  };
  for (let i = 0; i < rtf.length; ) {
    const c = rtf[i]!;
    if (c === "{") {
      flushBytes();
      stack.push({ skip, uc });
      i++;
      // {\*\destination ...}: an optional destination this reader need not understand
      if (rtf.startsWith("\\*", i)) skip = true;
      continue;
    }
    if (c === "}") {
      flushBytes();
      const s = stack.pop();
      if (s) ({ skip, uc } = s);
      i++;
      continue;
    }
    if (c === "\\") {
      const next = rtf[i + 1];
      if (next === "'") {
        const hex = rtf.slice(i + 2, i + 4);
        i += 4;
        if (pendingSkip > 0) {
          pendingSkip--;
          continue;
        }
        const b = parseInt(hex, 16);
        if (!Number.isNaN(b)) bytes.push(b);
        continue;
      }
      if (next === undefined) break;
      if (!/[a-zA-Z]/.test(next)) {
        // control symbols: \\ \{ \} literal, \~ non-breaking space, \- optional hyphen, \_ hyphen
        i += 2;
        if (next === "\\" || next === "{" || next === "}") emit(next);
        else if (next === "~") emit(" ");
        else if (next === "_") emit("-");
        else if (next === "\n" || next === "\r") emit("\n");
        continue;
      }
      const m = /^([a-zA-Z]{1,32})(-?\d{1,10})? ?/.exec(rtf.slice(i + 1, i + 48));
      if (!m) {
        i++;
        continue;
      }
      i += 1 + m[0].length;
      const word = m[1]!;
      const arg = m[2] === undefined ? null : Number(m[2]);
      if (SKIP.has(word)) {
        flushBytes();
        skip = true;
      } else if (word === "ansicpg" && arg !== null) codepage = `windows-${arg}`;
      else if (word === "uc" && arg !== null) uc = arg;
      else if (word === "u" && arg !== null) {
        emit(String.fromCharCode(arg < 0 ? arg + 65536 : arg));
        pendingSkip = uc;
      } else if (word in CHARS) emit(CHARS[word]!);
      continue;
    }
    if (c === "\r" || c === "\n") {
      i++;
      continue;
    }
    // the replacement characters after \uN are skipped
    if (pendingSkip > 0) {
      pendingSkip--;
      i++;
      continue;
    }
    flushBytes();
    if (!skip) out += c;
    i++;
  }
  flushBytes();
  return out;
}

export async function parseRtf(input: ParseInput): Promise<ParsedDocument> {
  const raw = new TextDecoder("latin1").decode(input.bytes);
  if (raw.length > input.limits.maxTextChars * 4) throw tooMuchText(input.limits.maxTextChars);
  // (runs of spaces matched from their start only, as pdf.ts's cleanPageText does)
  const text = rtfToText(raw).replace(/(?<![ \t])[ \t]+\n/g, "\n").replace(/\n{3,}/g, "\n\n");
  return { format: "rtf", blocks: textToBlocks(text, false) };
}
