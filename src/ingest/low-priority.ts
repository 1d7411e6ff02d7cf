import { dlopen, FFIType } from "bun:ffi";

/**
 * Lowers the calling thread's scheduling priority (Linux nice values are per thread), so a
 * parse worker yields the CPU to the HTTP thread when cores are busy: API latency stays
 * flat while documents are ingested, and parsing still uses every idle cycle.
 */
export function lowerThreadPriority(nice = 10): boolean {
  if (process.platform !== "linux") return false;
  try {
    const libc = dlopen("libc.so.6", {
      setpriority: { args: [FFIType.i32, FFIType.u32, FFIType.i32], returns: FFIType.i32 },
    });
    // PRIO_PROCESS with who = 0: on Linux this is the calling thread only.
    const ok = libc.symbols.setpriority(0, 0, nice) === 0;
    libc.close();
    return ok;
  } catch {
    return false;
  }
}
