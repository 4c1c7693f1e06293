// The safetensors format: an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {str: str}}, then the raw bytes.
// Reading maps the file (tensors view it without a copy where aligned); writing goes to a temporary file
// that is fsynced and renamed, so a crash never leaves a half-written file under the final name.
import { closeSync, existsSync, openSync, readSync, fstatSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { replaceFile } from "../util/durable";
import { type DType, type Device, DTYPE_CODE, ELEMENT_SIZE, deviceCode } from "./dtype";
import { N, TorchError } from "./native";
import { handles } from "./args";
import { Tensor, wrap } from "./tensor";

/** A short description of a value that is not what was expected, for error messages. */
function describe(v: unknown): string {
  if (v === null) return "null";
  if (v === undefined) return "undefined";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "number" || typeof v === "boolean") return `${typeof v} ${v}`;
  if (typeof v === "string") return `the string ${JSON.stringify(v.length > 20 ? `${v.slice(0, 20)}...` : v)}`;
  if (typeof v === "object") return `an object (${(v as object).constructor?.name ?? "no class"})`;
  return typeof v;
}

const ST_TO_DTYPE: Record<string, DType> = {
  F64: "float64", F32: "float32", F16: "float16", BF16: "bfloat16",
  I64: "int64", I32: "int32", I16: "int16", I8: "int8", U8: "uint8", BOOL: "bool",
};
const DTYPE_TO_ST: Record<DType, string> = Object.fromEntries(Object.entries(ST_TO_DTYPE).map(([k, v]) => [v, k])) as Record<DType, string>;

export interface SafetensorsEntry {
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}
export interface SafetensorsHeader {
  entries: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
  /** Byte offset of the data section. */
  dataStart: number;
}

const MAX_HEADER = 100 * 1024 * 1024;

