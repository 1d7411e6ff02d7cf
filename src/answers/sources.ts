import type { Location } from "../ingest/types";

// What the model is shown from the knowledge base, and how its citations are read back:
// passages are numbered [n] across a conversation, the model is asked to cite them so, and
// each [n] it writes becomes a file_citation of the file that passage came from.

export interface Source {
  n: number;
  fileId: string;
  filename: string;
  text: string;
  score: number;
  attributes: Record<string, string | number | boolean>;
  location: Location;
}

/** What a citation number stands for, kept with a stored response for follow-up turns. */
export interface Cited {
  n: number;
  fileId: string;
  filename: string;
}

export const CITATION_RULE =
  "When you use a passage from the documents, cite it right after the sentence that uses it by its number in square brackets, like [1] or [2][3]. " +
  "Cite only passages you were given. If the passages do not answer the question, say so.";

export const SEARCH_TOOL_DESCRIPTION =
  "Search the user's documents (their uploaded files) and get back numbered passages. " +
  "Call it whenever the answer may be in their documents; pass one or more short search queries.";

function where(loc: Location): string {
  const parts: string[] = [];
  if (loc.attachment) parts.push(`attachment ${loc.attachment}`);
  if (loc.pages) parts.push(`pages ${loc.pages[0]}-${loc.pages[1]}`);
  else if (loc.page !== undefined) parts.push(`page ${loc.page}`);
  if (loc.slide !== undefined) parts.push(`slide ${loc.slide}`);
  if (loc.sheet) parts.push(`sheet ${loc.sheet}${loc.rows ? ` rows ${loc.rows[0]}-${loc.rows[1]}` : ""}`);
  if (loc.chapter) parts.push(loc.chapter);
  if (loc.headings?.length) parts.push(loc.headings.join(" > "));
  if (loc.time) parts.push(`${loc.time[0]}-${loc.time[1]}`);
  return parts.length ? ` (${parts.join(", ")})` : "";
}

/** The passages as the model reads them. */
export function formatSources(sources: Source[]): string {
  if (!sources.length) return "No passages matched.";
  return sources.map((s) => `[${s.n}] ${s.filename}${where(s.location)}\n${s.text.trim()}`).join("\n\n");
}

export interface Citation {
  fileId: string;
  filename: string;
  /** Where in the text the citation stands (the position of its "[n]"). */
  index: number;
}

// "[3]", "[1, 2]", "[1][2]" (the last is two matches). Passages are numbered across a whole
// conversation, so numbers may grow past three digits.
const MARKER = /\[(\d{1,6}(?:\s*,\s*\d{1,6})*)\]/g;
// An unfinished "[12, 13, " at the end of what has arrived so far may still become a marker.
const OPEN_TAIL = /\[[\d\s,]{0,96}$/;

/**
 * Reads citations from text as it streams: `feed` takes the text so far and returns the
 * citations completed since the last call, in order. A marker split across deltas is read
 * once it closes.
 */
export class CitationReader {
  private scanned = 0;

  constructor(private readonly cited: ReadonlyMap<number, Cited>) {}

  feed(text: string, final = false): Citation[] {
    let limit = text.length;
    if (!final) {
      const tail = OPEN_TAIL.exec(text.slice(this.scanned));
      if (tail) limit = this.scanned + tail.index;
    }
    const out: Citation[] = [];
    const span = text.slice(this.scanned, limit);
    for (const m of span.matchAll(MARKER)) {
      for (const num of m[1]!.split(",")) {
        const c = this.cited.get(Number(num.trim()));
        if (c) out.push({ fileId: c.fileId, filename: c.filename, index: this.scanned + m.index! });
      }
    }
    this.scanned = limit;
    return out;
  }
}
