// Wall time by named stage, for benchmarks: `timer.time("agent", fn)` runs fn and adds its duration to
// "agent". Code under measurement takes a StageTimer and defaults to `untimed`, which adds nothing.
// A stage nested in another is counted in both (callers time disjoint stages).

export interface StageTimer {
  time<T>(stage: string, fn: () => T): T;
}

export const untimed: StageTimer = { time: (_stage, fn) => fn() };

/**
 * Sums milliseconds per stage. `sync` runs before each clock read (on CUDA, a device synchronize, so a
 * stage is charged for its own kernels; it also stalls the pipeline, so time throughput without it).
 */
export class StageClock implements StageTimer {
  readonly ms = new Map<string, number>();
  constructor(private readonly sync: () => void = () => {}) {}
  time<T>(stage: string, fn: () => T): T {
    this.sync();
    const t0 = performance.now();
    try {
      return fn();
    } finally {
      this.sync();
      this.ms.set(stage, (this.ms.get(stage) ?? 0) + performance.now() - t0);
    }
  }
  reset(): void {
    this.ms.clear();
  }
}
