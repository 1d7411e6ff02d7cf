/**
 * Runs `task` now, or once more after the current run when triggered again while it runs:
 * triggers that arrive together cost one run, and none is lost. The promise settles when the
 * run that covers this trigger has finished.
 */
export function coalesced(task: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | null = null;
  let again = false;
  return () => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await task();
        } while (again);
      } finally {
        running = null;
      }
    })();
    return running;
  };
}
