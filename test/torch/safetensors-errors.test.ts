// safetensors misuse and malformed files as TorchErrors that name the file and what is wrong: a folder
// given as a file, a non-Tensor value, a tensor called __metadata__, bad metadata, overlapping tensors.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as torch from "../../src/torch";

const dir = mkdtempSync(join(tmpdir(), "st-err-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A file with this JSON header and `dataBytes` zero bytes of data. */
function rawFile(name: string, header: unknown, dataBytes: number): string {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const p = join(dir, name);
  writeFileSync(p, Buffer.concat([len, json, Buffer.alloc(dataBytes)]));
  return p;
}
const expectTorchError = (fn: () => unknown, says: RegExp) => {
  let err: unknown = null;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(torch.TorchError);
  expect((err as Error).message).toMatch(says);
  expect((err as Error).message).not.toContain("\n");
};

describe("safetensors errors", () => {
  test("loadFile / readHeader of a folder or a missing file", () => {
    const folder = join(dir, "a-folder");
    mkdirSync(folder);
    expectTorchError(() => torch.safetensors.loadFile(folder), /^safetensors: .*a-folder is a folder, not a safetensors file$/);
    expectTorchError(() => torch.safetensors.readHeader(folder), /is a folder/);
    expectTorchError(() => torch.safetensors.loadFile(join(dir, "nope.safetensors")), /cannot open .*nope\.safetensors: no such file/);
  });

  test("saveFile with values that are not tensors, a record that is not one, bad metadata: nothing written", () => {
    const p = join(dir, "bad.safetensors");
    expectTorchError(() => torch.safetensors.saveFile(p, { a: 5 } as never), /^safetensors: "a" is not a Tensor \(got number 5\) in saveFile\(.*bad\.safetensors\)$/);
    expectTorchError(() => torch.safetensors.saveFile(p, { a: torch.ones(2), b: [1, 2] } as never), /"b" is not a Tensor \(got an array\)/);
    expectTorchError(() => torch.safetensors.saveFile(p, { a: null } as never), /"a" is not a Tensor \(got null\)/);
    expectTorchError(() => torch.safetensors.saveFile(p, torch.ones(2) as never), /takes a \{name: Tensor\} record, got an object \(Tensor\)/);
    expectTorchError(() => torch.safetensors.saveFile(p, null as never), /takes a \{name: Tensor\} record, got null/);
    expectTorchError(() => torch.safetensors.saveFile(p, { a: torch.ones(2) }, { n: 5 } as never), /metadata "n" .* must be a string, got number 5/);
    expectTorchError(() => torch.safetensors.saveFile("", { a: torch.ones(2) }), /path must be a non-empty string/);
    expect(existsSync(p)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.includes(".tmp-"))).toEqual([]);
  });

  test("a tensor named __metadata__ is rejected on save, not silently dropped", () => {
    const p = join(dir, "meta.safetensors");
    expectTorchError(() => torch.safetensors.saveFile(p, { w: torch.ones(2), __metadata__: torch.ones(3) }), /"__metadata__" is reserved for the header's metadata and cannot name a tensor/);
    expect(existsSync(p)).toBe(false);
  });

  test("overlapping data_offsets and malformed __metadata__ are rejected on read", () => {
    const overlap = rawFile("overlap.safetensors", {
      a: { dtype: "F32", shape: [4], data_offsets: [0, 16] },
      b: { dtype: "F32", shape: [4], data_offsets: [8, 24] },
    }, 24);
    expectTorchError(() => torch.safetensors.loadFile(overlap), /overlap\.safetensors is not a valid safetensors file: tensors "a" \(bytes 0\.\.16\) and "b" \(bytes 8\.\.24\) overlap/);
    const same = rawFile("alias.safetensors", {
      a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
      b: { dtype: "I32", shape: [2], data_offsets: [0, 8] },
    }, 8);
    expectTorchError(() => torch.safetensors.readHeader(same), /tensors "a" .* and "b" .* overlap/);
    // Adjacent ranges and empty tensors anywhere are fine.
    const ok = rawFile("ok.safetensors", {
      a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
      e: { dtype: "F32", shape: [0], data_offsets: [4, 4] },
      b: { dtype: "F32", shape: [2], data_offsets: [8, 16] },
    }, 16);
    expect(Object.keys(torch.scope(() => Object.fromEntries(Object.entries(torch.safetensors.loadFile(ok)).map(([k, t]) => [k, t.shape]))))).toEqual(["a", "e", "b"]);
    const meta = rawFile("meta-bad.safetensors", { __metadata__: { format: 5 }, a: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, 4);
    expectTorchError(() => torch.safetensors.readHeader(meta), /__metadata__ must be an object of strings/);
  });
});
