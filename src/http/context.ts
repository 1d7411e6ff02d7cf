import type { Config } from "../config";
import type { DiskSpace } from "../storage/disk-space";
import type { EmbeddingsService } from "../services/embeddings";
import type { FilesService } from "../services/files";
import type { UploadsService } from "../services/uploads";
import type { VectorStoresService } from "../services/vector-stores";
import type { KeysService } from "../services/keys";
import type { ModelsService } from "../services/models";
import type { ResponsesService } from "../services/responses";
import type { ChatService } from "../services/chat";
import type { ConsoleService } from "../services/console";
import type { RateLimiter } from "./rate-limit";
import type { ReadyCheck } from "./routes/system";

/** What routes need: the services, and what the contract plugin checks a request against. */
export interface HttpContext {
  config: Config;
  files: FilesService;
  uploads: UploadsService;
  keys: KeysService;
  vectorStores: VectorStoresService;
  embeddings: EmbeddingsService;
  models: ModelsService;
  responses: ResponsesService;
  chat: ChatService;
  console: ConsoleService;
  limiter: RateLimiter;
  /** Readiness (/ready); null where nothing is checked (tests that build the app alone). */
  ready?: ReadyCheck | null;
  /** The data volume's free space; null when not watched (tests that build the app alone). */
  disk: DiskSpace | null;
}
