import { walkXml } from "./xml";

// Charts and SmartArt in Office files carry their text in their own parts, which the
// document's body only points to. Each becomes one block of text at the chart's place.

const MAX_POINTS = 500;

interface Series {
  name: string;
  categories: string[];
  values: string[];
}

const local = (name: string) => name.slice(name.indexOf(":") + 1);

/**
 * A DrawingML chart (`c:chartSpace`) or a chartEx one (`cx:chartSpace`) as a sentence:
 * `Chart "Revenue by region" (Region / EUR m): series 2025: EU 12.4, US 9.1`. Null when the
 * chart holds no text at all.
 */
export function chartText(xml: string): string | null {
  const stack: string[] = [];
  let title = "";
  const axisTitles: string[] = [];
  const series: Series[] = [];
  let current: Series | null = null;
  let axisTitle: string | null = null;
  let pointIdx = 0;
  let textBuf = "";
  // chartEx keeps its data apart from its series: dimensions by data id
  const exData = new Map<string, { categories: string[]; values: string[] }>();
  let exId: string | null = null;
  let exDim: "cat" | "val" | null = null;
  const exSeries: { name: string; dataId: string }[] = [];
  let exSeriesName: string | null = null;
  let exSeriesData = "";

  const inside = (...names: string[]) => names.every((n) => stack.includes(n));
  walkXml(xml, {
    open(name, a) {
      const n = local(name);
      stack.push(n);
      textBuf = "";
      if (n === "ser" && name.startsWith("c:")) {
        current = { name: "", categories: [], values: [] };
        series.push(current);
      } else if (n === "title" && stack.some((s) => s.endsWith("Ax"))) axisTitle = "";
      else if (n === "pt") pointIdx = Number(a.idx ?? 0);
      else if (name === "cx:data") {
        exId = a.id ?? String(exData.size);
        exData.set(exId, { categories: [], values: [] });
      } else if (name === "cx:strDim" || name === "cx:numDim") exDim = a.type === "cat" ? "cat" : a.type === "val" || a.type === "size" ? "val" : null;
      else if (name === "cx:series") {
        exSeriesName = "";
        exSeriesData = "";
      } else if (name === "cx:dataId") exSeriesData = a.val ?? "";
    },
    text(t) {
      textBuf += t;
    },
    close(name) {
      const n = local(name);
      const text = textBuf.trim();
      // chartEx data points hold their value as the point's own text
      if (name === "cx:pt" && exId !== null && exDim && pointIdx < MAX_POINTS) {
        const d = exData.get(exId)!;
        (exDim === "cat" ? d.categories : d.values)[pointIdx] = text;
      }
      if (n === "t" || n === "v") {
        if (axisTitle !== null && inside("title")) axisTitle += `${axisTitle ? " " : ""}${text}`;
        else if (exSeriesName !== null && inside("series", "tx")) exSeriesName += text;
        else if (current && inside("ser", "tx")) current.name += text;
        else if (current && inside("ser", "pt") && (inside("cat") || inside("xVal")) && pointIdx < MAX_POINTS) current.categories[pointIdx] = text;
        else if (current && inside("ser", "pt") && (inside("val") || inside("yVal")) && pointIdx < MAX_POINTS) current.values[pointIdx] = text;
        else if (inside("title") && !current && exSeriesName === null) title += `${title ? " " : ""}${text}`;
      }
      if (n === "title" && axisTitle !== null && stack.filter((s) => s === "title").length === 1) {
        if (axisTitle) axisTitles.push(axisTitle);
        axisTitle = null;
      }
      if (n === "ser" && name.startsWith("c:")) current = null;
      if (name === "cx:series") {
        exSeries.push({ name: exSeriesName ?? "", dataId: exSeriesData });
        exSeriesName = null;
      }
      if (name === "cx:data") exId = null;
      if (name === "cx:strDim" || name === "cx:numDim") exDim = null;
      stack.pop();
      textBuf = "";
    },
  });
  for (const s of exSeries) {
    const d = exData.get(s.dataId) ?? [...exData.values()][0];
    if (d) series.push({ name: s.name, categories: d.categories, values: d.values });
  }
  const parts: string[] = [];
  for (const s of series) {
    const n = Math.max(s.categories.length, s.values.length);
    const points: string[] = [];
    for (let i = 0; i < n; i++) {
      const c = s.categories[i] ?? "";
      const v = s.values[i] ?? "";
      if (c || v) points.push(c && v ? `${c} ${v}` : c || v);
    }
    if (s.name || points.length) parts.push(`series ${s.name || parts.length + 1}: ${points.join(", ")}`.trim());
  }
  if (!title && !axisTitles.length && !parts.length) return null;
  const head = `Chart${title ? ` "${title}"` : ""}${axisTitles.length ? ` (${axisTitles.join(" / ")})` : ""}`;
  return parts.length ? `${head}: ${parts.join("; ")}` : head;
}

/** The text of a SmartArt diagram's data part (`dgm:dataModel`): its nodes, in order. */
export function diagramText(xml: string): string | null {
  const nodes: string[] = [];
  let node: string | null = null;
  let para = "";
  walkXml(xml, {
    open(name) {
      if (name === "dgm:t") node = "";
      else if (name === "a:p") para = "";
    },
    text(t) {
      if (node !== null) para += t;
    },
    close(name) {
      if (name === "a:p" && node !== null) {
        const t = para.trim();
        if (t) node += `${node ? " " : ""}${t}`;
      } else if (name === "dgm:t" && node !== null) {
        if (node) nodes.push(node);
        node = null;
      }
    },
  });
  return nodes.length ? nodes.join("; ") : null;
}