/** Reads and validates the header; every offset is checked against the file size. */
export function readHeader(path: string): SafetensorsHeader {
  if (typeof path !== "string" || path === "") throw new TorchError(`safetensors: the path must be a non-empty string, got ${JSON.stringify(path)}`);
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new TorchError(`safetensors: cannot open ${path}: ${code === "ENOENT" ? "no such file" : (e as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    // Opening a folder for reading succeeds on Linux; reading it would fail with a bare EISDIR.
    if (st.isDirectory()) throw new TorchError(`safetensors: ${path} is a folder, not a safetensors file`);
    const size = st.size;
    const bad = (why: string) => new TorchError(`safetensors: ${path} is not a valid safetensors file: ${why}`);
    if (size < 8) throw bad(`${size} bytes, shorter than the 8-byte header length`);
    const lenBuf = Buffer.alloc(8);
    readSync(fd, lenBuf, 0, 8, 0);
    const n = Number(lenBuf.readBigUInt64LE(0));
    if (n > MAX_HEADER) throw bad(`header length ${n} is implausible (over ${MAX_HEADER} bytes)`);
    if (8 + n > size) throw bad(`header length ${n} runs past the end of the ${size}-byte file (truncated?)`);
    const hbuf = Buffer.alloc(n);
    readSync(fd, hbuf, 0, n, 8);
    let json: unknown;
    try {
      json = JSON.parse(hbuf.toString("utf8"));
    } catch (e) {
      throw bad(`header is not JSON (${(e as Error).message})`);
    }
    if (json === null || typeof json !== "object" || Array.isArray(json)) throw bad("header is not a JSON object");
    const dataStart = 8 + n;
    const dataLen = size - dataStart;
    const entries = new Map<string, SafetensorsEntry>();
    let metadata: Record<string, string> = {};
    for (const [name, v] of Object.entries(json as Record<string, any>)) {
      if (name === "__metadata__") {
        if (v === null || typeof v !== "object" || Array.isArray(v) || !Object.values(v).every((x) => typeof x === "string"))
          throw bad("__metadata__ must be an object of strings");
        metadata = v;
        continue;
      }
      const dtype = ST_TO_DTYPE[v?.dtype];
      if (!dtype) throw bad(`tensor "${name}" has unsupported dtype ${JSON.stringify(v?.dtype)}`);
      const shape = v.shape;
      if (!Array.isArray(shape) || !shape.every((d: unknown) => Number.isInteger(d) && (d as number) >= 0))
        throw bad(`tensor "${name}" has an invalid shape ${JSON.stringify(shape)}`);
      const off = v.data_offsets;
      if (!Array.isArray(off) || off.length !== 2 || !off.every((d: unknown) => Number.isInteger(d) && (d as number) >= 0) || off[1] < off[0])
        throw bad(`tensor "${name}" has invalid data_offsets ${JSON.stringify(off)}`);
      const bytes = shape.reduce((a: number, b: number) => a * b, 1) * ELEMENT_SIZE[dtype];
      if (off[1] - off[0] !== bytes) throw bad(`tensor "${name}" needs ${bytes} bytes but data_offsets span ${off[1] - off[0]}`);
      if (off[1] > dataLen) throw bad(`tensor "${name}" ends at byte ${off[1]} of a ${dataLen}-byte data section (truncated?)`);
      entries.set(name, { dtype, shape, begin: off[0], end: off[1] });
    }
    // Two tensors over the same bytes would alias each other once loaded (a write to one changes the other).
    const spans = [...entries].filter(([, e]) => e.end > e.begin).sort((a, b) => a[1].begin - b[1].begin);
    for (let i = 1; i < spans.length; i++) {
      const [pn, p] = spans[i - 1];
      const [cn, c] = spans[i];
      if (c.begin < p.end) throw bad(`tensors "${pn}" (bytes ${p.begin}..${p.end}) and "${cn}" (bytes ${c.begin}..${c.end}) overlap`);
    }
    return { entries, metadata, dataStart };
  } finally {
    closeSync(fd);
  }
}

export interface LoadOptions {
  device?: Device;
  /** Load only these names. */
  names?: string[];
}

/** Loads every tensor of a file (or the chosen `names`), in its stored dtype, onto `device`. */
export function loadFile(path: string, opts: LoadOptions = {}): Record<string, Tensor> {
  const header = readHeader(path);
  let names = [...header.entries.keys()];
  if (opts.names) {
    const missing = opts.names.filter((n) => !header.entries.has(n));
    if (missing.length) throw new TorchError(`safetensors: ${path} has no tensor(s) ${missing.slice(0, 5).join(", ")}${missing.length > 5 ? ", ..." : ""}`);
    names = opts.names;
  }
  const spec = names.map((n) => {
    const e = header.entries.get(n)!;
    return [DTYPE_CODE[e.dtype], e.shape, e.begin, e.end];
  });
  const hs: number[] = N.safetensorsLoad(path, header.dataStart, spec, deviceCode(opts.device));
  const out: Record<string, Tensor> = {};
  names.forEach((n, i) => {
    out[n] = wrap(hs[i]);
  });
  return out;
}

/** Loads a sharded checkpoint from its `model.safetensors.index.json` ({weight_map: {name: file}}). */
export function loadIndexed(indexPath: string, opts: LoadOptions = {}): Record<string, Tensor> {
  let index: { weight_map?: Record<string, string> };
  try {
    index = JSON.parse(readFileSync(indexPath, "utf8"));
  } catch (e) {
    throw new TorchError(`safetensors: cannot read index ${indexPath}: ${(e as Error).message}`);
  }
  if (!index.weight_map || typeof index.weight_map !== "object") throw new TorchError(`safetensors: ${indexPath} has no "weight_map"`);
  const byFile = new Map<string, string[]>();
  for (const [name, file] of Object.entries(index.weight_map)) {
    if (opts.names && !opts.names.includes(name)) continue;
    byFile.set(file, [...(byFile.get(file) ?? []), name]);
  }
  const out: Record<string, Tensor> = {};
  for (const [file, names] of byFile) {
    const p = join(dirname(indexPath), file);
    if (!existsSync(p)) throw new TorchError(`safetensors: shard ${file} named by ${indexPath} is missing`);
    Object.assign(out, loadFile(p, { ...opts, names }));
  }
  return out;
}

/**
 * Writes tensors (any device; copied to the CPU) with optional string metadata. Written to
 * `<path>.tmp-<pid>`, fsynced, then renamed over `path`.
 */
export function saveFile(path: string, tensors: Record<string, Tensor>, metadata?: Record<string, string>): void {
  if (typeof path !== "string" || path === "") throw new TorchError(`safetensors: the path must be a non-empty string, got ${JSON.stringify(path)}`);
  if (tensors === null || typeof tensors !== "object" || Array.isArray(tensors) || tensors instanceof Tensor)
    throw new TorchError(`safetensors: saveFile(${path}) takes a {name: Tensor} record, got ${describe(tensors)}`);
  if (metadata !== undefined && (metadata === null || typeof metadata !== "object" || Array.isArray(metadata)))
    throw new TorchError(`safetensors: metadata for ${path} must be a {key: string} record, got ${describe(metadata)}`);
  for (const [k, v] of Object.entries(metadata ?? {}))
    if (typeof v !== "string") throw new TorchError(`safetensors: metadata "${k}" for ${path} must be a string, got ${describe(v)}`);
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  const list: Tensor[] = [];
  for (const [name, t] of Object.entries(tensors)) {
    // The header's own key: a tensor of that name would be read back as metadata (or be lost).
    if (name === "__metadata__") throw new TorchError(`safetensors: "__metadata__" is reserved for the header's metadata and cannot name a tensor (${path})`);
    if (name === "") throw new TorchError(`safetensors: a tensor name must not be empty (${path})`);
    if (!(t instanceof Tensor)) throw new TorchError(`safetensors: "${name}" is not a Tensor (got ${describe(t)}) in saveFile(${path})`);
    if (t.isDisposed) throw new TorchError(`safetensors: tensor "${name}" is missing or disposed`);
    const bytes = t.numel() * ELEMENT_SIZE[t.dtype];
    header[name] = { dtype: DTYPE_TO_ST[t.dtype], shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
    list.push(t);
  }
  let json = JSON.stringify(header);
  // Pad with spaces to a multiple of 8 so the data section (and every tensor in it) stays aligned.
  json += " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  // The native writer fsyncs the file itself.
  replaceFile(path, (tmp) => N.safetensorsSave(tmp, json, handles(list, "safetensorsSave", 2)), { synced: true });
}
