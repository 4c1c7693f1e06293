import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { strToU8, zipSync } from "fflate";
import { archiveUrl, cachedDataset, dataCacheDir, downloadDataset } from "../../src/arc/download.ts";
import { ArcDataError } from "../../src/arc/errors.ts";
import { loadDataset } from "../../src/arc/load.ts";
import { Rng } from "../../src/arc/rng.ts";

const task = (v: number) => JSON.stringify({ train: [{ input: [[v]], output: [[v, v]] }], test: [{ input: [[v]], output: [[v, v]] }] });

/** An archive shaped like GitHub's: a top folder, the data folders, and other files that must be skipped. */
function repoZip(top: string): Uint8Array {
  const rng = new Rng(3);
  const blob = new Uint8Array(2 << 20).map(() => rng.int(0, 255)); // 2 MiB stored, so the download comes in many chunks
  return zipSync({
    [`${top}/LICENSE`]: strToU8("Apache License 2.0"),
    [`${top}/README.md`]: strToU8("# ARC"),
    [`${top}/apps/blob.bin`]: [blob, { level: 0 }],
    [`${top}/data/training/aaa.json`]: strToU8(task(1)),
    [`${top}/data/training/bbb.json`]: strToU8(task(2)),
    [`${top}/data/evaluation/ccc.json`]: strToU8(task(3)),
    [`${top}/data/training/../../../evil.json`]: strToU8(task(4)),
  });
}

const zip2 = repoZip("ARC-AGI-2-main");
const zip1 = repoZip("ARC-AGI-master");
const requests: string[] = [];

/** Serves arc-agi-2 with a Content-Length, arc-agi-1 streamed in 16 slices without one (as GitHub often does). */
const server = Bun.serve({
  port: 0,
  fetch(req) {
    const p = new URL(req.url).pathname;
    requests.push(p);
    const sliced = (z: Uint8Array) => new ReadableStream({
      async start(c) {
        const n = Math.ceil(z.length / 16);
        for (let i = 0; i < z.length; i += n) { c.enqueue(z.slice(i, i + n)); await Bun.sleep(1); }
        c.close();
      },
    });
    if (p === "/arcprize/ARC-AGI-2/archive/refs/heads/main.zip") return new Response(zip2); // Bun sends its Content-Length
    if (p === "/fchollet/ARC-AGI/archive/refs/heads/master.zip") return new Response(sliced(zip1));
    if (p.startsWith("/corrupt/")) return new Response(zip2.slice(0, 1000), { headers: { "content-length": "1000" } });
    if (p.startsWith("/nodata/")) return new Response(zipSync({ "x/README.md": strToU8("no data") }));
    if (p.startsWith("/stall/")) return new Response(new ReadableStream({ start(c) { c.enqueue(new Uint8Array(10)); } }));
    return new Response("not found", { status: 404 });
  },
});
afterAll(() => server.stop(true));
const base = `http://127.0.0.1:${server.port}`;

/** A stream that records what the progress bar writes (not a TTY: plain lines). */
function sink() {
  const s = { text: "", isTTY: false, write(x: string) { s.text += x; return true; } };
  return s as typeof s & NodeJS.WriteStream;
}
const tmp = () => mkdtempSync(path.join(os.tmpdir(), "arc-dl-"));

