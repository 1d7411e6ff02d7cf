import { Parser } from "htmlparser2";

export interface XmlHandlers {
  open?(name: string, attrs: Record<string, string>): void;
  text?(data: string): void;
  close?(name: string): void;
}

/**
 * A streaming XML walk. htmlparser2 in XML mode decodes only the five predefined entities
 * and character references and never expands DTD-declared entities, so "billion laughs"
 * documents cannot blow up.
 */
export function walkXml(xml: string, h: XmlHandlers) {
  const { text, entities } = withoutDoctype(xml);
  const p = new Parser(
    {
      onopentag: (name, attrs) => h.open?.(name, attrs),
      ontext: (t) => h.text?.(expandEntities(t, entities)),
      onclosetag: (name) => h.close?.(name),
    },
    { xmlMode: true, decodeEntities: true },
  );
  p.write(text);
  p.end();
}

// Tried only where the first DOCTYPE opens (sticky): from every one of many unclosed ones, the
// subset's search read to the end of the megabyte each time.
const DOCTYPE_SUBSET = /<!DOCTYPE[^\[>]*\[([\s\S]*?)\]\s*>/iy;
const ENTITY_DECL = /<!ENTITY\s+([A-Za-z_][\w.-]*)\s+(?:"([^"]*)"|'([^']*)')\s*>/g;
// Only plain replacement text is expanded, once, so a declared entity can never multiply.
const PLAIN = /^[^&<%]{0,200}$/;

/**
 * A DOCTYPE's internal subset (`<!DOCTYPE x [ <!ENTITY ...> ]>`) is declarations, not text;
 * parsers that do not read DTDs leave its tail ("]>") in the text. It is removed, and its
 * plain text entities are kept for expanding references to them (others are dropped).
 */
export function withoutDoctype(xml: string): { text: string; entities: Map<string, string> } {
  const entities = new Map<string, string>();
  const head = xml.slice(0, 1 << 20);
  DOCTYPE_SUBSET.lastIndex = head.search(/<!DOCTYPE/i);
  const m = DOCTYPE_SUBSET.lastIndex >= 0 ? DOCTYPE_SUBSET.exec(head) : null;
  if (!m) return { text: xml, entities };
  for (const d of m[1]!.matchAll(ENTITY_DECL)) {
    const value = d[2] ?? d[3] ?? "";
    entities.set(d[1]!, PLAIN.test(value) ? value : "");
  }
  return { text: xml.slice(0, m.index) + xml.slice(m.index + m[0].length), entities };
}

/** Replaces references to entities the document declared; references to unknown ones are left alone. */
export function expandEntities(text: string, entities: Map<string, string>): string {
  if (entities.size === 0 || !text.includes("&")) return text;
  return text.replace(/&([A-Za-z_][\w.-]*);/g, (ref, name: string) => entities.get(name) ?? ref);
}

/** Relationship id -> target path, resolved against the folder of the part that owns them. */
export function readRels(xml: string | null, baseDir: string): Map<string, { target: string; type: string }> {
  const rels = new Map<string, { target: string; type: string }>();
  if (!xml) return rels;
  walkXml(xml, {
    open(name, a) {
      if (name === "Relationship" && a.Id && a.Target && a.TargetMode !== "External")
        rels.set(a.Id, { target: resolvePath(baseDir, a.Target), type: a.Type ?? "" });
    },
  });
  return rels;
}

/** Joins a relative zip path onto a folder, resolving `.` and `..` (never above the root). */
export function resolvePath(baseDir: string, rel: string): string {
  let decoded = rel;
  try {
    decoded = decodeURIComponent(rel);
  } catch {}
  const parts = decoded.startsWith("/") ? [] : baseDir.split("/").filter(Boolean);
  for (const seg of decoded.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") parts.pop();
    else parts.push(seg);
  }
  return parts.join("/");
}

export const dirOf = (path: string) => path.slice(0, path.lastIndexOf("/") + 1);
