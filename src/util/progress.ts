// Progress bars for downloads and training (cli-progress on a terminal; sparse plain lines otherwise,
// so CI logs and redirected output stay readable). The rate and the ETA count from the first position
// shown, so a resumed run (whose bar starts part-way) reports its own speed, not the whole run's average.
import cliProgress from "cli-progress";

export interface Progress {
  /** Set the absolute position; `extra` fills `{extra}` in the format (e.g. a loss). */
  update(value: number, extra?: string): void;
  /** Change the total (e.g. once a Content-Length is known). */
  setTotal(total: number): void;
  stop(): void;
}

export interface ProgressOptions {
  /** Shown before the bar. */
  label: string;
  /** "bytes" formats value/total as MiB. */
  unit?: "items" | "bytes";
  /** The rate in another unit: each item is `per` of `name` (a batch of 4 examples: { per: 4, name: "ex" }). */
  rateAs?: { per: number; name: string };
  /** Write to this stream (default stderr). */
  stream?: NodeJS.WriteStream;
  /** Force the plain-line mode (default: when the stream is not a TTY). */
  plain?: boolean;
  /** Silence entirely. */
  quiet?: boolean;
  /** Seconds, for tests (default performance.now). */
  now?: () => number;
}

const mib = (n: number) => (n / 1048576).toFixed(1);

/** h:mm:ss (or m:ss under an hour); "--" while unknown. */
export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** Rate since the first position seen, and the time left to `total` at that rate. */
export function rateTracker(opts: Pick<ProgressOptions, "unit" | "rateAs" | "now">) {
  const now = opts.now ?? (() => performance.now() / 1000);
  let start: { v: number; t: number } | null = null;
  return (v: number, total: number): { rate: string; eta: string } => {
    const t = now();
    start ??= { v, t };
    const dt = t - start.t;
    const perSecond = dt > 0 ? (v - start.v) / dt : 0;
    const eta = perSecond > 0 && total > 0 ? formatEta((total - v) / perSecond) : "--";
    let rate: string;
    if (opts.unit === "bytes") rate = `${mib(perSecond)} MiB/s`;
    else if (opts.rateAs) rate = `${(perSecond * opts.rateAs.per).toFixed(2)} ${opts.rateAs.name}/s`;
    else rate = `${perSecond.toFixed(2)} it/s`;
    return { rate, eta };
  };
}

export function progress(total: number, opts: ProgressOptions): Progress {
  const stream = opts.stream ?? process.stderr;
  const fmtVal = (v: number) => (opts.unit === "bytes" ? `${mib(v)} MiB` : String(v));
  if (opts.quiet) return { update() {}, setTotal() {}, stop() {} };
  const track = rateTracker(opts);
  if (opts.plain ?? !stream.isTTY) {
    // Plain mode: a line at every 10% step and at the end.
    let lastDecile = -1;
    let cur = 0;
    const t0 = performance.now();
    const line = (v: number, extra?: string) => {
      const s = (performance.now() - t0) / 1000;
      const pct = total > 0 ? ` ${((100 * v) / total).toFixed(0)}%` : "";
      const { rate, eta } = track(v, total);
      stream.write(`${opts.label}: ${fmtVal(v)}${total > 0 ? `/${fmtVal(total)}` : ""}${pct} (${s.toFixed(1)} s, ${rate}, ETA ${eta})${extra ? ` ${extra}` : ""}\n`);
    };
    return {
      update(v, extra) {
        cur = v;
        const d = total > 0 ? Math.floor((10 * v) / total) : -1;
        if (d > lastDecile) { lastDecile = d; line(v, extra); }
        else track(v, total);
      },
      setTotal(t) { total = t; },
      stop() { if (lastDecile < 10) line(cur); },
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      stream,
      // {remaining}, not cli-progress's own {eta}: ours counts from the bar's first position.
      format: `${opts.label} [{bar}] {percentage}% | {shown} | {rate} | ETA {remaining} {extra}`,
      hideCursor: true,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  const payload = (v: number, extra = "") => {
    const { rate, eta } = track(v, total);
    return { shown: `${fmtVal(v)}/${fmtVal(total)}`, rate, remaining: eta, extra };
  };
  let started = false;
  return {
    update(v, extra) {
      // The bar starts at the first position given (a resumed run's step), which is also where the rate counts from.
      if (!started) { started = true; bar.start(total, v, payload(v, extra)); }
      else bar.update(v, payload(v, extra));
    },
    setTotal(t) { total = t; bar.setTotal(t); },
    stop() { if (started) bar.stop(); },
  };
}
