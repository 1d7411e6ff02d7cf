import { randomBytes } from "node:crypto";

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

// Rejection sampling keeps every character uniformly likely (256 % 62 != 0).
export function randomBase62(length: number): string {
  let out = "";
  while (out.length < length) {
    for (const b of randomBytes(length * 2)) {
      if (b < 248) out += BASE62[b % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

export const newFileId = () => `file-${randomBase62(24)}`;
export const FILE_ID_RE = /^file-[0-9A-Za-z]{24}$/;
export const isFileId = (s: string) => FILE_ID_RE.test(s);

export const newUploadId = () => `upload_${randomBase62(24)}`;
export const isUploadId = (s: string) => /^upload_[0-9A-Za-z]{24}$/.test(s);
export const newPartId = () => `part_${randomBase62(24)}`;
export const isPartId = (s: string) => /^part_[0-9A-Za-z]{24}$/.test(s);

export const newProjectId = () => `proj_${randomBase62(20)}`;
export const newKeyId = () => `key_${randomBase62(16)}`;
export const newApiKey = () => `sk-ragd-${randomBase62(40)}`;
export const newVectorStoreId = () => `vs_${randomBase62(24)}`;
export const newFileBatchId = () => `vsfb_${randomBase62(24)}`;
export const isVectorStoreId = (s: string) => /^vs_[0-9A-Za-z]{24}$/.test(s);
export const isFileBatchId = (s: string) => /^vsfb_[0-9A-Za-z]{24}$/.test(s);
export const newResponseId = () => `resp_${randomBase62(40)}`;
export const isResponseId = (s: string) => /^resp_[0-9A-Za-z]{40}$/.test(s);
/**
 * An output or input item of a response: msg_, fs_, fc_, fco_ ... It holds its response's
 * id, so an `item_reference` finds the response that stored it (responseOfItem).
 */
export const newItemId = (prefix: string, responseId: string) => `${prefix}_${responseId.slice("resp_".length)}${randomBase62(12)}`;
/** The response whose item this is, for ids newItemId made; null for any other id. */
export const responseOfItem = (itemId: string) => {
  const m = /^[a-z]+_([0-9A-Za-z]{40})[0-9A-Za-z]{12}$/.exec(itemId);
  return m ? `resp_${m[1]}` : null;
};
/** A function call's id, where a model server gave none. */
export const newCallId = () => `call_${randomBase62(24)}`;
export const newChatCompletionId = () => `chatcmpl-${randomBase62(29)}`;

// req_ and 32 hex digits, as OpenAI's ids look: 128 random bits, taken from a pool filled
// 256 ids at a time (randomBytes asked the kernel on every request; a random UUID with its
// dashes removed took 0.16 us against 0.07 in a probe, on a retrieve of about 17 us).
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const idPool = new Uint8Array(16 * 256);
let idAt = idPool.length;
export function newRequestId() {
  if (idAt === idPool.length) {
    crypto.getRandomValues(idPool);
    idAt = 0;
  }
  let id = "req_";
  for (const end = idAt + 16; idAt < end; idAt++) id += HEX[idPool[idAt]!];
  return id;
}
