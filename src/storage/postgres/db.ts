import type { SQL } from "bun";

type Params = Record<string, unknown>;

// Queries are written with named parameters ($fileId), as in the SQLite repositories, and
// turned into Postgres's positional ones once per query text.
const compiled = new Map<string, { text: string; names: string[] }>();

function compile(text: string) {
  let c = compiled.get(text);
  if (!c) {
    // Filters make query texts without end; keep the common ones, not all.
    if (compiled.size >= 1024) compiled.clear();
    const names: string[] = [];
    const out = text.replace(/\$([A-Za-z_][A-Za-z0-9_]*)/g, (_, name: string) => {
      let i = names.indexOf(name);
      if (i < 0) i = names.push(name) - 1;
      return `$${i + 1}`;
    });
    c = { text: out, names };
    compiled.set(text, c);
  }
  return c;
}

function values(c: { names: string[] }, params: Params) {
  return c.names.map((n) => {
    if (!(n in params)) throw new Error(`SQL parameter $${n} was not given`);
    const v = params[n] ?? null;
    // PostgreSQL text cannot hold NUL, which SQLite stores (a text file with one past its
    // first bytes): it becomes U+FFFD, one UTF-16 unit, so chunk offsets stay true.
    if (typeof v === "string" && v.includes("\0")) return v.replaceAll("\0", "\uFFFD");
    if (Array.isArray(v) && v.some((x) => typeof x === "string" && x.includes("\0"))) return v.map((x) => (typeof x === "string" ? x.replaceAll("\0", "\uFFFD") : x));
    return v;
  });
}

/** A connection pool, or one transaction of it. */
export class Pg {
  constructor(
    readonly sql: SQL,
    /**
     * A pool of unprepared statements, for query texts without a bound on their number (an
     * attribute filter's SQL): prepared, each would stay in its connection for as long as it
     * lives. Everything else is prepared once per connection, which saves the planning.
     */
    private readonly adhocSql: SQL = sql,
  ) {}

  /** The same queries on the unprepared pool. */
  get adhoc(): Pg {
    return this.adhocSql === this.sql ? this : new Pg(this.adhocSql);
  }

  async all<T>(text: string, params: Params = {}): Promise<T[]> {
    const c = compile(text);
    return (await this.sql.unsafe(c.text, values(c, params))) as T[];
  }

  async get<T>(text: string, params: Params = {}): Promise<T | null> {
    return (await this.all<T>(text, params))[0] ?? null;
  }

  /** Runs a write; the number of rows it touched. */
  async run(text: string, params: Params = {}): Promise<number> {
    const c = compile(text);
    const r = (await this.sql.unsafe(c.text, values(c, params))) as unknown as { count: number };
    return r.count ?? 0;
  }

  /** Runs `fn` in one transaction (READ COMMITTED), committed before the promise resolves. */
  tx<T>(fn: (tx: Pg) => Promise<T>): Promise<T> {
    return this.sql.begin((tx) => fn(new Pg(tx as unknown as SQL))) as Promise<T>;
  }
}

/**
 * Every transaction that adds or deletes chunks takes the chunk log's lock first (schema.ts):
 * the log's sequence, and chunk ids, then commit in the order they are given out, and the
 * lock is always taken before any file row's, so two such writers cannot deadlock.
 */
export const lockChunkLog = (tx: Pg) => tx.run(`SELECT seq FROM chunk_log_head FOR UPDATE`);
