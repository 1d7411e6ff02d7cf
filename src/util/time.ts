export const nowSeconds = () => Math.floor(Date.now() / 1000);

/**
 * `p`'s value, or undefined once `ms` have passed. The timer is cleared when `p` settles
 * first: a pending one (Bun.sleep's too) holds the process open until it fires.
 */
export async function waitAtMost<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([p, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
