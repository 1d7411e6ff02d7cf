// PostgreSQL for tests: the server the machine runs (127.0.0.1:5432, trust auth, or
// RAGD_TEST_POSTGRES_URL). Each test gets a database of its own, copied from a migrated
// template, and drops it. Without a server the Postgres tests skip and say why.
import { SQL } from "bun";
import { migrateDatabase } from "../../src/storage/postgres";

const ADMIN_URL = process.env.RAGD_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

const withDb = (name: string) => {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
};

async function probe(): Promise<string | null> {
  const sql = new SQL({ url: ADMIN_URL, max: 1, connectionTimeout: 3 });
  try {
    await sql.unsafe("SELECT 1");
    return null;
  } catch (e) {
    return `no PostgreSQL answers at ${ADMIN_URL} (${(e as Error).message}); set RAGD_TEST_POSTGRES_URL to run these tests`;
  } finally {
    await sql.close().catch(() => {});
  }
}

/** Why Postgres tests cannot run here, or null when they can. */
export const postgresMissing: string | null = await probe();
if (postgresMissing) console.warn(`skipping PostgreSQL tests: ${postgresMissing}`);

let admin: SQL | null = null;
let template: Promise<string> | null = null;
const created = new Set<string>();

const adminSql = () => (admin ??= new SQL({ url: ADMIN_URL, max: 2 }));

function migratedTemplate() {
  return (template ??= (async () => {
    const name = `ragd_test_tpl_${process.pid}`;
    await adminSql().unsafe(`DROP DATABASE IF EXISTS ${name}`);
    await adminSql().unsafe(`CREATE DATABASE ${name}`);
    created.add(name);
    await migrateDatabase(withDb(name));
    return name;
  })());
}

/** A new database; migrated (a copy of the template) unless `empty`. Its URL. */
export async function createDatabase(options: { empty?: boolean } = {}): Promise<string> {
  const name = `ragd_test_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  if (options.empty) await adminSql().unsafe(`CREATE DATABASE ${name}`);
  else await adminSql().unsafe(`CREATE DATABASE ${name} TEMPLATE ${await migratedTemplate()}`);
  created.add(name);
  return withDb(name);
}

export async function dropDatabase(url: string) {
  const name = new URL(url).pathname.slice(1);
  await adminSql().unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  created.delete(name);
}

/** Drops every database this process made; for afterAll. */
export async function dropAllDatabases() {
  for (const name of [...created].reverse()) await adminSql().unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  created.clear();
  template = null;
  await admin?.close();
  admin = null;
}

/**
 * A PostgreSQL server of the test's own (initdb in a temporary directory, its own port), for
 * tests that stop and restart the database. Needs Debian's server binaries and root (the
 * server runs as the `postgres` user); null with the reason otherwise.
 */
export interface PrivatePostgres {
  url: string;
  /** `immediate` is a crash: no checkpoint, recovery from the WAL at start. */
  restart(mode: "fast" | "immediate"): Promise<void>;
  stop(): Promise<void>;
}

export function privatePostgresMissing(): string | null {
  if (process.getuid?.() !== 0) return "starting a private PostgreSQL needs root (it runs as the postgres user)";
  if (!Bun.which("runuser")) return "no runuser";
  if (!privateBin()) return "no PostgreSQL server binaries under /usr/lib/postgresql";
  return null;
}

function privateBin(): string | null {
  const glob = new Bun.Glob("*/bin/pg_ctl");
  const found = [...glob.scanSync({ cwd: "/usr/lib/postgresql", onlyFiles: true })].sort();
  return found.length ? `/usr/lib/postgresql/${found.at(-1)!.replace(/\/pg_ctl$/, "")}` : null;
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = privateBin()!;
  const { mkdtempSync, chownSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const dir = mkdtempSync(join(tmpdir(), "ragd-pg-"));
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  const uid = Number(Bun.spawnSync(["id", "-u", "postgres"]).stdout.toString().trim());
  const gid = Number(Bun.spawnSync(["id", "-g", "postgres"]).stdout.toString().trim());
  chownSync(dir, uid, gid);
  // Asynchronous, so the test's own requests go on while the server restarts.
  const asPostgres = async (args: string[]) => {
    const p = Bun.spawn(["runuser", "-u", "postgres", "--", ...args], { cwd: "/tmp", stdout: "pipe", stderr: "pipe" });
    if ((await p.exited) !== 0) throw new Error(`${args.join(" ")}: ${await new Response(p.stderr).text()}${await new Response(p.stdout).text()}`);
  };
  const data = join(dir, "data");
  await asPostgres([`${bin}/initdb`, "-D", data, "-A", "trust", "-U", "postgres", "--no-instructions"]);
  const ctl = (...args: string[]) => asPostgres([`${bin}/pg_ctl`, "-D", data, "-w", "-l", join(dir, "log"), "-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`, ...args]);
  await ctl("start");
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  return {
    url,
    restart: async (mode) => ctl("restart", "-m", mode),
    async stop() {
      try {
        await ctl("stop", "-m", "immediate");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
