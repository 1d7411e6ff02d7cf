#!/usr/bin/env bun
// The one entry point. A parse process is this same executable started with PARSE_CHILD_ARG
// (ingest/parse-command.ts); it is told apart before the server's modules load, so it starts fast.
import { PARSE_CHILD_ARG } from "./ingest/parse-command";

if (process.argv[2] === PARSE_CHILD_ARG) await import("./ingest/parse-child");
else await import("./cli");
