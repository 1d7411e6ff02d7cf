const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const;
export type LogLevel = keyof typeof LEVELS;

let threshold: number = LEVELS.info;
export const setLogLevel = (l: LogLevel) => {
  threshold = LEVELS[l];
};

let json = false;
/** `json`: one JSON object per line ({time, level, msg, ...fields}), for log shippers. */
export const setLogFormat = (f: "text" | "json") => {
  json = f === "json";
};

// One line per event on stderr, so stdout stays free for what a command prints (a new key).
function emit(level: LogLevel, msg: string, fields?: Record<string, unknown>) {
  if (LEVELS[level] < threshold) return;
  if (json) {
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
    return;
  }
  const extra = fields ? " " + Object.entries(fields).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(" ") : "";
  process.stderr.write(`${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${msg}${extra}\n`);
}

export const log = {
  /** Whether a line at this level would be written: skip building one that would not. */
  enabled: (level: LogLevel) => LEVELS[level] >= threshold,
  debug: (m: string, f?: Record<string, unknown>) => emit("debug", m, f),
  info: (m: string, f?: Record<string, unknown>) => emit("info", m, f),
  warn: (m: string, f?: Record<string, unknown>) => emit("warn", m, f),
  error: (m: string, f?: Record<string, unknown>) => emit("error", m, f),
};
