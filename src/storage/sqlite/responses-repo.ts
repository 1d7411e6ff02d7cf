import type { Database } from "bun:sqlite";
import type { ResponseRow, ResponsesRepo } from "../repos";

const COLUMNS = `id, project_id AS projectId, created_at AS createdAt, status, background, previous_id AS previousId,
  request, object, input_items AS inputItems, context, sources`;

type Stored = Omit<ResponseRow, "background"> & { background: number };
const fromRow = (r: Stored | null): ResponseRow | null => (r ? { ...r, background: r.background === 1 } : null);

const UNFINISHED = `status IN ('queued', 'in_progress')`;

// One process per data directory (storage/data-lock.ts): a run of any other runner is an
// orphan, and leases, timed by this process's clock, only tell the runs apart.
export class SqliteResponsesRepo implements ResponsesRepo {
  constructor(private readonly db: Database) {}

  async insert(r: ResponseRow, runner: string, leaseMs: number) {
    this.db
      .query(
        `INSERT INTO responses (id, project_id, created_at, status, background, previous_id, request, object, input_items, context, sources, runner, lease_until)
         VALUES ($id, $projectId, $createdAt, $status, $background, $previousId, $request, $object, $inputItems, $context, $sources, $runner, $leaseUntil)`,
      )
      .run({ ...r, background: r.background ? 1 : 0, runner, leaseUntil: Date.now() + leaseMs });
  }

  async update(id: string, runner: string, f: Pick<ResponseRow, "status" | "object" | "context" | "sources">) {
    return (
      this.db
        .query(`UPDATE responses SET status = $status, object = $object, context = $context, sources = $sources WHERE id = $id AND runner IS $runner AND ${UNFINISHED}`)
        .run({ id, runner, ...f }).changes > 0
    );
  }

  async get(projectId: string, id: string) {
    return fromRow(this.db.query(`SELECT ${COLUMNS} FROM responses WHERE id = $id AND project_id = $projectId`).get({ id, projectId }) as Stored | null);
  }

  async remove(projectId: string, id: string) {
    return this.db.query(`DELETE FROM responses WHERE id = $id AND project_id = $projectId`).run({ id, projectId }).changes > 0;
  }

  async renew(runner: string, ids: string[], leaseMs: number) {
    if (!ids.length) return [];
    return (this.db
      .query(`UPDATE responses SET lease_until = $leaseUntil WHERE runner = $runner AND ${UNFINISHED} AND id IN (SELECT value FROM json_each($ids)) RETURNING id`)
      .all({ runner, leaseUntil: Date.now() + leaseMs, ids: JSON.stringify(ids) }) as { id: string }[]).map((r) => r.id);
  }

  async orphans(runner: string) {
    return (this.db.query(`SELECT ${COLUMNS} FROM responses WHERE ${UNFINISHED} AND runner IS NOT $runner ORDER BY seq`).all({ runner }) as Stored[]).map((r) => fromRow(r)!);
  }

  async take(id: string, runner: string, leaseMs: number) {
    return (
      this.db
        .query(`UPDATE responses SET runner = $runner, lease_until = $leaseUntil WHERE id = $id AND ${UNFINISHED} AND runner IS NOT $runner`)
        .run({ id, runner, leaseUntil: Date.now() + leaseMs }).changes > 0
    );
  }

  async cancel(id: string, object: string) {
    return this.db.query(`UPDATE responses SET status = 'cancelled', object = $object WHERE id = $id AND ${UNFINISHED}`).run({ id, object }).changes > 0;
  }

  async release(runner: string) {
    this.db.query(`UPDATE responses SET lease_until = NULL WHERE runner = $runner AND ${UNFINISHED}`).run({ runner });
  }
}
