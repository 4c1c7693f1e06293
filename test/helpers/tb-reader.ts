// An independent reader of TensorBoard event files for tests, written from the formats' documentation
// (TFRecord framing; the protobuf wire format; TensorFlow's event.proto and summary.proto), sharing no
// code with src/pipeline/observe/tensorboard.ts. Where the Python `tensorboard` package is installed, tests use
// its EventAccumulator instead (readEventsWithTensorBoard), so the product is checked by the real reader.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";

export interface ReadEvents {
  scalars: Record<string, [number, number][]>;
  texts: Record<string, [number, string][]>;
  /** The test reader gives the string; EventAccumulator the number it parses from it. */
  file_version: string | number | null;
}

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit into a table.
const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();
export function crc32c(b: Uint8Array): number {
  let c = 0xffffffff;
  for (const x of b) c = TABLE[(c ^ x) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
/** TFRecord's mask: rotate right by 15 bits and add 0xa282ead8. */
const mask = (crc: number) => ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;

/** Records of a TFRecord file; a torn or corrupt tail ends the stream (as TensorBoard's loader does). */
export function tfRecords(bytes: Uint8Array): { records: Uint8Array[]; tornTail: boolean } {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: Uint8Array[] = [];
  let p = 0;
  while (p < bytes.length) {
    if (p + 12 > bytes.length) return { records, tornTail: true };
    const lenBytes = bytes.subarray(p, p + 8);
    if (dv.getUint32(p + 8, true) !== mask(crc32c(lenBytes))) return { records, tornTail: true };
    const len = Number(dv.getBigUint64(p, true));
    if (p + 16 + len > bytes.length) return { records, tornTail: true };
    const data = bytes.subarray(p + 12, p + 12 + len);
    if (dv.getUint32(p + 12 + len, true) !== mask(crc32c(data))) return { records, tornTail: true };
    records.push(data);
    p += 16 + len;
  }
  return { records, tornTail: false };
}

type Field = { no: number; wire: number; varint?: bigint; bytes?: Uint8Array; fixed?: DataView };

/** The fields of one protobuf message, in order. */
function fields(b: Uint8Array): Field[] {
  const out: Field[] = [];
  let p = 0;
  const varint = (): bigint => {
    let v = 0n;
    let s = 0n;
    for (;;) {
      const x = b[p++];
      v |= BigInt(x & 0x7f) << s;
      s += 7n;
      if (!(x & 0x80)) return v;
    }
  };
  while (p < b.length) {
    const key = Number(varint());
    const no = key >> 3;
    const wire = key & 7;
    if (wire === 0) out.push({ no, wire, varint: varint() });
    else if (wire === 1) { out.push({ no, wire, fixed: new DataView(b.buffer, b.byteOffset + p, 8) }); p += 8; }
    else if (wire === 5) { out.push({ no, wire, fixed: new DataView(b.buffer, b.byteOffset + p, 4) }); p += 4; }
    else if (wire === 2) { const n = Number(varint()); out.push({ no, wire, bytes: b.subarray(p, p + n) }); p += n; }
    else throw new Error(`unsupported wire type ${wire}`);
  }
  return out;
}

const utf8 = (b: Uint8Array) => new TextDecoder().decode(b);

/** Event: wall_time 1, step 2, file_version 3, summary 5; Summary.value 1: tag 1, simple_value 2, tensor 8 (string_val 8). */
export function readEventsWithTestReader(path: string): ReadEvents & { tornTail: boolean } {
  const { records, tornTail } = tfRecords(readFileSync(path));
  const out: ReadEvents & { tornTail: boolean } = { scalars: {}, texts: {}, file_version: null, tornTail };
  for (const rec of records) {
    let step = 0;
    const values: Field[][] = [];
    for (const f of fields(rec)) {
      if (f.no === 2) step = Number(BigInt.asIntN(64, f.varint!));
      if (f.no === 3) out.file_version = utf8(f.bytes!);
      if (f.no === 5) for (const v of fields(f.bytes!)) if (v.no === 1) values.push(fields(v.bytes!));
    }
    for (const v of values) {
      const tag = utf8(v.find((f) => f.no === 1)!.bytes!);
      const simple = v.find((f) => f.no === 2);
      const tensor = v.find((f) => f.no === 8);
      if (simple) (out.scalars[tag] ??= []).push([step, simple.fixed!.getFloat32(0, true)]);
      if (tensor) {
        const s = fields(tensor.bytes!).find((f) => f.no === 8);
        if (s) (out.texts[tag] ??= []).push([step, utf8(s.bytes!)]);
      }
    }
  }
  return out;
}

/** Whether python3 can import tensorboard (checked once). */
export const hasPythonTensorBoard: boolean = (() => {
  const r = spawnSync("python3", ["-c", "import tensorboard.backend.event_processing.event_accumulator"], { stdio: "ignore" });
  return r.status === 0;
})();

export function readEventsWithTensorBoard(path: string): ReadEvents {
  const r = spawnSync("python3", [join(import.meta.dir, "read_events.py"), path], { encoding: "utf8", maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`read_events.py failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** TensorBoard's reader where installed, else the test reader; says which it used. */
export function readEvents(path: string): ReadEvents & { reader: string } {
  if (hasPythonTensorBoard) return { ...readEventsWithTensorBoard(path), reader: "python tensorboard EventAccumulator" };
  return { ...readEventsWithTestReader(path), reader: "test/helpers/tb-reader.ts (no python tensorboard)" };
}
