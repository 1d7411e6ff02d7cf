import type { ResponseRow, ResponsesRepo } from "../repos";
import type { Pg } from "./db";

const COLUMNS = `id, project_id AS "projectId", created_at::float8 AS "createdAt", status, background = 1 AS background, previous_id AS "previousId",
  request, object, input_items AS "inputItems", context, sources`;

export class PgResponsesRepo implements ResponsesRepo {
  constructor(private readonly db: Pg) {}

  async insert(r: ResponseRow) {
    await this.db.run(
      `INSERT INTO responses (id, project_id, created_at, status, background, previous_id, request, object, input_items, context, sources)
       VALUES ($id, $projectId, $createdAt, $status, $background, $previousId, $request, $object, $inputItems, $context, $sources)`,
      { ...r, background: r.background ? 1 : 0 },
    );
  }

  async update(id: string, f: Pick<ResponseRow, "status" | "object" | "context" | "sources">) {
    return (await this.db.run(`UPDATE responses SET status = $status, object = $object, context = $context, sources = $sources WHERE id = $id`, { id, ...f })) > 0;
  }

  get(projectId: string, id: string) {
    return this.db.get<ResponseRow>(`SELECT ${COLUMNS} FROM responses WHERE id = $id AND project_id = $projectId`, { id, projectId });
  }

  async remove(projectId: string, id: string) {
    return (await this.db.run(`DELETE FROM responses WHERE id = $id AND project_id = $projectId`, { id, projectId })) > 0;
  }

  unfinished() {
    return this.db.all<ResponseRow>(`SELECT ${COLUMNS} FROM responses WHERE status IN ('queued', 'in_progress') ORDER BY seq`);
  }
}