describe("download", () => {
  test("archive URLs are the public GitHub repositories", () => {
    expect(archiveUrl("arc-agi-1", "https://github.com")).toBe("https://github.com/fchollet/ARC-AGI/archive/refs/heads/master.zip");
    expect(archiveUrl("arc-agi-2", "https://github.com/")).toBe("https://github.com/arcprize/ARC-AGI-2/archive/refs/heads/main.zip");
  });

  test("downloads with progress, unpacks the data folders, and the second call makes no request", async () => {
    const cacheDir = tmp();
    const out = sink();
    const n0 = requests.length;
    const ds = await loadDataset("arc-agi-2", { download: { cacheDir, urlBase: base, stream: out } });
    const dest = path.join(cacheDir, "arc-agi-2");
    expect(requests.slice(n0)).toEqual(["/arcprize/ARC-AGI-2/archive/refs/heads/main.zip"]);
    expect(ds.name).toBe("arc-agi-2");
    expect(ds.root).toBe(dest);
    expect(ds.training.map((t) => t.id)).toEqual(["aaa", "bbb"]);
    expect(ds.evaluation.map((t) => t.id)).toEqual(["ccc"]);
    expect(readdirSync(dest).sort()).toEqual(["LICENSE", "evaluation", "training"]);
    expect(readdirSync(cacheDir)).toEqual(["arc-agi-2"]); // no .partial, no .zip, no temporary folder left
    expect(existsSync(path.join(path.dirname(cacheDir), "evil.json"))).toBe(false);

    // Progress: a start line, then plain progress lines up to 100% of the known size (how many depends on how
    // the body arrives in chunks: usually about ten here).
    const lines = out.text.trim().split("\n");
    expect(lines[0]).toBe(`Downloading arc-agi-2 from ${base}/arcprize/ARC-AGI-2/archive/refs/heads/main.zip into ${dest}`);
    const mib = (zip2.length / 1048576).toFixed(1);
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(lines.at(-1)).toMatch(new RegExp(`^Downloading arc-agi-2: ${mib} MiB/${mib} MiB 100% \\(\\d+\\.\\d s, \\d+\\.\\d MiB/s, ETA (\\d+:\\d\\d|--)\\)$`));
    expect(lines.slice(1).every((l) => /^Downloading arc-agi-2: \d+\.\d MiB\/\d+\.\d MiB \d+% /.test(l))).toBe(true);

    const again = sink();
    expect(await downloadDataset("arc-agi-2", { cacheDir, urlBase: base, stream: again })).toBe(dest);
    expect(requests.length).toBe(n0 + 1);
    expect(again.text).toBe("");
    expect(cachedDataset("arc-agi-2", { cacheDir })).toBe(dest);
  });

  test("ARC_DATA_DIR and ARC_DATA_URL_BASE are honoured; an archive without a size still shows progress", async () => {
    const dir = tmp();
    const saved = { d: process.env.ARC_DATA_DIR, u: process.env.ARC_DATA_URL_BASE };
    process.env.ARC_DATA_DIR = dir;
    process.env.ARC_DATA_URL_BASE = base;
    try {
      expect(dataCacheDir()).toBe(dir);
      const out = sink();
      const dest = await downloadDataset("arc-agi-1", { stream: out });
      expect(dest).toBe(path.join(dir, "arc-agi-1"));
      expect(readdirSync(path.join(dest, "training")).sort()).toEqual(["aaa.json", "bbb.json"]);
      const lines = out.text.trim().split("\n");
      expect(lines[0]).toEndWith("(size unknown)");
      expect(lines.at(-1)).toMatch(/^Downloading arc-agi-1: 2\.0 MiB \(\d+\.\d s, \d+\.\d MiB\/s, ETA --\)$/);
    } finally {
      process.env.ARC_DATA_DIR = saved.d ?? "";
      process.env.ARC_DATA_URL_BASE = saved.u ?? "";
      if (saved.d === undefined) delete process.env.ARC_DATA_DIR;
      if (saved.u === undefined) delete process.env.ARC_DATA_URL_BASE;
    }
  });

  test("an archive left by an interrupted run is unpacked without downloading again", async () => {
    const cacheDir = tmp();
    writeFileSync(path.join(cacheDir, "arc-agi-2.zip"), zip2);
    const n0 = requests.length;
    const dest = await downloadDataset("arc-agi-2", { cacheDir, urlBase: base, quiet: true });
    expect(requests.length).toBe(n0);
    expect(readdirSync(path.join(dest, "evaluation"))).toEqual(["ccc.json"]);
    expect(existsSync(path.join(cacheDir, "arc-agi-2.zip"))).toBe(false);
  });

  test("offline (nothing listening): a clear ArcDataError with the manual alternative, nothing left behind", async () => {
    const closed = Bun.serve({ port: 0, fetch: () => new Response("") });
    const port = closed.port;
    closed.stop(true);
    const cacheDir = tmp();
    let err: unknown;
    try {
      await downloadDataset("arc-agi-2", { cacheDir, urlBase: `http://127.0.0.1:${port}`, quiet: true });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ArcDataError);
    const msg = (err as Error).message;
    expect(msg).toStartWith(`could not download arc-agi-2 from http://127.0.0.1:${port}/arcprize/ARC-AGI-2/archive/refs/heads/main.zip: `);
    expect(msg).toContain("To get it by hand: download https://github.com/arcprize/ARC-AGI-2/archive/refs/heads/main.zip on a machine with internet, unpack it, and pass --data /path/to/ARC-AGI-2-main/data");
    expect(msg).toContain(`copy its data/training and data/evaluation folders to ${path.join(cacheDir, "arc-agi-2")}/ (set ARC_DATA_DIR to choose the cache folder)`);
    expect(readdirSync(cacheDir)).toEqual([]);
  });

  test("offline mode never touches the network", async () => {
    const n0 = requests.length;
    await expect(downloadDataset("arc-agi-2", { cacheDir: tmp(), urlBase: base, offline: true })).rejects.toThrow(/^arc-agi-2 is not in .* and downloads are off \(ARC_DATA_OFFLINE=1\)\. To get it by hand: /);
    expect(requests.length).toBe(n0);
  });

  test("HTTP errors, corrupt archives, archives without data, and stalls are ArcDataErrors", async () => {
    const opts = (p: string) => ({ cacheDir: tmp(), urlBase: `${base}/${p}`, quiet: true, idleTimeoutMs: 300 });
    await expect(downloadDataset("arc-agi-2", opts("missing"))).rejects.toThrow(/: HTTP 404 Not Found\. To get it by hand/);
    const c = opts("corrupt");
    await expect(downloadDataset("arc-agi-2", c)).rejects.toThrow(/^could not unpack arc-agi-2 from .*: not a readable zip archive/);
    expect(readdirSync(c.cacheDir)).toEqual([]); // the bad archive is removed, so the next call downloads again
    await expect(downloadDataset("arc-agi-2", opts("nodata"))).rejects.toThrow(/^could not unpack arc-agi-2 from .*: the archive has no data\/training or data\/evaluation folder with task files\. To get it by hand/);
    await expect(downloadDataset("arc-agi-2", opts("stall"))).rejects.toThrow(/: no data for 0\.3 s after 10 bytes\./);
    await expect(downloadDataset("arc-agi-3" as "arc-agi-2", opts("x"))).rejects.toThrow('unknown dataset "arc-agi-3" (known: arc-agi-1, arc-agi-2)');
  });

  test("force downloads again and replaces the folder", async () => {
    const cacheDir = tmp();
    mkdirSync(path.join(cacheDir, "arc-agi-2", "training"), { recursive: true });
    writeFileSync(path.join(cacheDir, "arc-agi-2", "training", "old.json"), task(5));
    expect(await downloadDataset("arc-agi-2", { cacheDir, urlBase: base, quiet: true })).toBe(path.join(cacheDir, "arc-agi-2"));
    expect(readdirSync(path.join(cacheDir, "arc-agi-2", "training"))).toEqual(["old.json"]); // a hand-made cache is used as is
    await downloadDataset("arc-agi-2", { cacheDir, urlBase: base, quiet: true, force: true });
    expect(readdirSync(path.join(cacheDir, "arc-agi-2", "training")).sort()).toEqual(["aaa.json", "bbb.json"]);
    expect(readFileSync(path.join(cacheDir, "arc-agi-2", "LICENSE"), "utf8")).toBe("Apache License 2.0");
  });
});
