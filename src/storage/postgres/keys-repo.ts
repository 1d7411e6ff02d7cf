import type { KeyRow, KeysRepo, Project } from "../repos";
import type { Pg } from "./db";

const PROJECT = `id, name, created_at::float8 AS "createdAt"`;

export class PgKeysRepo implements KeysRepo {
  constructor(private readonly db: Pg) {}

  projectByName(name: string) {
    return this.db.get<Project>(`SELECT ${PROJECT} FROM projects WHERE name = $name`, { name });
  }

  projectById(id: string) {
    return this.db.get<Project>(`SELECT ${PROJECT} FROM projects WHERE id = $id`, { id });
  }

  async createProject(p: Project) {
    await this.db.run(`INSERT INTO projects (id, name, created_at) VALUES ($id, $name, $createdAt) ON CONFLICT (name) DO NOTHING`, { ...p });
    return (await this.projectByName(p.name))!;
  }

  async insertKey(k: { id: string; projectId: string; hash: string; prefix: string; createdAt: number }) {
    await this.db.run(`INSERT INTO api_keys (id, project_id, hash, prefix, created_at) VALUES ($id, $projectId, $hash, $prefix, $createdAt)`, { ...k });
  }

  findActiveByHash(hash: string) {
    return this.db.get<{ id: string; projectId: string; hash: string }>(`SELECT id, project_id AS "projectId", hash FROM api_keys WHERE hash = $hash AND revoked_at IS NULL`, { hash });
  }

  list() {
    return this.db.all<KeyRow>(
      `SELECT k.id, k.project_id AS "projectId", p.name AS "projectName", k.prefix, k.created_at::float8 AS "createdAt", k.revoked_at::float8 AS "revokedAt"
       FROM api_keys k JOIN projects p ON p.id = k.project_id ORDER BY k.created_at, k.id`,
    );
  }

  async revoke(id: string, now: number) {
    return (await this.db.run(`UPDATE api_keys SET revoked_at = $now WHERE revoked_at IS NULL AND id = $id`, { id, now })) > 0;
  }

  async count() {
    return (await this.db.get<{ n: number }>(`SELECT COUNT(*)::int AS n FROM api_keys WHERE revoked_at IS NULL`))!.n;
  }
}
