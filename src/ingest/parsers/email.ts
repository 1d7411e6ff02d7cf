import MsgReaderModule from "@kenjiuno/msgreader";
import PostalMime from "postal-mime";
import { decodeText } from "../encoding";
import { ParseError, type Block, type Location, type ParseInput, type ParsedDocument } from "../types";
import { sniffImage } from "../../util/content-type";
import { htmlToBlocks } from "./html";
import { pictureReader } from "./pictures";
import { textToBlocks } from "./text";

// E-mail (.eml MIME, Outlook .msg): the header block (From, To, Cc, Subject, Date), the
// body, then every attachment read by the same parsers inside the same file, its blocks
// located as `attachment: "q3.pdf"` plus the attachment's own location. Nested messages are
// read too, within a depth and an attachment count like the limits on archives.

const MAX_DEPTH = 3;
const MAX_ATTACHMENTS = 500;

interface Message {
  headers: [string, string][];
  text: string;
  html: string;
  attachments: { name: string; mime: string; bytes: Uint8Array }[];
  /** Why the content cannot be read (an encrypted message), when it cannot. */
  sealed: string | null;
}

/** How deep a message sits, and how many attachments the whole file has shown so far (shared). */
interface Budget {
  depth: number;
  seen: { attachments: number };
}

export async function parseEml(input: ParseInput): Promise<ParsedDocument> {
  return { format: "eml", blocks: await messageBlocks(input, await readEml(input.bytes), { depth: 0, seen: { attachments: 0 } }) };
}

export async function parseMsg(input: ParseInput): Promise<ParsedDocument> {
  return { format: "msg", blocks: await messageBlocks(input, readMsg(input.bytes), { depth: 0, seen: { attachments: 0 } }) };
}

async function readEml(bytes: Uint8Array): Promise<Message> {
  let e;
  try {
    // A message saved as UTF-16 (some Windows tools do) is MIME text all the same.
    const utf16 = (bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff) || (bytes[1] === 0 && bytes[3] === 0) || (bytes[0] === 0 && bytes[2] === 0);
    // (decodeText tells UTF-16 without a BOM from UTF-8 by its zero bytes)
    e = await PostalMime.parse(utf16 ? new TextEncoder().encode(decodeText(bytes)) : bytes);
  } catch (err) {
    throw new ParseError(`the e-mail could not be read; it may be corrupt (${String((err as Error)?.message ?? err).slice(0, 120)})`);
  }
  const who = (a: { name?: string; address?: string } | undefined) => (a ? (a.name && a.address ? `${a.name} <${a.address}>` : (a.address ?? a.name ?? "")) : "");
  const list = (l: { name?: string; address?: string }[] | undefined) => (l ?? []).map(who).filter(Boolean).join(", ");
  const headers: [string, string][] = [
    ["From", who(e.from)],
    ["To", list(e.to)],
    ["Cc", list(e.cc)],
    ["Subject", e.subject ?? ""],
    ["Date", e.date ?? ""],
  ];
  const attachments = e.attachments.map((a, i) => ({
    name: a.filename ?? `attachment ${i + 1}`,
    mime: a.mimeType ?? "",
    bytes: typeof a.content === "string" ? new TextEncoder().encode(a.content) : new Uint8Array(a.content as ArrayBuffer),
  }));
  return { headers, text: e.text ?? "", html: e.html ?? "", attachments, sealed: sealed(attachments, e.text ?? "", e.html ?? "") };
}

function readMsg(bytes: Uint8Array): Message {
  const MsgReader = ((MsgReaderModule as unknown as { default?: unknown }).default ?? MsgReaderModule) as new (b: ArrayBuffer) => {
    getFileData(): MsgData;
    getAttachment(a: MsgAttachment): { fileName: string; content: Uint8Array };
  };
  let reader;
  let d: MsgData;
  try {
    reader = new MsgReader(bytes.slice().buffer);
    d = reader.getFileData();
  } catch (err) {
    throw new ParseError(`the Outlook message could not be read; it may be corrupt (${String((err as Error)?.message ?? err).slice(0, 120)})`);
  }
  if (d.error) throw new ParseError(`the Outlook message could not be read; it may be corrupt (${String(d.error).slice(0, 120)})`);
  const rcpt = (type: string) =>
    (d.recipients ?? [])
      .filter((r) => (r.recipType ?? "to") === type)
      .map((r) => (r.name && r.email && r.name !== r.email ? `${r.name} <${r.email}>` : (r.email ?? r.name ?? "")))
      .filter(Boolean)
      .join(", ");
  const headers: [string, string][] = [
    ["From", d.senderName && d.senderEmail ? `${d.senderName} <${d.senderEmail}>` : (d.senderEmail ?? d.senderName ?? "")],
    ["To", rcpt("to")],
    ["Cc", rcpt("cc")],
    ["Subject", d.subject ?? ""],
    ["Date", d.messageDeliveryTime ?? d.clientSubmitTime ?? ""],
  ];
  const attachments: Message["attachments"] = [];
  for (const a of d.attachments ?? []) {
    try {
      if (a.innerMsgContent) continue; // an embedded .msg: its fields are not a file of bytes here
      const got = reader.getAttachment(a);
      attachments.push({ name: got.fileName || a.fileName || "attachment", mime: a.attachMimeTag ?? "", bytes: got.content });
    } catch {
      // One unreadable attachment does not cost the message.
    }
  }
  const html = d.html ? (typeof d.html === "string" ? d.html : decodeText(new Uint8Array(d.html))) : "";
  return { headers, text: d.body ?? "", html, attachments, sealed: sealed(attachments, d.body ?? "", html) };
}

