// What a file's status_details says while it is ingested.

// A file this quick is done before anyone reads an estimate.
const ESTIMATE_AFTER_MS = 10_000;
// The pace of a step is trusted once it has been measured over this long.
const MIN_PACE_MS = 1_000;

/**
 * The step a file's ingestion is at ("parsing page 12 of 619", "embedding chunk 257 of 5,632")
 * and, once the file has taken more than 10 s, how long that step has left at the pace it has
 * kept so far.
 */
export class ProgressReport {
  private message: string;
  private step: { name: string; total: number; firstDone: number; firstAt: number; done: number; at: number } | null = null;
  private readonly startedAt: number;

  constructor(
    initial: string,
    private readonly now: () => number = Date.now,
  ) {
    this.message = initial;
    this.startedAt = now();
  }

  set(message: string) {
    this.message = message;
    const m = /^(.*?)(\d+) of ([\d,]+)$/.exec(message);
    if (!m) {
      this.step = null;
      return;
    }
    const name = m[1]!;
    const done = Number(m[2]);
    const total = Number(m[3]!.replaceAll(",", ""));
    const t = this.now();
    if (this.step?.name === name && this.step.total === total && done >= this.step.done) Object.assign(this.step, { done, at: t });
    else this.step = { name, total, firstDone: done, firstAt: t, done, at: t };
  }

  toString(): string {
    const s = this.step;
    if (!s || this.now() - this.startedAt < ESTIMATE_AFTER_MS) return this.message;
    const elapsed = s.at - s.firstAt;
    const progressed = s.done - s.firstDone;
    if (elapsed < MIN_PACE_MS || progressed <= 0) return this.message;
    const leftMs = ((s.total - s.done) * elapsed) / progressed - (this.now() - s.at);
    return `${this.message} (about ${duration(Math.max(1000, leftMs))} left)`;
  }
}

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 90) return `${s} s`;
  const min = Math.round(s / 60);
  if (min < 90) return `${min} min`;
  return `${Math.floor(min / 60)} h ${min % 60} min`;
}
