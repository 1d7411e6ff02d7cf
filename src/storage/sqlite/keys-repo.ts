import type { Database } from "bun:sqlite";
import type { KeyRow, KeysRepo, Project } from "../repos";

export class SqliteKeysRepo implements KeysRepo {
  constructor(private readonly db: Database) {}

  async projectByName(name: string) {
    return (this.db.query(`SELECT id, name, created_at AS createdAt FROM projects WHERE name = $name`).get({ name }) as Project | null) ?? null;
  }

  async projectById(id: string) {
    return (this.db.query(`SELECT id, name, created_at AS createdAt FROM projects WHERE id = $id`).get({ id }) as Project | null) ?? null;
  }

  async createProject(p: Project) {
    this.db.query(`INSERT INTO projects (id, name, created_at) VALUES ($id, $name, $createdAt) ON CONFLICT(name) DO NOTHING`).run({ ...p });
    return (await this.projectByName(p.name))!;
  }

  async insertKey(k: { id: string; projectId: string; hash: string; prefix: string; createdAt: number }) {
    this.db
      .query(`INSERT INTO api_keys (id, project_id, hash, prefix, created_at) VALUES ($id, $projectId, $hash, $prefix, $createdAt)`)
      .run({ ...k });
  }

  async findActiveByHash(hash: string) {
    return (this.db
      .query(`SELECT id, project_id AS projectId, hash FROM api_keys WHERE hash = $hash AND revoked_at IS NULL`)
      .get({ hash }) as { id: string; projectId: string; hash: string } | null) ?? null;
  }

  async list() {
    return this.db
      .query(
        `SELECT k.id, k.project_id AS projectId, p.name AS projectName, k.prefix, k.created_at AS createdAt, k.revoked_at AS revokedAt
         FROM api_keys k JOIN projects p ON p.id = k.project_id ORDER BY k.created_at, k.id`,
      )
      .all() as KeyRow[];
  }

  async revoke(id: string, now: number) {
    return this.db.query(`UPDATE api_keys SET revoked_at = $now WHERE revoked_at IS NULL AND id = $id`).run({ id, now }).changes > 0;
  }

  async count() {
    return (this.db.query(`SELECT COUNT(*) AS n FROM api_keys WHERE revoked_at IS NULL`).get() as { n: number }).n;
  }
}
