// safetensors: every dtype round-trips, the golden Qwen2 checkpoint reads, corrupt files are errors.
import { afterAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as torch from "../../src/torch";
import { GOLDEN_MODEL } from "../helpers/fixtures";

const dir = mkdtempSync(join(tmpdir(), "st-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const GOLDEN = join(GOLDEN_MODEL, "model.safetensors");

function header(obj: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(obj));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json]);
}

describe("safetensors", () => {
  test("every dtype round-trips with shapes, values and metadata", () => {
    const values = [0, 1, -2, 3, 100, -1];
    const tensors: Record<string, torch.Tensor> = {};
    for (const dtype of ["float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8"] as const) {
      tensors[dtype] = torch.tensor(values, { dtype }).view(2, 3);
    }
    tensors.uint8 = torch.tensor([0, 1, 255], { dtype: "uint8" });
    tensors.bool = torch.tensor([true, false, true]);
    tensors.scalar = torch.tensor(2.5);
    tensors.empty = torch.zeros(0, 4);
    const path = join(dir, "all.safetensors");
    torch.safetensors.saveFile(path, tensors, { format: "pt", note: "round trip" });
    const h = torch.safetensors.readHeader(path);
    expect(h.metadata).toEqual({ format: "pt", note: "round trip" });
    expect(h.dataStart % 8).toBe(0);
    const back = torch.safetensors.loadFile(path);
    expect(Object.keys(back)).toEqual(Object.keys(tensors));
    for (const [k, t] of Object.entries(tensors)) {
      expect(back[k].dtype).toBe(t.dtype);
      expect(back[k].shape).toEqual(t.shape);
      expect(back[k].tolist()).toEqual(t.tolist());
    }
  });

  test("the file layout is the format's: little-endian length, JSON header, offsets into the data", () => {
    const path = join(dir, "layout.safetensors");
    torch.safetensors.saveFile(path, { a: torch.tensor([1, 2], { dtype: "float32" }), b: torch.tensor([3], { dtype: "int64" }) });
    const buf = readFileSync(path);
    const n = Number(buf.readBigUInt64LE(0));
    const hdr = JSON.parse(buf.subarray(8, 8 + n).toString());
    expect(hdr.a).toEqual({ dtype: "F32", shape: [2], data_offsets: [0, 8] });
    expect(hdr.b).toEqual({ dtype: "I64", shape: [1], data_offsets: [8, 16] });
    expect(buf.readFloatLE(8 + n + 4)).toBe(2);
    expect(buf.readBigInt64LE(8 + n + 8)).toBe(3n);
  });

  test("reads the golden Qwen2 checkpoint (save_pretrained's layout: tied, no lm_head)", () => {
    const w = torch.safetensors.loadFile(GOLDEN);
    expect(Object.keys(w).length).toBe(2 * 12 + 2);
    expect(w["model.embed_tokens.weight"].shape).toEqual([1024, 64]);
    expect(w["model.embed_tokens.weight"].dtype).toBe("float32");
    expect(w["model.layers.0.self_attn.k_proj.weight"].shape).toEqual([32, 64]);
    expect(w["model.layers.1.mlp.down_proj.weight"].shape).toEqual([64, 160]);
    expect("lm_head.weight" in w).toBe(false);
    expect(w["model.norm.weight"].tolist()).toEqual(new Array(64).fill(1));
    // Mapped copy-on-write: writing to a loaded tensor never reaches the file.
    const before = readFileSync(GOLDEN);
    w["model.embed_tokens.weight"].fill_(0);
    expect(readFileSync(GOLDEN).equals(before)).toBe(true);
    const only = torch.safetensors.loadFile(GOLDEN, { names: ["model.norm.weight"] });
    expect(Object.keys(only)).toEqual(["model.norm.weight"]);
  });

  test("a sharded checkpoint loads through its index", () => {
    const a = join(dir, "model-00001-of-00002.safetensors");
    const b = join(dir, "model-00002-of-00002.safetensors");
    torch.safetensors.saveFile(a, { x: torch.tensor([1, 2]) });
    torch.safetensors.saveFile(b, { y: torch.tensor([3]) });
    const index = join(dir, "model.safetensors.index.json");
    writeFileSync(index, JSON.stringify({ metadata: {}, weight_map: { x: "model-00001-of-00002.safetensors", y: "model-00002-of-00002.safetensors" } }));
    const all = torch.safetensors.loadIndexed(index);
    expect(all.x.tolist()).toEqual([1, 2]);
    expect(all.y.tolist()).toEqual([3]);
    writeFileSync(index, JSON.stringify({ weight_map: { z: "missing.safetensors" } }));
    expect(() => torch.safetensors.loadIndexed(index)).toThrow(/shard missing.safetensors .* is missing/);
  });

  test("truncated and corrupt files are TorchErrors and the process lives on", () => {
    const cases: [string, Buffer, RegExp][] = [];
    const full = readFileSync(GOLDEN);
    cases.push(["truncated data", full.subarray(0, full.length - 100), /ends at byte .* \(truncated\?\)/]);
    cases.push(["truncated header", full.subarray(0, 50), /runs past the end/]);
    cases.push(["tiny", Buffer.from([1, 2, 3]), /shorter than the 8-byte header length/]);
    cases.push(["huge header length", Buffer.concat([Buffer.from([255, 255, 255, 255, 255, 255, 255, 127]), Buffer.alloc(16)]), /implausible/]);
    cases.push(["not json", Buffer.concat([header({}).subarray(0, 8), Buffer.from("{{{{")]), /header length|not JSON/]);
    const garbage = Buffer.from("{not json}");
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(garbage.length));
    cases.push(["garbage header", Buffer.concat([len, garbage]), /not JSON/]);
    cases.push(["bad dtype", Buffer.concat([header({ a: { dtype: "F8_E9", shape: [1], data_offsets: [0, 1] } }), Buffer.alloc(1)]), /unsupported dtype "F8_E9"/]);
    cases.push(["size mismatch", Buffer.concat([header({ a: { dtype: "F32", shape: [2], data_offsets: [0, 4] } }), Buffer.alloc(4)]), /needs 8 bytes but data_offsets span 4/]);
    cases.push(["negative shape", Buffer.concat([header({ a: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }), Buffer.alloc(4)]), /invalid shape/]);
    cases.push(["array header", Buffer.concat([header([1, 2])]), /not a JSON object/]);
    for (const [name, bytes, msg] of cases) {
      const p = join(dir, `${name.replace(/ /g, "_")}.safetensors`);
      writeFileSync(p, bytes);
      let err: unknown;
      try {
        torch.safetensors.loadFile(p);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(torch.TorchError);
      expect(`${name}: ${(err as Error).message}`).toMatch(msg);
    }
    expect(() => torch.safetensors.loadFile(join(dir, "nope.safetensors"))).toThrow(/cannot open/);
    expect(torch.ones(2).sum().item()).toBe(2);
  });

  test("saving never leaves a partial file under the final name", () => {
    const path = join(dir, "atomic.safetensors");
    copyFileSync(GOLDEN, path);
    const t = torch.ones(2);
    t.dispose();
    expect(() => torch.safetensors.saveFile(path, { ok: torch.ones(1), gone: t })).toThrow(/"gone" is missing or disposed/);
    expect(readFileSync(path).equals(readFileSync(GOLDEN))).toBe(true);
    expect(() => torch.safetensors.saveFile(join(dir, "no/such/dir/x.safetensors"), { a: torch.ones(1) })).toThrow(torch.TorchError);
  });
});
