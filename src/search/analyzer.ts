import { stemmer } from "stemmer";

/**
 * Text analysis for keyword search, the same as SQLite FTS5's `porter unicode61
 * remove_diacritics 2` (what ragd used before its own index): tokens are runs of letters,
 * digits and private-use characters, folded to lower case without diacritics, then Porter
 * stemmed. Changing anything here changes the terms of every indexed chunk, so the saved
 * index records ANALYZER_VERSION and is rebuilt when it differs.
 */
export const ANALYZER_VERSION = "unicode61-rd2-porter-2";

const TOKEN = /[\p{L}\p{N}\p{Co}]+/gu;
const COMBINING = /\p{Mn}/gu;
const ASCII_WORD = /^[a-z0-9]*$/;
// FTS5's porter tokenizer leaves tokens longer than this unstemmed.
const MAX_STEMMED = 64;

const folded = new Map<string, string>();
// Unicode case folding where it differs from toLowerCase (FTS5 folds, JavaScript lowers).
const FOLD: Record<string, string> = { "µ": "μ", "ſ": "s", "ς": "σ", "ϐ": "β", "ϑ": "θ", "ϕ": "φ", "ϖ": "π", "ϰ": "κ", "ϱ": "ρ", "ϵ": "ε", "ẛ": "ṡ", "ι": "ι" };
const UNFOLDED = new RegExp(`[${Object.keys(FOLD).join("")}]`, "gu");

/** One token's indexed form. */
function term(raw: string): string {
  let t = folded.get(raw);
  if (t !== undefined) return t;
  t = raw.toLowerCase();
  if (!ASCII_WORD.test(t)) t = t.replace(UNFOLDED, (c) => FOLD[c]!).normalize("NFD").replace(COMBINING, "").normalize("NFC");
  const bytes = Buffer.byteLength(t);
  if (bytes >= 3 && bytes <= MAX_STEMMED) t = ASCII_WORD.test(t) ? stemmer(t) : stemBytes(t);
  // A bounded cache: a chunk's words repeat across chunks, and stemming is most of the cost.
  if (folded.size > 200_000) folded.clear();
  folded.set(raw, t);
  return t;
}

/**
 * FTS5 stems a token's UTF-8 bytes: its length limits count bytes, and every non-ASCII byte
 * is a consonant. Each such byte goes to the stemmer as one private-use character (no case,
 * not a vowel), and comes back after. Porter only removes or changes ASCII letters, so
 * multi-byte characters stay whole.
 */
function stemBytes(token: string): string {
  const utf8 = Buffer.from(token, "utf8");
  let s = "";
  for (const b of utf8) s += String.fromCharCode(b < 0x80 ? b : 0xe000 + b);
  const stemmed = stemmer(s);
  const out = Buffer.alloc(stemmed.length);
  for (let i = 0; i < stemmed.length; i++) {
    const c = stemmed.charCodeAt(i);
    out[i] = c >= 0xe000 ? c - 0xe000 : c;
  }
  return out.toString("utf8");
}

/** Every token of a text, in order (stop words included: they count toward a chunk's length as in FTS5). */
export function analyze(text: string): string[] {
  const out: string[] = [];
  for (const m of text.normalize("NFC").matchAll(TOKEN)) out.push(term(m[0]));
  return out;
}

// English function words: in an any-word query they match nearly every chunk, which costs
// scoring time for almost no weight (their IDF is near zero). Only queries drop them.
const STOPWORDS = new Set(
  "a an and are as at be but by for from has have in is it its of on or that the this to was were will with which who whom what when where why how do does did not no can".split(" "),
);
const MAX_QUERY_TERMS = 64;

export interface KeywordQuery {
  /** Each term with how many query words stemmed to it (each counts, as FTS5's OR of phrases did). */
  terms: Map<string, number>;
  /** Quoted phrases of two or more terms, each as its terms in order. */
  phrases: string[][];
}

/** Any word of the query may match; rare words weigh more. Quoted phrases also boost chunks that hold them verbatim. */
export function parseQuery(query: string): KeywordQuery | null {
  const text = query.normalize("NFKC");
  const raw = [...new Set((text.toLowerCase().match(TOKEN) ?? []))];
  const content = raw.filter((t) => !STOPWORDS.has(t));
  const words = (content.length ? content : raw).slice(0, MAX_QUERY_TERMS);
  if (words.length === 0) return null;
  const terms = new Map<string, number>();
  for (const w of words) {
    const t = term(w);
    terms.set(t, (terms.get(t) ?? 0) + 1);
  }
  const phrases: string[][] = [];
  for (const m of text.matchAll(/"([^"]+)"/g)) {
    const p = analyze(m[1]!);
    if (p.length >= 2) phrases.push(p);
  }
  return { terms, phrases: phrases.slice(0, 8) };
}

/** Whether the text's terms hold the phrase's terms consecutively. */
export function containsPhrase(textTerms: string[], phrase: string[]): boolean {
  outer: for (let i = 0; i + phrase.length <= textTerms.length; i++) {
    for (let j = 0; j < phrase.length; j++) if (textTerms[i + j] !== phrase[j]) continue outer;
    return true;
  }
  return false;
}
