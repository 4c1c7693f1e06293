// TensorBoard event files as an independent reader sees them: TensorBoard's own EventAccumulator where
// python3 has the `tensorboard` package, and always the test reader written from the format's
// documentation (test/helpers/tb-reader.ts). Every scalar comes back at its step with its value (as
// float32, which is how TensorBoard stores scalars), the config as text, a resumed file without repeated
// steps, and a file whose writer was killed (-9) with a torn last record still reads.
import { afterAll, describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  FILE_VERSION, configMarkdown, encodeEvent, frameRecord, latestEventFile, maskedCrc32c, metricScalars, openEventWriter, readRecords,
} from "../../src/pipeline/observe/tensorboard";
import { crc32c, hasPythonTensorBoard, readEvents, readEventsWithTestReader } from "../helpers/tb-reader";

const TMP = mkdtempSync(join(tmpdir(), "arc-tb-test-"));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));
let n = 0;
const freshRun = () => join(TMP, `run-${++n}`);

console.log(`tensorboard tests read event files with: ${hasPythonTensorBoard ? "python tensorboard EventAccumulator and" : "(no python tensorboard)"} test/helpers/tb-reader.ts`);

/** Metrics records shaped like the trainer's, with values that float32 cannot hold exactly. */
function records(fromStep: number, toStep: number): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (let s = fromStep; s <= toStep; s++) {
    out.push({ type: "batch", step: s, epoch: 1, batch: s, efe: 3 / s + 0.1, acc: s / 97, d_acc: -0.01 * s, qwen_grad: 2.3e-4 * s, scale: 65536, lr_agent: 1e-4, examples_per_s: 12.5 + s, time: "2025-01-01T00:00:00Z" });
    if (s % 5 === 0) out.push({ type: "val", step: s, epochs_done: 0, exactFirst: s / 50, pass2: s / 40, cellAcc: 0.3 + s / 1000, examples: 8 });
  }
  return out;
}

/** tag -> [step, value] pairs the records should produce, values as float32. */
function expected(recs: Record<string, unknown>[]): Record<string, [number, number][]> {
  const out: Record<string, [number, number][]> = {};
  for (const r of recs) for (const { tag, value } of metricScalars(r)) (out[tag] ??= []).push([r.step as number, Math.fround(value)]);
  return out;
}

const readers = (path: string) => [readEvents(path), { ...readEventsWithTestReader(path), reader: "test reader" }];

describe("TFRecord framing", () => {
  test("masked CRC32C: the published check value and the documented mask", () => {
    // CRC-32C of "123456789" is 0xE3069283 (RFC 3720 B.4); the mask rotates right 15 and adds 0xa282ead8.
    const check = new TextEncoder().encode("123456789");
    expect(crc32c(check)).toBe(0xe3069283);
    const rot = ((0xe3069283 >>> 15) | (0xe3069283 << 17)) >>> 0;
    expect(maskedCrc32c(check)).toBe((rot + 0xa282ead8) >>> 0);
    for (let len = 0; len < 300; len += 37) {
      const b = Uint8Array.from({ length: len }, (_, i) => (i * 31 + len) & 0xff);
      const r = ((crc32c(b) >>> 15) | (crc32c(b) << 17)) >>> 0;
      expect(maskedCrc32c(b)).toBe((r + 0xa282ead8) >>> 0);
    }
  });

  test("a record is length, its CRC, the data, its CRC; readRecords stops at a corrupt byte", () => {
    const data = encodeEvent({ wallTime: 1, step: 3, values: [{ tag: "x", simpleValue: 1.5 }] });
    const rec = frameRecord(data);
    expect(rec.length).toBe(data.length + 16);
    expect(Number(new DataView(rec.buffer).getBigUint64(0, true))).toBe(data.length);
    const two = new Uint8Array([...rec, ...rec]);
    expect(readRecords(two).records.length).toBe(2);
    two[rec.length + 14] ^= 1; // a flipped bit in the second record's data
    expect(readRecords(two)).toMatchObject({ validBytes: rec.length });
  });
});

