// src/util/durable.ts: files replaced whole or not at all, temporary files never left behind, folders
// swapped in with the old one put back when the swap fails, and sha256 of files larger than its buffer.
import { afterAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { installFolder, removeFolder, replaceFile, sha256File, writeFileAtomic } from "../../src/util/durable";

const root = mkdtempSync(join(tmpdir(), "arc-durable-test-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => {
  const d = join(root, `case-${++n}`);
  mkdirSync(d);
  return d;
};

describe("durable files", () => {
  test("writeFileAtomic replaces a file whole and leaves only it; mkdir makes its folder", () => {
    const d = fresh();
    const p = join(d, "a.json");
    writeFileAtomic(p, "old");
    writeFileAtomic(p, new Uint8Array([1, 2, 3]));
    expect([...readFileSync(p)]).toEqual([1, 2, 3]);
    expect(readdirSync(d)).toEqual(["a.json"]);
    const deep = join(d, "x", "y", "b.txt");
    expect(() => writeFileAtomic(deep, "b")).toThrow(/ENOENT/);
    writeFileAtomic(deep, "b", { mkdir: true });
    expect(readFileSync(deep, "utf8")).toBe("b");
  });

  test("a writer that fails leaves the old file as it was and no temporary file", () => {
    const d = fresh();
    const p = join(d, "model.safetensors");
    writeFileSync(p, "previous");
    expect(() =>
      replaceFile(p, (tmp) => {
        writeFileSync(tmp, "half");
        throw new Error("disk full");
      }),
    ).toThrow("disk full");
    expect(readFileSync(p, "utf8")).toBe("previous");
    expect(readdirSync(d)).toEqual(["model.safetensors"]);
    // A writer that wrote nothing at all is an error too (there is no file to fsync or rename).
    expect(() => replaceFile(p, () => {})).toThrow(/ENOENT/);
    expect(readFileSync(p, "utf8")).toBe("previous");
    replaceFile(p, (tmp) => writeFileSync(tmp, "new"));
    expect(readFileSync(p, "utf8")).toBe("new");
    expect(readdirSync(d)).toEqual(["model.safetensors"]);
  });

  test("installFolder swaps a folder in (the old one removed), puts the old one back when the move fails", () => {
    const d = fresh();
    const final = join(d, "best");
    const make = (name: string, content: string) => {
      const f = join(d, name);
      mkdirSync(f);
      writeFileSync(join(f, "state.json"), content);
      return f;
    };
    installFolder(make(".tmp-1", "one"), final, join(d, ".old-1"));
    expect(readFileSync(join(final, "state.json"), "utf8")).toBe("one");
    installFolder(make(".tmp-2", "two"), final, join(d, ".old-2"));
    expect(readFileSync(join(final, "state.json"), "utf8")).toBe("two");
    expect(readdirSync(d).sort()).toEqual(["best"]);
    // The new folder is missing: the rename fails and best/ is put back as it was.
    expect(() => installFolder(join(d, ".tmp-gone"), final, join(d, ".old-3"))).toThrow(/ENOENT/);
    expect(readFileSync(join(final, "state.json"), "utf8")).toBe("two");
    expect(readdirSync(d).sort()).toEqual(["best"]);
    removeFolder(final, join(d, ".del-best"));
    expect(readdirSync(d)).toEqual([]);
  });

  test("sha256File equals node's hash for empty, small and multi-buffer files", () => {
    const d = fresh();
    for (const size of [0, 5, (8 << 20) + 3]) {
      const bytes = new Uint8Array(size).map((_, i) => (i * 31 + 7) & 255);
      const p = join(d, `f${size}`);
      writeFileSync(p, bytes);
      expect(sha256File(p)).toBe(createHash("sha256").update(bytes).digest("hex"));
    }
    expect(existsSync(join(d, "f0"))).toBe(true);
  });
});
