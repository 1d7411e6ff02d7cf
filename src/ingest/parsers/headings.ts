import type { Location } from "../types";

/**
 * The chain of headings above the current text (h1 > h2 > h3). A heading of level n
 * replaces the one at n and drops those below it; a skipped level leaves no empty entry.
 */
export class HeadingPath {
  private readonly path: (string | undefined)[] = [];

  enter(level: number, title: string) {
    this.path.length = Math.max(0, level - 1);
    this.path[level - 1] = title;
  }

  /** `{ headings }` for a block's location, or nothing before the first heading. */
  loc(): Pick<Location, "headings"> {
    const headings = this.path.filter((h): h is string => !!h);
    return headings.length ? { headings } : {};
  }
}
