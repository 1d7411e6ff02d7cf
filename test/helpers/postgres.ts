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
