import { SafeZip } from "../zip";
import { ParseError, type Block, type ParseInput, type ParsedDocument } from "../types";
import { dataUri, htmlToBlocks, insertAt } from "./html";
import { pictureReader } from "./pictures";
import { dirOf, resolvePath, walkXml } from "./xml";

const stripFragment = (href: string) => href.split("#")[0]!;

/** EPUB: the OPF spine gives reading order; the table of contents gives chapter titles. */
export async function parseEpub(input: ParseInput): Promise<ParsedDocument> {
  const zip = new SafeZip(input.bytes, input.limits);
  const container = zip.text("META-INF/container.xml");
  if (container === null) throw new ParseError("the file is not a valid EPUB (it has no META-INF/container.xml)");
  let opfPath = "";
  walkXml(container, {
    open(name, a) {
      if (name === "rootfile" && !opfPath && a["full-path"]) opfPath = resolvePath("", a["full-path"]);
    },
  });
  const opf = opfPath ? zip.text(opfPath) : null;
  if (opf === null) throw new ParseError("the EPUB is corrupt: its package document (OPF) is missing");
  const base = dirOf(opfPath);

  const manifest = new Map<string, { href: string; type: string; props: string }>();
  const spine: string[] = [];
  let ncxId = "";
  walkXml(opf, {
    open(name, a) {
      const local = name.replace(/^.*:/, "");
      if (local === "item" && a.id && a.href) manifest.set(a.id, { href: resolvePath(base, a.href), type: a["media-type"] ?? "", props: a.properties ?? "" });
      else if (local === "spine") ncxId = a.toc ?? "";
      else if (local === "itemref" && a.idref && a.linear !== "no") spine.push(a.idref);
    },
  });

  const encryption = zip.text("META-INF/encryption.xml");
  if (encryption) {
    const encrypted = new Set<string>();
    walkXml(encryption, {
      open(name, a) {
        if (name.replace(/^.*:/, "") === "CipherReference" && a.URI) encrypted.add(resolvePath("", a.URI));
      },
    });
    if (spine.some((id) => encrypted.has(manifest.get(id)?.href ?? ""))) throw new ParseError("the EPUB is DRM-protected (its chapters are encrypted)");
  }

  const titles = tocTitles(zip, manifest, ncxId);
  const blocks: Block[] = [];
  const readPictures = pictureReader(input);
  for (let i = 0; i < spine.length; i++) {
    const item = manifest.get(spine[i]!);
    if (!item || !/html|xml/.test(item.type)) continue;
    input.progress(`parsing chapter ${i + 1} of ${spine.length}`);
    const xhtml = zip.text(item.href);
    if (xhtml === null) continue;
    const probe = htmlToBlocks(xhtml);
    const firstHeading = probe.blocks.find((b) => b.loc.headings?.length)?.loc.headings?.at(-1);
    const chapter = titles.get(item.href) ?? firstHeading ?? probe.title ?? `Section ${i + 1}`;
    const parsed = htmlToBlocks(xhtml, { chapter });
    // Pictures in the chapter (a cover, a scanned table) are read where they stand.
    const found: { at: number; blocks: Block[] }[] = [];
    for (const img of parsed.images) {
      const bytes = dataUri(img.src) ?? zip.read(resolvePath(dirOf(item.href), img.src.split("#")[0]!));
      if (bytes) found.push({ at: img.at, blocks: await readPictures([{ bytes, loc: img.loc }]) });
    }
    const chapterBlocks = insertAt(parsed.blocks, found);
    if (chapterBlocks[0]) chapterBlocks[0].boundary = true;
    blocks.push(...chapterBlocks);
  }
  return { format: "epub", blocks };
}

/** Chapter titles by document path, from the EPUB 3 nav document or the EPUB 2 NCX. */
function tocTitles(zip: SafeZip, manifest: Map<string, { href: string; type: string; props: string }>, ncxId: string) {
  const titles = new Map<string, string>();
  const add = (href: string, label: string) => {
    const t = label.replace(/\s+/g, " ").trim();
    if (t && !titles.has(href)) titles.set(href, t);
  };
  const nav = [...manifest.values()].find((m) => m.props.split(/\s+/).includes("nav"));
  const navXml = nav ? zip.text(nav.href) : null;
  if (nav && navXml) {
    let href: string | null = null;
    let label = "";
    walkXml(navXml, {
      open(name, a) {
        if (name === "a" && a.href) {
          href = resolvePath(dirOf(nav.href), stripFragment(a.href));
          label = "";
        }
      },
      text(t) {
        if (href) label += t;
      },
      close(name) {
        if (name === "a" && href) {
          add(href, label);
          href = null;
        }
      },
    });
  }
  const ncx = manifest.get(ncxId) ?? [...manifest.values()].find((m) => m.type === "application/x-dtbncx+xml");
  const ncxXml = ncx ? zip.text(ncx.href) : null;
  if (ncx && ncxXml) {
    let label = "";
    let inText = false;
    walkXml(ncxXml, {
      open(name, a) {
        if (name === "navLabel") label = "";
        else if (name === "text") inText = true;
        else if (name === "content" && a.src) add(resolvePath(dirOf(ncx.href), stripFragment(a.src)), label);
      },
      text(t) {
        if (inText) label += t;
      },
      close(name) {
        if (name === "text") inText = false;
      },
    });
  }
  return titles;
}
