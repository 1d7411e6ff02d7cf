import type { ResponseRow, ResponsesRepo } from "../repos";
import type { Pg } from "./db";

const COLUMNS = `id, project_id AS "projectId", created_at::float8 AS "createdAt", status, background = 1 AS background, previous_id AS "previousId",
  request, object, input_items AS "inputItems", context, sources`;

const UNFINISHED = `status IN ('queued', 'in_progress')`;
// Leases run on the database's clock: the processes' own clocks may disagree.
const NOW_MS = `(extract(epoch from clock_timestamp()) * 1000)::bigint`;
// A run whose lease lapsed: its process died (or stopped, handing its leases back).
const ORPHANED = `(lease_until IS NULL OR lease_until < ${NOW_MS})`;

export class PgResponsesRepo implements ResponsesRepo {
  constructor(private readonly db: Pg) {}

  async insert(r: ResponseRow, runner: string, leaseMs: number) {
    await this.db.run(
      `INSERT INTO responses (id, project_id, created_at, status, background, previous_id, request, object, input_items, context, sources, runner, lease_until)
       VALUES ($id, $projectId, $createdAt, $status, $background, $previousId, $request, $object, $inputItems, $context, $sources, $runner, ${NOW_MS} + $leaseMs)`,
      { ...r, background: r.background ? 1 : 0, runner, leaseMs },
    );
  }

  async update(id: string, runner: string, f: Pick<ResponseRow, "status" | "object" | "context" | "sources">) {
    return (await this.db.run(`UPDATE responses SET status = $status, object = $object, context = $context, sources = $sources WHERE id = $id AND runner = $runner AND ${UNFINISHED}`, { id, runner, ...f })) > 0;
  }

  get(projectId: string, id: string) {
    return this.db.get<ResponseRow>(`SELECT ${COLUMNS} FROM responses WHERE id = $id AND project_id = $projectId`, { id, projectId });
  }

  async remove(projectId: string, id: string) {
    return (await this.db.run(`DELETE FROM responses WHERE id = $id AND project_id = $projectId`, { id, projectId })) > 0;
  }

  async renew(runner: string, ids: string[], leaseMs: number) {
    if (!ids.length) return [];
    const rows = await this.db.all<{ id: string }>(`UPDATE responses SET lease_until = ${NOW_MS} + $leaseMs WHERE runner = $runner AND ${UNFINISHED} AND id = ANY($ids::text[]) RETURNING id`, {
      runner,
      leaseMs,
      ids,
    });
    return rows.map((r) => r.id);
  }

  orphans(_runner: string) {
    return this.db.all<ResponseRow>(`SELECT ${COLUMNS} FROM responses WHERE ${UNFINISHED} AND ${ORPHANED} ORDER BY seq`);
  }

  async take(id: string, runner: string, leaseMs: number) {
    return (await this.db.run(`UPDATE responses SET runner = $runner, lease_until = ${NOW_MS} + $leaseMs WHERE id = $id AND ${UNFINISHED} AND ${ORPHANED}`, { id, runner, leaseMs })) > 0;
  }

  async cancel(id: string, object: string) {
    return (await this.db.run(`UPDATE responses SET status = 'cancelled', object = $object WHERE id = $id AND ${UNFINISHED}`, { id, object })) > 0;
  }

  async release(runner: string) {
    await this.db.run(`UPDATE responses SET lease_until = NULL WHERE runner = $runner AND ${UNFINISHED}`, { runner });
  }
}
