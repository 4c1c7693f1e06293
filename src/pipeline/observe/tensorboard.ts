// TensorBoard event files, so `tensorboard --logdir runs` shows a run's curves and config.
//
//   const tb = openEventWriter(runDir, { resumeStep: 0, config });   // <run>/tb/events.out.tfevents.<time>.<host>
//   tb.writeRecord({ type: "batch", step: 50, efe: 3.45, acc: 0.31 });  // train/efe, train/acc at step 50
//   tb.close();
//
// The file is a TFRecord stream (each record: uint64 length, masked CRC32C of the length, the bytes,
// masked CRC32C of the bytes; all little-endian) of tensorflow.Event protobufs. The first event carries
// the file version; scalars are Summary.Value.simple_value (float32, as TensorBoard stores them); the
// config is a text-plugin tensor (a DT_STRING scalar). Field numbers are those of TensorFlow's
// event.proto, summary.proto, tensor.proto and tensor_shape.proto.
import { closeSync, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import * as CRC32C from "crc-32/crc32c";
import { NOT_SCALARS, withCurrentNames } from "./metric-names";

export const TB_DIR = "tb";
export const EVENT_FILE_PREFIX = "events.out.tfevents.";
/** What TensorBoard expects in the first event of a file. */
export const FILE_VERSION = "brain.Event:2";

// ---- TFRecord framing ----------------------------------------------------------------------------

/** CRC32C rotated and offset as TFRecord stores it (so a CRC of data holding CRCs is not degenerate). */
export function maskedCrc32c(bytes: Uint8Array): number {
  const crc = CRC32C.buf(bytes) >>> 0;
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** One TFRecord: header (length + its CRC), payload, payload CRC. */
export function frameRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(16 + data.length);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  view.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

/** The intact records of a TFRecord stream with their byte ranges; stops at the first torn or corrupt one. */
export function readRecords(bytes: Uint8Array): { records: { data: Uint8Array; start: number; end: number }[]; validBytes: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: { data: Uint8Array; start: number; end: number }[] = [];
  let off = 0;
  while (off + 12 <= bytes.length) {
    if (view.getUint32(off + 8, true) !== maskedCrc32c(bytes.subarray(off, off + 8))) break;
    const len = Number(view.getBigUint64(off, true));
    const end = off + 16 + len;
    if (end > bytes.length) break;
    const data = bytes.subarray(off + 12, off + 12 + len);
    if (view.getUint32(off + 12 + len, true) !== maskedCrc32c(data)) break;
    records.push({ data, start: off, end });
    off = end;
  }
  return { records, validBytes: off };
}

// ---- Event / Summary protobufs -------------------------------------------------------------------

export type SummaryValue = { tag: string; simpleValue: number } | { tag: string; text: string };

export interface EventFields {
  wallTime: number;
  step: number;
  fileVersion?: string;
  values?: SummaryValue[];
}

const DT_STRING = 7;

function writeValue(w: BinaryWriter, v: SummaryValue): void {
  w.tag(1, WireType.LengthDelimited).string(v.tag); // Summary.Value.tag
  if ("simpleValue" in v) {
    w.tag(2, WireType.Bit32).float(v.simpleValue); // simple_value
    return;
  }
  // metadata { plugin_data { plugin_name: "text" } } makes TensorBoard's Text tab show it.
  w.tag(9, WireType.LengthDelimited).fork();
  w.tag(1, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).string("text").join();
  w.join();
  // tensor { dtype: DT_STRING, tensor_shape {} (a scalar), string_val: text }
  w.tag(8, WireType.LengthDelimited).fork();
  w.tag(1, WireType.Varint).int32(DT_STRING);
  w.tag(2, WireType.LengthDelimited).bytes(new Uint8Array(0));
  w.tag(8, WireType.LengthDelimited).bytes(new TextEncoder().encode(v.text));
  w.join();
}

/** A tensorflow.Event: wall_time = 1 (double), step = 2 (int64), file_version = 3, summary = 5. */
export function encodeEvent(e: EventFields): Uint8Array {
  const w = new BinaryWriter();
  w.tag(1, WireType.Bit64).double(e.wallTime);
  if (e.step !== 0) w.tag(2, WireType.Varint).int64(e.step);
  if (e.fileVersion !== undefined) w.tag(3, WireType.LengthDelimited).string(e.fileVersion);
  if (e.values?.length) {
    w.tag(5, WireType.LengthDelimited).fork();
    for (const v of e.values) {
      w.tag(1, WireType.LengthDelimited).fork(); // Summary.value (repeated)
      writeValue(w, v);
      w.join();
    }
    w.join();
  }
  return w.finish();
}

/** The step of an encoded Event (0 when absent, as proto3 leaves it). */
export function eventStep(bytes: Uint8Array): number {
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const [field, type] = r.tag();
    if (field === 2 && type === WireType.Varint) return Number(r.int64());
    r.skip(type);
  }
  return 0;
}

// ---- from metrics records to summaries -----------------------------------------------------------

/** Position fields of a metrics record: the x axis, not curves. */
const POSITION_KEYS = new Set(["type", "step", "epoch", "batch", "epochs_done", "time"]);
const TAG_PREFIX: Record<string, string> = { batch: "train", val: "val", epoch: "epoch" };

/** The scalar summaries of one metrics.jsonl record: every finite number but the position, counts and durations, as `<kind>/<metric name>`. */
export function metricScalars(written: Record<string, unknown>): { tag: string; value: number }[] {
  const record = withCurrentNames(written);
  const kind = typeof record.type === "string" ? record.type : "metrics";
  const prefix = TAG_PREFIX[kind] ?? kind;
  const out: { tag: string; value: number }[] = [];
  for (const [k, v] of Object.entries(record)) {
    if (POSITION_KEYS.has(k) || NOT_SCALARS.has(k) || typeof v !== "number" || !Number.isFinite(v)) continue;
    out.push({ tag: `${prefix}/${k}`, value: v });
  }
  return out;
}

/** A run's config as a Markdown table (TensorBoard's Text tab renders Markdown). */
export function configMarkdown(config: Record<string, unknown>): string {
  const cell = (v: unknown) => String(v === null ? "none" : typeof v === "object" ? JSON.stringify(v) : v).replace(/\|/g, "\\|");
  return ["| flag | value |", "|---|---|", ...Object.entries(config).map(([k, v]) => `| ${k} | ${cell(v)} |`)].join("\n");
}

// ---- the writer ----------------------------------------------------------------------------------

export interface EventWriter {
  readonly path: string;
  /** Writes a metrics record's scalars at its step. */
  writeRecord(record: Record<string, unknown>): void;
  writeScalars(step: number, scalars: { tag: string; value: number }[]): void;
  writeText(step: number, tag: string, text: string): void;
  close(): void;
}

export interface OpenEventWriterOptions {
  /** Resuming at this step: events past it (left by the crashed run) are cut off before appending. */
  resumeStep?: number;
  /** Written as the `config` text when the file is new. */
  config?: Record<string, unknown>;
  /** Records to write first into a new file (a resumed run that had no event file yet: its metrics.jsonl). */
  backfill?: () => Record<string, unknown>[];
  now?: () => number;
}

/** The newest event file of a run (by the time in its name), or null. */
export function latestEventFile(runDir: string): string | null {
  const dir = join(runDir, TB_DIR);
  if (!existsSync(dir)) return null;
  const time = (f: string) => Number(f.slice(EVENT_FILE_PREFIX.length).split(".")[0]) || 0;
  const files = readdirSync(dir).filter((f) => f.startsWith(EVENT_FILE_PREFIX)).sort((a, b) => time(a) - time(b) || a.localeCompare(b));
  return files.length ? join(dir, files[files.length - 1]) : null;
}

/**
 * Opens `<run>/tb/` for appending. A resumed run continues its newest event file, cut after the last
 * intact event at or before the resume step (so a torn record or steps the crashed run had logged past
 * its checkpoint are not repeated); a new run starts a file with the version event and the config.
 */
export function openEventWriter(runDir: string, opts: OpenEventWriterOptions = {}): EventWriter {
  const now = opts.now ?? (() => Date.now() / 1000);
  const dir = join(runDir, TB_DIR);
  mkdirSync(dir, { recursive: true });
  let path = opts.resumeStep !== undefined ? latestEventFile(runDir) : null;
  let fd: number;
  if (path) {
    const { records } = readRecords(readFileSync(path));
    let keep = 0;
    for (const r of records) {
      if (eventStep(r.data) > opts.resumeStep!) break;
      keep = r.end;
    }
    fd = openSync(path, "r+");
    ftruncateSync(fd, keep);
    closeSync(fd);
    fd = openSync(path, "a");
  } else {
    path = join(dir, `${EVENT_FILE_PREFIX}${Math.floor(now())}.${hostname()}`);
    fd = openSync(path, "a");
  }
  let open = true;
  const append = (e: EventFields) => {
    if (!open) throw new Error(`event file ${path} is closed`);
    const rec = frameRecord(encodeEvent(e));
    let off = 0;
    while (off < rec.length) off += writeSync(fd, rec, off, rec.length - off);
  };
  const w: EventWriter = {
    path,
    writeScalars(step, scalars) {
      if (scalars.length) append({ wallTime: now(), step, values: scalars.map((s) => ({ tag: s.tag, simpleValue: s.value })) });
    },
    writeText(step, tag, text) {
      append({ wallTime: now(), step, values: [{ tag, text }] });
    },
    writeRecord(record) {
      w.writeScalars(typeof record.step === "number" ? record.step : 0, metricScalars(record));
    },
    close() {
      if (!open) return;
      open = false;
      closeSync(fd);
    },
  };
  if (fstatSync(fd).size === 0) {
    append({ wallTime: now(), step: 0, fileVersion: FILE_VERSION });
    if (opts.config) w.writeText(0, "config", configMarkdown(opts.config));
    for (const r of opts.backfill?.() ?? []) w.writeRecord(r);
  }
  return w;
}
