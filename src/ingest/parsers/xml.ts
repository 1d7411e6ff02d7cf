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
  const p = new Parser(
    {
      onopentag: (name, attrs) => h.open?.(name, attrs),
      ontext: (t) => h.text?.(t),
      onclosetag: (name) => h.close?.(name),
    },
    { xmlMode: true, decodeEntities: true },
  );
  p.write(xml);
  p.end();
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
