// Bun (1.4.5) aborts the whole process when a Worker is terminated while onnxruntime is
// running on it; terminating it between runs is safe. A worker therefore marks its native
// sections in shared memory, and its owner asks it to stop and terminates it only outside
// one. Dekker-style: the owner raises `stop` then reads `inside`; the worker raises `inside`
// then reads `stop`; sequentially consistent atomics mean one of them sees the other.
const STOP = 0;
const INSIDE = 1;

export class Stopped extends Error {
  constructor() {
    super("stopped by its owner");
  }
}

let current: Int32Array | null = null;

/** Worker side: installs the cells the owner shares (see `guardedTerminate`). */
export function useNativeGuard(buffer: SharedArrayBuffer) {
  current = new Int32Array(buffer);
}

/** Worker side: runs `fn` as a native section, or throws Stopped when the owner asked to stop. */
export function native<T>(fn: () => T): T {
  const cells = current;
  if (!cells) return fn();
  Atomics.add(cells, INSIDE, 1);
  try {
    if (Atomics.load(cells, STOP)) throw new Stopped();
    return fn();
  } finally {
    Atomics.sub(cells, INSIDE, 1);
  }
}

export const newGuardBuffer = () => new SharedArrayBuffer(8);

/** Owner side: terminates the worker as soon as it is outside native code. */
export async function guardedTerminate(worker: Worker, buffer: SharedArrayBuffer) {
  const cells = new Int32Array(buffer);
  Atomics.store(cells, STOP, 1);
  while (Atomics.load(cells, INSIDE) > 0) await Bun.sleep(20);
  worker.terminate();
}
