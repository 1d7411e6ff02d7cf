// ragd's own native kernels (src/search/*.c, one library: libragd_kernels.so), opened through
// bun:ffi. Each kernel has a version function: a library staged by an older build is refused
// instead of being called with the wrong arguments, and search runs that kernel's JavaScript
// loop (same results, slower).
import { dlopen, type Symbols } from "bun:ffi";
import { log } from "../util/log";
import { sourceKernelsPath } from "./assets";
import { IN_BINARY } from "./extract";

/**
 * One kernel's symbols from the library at `path`, when its `abi` function answers `abi`;
 * null (and a warning naming `what` and what runs instead) when they cannot be had.
 */
export function openKernel<S extends Symbols>(path: string, symbols: S, abiSymbol: keyof S & string, abi: number, what: { kernel: string; source: string; instead: string }) {
  try {
    const lib = dlopen(path, symbols);
    const found = (lib.symbols[abiSymbol] as unknown as () => number)();
    if (found !== abi) {
      lib.close();
      throw new Error(`it was built from another ${what.source} (ABI ${found}, this server calls ${abi}); run make install`);
    }
    return lib.symbols;
  } catch (e) {
    log.warn(`the ${what.kernel} did not load; ${what.instead}`, { path, error: String(e) });
    return null;
  }
}

/**
 * The kernel a search uses. From source it loads on first use, so tests and bench run what
 * the server runs; the binary sets it at start (its library is written out then).
 */
export class KernelSlot<K> {
  private current: K | null | undefined;

  constructor(private readonly open: (path: string) => K | null) {}

  /** The kernel, or null for the JavaScript loop. */
  get(): K | null {
    if (this.current === undefined) {
      const path = IN_BINARY ? null : sourceKernelsPath();
      this.current = path ? this.open(path) : null;
    }
    return this.current;
  }

  /** Sets it (null: the JavaScript loop; undefined: loaded on first use); returns the one before, to restore. */
  use(kernel: K | null | undefined): K | null | undefined {
    const before = this.current;
    this.current = kernel;
    return before;
  }
}
