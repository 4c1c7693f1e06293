// The layout docs/architecture.md documents: src/ has no import cycle (static, type-only and dynamic imports
// all count) and no folder imports one above it in the documented order.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { importCycles, importGraph, layerViolations } from "./helpers/import-graph";

const SRC = join(import.meta.dir, "..", "src");

/** The layers, bottom first: each may import itself and the ones before it. docs/architecture.md lists the same. */
export const LAYERS = [
  "util/",
  "hub.ts",
  "torch/",
  "torch.ts",
  "nn/",
  "tokenizer.ts",
  "models/",
  "arc/",
  "pipeline/objective/",
  "pipeline/system/",
  "pipeline/eval/",
  "pipeline/config/",
  "pipeline/run/",
  "pipeline/observe/",
  "pipeline/trainer/",
  "pipeline/commands/",
] as const;

describe("src/ layout", () => {
  const graph = importGraph(SRC);

  test("no import cycle", () => {
    expect(importCycles(graph)).toEqual([]);
  });

  test("no import from a layer to one above it, and every file in a layer", () => {
    expect(layerViolations(graph, LAYERS)).toEqual([]);
  });

  test("docs/architecture.md lists the same layers in the same order", () => {
    const doc = readFileSync(join(import.meta.dir, "..", "docs", "architecture.md"), "utf8");
    const listed = [...doc.matchAll(/^\| \d+ \| `src\/([^`]+)` \|/gm)].map((m) => m[1]);
    expect(listed).toEqual([...LAYERS]);
  });
});

describe("the checks themselves", () => {
  const tmp = mkdtempSync(join(tmpdir(), "arch-"));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const plant = (files: Record<string, string>): string => {
    const root = mkdtempSync(join(tmp, "src-"));
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(dirname(join(root, name)), { recursive: true });
      writeFileSync(join(root, name), text);
    }
    return root;
  };

  test("a planted cycle is found, whether its imports are static, type-only or dynamic", () => {
    const root = plant({
      "a/x.ts": 'import { y } from "../b/y";\nexport const x = 1;',
      "b/y.ts": 'import type { Z } from "./z";\nexport const y = 2;',
      "b/z.ts": 'export type Z = typeof import("../a/x");\nexport const lazy = () => import("../a/x");',
      "c/free.ts": 'import { x } from "../a/x";',
    });
    expect(importCycles(importGraph(root))).toEqual([["a/x.ts", "b/y.ts", "b/z.ts"]]);
  });

  test("a planted upward import and a file outside every layer are named", () => {
    const root = plant({
      "low/a.ts": 'import { b } from "../high/b";',
      "high/b.ts": "export const b = 1;",
      "stray/c.ts": "export const c = 1;",
    });
    expect(layerViolations(importGraph(root), ["low/", "high/"])).toEqual([
      "low/a.ts (low/) imports high/b.ts (high/), a layer above it",
      "stray/c.ts belongs to no documented layer",
    ]);
  });
});
