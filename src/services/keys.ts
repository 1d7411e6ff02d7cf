import { createHash, timingSafeEqual } from "node:crypto";
import { nowSeconds } from "../util/time";
import type { KeysRepo, KeyRow, Project } from "../storage/repos";
import { newApiKey, newKeyId, newProjectId } from "../util/ids";

export interface Principal {
  projectId: string;
  /** Stable per key, for rate limiting; the env key has its own. */
  keyId: string;
}

export const DEFAULT_PROJECT = "default";
const PROJECT_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

// Keys carry 238 bits of randomness, so one SHA-256 round is enough: a slow password hash
// buys nothing against guessing and would cost every request.
export const hashKey = (key: string) => createHash("sha256").update(key).digest();

export class KeysService {
  private readonly envKeyHash: Buffer | null;
  private envProjectId: string | null = null;

  constructor(
    private readonly repo: KeysRepo,
    envKey: string | null,
  ) {
    this.envKeyHash = envKey ? hashKey(envKey) : null;
  }

  async init() {
    if (this.envKeyHash) this.envProjectId = (await this.ensureProject(DEFAULT_PROJECT)).id;
  }

  async ensureProject(name: string): Promise<Project> {
    if (!PROJECT_NAME_RE.test(name))
      throw new Error(`invalid project name "${name}": use 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit`);
    return (await this.repo.projectByName(name)) ?? (await this.repo.createProject({ id: newProjectId(), name, createdAt: nowSeconds() }));
  }

  /** Makes a key for the project (creating the project if new). The key itself is returned once and never stored. */
  async create(projectName: string): Promise<{ key: string; id: string; project: Project }> {
    const project = await this.ensureProject(projectName);
    const key = newApiKey();
    const id = newKeyId();
    await this.repo.insertKey({ id, projectId: project.id, hash: hashKey(key).toString("hex"), prefix: key.slice(0, 12), createdAt: nowSeconds() });
    return { key, id, project };
  }

  list(): Promise<KeyRow[]> {
    return this.repo.list();
  }

  revoke(id: string): Promise<boolean> {
    return this.repo.revoke(id, nowSeconds());
  }

  async hasKeys(): Promise<boolean> {
    return this.envKeyHash !== null || (await this.repo.count()) > 0;
  }

  async authenticate(presented: string): Promise<Principal | null> {
    const h = hashKey(presented);
    if (this.envKeyHash && timingSafeEqual(h, this.envKeyHash)) return { projectId: this.envProjectId!, keyId: "env" };
    // The lookup is by hash, so its timing says nothing useful about the key; the final
    // comparison is constant-time all the same.
    const row = await this.repo.findActiveByHash(h.toString("hex"));
    if (!row || !timingSafeEqual(Buffer.from(row.hash, "hex"), h)) return null;
    return { projectId: row.projectId, keyId: row.id };
  }
}
