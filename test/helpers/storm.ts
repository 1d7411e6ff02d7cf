// The machinery of a seeded storm of API calls (test/concurrency-storm.e2e.test.ts): its PRNG,
// the rules every error answer keeps, and the log of calls with their send and answer times.
import { writeFileSync } from "node:fs";
import OpenAI from "openai";
import { ERRORS } from "../../src/errors";

export { prng, type Rng } from "./prng";

// ---------------------------------------------------------------------------------------
// Calls, their log, and the rules every answer must keep.

export interface LogRec { n: number; kind: string; proj: string; what: string; sent: number; done: number; calls: string[] }
export type Res<T> = { ok: true; value: T; sent: number; done: number } | { ok: false; status: number; code?: string | null; sent: number; done: number };

/** A 503 the error table documents as temporary ("retry"), sent with retry-after: allowed. */
export function allowed503(e: InstanceType<typeof OpenAI.APIError>) {
  const entry = (ERRORS as Record<string, { status: number; doc: string }>)[String(e.code)];
  return e.status === 503 && entry?.status === 503 && /retry/i.test(entry.doc) && !!e.headers?.get("retry-after");
}

/** What is wrong with an error answer: its status, or its OpenAI envelope. */
export function errorProblems(e: InstanceType<typeof OpenAI.APIError>): string[] {
  const p: string[] = [];
  if (e.status! >= 500 && !allowed503(e)) p.push(`server error ${e.status} ${JSON.stringify(e.error)}`);
  if (e.status === 403) p.push("403: must be a 404");
  const env = e.error as { message?: unknown; type?: unknown; code?: unknown } | undefined;
  if (!env || typeof env !== "object") return [...p, `${e.status} without an OpenAI error envelope`];
  if (typeof env.message !== "string" || typeof env.type !== "string") p.push(`envelope lacks message/type: ${JSON.stringify(env)}`);
  const entries = Object.entries(ERRORS) as [string, { status: number; type: string; wire?: null }][];
  const known = entries.some(([c, x]) => (env.code === null ? x.wire === null : c === env.code) && x.status === e.status && x.type === env.type);
  if (!known) p.push(`code ${JSON.stringify(env.code)}/${String(env.type)} does not go with ${e.status} in src/errors.ts`);
  return p;
}

export class Recorder {
  log: LogRec[] = [];
  problems: { n: number | null; text: string }[] = [];
  t0 = performance.now();
  now = () => Math.round((performance.now() - this.t0) * 10) / 10;
  problem = (n: number | null, text: string): void => void this.problems.push({ n, text });
  /** The operation each failed call's x-request-id belongs to, to tie the server's log lines to it. */
  requestIds = new Map<string, number>();

  async call<T>(log: LogRec, label: string, fn: () => Promise<T>): Promise<Res<T>> {
    const sent = this.now();
    try {
      const value = await fn();
      log.calls.push(`${label} 2xx [${sent}-${this.now()}]`);
      return { ok: true, value, sent, done: this.now() };
    } catch (e) {
      const done = this.now();
      if (!(e instanceof OpenAI.APIError) || e.status === undefined) {
        this.problem(log.n, `${label}: no answer: ${String(e)}`);
        log.calls.push(`${label} threw [${sent}-${done}]`);
        return { ok: false, status: -1, sent, done };
      }
      for (const p of errorProblems(e)) this.problem(log.n, `${label}: ${p}`);
      if (e.requestID) this.requestIds.set(e.requestID, log.n);
      const message = String((e.error as { message?: string } | undefined)?.message).slice(0, 80);
      log.calls.push(`${label} ${e.status} ${e.code ?? ""} "${message}" [${sent}-${done}]`);
      // an allowed 503 is a transient refusal: status 0, which no caller needs to explain
      return { ok: false, status: allowed503(e) ? 0 : e.status, code: e.code, sent, done };
    }
  }

  /** A failed call must be a 404 (or an allowed 503), and a 404 needs `why`. */
  judgeMiss(log: LogRec, label: string, r: Res<unknown>, why: boolean, otherwise = "no delete of its objects had been sent") {
    if (r.ok || r.status === 0) return;
    if (r.status >= 500) return; // (reported by call())
    if (r.status !== 404) this.problem(log.n, `${label}: unexpected ${r.status} ${r.code ?? ""}`);
    else if (!why) this.problem(log.n, `${label}: 404, but ${otherwise}`);
  }

  /**
   * The server's log lines of faults ("unhandled"): one tied by its request id to a call whose
   * answer was already reported adds nothing; the others become problems.
   */
  addLoggedFaults(stderr: string) {
    for (const line of stderr.split("\n").filter((l) => /unhandled|uncaught/i.test(l))) {
      const n = this.requestIds.get(/request_id=(\S+)/.exec(line)?.[1] ?? "");
      const answered = this.problems.find((p) => p.n === n && p.text.includes("server error"));
      if (answered) answered.text = `${answered.text.replace(/ \{"message.*/, "")}, and the server logged ${line.replace(/.*error=/, "").slice(0, 200)}`;
      else this.problem(n ?? null, `the server logged: ${line.slice(0, 300)}`);
    }
  }

  /**
   * The failure message: the seed; the problems grouped by kind (ids and numbers blurred), each
   * kind with its first two operations in full; the log's tail. `dump` gets the whole log.
   */
  report(seed: number, dump?: string) {
    const fmt = (l: LogRec) => `  #${l.n} ${l.kind} ${l.proj} ${l.what} [${l.sent}-${l.done} ms] ${l.calls.join("; ")}`;
    const byN = new Map(this.log.map((l) => [l.n, l]));
    const groups = new Map<string, typeof this.problems>();
    for (const p of this.problems) {
      const key = p.text.replace(/\b(file-|vs_|vsfb_|req_)\w+/g, "$1…").replace(/\d+(\.\d+)?/g, "N").slice(0, 160);
      groups.set(key, [...(groups.get(key) ?? []), p]);
    }
    // each shown problem's own operation, and the ones its text names (#n)
    const ops = (p: { n: number | null; text: string }) => [p.n, ...[...p.text.matchAll(/#(\d+)/g)].map((m) => Number(m[1]))].flatMap((n) => (n !== null && byN.has(n) ? [fmt(byN.get(n)!)] : []));
    const lines = [...groups.values()].map((ps) => [`- ${ps.length}× ${ps[0]!.text}`, ...ps.slice(0, 2).flatMap(ops)].join("\n"));
    const bySent = [...this.log].sort((a, b) => a.sent - b.sent);
    if (dump) writeFileSync(dump, bySent.map(fmt).join("\n") + "\n");
    const tail = [...this.log].sort((a, b) => a.done - b.done).slice(-50).map(fmt);
    return `seed ${seed} (STORM_SEED=${seed}): ${this.problems.length} problem(s)\n${lines.join("\n")}\n\nlast 50 operations by answer time:\n${tail.join("\n")}`;
  }
}
