// Graceful stop for the training loop. The first SIGINT or SIGTERM only records a request: the loop
// finishes its batch, checkpoints and returns, and the process exits 130 (SIGINT) or 143 (SIGTERM).
// The handlers are removed at that moment, so a second signal gets the default action and ends the
// process at once; checkpoints are written to a temporary folder and renamed, so even a kill in the
// middle of a write leaves the last checkpoint intact.
//
// JavaScript signal handlers run only when the event loop gets control, and a batch is synchronous
// work: the loop calls `await yieldToSignals()` between batches so a request is seen at the next batch.

export type StopSignal = "SIGINT" | "SIGTERM";
const SIGNALS: StopSignal[] = ["SIGINT", "SIGTERM"];

/** The exit status a shell reports for a process ended by a signal: 128 + its number. */
export const SIGNAL_EXIT: Record<StopSignal, number> = { SIGINT: 130, SIGTERM: 143 };

export interface StopRequest {
  /** The first signal received, or null. */
  readonly signal: StopSignal | null;
  /** Removes the handlers (the default action is back). Idempotent. */
  dispose(): void;
}

/** Installs the SIGINT/SIGTERM handlers; `onRequest` is told once, at the first signal. */
export function listenForStop(onRequest: (signal: StopSignal) => void): StopRequest {
  let signal: StopSignal | null = null;
  const handlers = new Map<StopSignal, () => void>();
  const dispose = () => {
    for (const [s, h] of handlers) process.off(s, h);
    handlers.clear();
  };
  for (const s of SIGNALS) {
    const h = () => {
      if (signal !== null) {
        // A second signal queued before the first was handled: no wait for the default action.
        process.exit(SIGNAL_EXIT[s]);
      }
      signal = s;
      dispose();
      onRequest(s);
    };
    handlers.set(s, h);
    process.on(s, h);
  }
  return {
    get signal() {
      return signal;
    },
    dispose,
  };
}

/** Lets the event loop run pending callbacks (signal handlers among them) before the next batch. */
export function yieldToSignals(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
