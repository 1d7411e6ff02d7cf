import { join } from "node:path";
import { IN_BINARY } from "../native/extract";

/** The argument that makes `ragd` a parse process (ingest/parse-child.ts) instead of the CLI. */
export const PARSE_CHILD_ARG = "__parse-child";

/** How the server starts a parse process: the same executable, from source or as the binary. */
export function parseCommand(): string[] {
  return IN_BINARY ? [process.execPath, PARSE_CHILD_ARG] : [process.execPath, join(import.meta.dir, "../main.ts"), PARSE_CHILD_ARG];
}
