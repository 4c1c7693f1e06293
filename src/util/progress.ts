// Progress bars for downloads and training (cli-progress on a terminal; sparse plain lines otherwise,
// so CI logs and redirected output stay readable).
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
  /** Write to this stream (default stderr). */
  stream?: NodeJS.WriteStream;
  /** Force the plain-line mode (default: when the stream is not a TTY). */
  plain?: boolean;
  /** Silence entirely. */
  quiet?: boolean;
}

const mib = (n: number) => (n / 1048576).toFixed(1);

export function progress(total: number, opts: ProgressOptions): Progress {
  const stream = opts.stream ?? process.stderr;
  const fmtVal = (v: number) => (opts.unit === "bytes" ? `${mib(v)} MiB` : String(v));
  if (opts.quiet) return { update() {}, setTotal() {}, stop() {} };
  if (opts.plain ?? !stream.isTTY) {
    // Plain mode: a line at every 10% step and at the end.
    let lastDecile = -1;
    let cur = 0;
    const t0 = performance.now();
    const line = (v: number, extra?: string) => {
      const s = (performance.now() - t0) / 1000;
      const pct = total > 0 ? ` ${((100 * v) / total).toFixed(0)}%` : "";
      stream.write(`${opts.label}: ${fmtVal(v)}${total > 0 ? `/${fmtVal(total)}` : ""}${pct} (${s.toFixed(1)} s)${extra ? ` ${extra}` : ""}\n`);
    };
    return {
      update(v, extra) {
        cur = v;
        const d = total > 0 ? Math.floor((10 * v) / total) : -1;
        if (d > lastDecile) { lastDecile = d; line(v, extra); }
      },
      setTotal(t) { total = t; },
      stop() { if (lastDecile < 10) line(cur); },
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: `${opts.label} [{bar}] {percentage}% | {shown} | {rate} | ETA {eta_formatted} {extra}`,
      hideCursor: true,
      etaBuffer: 50,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  const t0 = performance.now();
  const payload = (v: number, extra = "") => {
    const s = Math.max((performance.now() - t0) / 1000, 1e-9);
    const rate = opts.unit === "bytes" ? `${mib(v / s)} MiB/s` : `${(v / s).toFixed(2)} it/s`;
    return { shown: `${fmtVal(v)}/${fmtVal(total)}`, rate, extra };
  };
  bar.start(total, 0, payload(0));
  return {
    update(v, extra) { bar.update(v, payload(v, extra)); },
    setTotal(t) { total = t; bar.setTotal(t); },
    stop() { bar.stop(); },
  };
}
