import type { Database } from "bun:sqlite";
import type { ResponseRow, ResponsesRepo } from "../repos";

const COLUMNS = `id, project_id AS projectId, created_at AS createdAt, status, background, previous_id AS previousId,
  request, object, input_items AS inputItems, context, sources`;

type Stored = Omit<ResponseRow, "background"> & { background: number };
const fromRow = (r: Stored | null): ResponseRow | null => (r ? { ...r, background: r.background === 1 } : null);

export class SqliteResponsesRepo implements ResponsesRepo {
  constructor(private readonly db: Database) {}

  async insert(r: ResponseRow) {
    this.db
      .query(
        `INSERT INTO responses (id, project_id, created_at, status, background, previous_id, request, object, input_items, context, sources)
         VALUES ($id, $projectId, $createdAt, $status, $background, $previousId, $request, $object, $inputItems, $context, $sources)`,
      )
      .run({ ...r, background: r.background ? 1 : 0 });
  }

  async update(id: string, f: Pick<ResponseRow, "status" | "object" | "context" | "sources">) {
    return this.db.query(`UPDATE responses SET status = $status, object = $object, context = $context, sources = $sources WHERE id = $id`).run({ id, ...f }).changes > 0;
  }

  async get(projectId: string, id: string) {
    return fromRow(this.db.query(`SELECT ${COLUMNS} FROM responses WHERE id = $id AND project_id = $projectId`).get({ id, projectId }) as Stored | null);
  }

  async remove(projectId: string, id: string) {
    return this.db.query(`DELETE FROM responses WHERE id = $id AND project_id = $projectId`).run({ id, projectId }).changes > 0;
  }

  async unfinished() {
    return (this.db.query(`SELECT ${COLUMNS} FROM responses WHERE status IN ('queued', 'in_progress') ORDER BY seq`).all() as Stored[]).map((r) => fromRow(r)!);
  }
}
