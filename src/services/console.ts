import { notFound } from "../errors";
import type { ChunksRepo, KeysRepo } from "../storage/repos";
import type { Principal } from "./keys";
import type { FilesService } from "./files";

/** What the console asks beyond the OpenAI API: who is signed in, and a file's chunks. */
export class ConsoleService {
  constructor(
    private readonly files: FilesService,
    private readonly chunks: ChunksRepo,
    private readonly keys: KeysRepo,
  ) {}

  async whoami(p: Principal) {
    const project = await this.keys.projectById(p.projectId);
    if (!project) throw notFound("project", p.projectId, null);
    return { object: "ragd.session" as const, project: { id: project.id, name: project.name } };
  }

  /** The chunks search reads, with where each came from (page, slide, sheet rows, time). */
  async fileChunks(projectId: string, fileId: string, offset: number, limit: number) {
    const file = await this.files.get(projectId, fileId);
    const { rows, total } = await this.chunks.fileChunks(file.id, offset, limit);
    return {
      object: "list" as const,
      data: rows.map((r) => ({ index: r.index, text: r.text, tokens: r.tokens, location: JSON.parse(r.location) as Record<string, unknown> })),
      total,
      offset,
    };
  }
}
