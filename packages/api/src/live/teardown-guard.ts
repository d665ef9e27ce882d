// Releases every live driver when the process is interrupted. A live replay runs in chunks and
// yields to the event loop between them, so SIGINT/SIGTERM handlers get to run mid-replay: they
// tear the open drivers down (every mapping, reservation, handle and malloc, newest first) and exit
// with 128 + the signal number. Normal exit is covered by native-cuda's own exit hook, and errors by
// the live replay's `finally`; a SIGKILL leaves it to the kernel (memfds and mappings die with the
// process, and the CUDA driver frees a dead process's context), which the killed-child test checks.
import type { Driver } from "@lakebed/native-cuda";

const open = new Set<Driver>();
const SIGNALS = { SIGINT: 2, SIGTERM: 15 } as const;

function onSignal(signal: keyof typeof SIGNALS): void {
  for (const driver of open) driver.teardown();
  open.clear();
  process.stderr.write(`lakebed: ${signal}: the live replay stopped; every device allocation was released\n`);
  process.exit(128 + SIGNALS[signal]);
}

const handlers = {
  SIGINT: () => onSignal("SIGINT"),
  SIGTERM: () => onSignal("SIGTERM"),
};

/** Keeps `driver` in the set torn down on a signal, until the returned function is called. */
export function guardDriver(driver: Driver): () => void {
  if (open.size === 0) {
    process.on("SIGINT", handlers.SIGINT);
    process.on("SIGTERM", handlers.SIGTERM);
  }
  open.add(driver);
  return () => {
    open.delete(driver);
    if (open.size === 0) {
      process.off("SIGINT", handlers.SIGINT);
      process.off("SIGTERM", handlers.SIGTERM);
    }
  };
}
