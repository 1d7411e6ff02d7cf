import { Elysia } from "elysia";
import type { StoreFileStatus } from "../../storage/repos";
import { principal, type HttpContext } from "../context";
import { jsonBody } from "../json";
import { enumParam, intParam, stringParam } from "../query";

const POLL_AFTER_MS = "1000";

type Query = Record<string, string | undefined>;

const listParams = (q: Query) => ({
  limit: intParam(q, "limit", 1, 100, 20),
  order: enumParam(q, "order", ["asc", "desc"] as const, "desc"),
  after: stringParam(q, "after"),
  before: stringParam(q, "before"),
});

const STATUSES = ["in_progress", "completed", "failed", "cancelled"] as const;

const pollWhile = (set: { headers: Record<string, string | number> }, inProgress: boolean) => {
  if (inProgress) set.headers["openai-poll-after-ms"] = POLL_AFTER_MS;
};

export function vectorStoreRoutes(ctx: HttpContext) {
  const vs = ctx.vectorStores;
  return new Elysia({ prefix: "/v1/vector_stores" })
    .post("/", async ({ request }) => vs.create((await principal(ctx, request, "requests")).projectId, await jsonBody(request, true)), { parse: "none" })
    .get("/", async ({ request, query }) => vs.list((await principal(ctx, request, "requests")).projectId, listParams(query)))
    .get("/:id", async ({ request, params, set }) => {
      const s = await vs.get((await principal(ctx, request, "requests")).projectId, params.id);
      pollWhile(set, s.status === "in_progress");
      return s;
    })
    .post("/:id", async ({ request, params }) => vs.update((await principal(ctx, request, "requests")).projectId, params.id, await jsonBody(request, true)), { parse: "none" })
    .delete("/:id", async ({ request, params }) => vs.delete((await principal(ctx, request, "requests")).projectId, params.id))
    .post("/:id/search", async ({ request, params }) => vs.searchStore((await principal(ctx, request, "requests")).projectId, params.id, await jsonBody(request)), { parse: "none" })
    .post("/:id/files", async ({ request, params }) => vs.attach((await principal(ctx, request, "requests")).projectId, params.id, await jsonBody(request)), { parse: "none" })
    .get("/:id/files", async ({ request, params, query }) =>
      vs.listFiles((await principal(ctx, request, "requests")).projectId, params.id, {
        ...listParams(query),
        filter: query.filter === undefined ? undefined : (enumParam(query, "filter", STATUSES, "completed") as StoreFileStatus),
      }),
    )
    .get("/:id/files/:fileId", async ({ request, params, set }) => {
      const f = await vs.getFile((await principal(ctx, request, "requests")).projectId, params.id, params.fileId);
      pollWhile(set, f.status === "in_progress");
      return f;
    })
    .post("/:id/files/:fileId", async ({ request, params }) => vs.updateFile((await principal(ctx, request, "requests")).projectId, params.id, params.fileId, await jsonBody(request)), {
      parse: "none",
    })
    .delete("/:id/files/:fileId", async ({ request, params }) => vs.detach((await principal(ctx, request, "requests")).projectId, params.id, params.fileId))
    .get("/:id/files/:fileId/content", async ({ request, params }) => vs.fileContent((await principal(ctx, request, "requests")).projectId, params.id, params.fileId))
    .post("/:id/file_batches", async ({ request, params }) => vs.createBatch((await principal(ctx, request, "requests")).projectId, params.id, await jsonBody(request)), { parse: "none" })
    .get("/:id/file_batches/:batchId", async ({ request, params, set }) => {
      const b = await vs.getBatch((await principal(ctx, request, "requests")).projectId, params.id, params.batchId);
      pollWhile(set, b.status === "in_progress");
      return b;
    })
    .post("/:id/file_batches/:batchId/cancel", async ({ request, params }) => vs.cancelBatch((await principal(ctx, request, "requests")).projectId, params.id, params.batchId), {
      parse: "none",
    })
    .get("/:id/file_batches/:batchId/files", async ({ request, params, query }) =>
      vs.listFiles((await principal(ctx, request, "requests")).projectId, params.id, {
        ...listParams(query),
        batchId: params.batchId,
        filter: query.filter === undefined ? undefined : (enumParam(query, "filter", STATUSES, "completed") as StoreFileStatus),
      }),
    );
}