interface MsgAttachment {
  fileName?: string;
  attachMimeTag?: string;
  innerMsgContent?: boolean;
}
interface MsgData {
  error?: string;
  subject?: string;
  senderName?: string;
  senderEmail?: string;
  recipients?: { name?: string; email?: string; recipType?: string }[];
  body?: string;
  html?: Uint8Array | string;
  messageDeliveryTime?: string;
  clientSubmitTime?: string;
  attachments?: MsgAttachment[];
}

/** A message whose content is encrypted or wrapped in an opaque signature, which no one without the key can read. */
function sealed(attachments: Message["attachments"], text: string, html: string): string | null {
  if (text.trim() || html.trim()) return null;
  const types = attachments.map((a) => a.mime.toLowerCase());
  const names = attachments.map((a) => a.name.toLowerCase());
  if (types.includes("application/pgp-encrypted") || names.some((n) => n.endsWith(".pgp-encrypted") || n.endsWith(".pgp") || n.endsWith(".asc")))
    return "the message is encrypted (PGP/MIME); its content cannot be read without the recipient's key";
  if (types.some((t) => /pkcs7-mime/.test(t)) || names.includes("smime.p7m"))
    return "the message is encrypted or opaquely signed (S/MIME); its content cannot be read without the recipient's key";
  if (attachments.length && types.every((t) => /pkcs7-signature|pgp-signature/.test(t)))
    return "the message holds nothing readable besides its signature (a signed message whose body could not be read)";
  return null;
}

async function messageBlocks(input: ParseInput, m: Message, budget: Budget, where: Location = {}): Promise<Block[]> {
  if (m.sealed) throw new ParseError(m.sealed);
  const blocks: Block[] = [];
  const header = m.headers.filter(([, v]) => v.trim()).map(([k, v]) => `${k}: ${v.replace(/\s+/g, " ").trim()}`);
  if (header.length) blocks.push({ text: header.join("\n"), loc: where, boundary: true });
  // The plain body when there is one: the HTML alternative usually says the same with markup.
  const body = m.text.trim() ? textToBlocks(m.text, false).map((b) => ({ ...b, loc: where })) : m.html.trim() ? htmlToBlocks(m.html, where).blocks : [];
  blocks.push(...body);
  budget.seen.attachments += m.attachments.length;
  if (budget.seen.attachments > MAX_ATTACHMENTS)
    throw new ParseError(`the message has more than ${MAX_ATTACHMENTS} attachments, past what one file may hold here`, "file_too_large");
  const readPictures = pictureReader(input);
  for (const a of m.attachments) {
    const loc: Location = { ...where, attachment: where.attachment ? `${where.attachment} > ${a.name}` : a.name };
    // A signature or an encryption envelope is not content.
    if (/pkcs7-signature|pgp-signature|pgp-encrypted/i.test(a.mime) || /\.(p7s|sig|asc)$/i.test(a.name)) continue;
    input.progress(`reading attachment "${a.name}"`);
    let found: Block[] = [];
    if (sniffImage(a.bytes.subarray(0, 32))) found = await readPictures([{ bytes: a.bytes, loc }]);
    else if (/^message\/rfc822/i.test(a.mime) || /\.eml$/i.test(a.name)) {
      if (budget.depth + 1 >= MAX_DEPTH) throw new ParseError(`the message nests other messages more than ${MAX_DEPTH} deep`, "file_too_large");
      found = await messageBlocks(input, await readEml(a.bytes), { ...budget, depth: budget.depth + 1 }, loc);
    } else found = await attachmentBlocks(input, a, loc, budget);
    if (found[0]) found[0] = { ...found[0], boundary: true };
    blocks.push(...found);
  }
  return blocks;
}

/** An attachment read by the parser its bytes call for; one that cannot be read is skipped. */
async function attachmentBlocks(input: ParseInput, a: Message["attachments"][number], loc: Location, budget: Budget): Promise<Block[]> {
  const { detectFormat, parseDocument } = await import("./index");
  let format;
  try {
    format = detectFormat(a.bytes, a.name, input.limits);
  } catch (e) {
    if (e instanceof ParseError) return []; // audio, archives, unreadable: not text
    throw e;
  }
  if (format === "msg" || format === "eml") {
    if (budget.depth + 1 >= MAX_DEPTH) throw new ParseError(`the message nests other messages more than ${MAX_DEPTH} deep`, "file_too_large");
    const inner = format === "msg" ? readMsg(a.bytes) : await readEml(a.bytes);
    return messageBlocks(input, inner, { ...budget, depth: budget.depth + 1 }, loc);
  }
  try {
    const doc = await parseDocument({ ...input, bytes: a.bytes, filename: a.name });
    return doc.blocks.map((b) => ({ ...b, loc: { ...b.loc, ...loc } }));
  } catch (e) {
    // A damaged or empty attachment does not cost the message; limits do.
    if (e instanceof ParseError && e.code !== "file_too_large") return [];
    throw e;
  }
}
