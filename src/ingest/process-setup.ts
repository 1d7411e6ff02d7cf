import { dlopen, FFIType } from "bun:ffi";

function libc() {
  return dlopen("libc.so.6", {
    setpriority: { args: [FFIType.i32, FFIType.u32, FFIType.i32], returns: FFIType.i32 },
    prctl: { args: [FFIType.i32, FFIType.u64, FFIType.u64, FFIType.u64, FFIType.u64], returns: FFIType.i32 },
  });
}

/**
 * Lowers the calling thread's scheduling priority (Linux nice values are per thread, and
 * threads started afterwards inherit it), so a parse process yields the CPU to the server's
 * HTTP thread when cores are busy: API latency stays flat while documents are ingested, and
 * parsing still uses every idle cycle.
 */
export function lowerPriority(nice = 10): boolean {
  if (process.platform !== "linux") return false;
  try {
    const c = libc();
    // PRIO_PROCESS with who = 0: on Linux this is the calling thread.
    const ok = c.symbols.setpriority(0, 0, nice) === 0;
    c.close();
    return ok;
  } catch {
    return false;
  }
}

const PR_SET_PDEATHSIG = 1;
const SIGKILL = 9;

/**
 * The kernel kills this process when the server dies (even by kill -9), so no parse outlives
 * it. `parentPid` is the server's pid as it spawned us (RAGD_PARENT_PID).
 */
export function dieWithParent(parentPid: number): boolean {
  if (process.platform !== "linux") return false;
  try {
    const c = libc();
    const ok = c.symbols.prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) === 0;
    c.close();
    // The server may have died before the call above: then this process was re-parented.
    if (parentPid && process.ppid !== parentPid) process.exit(0);
    return ok;
  } catch {
    return false;
  }
}
