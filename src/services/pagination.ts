/** OpenAI's cursor page: callers fetch limit+1 rows, so has_more is never stuck at true. */
export function listPage<T extends { id: string }>(data: T[], hasMore: boolean) {
  return { object: "list" as const, data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: hasMore };
}
