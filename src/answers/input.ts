import { fail } from "../errors";
import type { ChatMessage, ChatPart } from "../llm/chat";

// A response's `input`, read twice: as the items /input_items lists (with ids, in the
// spec's resource shapes) and as the chat messages a model server reads. Files named by
// `input_file` become their parsed text; images stay images for servers that see them.

export interface FileReader {
  /** The text ingestion read from a file of the project; waits while it is being processed. */
  text(fileId: string, param: string): Promise<{ filename: string; text: string }>;
  /** An image file of the project as a data: URL. */
  image(fileId: string, param: string): Promise<string>;
}

export type Item = Record<string, unknown> & { id: string; type: string };

/** How a request's input finds what it does not carry itself. */
export interface InputSources {
  files: FileReader;
  /** A stored item of the project, for an `item_reference`; refuses an id it cannot find. */
  item(id: string, param: string): Promise<Item>;
  /** An id for an item the client sent without one. */
  newId(prefix: string): string;
}

export interface ReadInput {
  items: Item[];
  messages: ChatMessage[];
  /** The text of the last user message: what ragd searches with when the model cannot. */
  query: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function str(v: unknown, param: string): string {
  if (typeof v !== "string") throw fail("invalid_value", `${param} must be a string`, param);
  return v;
}

/** Files and images one request may name, and the text and image data they may add in all. */
export const MAX_FILE_PARTS = 20;
export const MAX_FILE_CHARS_TOTAL = 2_000_000;
export const MAX_IMAGE_CHARS_TOTAL = 40_000_000;

/**
 * Reads each file once however often it is named, and stops a request that names more than
 * the model could read, before loading more: a 4 MB body can name a file thousands of times.
 */
function budgeted(files: FileReader): FileReader {
  let parts = 0;
  let textChars = 0;
  let imageChars = 0;
  const texts = new Map<string, ReturnType<FileReader["text"]>>();
  const images = new Map<string, ReturnType<FileReader["image"]>>();
  const count = (param: string) => {
    if (++parts > MAX_FILE_PARTS) throw fail("invalid_value", `a request may name at most ${MAX_FILE_PARTS} files and images; send the rest in a later turn`, param);
  };
  return {
    async text(fileId, param) {
      count(param);
      let p = texts.get(fileId);
      if (!p) texts.set(fileId, (p = files.text(fileId, param)));
      const r = await p;
      textChars += r.text.length;
      if (textChars > MAX_FILE_CHARS_TOTAL)
        throw fail("invalid_value", `the files named hold more than ${MAX_FILE_CHARS_TOTAL.toLocaleString("en")} characters in all, more than a model can read; search them with file_search instead`, param);
      return r;
    },
    async image(fileId, param) {
      count(param);
      let p = images.get(fileId);
      if (!p) images.set(fileId, (p = files.image(fileId, param)));
      const url = await p;
      imageChars += url.length;
      if (imageChars > MAX_IMAGE_CHARS_TOTAL) throw fail("invalid_value", "the images named are too large in all (about 30 MB at most per request)", param);
      return url;
    },
  };
}

export async function readInput(input: string | unknown[], sources: InputSources): Promise<ReadInput> {
  if (typeof input === "string") input = [{ role: "user", content: input }];
  const files = budgeted(sources.files);
  const newItemId = sources.newId;
  const items: Item[] = [];
  const messages: ChatMessage[] = [];
  let query = "";
  for (const [i, given] of input.entries()) {
    const at = `input[${i}]`;
    if (!isObject(given)) throw fail("invalid_value", `${at} must be an object (a message or a function call output)`, at);
    // An item_reference (its type is optional: an id alone) stands for an item a stored
    // response of the project holds, output or input, read as if sent again.
    const reference = given.type === "item_reference" || (given.type == null && given.role === undefined && typeof given.id === "string");
    if (reference && typeof given.id !== "string") throw fail("invalid_value", `${at}.id must be the id of an item of a stored response`, `${at}.id`);
    // (a copy gets an id of this response's: an item referenced twice is listed twice, each
    // under its own id, and a later reference to it needs only this response)
    const referenced = reference ? await sources.item(given.id as string, `${at}.id`) : null;
    const raw: Record<string, unknown> = referenced ? { ...referenced, id: newItemId(referenced.id.split("_")[0]!) } : given;
    const type = raw.type ?? (raw.role !== undefined ? "message" : undefined);
    switch (type) {
      case "message": {
        const m = await readMessage(raw, at, files, newItemId);
        items.push(m.item);
        messages.push(m.message);
        if (m.message.role === "user") query = m.text;
        break;
      }
      case "function_call": {
        const call = { id: str(raw.call_id, `${at}.call_id`), type: "function" as const, function: { name: str(raw.name, `${at}.name`), arguments: str(raw.arguments, `${at}.arguments`) } };
        items.push({ id: typeof raw.id === "string" ? raw.id : newItemId("fc"), type: "function_call", call_id: call.id, name: call.function.name, arguments: call.function.arguments, status: "completed" });
        const last = messages.at(-1);
        if (last?.role === "assistant") (last.tool_calls ??= []).push(call);
        else messages.push({ role: "assistant", content: null, tool_calls: [call] });
        break;
      }
      case "function_call_output": {
        const callId = str(raw.call_id, `${at}.call_id`);
        const output = typeof raw.output === "string" ? raw.output : Array.isArray(raw.output) ? raw.output : str(raw.output, `${at}.output`);
        const text = typeof output === "string" ? output : (await readParts(output, `${at}.output`, "user", files)).text;
        items.push({ id: typeof raw.id === "string" ? raw.id : newItemId("fco"), type: "function_call_output", call_id: callId, output, status: "completed" });
        messages.push({ role: "tool", tool_call_id: callId, content: text });
        break;
      }
      case "file_search_call":
      case "reasoning":
        // Output items passed back by a client keeping its own state: listed, not re-sent
        // (the answer that used them follows them in the input).
        items.push({ ...raw, id: typeof raw.id === "string" ? raw.id : newItemId(type === "reasoning" ? "rs" : "fs"), type } as Item);
        break;
      default:
        throw fail(
          "invalid_value",
          `${at}.type ${JSON.stringify(type)} is not supported by ragd: input takes messages, function_call, function_call_output and item_reference items (and previous_response_id for earlier turns).`,
          `${at}.type`,
        );
    }
  }
  return { items, messages, query };
}

type Role = "user" | "system" | "developer" | "assistant";

async function readMessage(raw: Record<string, unknown>, at: string, files: FileReader, newItemId: (prefix: string) => string) {
  const role = raw.role as Role;
  if (!["user", "system", "developer", "assistant"].includes(role)) throw fail("invalid_value", `${at}.role must be user, assistant, system or developer`, `${at}.role`);
  const id = typeof raw.id === "string" ? raw.id : newItemId("msg");
  const content = typeof raw.content === "string" ? [{ type: role === "assistant" ? "output_text" : "input_text", text: raw.content }] : raw.content;
  if (!Array.isArray(content)) throw fail("invalid_value", `${at}.content must be a string or a list of content parts`, `${at}.content`);
  const read = await readParts(content, `${at}.content`, role, files);
  const chatRole = role === "developer" ? "system" : role;
  const message: ChatMessage = { role: chatRole, content: read.images.length ? [...(read.text ? [{ type: "text" as const, text: read.text }] : []), ...read.images] : read.text };
  const item: Item =
    role === "assistant"
      ? { id, type: "message", role, status: "completed", content: read.stored.map((p) => ({ type: "output_text", text: String(p.text ?? ""), annotations: [], logprobs: [] })) }
      : { id, type: "message", role, status: "completed", content: read.stored };
  return { item, message, text: read.typed };
}

/** Content parts: their text for the model (files read in), images, and the parts as stored. */
async function readParts(parts: unknown[], at: string, role: Role, files: FileReader) {
  const texts: string[] = [];
  const typed: string[] = [];
  const images: ChatPart[] = [];
  const stored: Record<string, unknown>[] = [];
  for (const [j, p] of parts.entries()) {
    const here = `${at}[${j}]`;
    if (!isObject(p)) throw fail("invalid_value", `${here} must be a content part object`, here);
    switch (p.type) {
      case "input_text":
      case "output_text":
      case "text": {
        const text = str(p.text, `${here}.text`);
        texts.push(text);
        typed.push(text);
        stored.push({ type: role === "assistant" ? "output_text" : "input_text", text });
        break;
      }
      case "refusal":
        texts.push(str(p.refusal, `${here}.refusal`));
        stored.push({ type: "output_text", text: p.refusal });
        break;
      case "input_file": {
        if (role === "assistant") throw fail("invalid_value", `${here}: files go in user messages`, here);
        if (typeof p.file_id !== "string") {
          const other = p.file_data !== undefined ? "file_data" : p.file_url !== undefined ? "file_url" : null;
          throw fail("invalid_value", `${here}: ragd reads files by file_id${other ? `, not ${other}` : ""}: upload the file (POST /v1/files, purpose user_data) and pass its id`, `${here}.file_id`);
        }
        const f = await files.text(p.file_id, `${here}.file_id`);
        texts.push(`Contents of the file "${f.filename}":\n${f.text}`);
        stored.push({ type: "input_file", file_id: p.file_id, filename: f.filename });
        break;
      }
      case "input_image": {
        if (role === "assistant") throw fail("invalid_value", `${here}: images go in user messages`, here);
        const detail = typeof p.detail === "string" ? p.detail : "auto";
        const url = typeof p.image_url === "string" ? p.image_url : typeof p.file_id === "string" ? await files.image(p.file_id, `${here}.file_id`) : null;
        if (!url) throw fail("invalid_value", `${here}: an input_image needs image_url or file_id`, here);
        images.push({ type: "image_url", image_url: { url, detail } });
        stored.push({ type: "input_image", detail, ...(typeof p.file_id === "string" ? { file_id: p.file_id } : { image_url: url }) });
        break;
      }
      default:
        throw fail("invalid_value", `${here}.type ${JSON.stringify(p.type)} is not a content part ragd takes (input_text, input_file, input_image)`, `${here}.type`);
    }
  }
  return { text: texts.join("\n\n"), typed: typed.join("\n"), images, stored };
}
