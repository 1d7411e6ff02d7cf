import type { SafeZip } from "../zip";
import { chartText, diagramText } from "./charts";
import { dirOf, readRels, walkXml } from "./xml";

// The parts an Office document's body points to: charts, SmartArt and pictures. PPTX, DOCX
// and XLSX place them the same way (a relationship id in the body, a target in its .rels).

// A chart part this large is not a chart a person made; it is refused rather than read.
const MAX_CHART_PART = 16 * 1024 * 1024;

export interface Embedded {
  /** Text of the charts and SmartArt, in the order the body refers to them. */
  texts: string[];
  /** Zip paths of the pictures, in order, without repeats. */
  pictures: string[];
}

/** The relationships of a part, resolved against the part's folder. */
export function partRels(zip: SafeZip, path: string) {
  const name = path.slice(path.lastIndexOf("/") + 1);
  return readRels(zip.text(`${dirOf(path)}_rels/${name}.rels`), dirOf(path));
}

/** Charts, SmartArt and pictures referred to by a part's XML. */
export function embeddedIn(zip: SafeZip, path: string, xml: string): Embedded {
  const rels = partRels(zip, path);
  const texts: string[] = [];
  const pictures: string[] = [];
  const partText = (id: string | undefined, read: (xml: string) => string | null) => {
    const target = id ? rels.get(id)?.target : undefined;
    if (!target || !zip.has(target)) return;
    const t = read(partXml(zip, target));
    if (t) texts.push(t);
  };
  walkXml(xml, {
    open(name, a) {
      if (name === "c:chart" || name === "cx:chart") partText(a["r:id"], chartText);
      else if (name === "dgm:relIds") partText(a["r:dm"], diagramText);
      else if (name === "a:blip" || name === "v:imagedata") {
        const target = rels.get(a["r:embed"] ?? a["r:id"] ?? "")?.target;
        if (target && zip.has(target) && !pictures.includes(target)) pictures.push(target);
      }
    },
  });
  return { texts, pictures };
}

/** A chart or diagram part, refused past its size limit. */
const partXml = (zip: SafeZip, target: string) => zip.text(target, MAX_CHART_PART) ?? "";
