// Repositories on a real SQLite file in a directory of their own, with project "p" in them,
// for tests that drive services in-process; `closeProjectRepos` (in afterEach) closes and
// removes every one opened.
import { openSqliteRepos } from "../../src/storage/sqlite";
import { cleanup, tempDir } from "./ragd";

const opened: { dir: string; close: () => Promise<void> }[] = [];

export async function projectRepos(prefix: string) {
  const dir = tempDir(prefix);
  const repos = openSqliteRepos(dir);
  opened.push({ dir, close: () => repos.close() });
  await repos.keys.createProject({ id: "p", name: "p", createdAt: 0 });
  return { dir, repos };
}

export async function closeProjectRepos() {
  for (const o of opened.splice(0)) {
    await o.close();
    cleanup(o.dir);
  }
}
