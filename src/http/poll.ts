/** Tells SDK pollers (`createAndPoll`, `waitForProcessing`) how long to wait before asking again. */
export function pollWhile(set: { headers: Record<string, string | number> }, inProgress: boolean) {
  if (inProgress) set.headers["openai-poll-after-ms"] = "1000";
}