describe("event files", () => {
  test("every scalar written is read back at its step with its value; the config as text", () => {
    const run = freshRun();
    const config = { epochs: 2, agent_lr: 1e-4, model: "tiny", resume: null, seed: 0 };
    const w = openEventWriter(run, { config });
    const recs = records(1, 12);
    for (const r of recs) w.writeRecord(r);
    w.close();
    expect(w.path).toMatch(/\/tb\/events\.out\.tfevents\.\d{10}\.[^/]+$/);
    const want = expected(recs);
    expect(Object.keys(want).sort()).toEqual(["train/acc", "train/d_acc", "train/efe", "train/examples_per_s", "train/lr_agent", "train/qwen_grad", "train/scale", "val/cell_acc", "val/exact", "val/pass2"]);
    for (const got of readers(w.path)) {
      expect({ reader: got.reader, scalars: got.scalars }).toEqual({ reader: got.reader, scalars: want });
      // EventAccumulator keeps the version parsed from "brain.Event:2" as the number 2.
      expect(got.file_version).toBe(got.reader.startsWith("python") ? 2 : FILE_VERSION);
      expect(got.texts.config).toEqual([[0, configMarkdown(config)]]);
      expect(got.texts.config[0][1]).toContain("| agent_lr | 0.0001 |");
    }
  });

  test("a resumed file is cut after the resume step and continues without repeated steps", () => {
    const run = freshRun();
    const w1 = openEventWriter(run, { config: { seed: 0 } });
    for (const r of records(1, 10)) w1.writeRecord(r); // the crashed run logged up to 10; its checkpoint was at 6
    w1.close();
    const w2 = openEventWriter(run, { resumeStep: 6, config: { seed: 0 } });
    expect(w2.path).toBe(w1.path); // the same file, appended to
    for (const r of records(7, 14)) w2.writeRecord(r);
    w2.close();
    expect(readdirSync(join(run, "tb")).length).toBe(1);
    const want = expected(records(1, 14));
    for (const got of readers(w2.path)) {
      expect({ reader: got.reader, scalars: got.scalars }).toEqual({ reader: got.reader, scalars: want });
      for (const [tag, pts] of Object.entries(got.scalars)) expect({ tag, steps: new Set(pts.map((p) => p[0])).size }).toEqual({ tag, steps: pts.length });
      expect(Object.keys(got.texts)).toEqual(["config"]);
      expect(got.texts.config.length).toBe(1);
    }
  });

  test("a resumed run without an event file gets one, filled from its metrics", () => {
    const run = freshRun();
    const w = openEventWriter(run, { resumeStep: 5, config: { seed: 1 }, backfill: () => records(1, 5) });
    for (const r of records(6, 8)) w.writeRecord(r);
    w.close();
    for (const got of readers(w.path)) expect({ reader: got.reader, scalars: got.scalars }).toEqual({ reader: got.reader, scalars: expected(records(1, 8)) });
  });

  test("a writer killed with -9 and a torn last record: readers keep every whole record; resume cuts the tear", async () => {
    const run = freshRun();
    const script = join(TMP, "writer.ts");
    // Writes one batch record per step until killed, saying each step once it is written.
    writeFileSync(script, `
      import { openEventWriter } from ${JSON.stringify(join(import.meta.dir, "../../src/pipeline/observe/tensorboard.ts"))};
      const w = openEventWriter(${JSON.stringify(run)}, { config: { seed: 0 } });
      for (let s = 1; ; s++) { w.writeRecord({ type: "batch", step: s, efe: 1 / s, acc: s / 1000 }); process.stdout.write(s + "\\n"); }
    `);
    const child = spawn(process.execPath, [script], { stdio: ["ignore", "pipe", "inherit"] });
    let said = 0;
    await new Promise<void>((resolve) => {
      child.stdout!.on("data", (d: Buffer) => {
        const last = d.toString().trim().split("\n").pop();
        said = Math.max(said, Number(last));
        if (said >= 200) resolve();
      });
    });
    child.kill("SIGKILL");
    await new Promise((r) => child.on("exit", r));
    const path = latestEventFile(run)!;
    // A kill between two write() calls leaves whole records; a tear inside one (power loss, a full disk)
    // is made here by appending the first half of a further record.
    const half = frameRecord(encodeEvent({ wallTime: 0, step: 999999, values: [{ tag: "train/efe", simpleValue: 7 }] }));
    appendFileSync(path, half.subarray(0, 20));
    const size = statSync(path).size;
    expect(readEventsWithTestReader(path).tornTail).toBe(true);
    let whole = 0;
    for (const got of readers(path)) {
      const efe = got.scalars["train/efe"];
      whole = efe.length;
      expect(whole).toBeGreaterThanOrEqual(said); // nothing acknowledged is lost
      expect(efe.map((p) => p[0])).toEqual(Array.from({ length: whole }, (_, i) => i + 1));
      expect(efe.every(([s, v]) => v === Math.fround(1 / s))).toBe(true);
    }
    // Resuming at the last whole step drops the torn bytes before appending.
    const w = openEventWriter(run, { resumeStep: whole });
    expect(statSync(path).size).toBeLessThan(size);
    w.writeRecord({ type: "batch", step: whole + 1, efe: 0.5 });
    w.close();
    expect(readEventsWithTestReader(path).tornTail).toBe(false);
    for (const got of readers(path)) expect(got.scalars["train/efe"].map((p) => p[0])).toEqual(Array.from({ length: whole + 1 }, (_, i) => i + 1));
  });

  test("metricScalars: finite numbers but the position, counts and durations, tagged by record kind and metric name", () => {
    expect(metricScalars({ type: "epoch", step: 9, epoch: 2, efe: 1.5, note: "x", bad: NaN, skipped: 0 })).toEqual([{ tag: "epoch/efe", value: 1.5 }]);
    // A validation record from before the names were unified: today's tags, its counts and seconds left out.
    expect(metricScalars({ type: "val", step: 9, exactFirst: 0.5, exactFirstCount: 1, examples: 2, cellAcc: 0.7, seconds: 3 })).toEqual([
      { tag: "val/exact", value: 0.5 },
      { tag: "val/cell_acc", value: 0.7 },
    ]);
  });
});

test("a new file without a config: the version event then the scalars, byte for byte", () => {
  const run = freshRun();
  const w = openEventWriter(run, { now: () => 1700000000 });
  w.writeScalars(4, [{ tag: "a", value: 2 }]);
  w.close();
  const bytes = readFileSync(w.path);
  const expectBytes = new Uint8Array([
    ...frameRecord(encodeEvent({ wallTime: 1700000000, step: 0, fileVersion: FILE_VERSION })),
    ...frameRecord(encodeEvent({ wallTime: 1700000000, step: 4, values: [{ tag: "a", simpleValue: 2 }] })),
  ]);
  expect(new Uint8Array(bytes)).toEqual(expectBytes);
  expect(w.path).toContain("events.out.tfevents.1700000000.");
});
