// The training progress bar: examples/s and the ETA of the whole run, counted from where the bar starts
// (a resumed run starts part-way and must not take the earlier steps for its own speed), on a terminal
// (cli-progress) and in plain-line mode; the extra text (the trainer's EFE and, on CUDA, GPU memory) shown.
import { describe, expect, test } from "bun:test";
import { formatEta, progress, rateTracker } from "../../src/util/progress";

/** A clock the test moves. */
function clock(start = 0) {
  let t = start;
  return { now: () => t, advance: (s: number) => { t += s; } };
}

/** Enough of a WriteStream for cli-progress and the plain mode; keeps what is written. */
function fakeStream(isTTY: boolean) {
  const chunks: string[] = [];
  return {
    chunks,
    stream: {
      isTTY, columns: 200, write: (s: string) => { chunks.push(s); return true; },
      cursorTo: () => true, clearLine: () => true, clearScreenDown: () => true, moveCursor: () => true, on: () => {}, removeListener: () => {},
    } as unknown as NodeJS.WriteStream,
  };
}

describe("progress", () => {
  test("formatEta: m:ss under an hour, h:mm:ss above, -- while unknown", () => {
    expect(formatEta(40)).toBe("0:40");
    expect(formatEta(3725)).toBe("1:02:05");
    expect(formatEta(Number.POSITIVE_INFINITY)).toBe("--");
  });

  test("rate and ETA count from the first position (a run resumed at batch 100)", () => {
    const c = clock(50);
    const track = rateTracker({ rateAs: { per: 4, name: "ex" }, now: c.now });
    expect(track(100, 200)).toEqual({ rate: "0.00 ex/s", eta: "--" });
    c.advance(10);
    // 20 batches in 10 s: 2 batches/s = 8 examples/s; 80 batches left: 40 s.
    expect(track(120, 200)).toEqual({ rate: "8.00 ex/s", eta: "0:40" });
  });

  test("plain lines show examples/s, the ETA and the extra text", () => {
    const c = clock();
    const { stream, chunks } = fakeStream(false);
    const bar = progress(10, { label: "train", plain: true, stream, rateAs: { per: 2, name: "ex" }, now: c.now });
    bar.update(0);
    for (let i = 1; i <= 5; i++) { c.advance(1); bar.update(i, "EFE 1.000 GPU 1.00/2.00 GiB"); }
    const last = chunks[chunks.length - 1];
    expect(last).toContain("train: 5/10 50%");
    expect(last).toContain("2.00 ex/s");
    expect(last).toContain("ETA 0:05");
    expect(last).toContain("GPU 1.00/2.00 GiB");
  });

  test("the terminal bar shows examples/s, the ETA and the extra text", () => {
    const c = clock();
    const { stream, chunks } = fakeStream(true);
    const bar = progress(100, { label: "train", stream, rateAs: { per: 4, name: "ex" }, now: c.now });
    bar.update(50, "EFE 2.000");
    c.advance(5);
    bar.update(60, "EFE 1.900 GPU 3.21/4.56 GiB");
    bar.stop(); // renders the final state
    const out = chunks.join("");
    expect(out).toContain("60/100");
    expect(out).toContain("8.00 ex/s"); // 10 batches in 5 s, 4 examples each
    expect(out).toContain("ETA 0:20"); // 40 batches left at 2/s
    expect(out).toContain("GPU 3.21/4.56 GiB");
  });
});
