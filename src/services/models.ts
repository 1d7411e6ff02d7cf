import { fail } from "../errors";
import type { ModelServers } from "../llm/upstream";
import type { EmbeddingsService } from "./embeddings";

const DEFAULT_ALIAS = "default";

/** `/v1/models`: the embedding model ragd runs, and the chat models its model servers answer with. */
export class ModelsService {
  private readonly created = Math.floor(Date.now() / 1000);

  constructor(
    private readonly embeddings: EmbeddingsService,
    private readonly servers: ModelServers,
  ) {}

  async list() {
    const chat = (await this.servers.models()).map((m) => ({ id: m.id, object: "model" as const, created: this.created, owned_by: m.ownedBy }));
    return { object: "list" as const, data: [this.embeddings.modelObject(), ...chat.filter((m) => m.id !== this.embeddings.model.id)] };
  }

  async get(id: string) {
    if (id === this.embeddings.model.id || id === DEFAULT_ALIAS) return this.embeddings.modelObject();
    const m = (await this.servers.models()).find((x) => x.id === id);
    if (!m) throw fail("model_not_found", `The model '${id}' does not exist on this server; GET /v1/models lists the models it serves.`, "model");
    return { id: m.id, object: "model" as const, created: this.created, owned_by: m.ownedBy };
  }
}
