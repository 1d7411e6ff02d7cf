// word-extractor ships no types; the part ragd uses.
declare module "word-extractor" {
  interface Document {
    getBody(): string;
    getFootnotes(): string;
    getEndnotes(): string;
    getHeaders(o?: { includeFooters?: boolean }): string;
    getAnnotations(): string;
    getTextboxes(o?: { includeHeadersAndFooters?: boolean; includeBody?: boolean }): string;
  }
  export default class WordExtractor {
    extract(source: Buffer | string): Promise<Document>;
  }
}
