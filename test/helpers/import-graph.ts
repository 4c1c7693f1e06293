// The import graph of a TypeScript tree, for the architecture test: every relative import counts, whether
// static (`import ... from`, `export ... from`, `import "x"`), type-only (`import type`) or dynamic
// (`import("x")`, also inside a type position), because each is a dependency a reader must follow.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const SPECIFIER = /(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)["'](\.{1,2}\/[^"']+)["']/g;

/** Every .ts file under root (declaration files aside), as paths relative to root with "/" separators. */
export function sourceFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith(".ts") && !name.endsWith(".d.ts")) out.push(relative(root, p).split("\\").join("/"));
    }
  };
  walk(root);
  return out;
}

/** file -> the files it imports (relative to root); imports that leave the tree (packages, node:) are not edges. */
export function importGraph(root: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(root)) {
    const text = readFileSync(join(root, file), "utf8");
    const targets = new Set<string>();
    for (const m of text.matchAll(SPECIFIER)) {
      const base = resolve(root, dirname(file), m[1]);
      const hit = [base, `${base}.ts`, join(base, "index.ts")].find((c) => existsSync(c) && statSync(c).isFile());
      if (hit) targets.add(relative(root, hit).split("\\").join("/"));
    }
    targets.delete(file);
    graph.set(file, [...targets].sort());
  }
  return graph;
}

/** The strongly connected components of more than one file: each is an import cycle (Tarjan's algorithm). */
export function importCycles(graph: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) cycles.push(comp.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return cycles;
}

/** The layer of a file: the longest listed prefix it starts with (a folder "x/" or a file "x.ts"), or null. */
export function layerOf(file: string, layers: readonly string[]): number | null {
  let best: number | null = null;
  let bestLength = -1;
  layers.forEach((prefix, i) => {
    const hit = prefix.endsWith("/") ? file.startsWith(prefix) : file === prefix;
    if (hit && prefix.length > bestLength) {
      best = i;
      bestLength = prefix.length;
    }
  });
  return best;
}

/**
 * Imports that go up the documented order (layers listed bottom first; a layer may import itself and any
 * layer before it), and files that belong to no layer.
 */
export function layerViolations(graph: Map<string, string[]>, layers: readonly string[]): string[] {
  const problems: string[] = [];
  for (const [file, targets] of graph) {
    const from = layerOf(file, layers);
    if (from === null) {
      problems.push(`${file} belongs to no documented layer`);
      continue;
    }
    for (const t of targets) {
      const to = layerOf(t, layers);
      if (to !== null && to > from) problems.push(`${file} (${layers[from]}) imports ${t} (${layers[to]}), a layer above it`);
    }
  }
  return problems;
}
