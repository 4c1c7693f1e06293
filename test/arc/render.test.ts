import { describe, expect, test } from "bun:test";
import { inflateSync } from "node:zlib";
import { crc32 } from "../../src/arc/png.ts";
import {
  ARC_CSS, gridHtml, gridLines, gridPng, htmlPage, PALETTE, renderAnsi, renderTaskAnsi, taskHtml, taskPng,
} from "../../src/arc/render.ts";
import type { Task } from "../../src/arc/types.ts";

const task: Task = {
  id: "t<1>",
  train: [{ input: [[0, 1], [2, 3]], output: [[4]] }],
  test: [{ input: [[5, 6, 7]], output: [[8, 9]] }],
};

/** Decode the PNGs we write (8-bit RGB, filter 0) and check every chunk CRC. */
function decodePng(png: Uint8Array): { w: number; h: number; px: (x: number, y: number) => string } {
  expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
  let o = 8, w = 0, h = 0;
  const idat: Uint8Array[] = [];
  const types: string[] = [];
  while (o < png.length) {
    const len = dv.getUint32(o);
    const type = String.fromCharCode(...png.subarray(o + 4, o + 8));
    types.push(type);
    expect(dv.getUint32(o + 8 + len)).toBe(crc32(png.subarray(o + 4, o + 8 + len)));
    if (type === "IHDR") { w = dv.getUint32(o + 8); h = dv.getUint32(o + 12); expect([...png.subarray(o + 16, o + 21)]).toEqual([8, 2, 0, 0, 0]); }
    if (type === "IDAT") idat.push(png.subarray(o + 8, o + 8 + len));
    o += 12 + len;
  }
  expect(types).toEqual(["IHDR", "IDAT", "IEND"]);
  const raw = inflateSync(Buffer.concat(idat));
  expect(raw.length).toBe(h * (1 + 3 * w));
  const px = (x: number, y: number) => {
    const i = y * (1 + 3 * w) + 1 + 3 * x;
    return "#" + [raw[i]!, raw[i + 1]!, raw[i + 2]!].map((b) => b.toString(16).padStart(2, "0").toUpperCase()).join("");
  };
  return { w, h, px };
}

describe("terminal", () => {
  test("ANSI: a 24-bit background per cell, two columns wide, reset at each line end", () => {
    expect(renderAnsi([[0, 1], [9, 4]])).toBe(
      "\x1b[48;2;0;0;0m  \x1b[48;2;0;116;217m  \x1b[0m\n\x1b[48;2;135;12;37m  \x1b[48;2;255;220;0m  \x1b[0m",
    );
    expect(renderAnsi([[0, 1], [9, 4]], { colour: false })).toBe("0 1 \n9 4 ");
    expect(gridLines([[5, 5, 5]], { colour: false })).toEqual(["5 5 5 "]);
  });

  test("a task: pairs side by side with their sizes", () => {
    expect(renderTaskAnsi(task, { colour: false })).toBe(
      ["task t<1>: 1 train, 1 test", "", "train[0]  2x2 -> 1x1", "0 1   ->  4", "2 3", "", "test[0]  1x3 -> 1x2", "5 6 7   ->  8 9"].join("\n"),
    );
    const hidden = renderTaskAnsi({ ...task, test: [{ input: [[1]] }] }, { colour: false });
    expect(hidden.endsWith("test[0]  1x1 -> ?\n1   ->  ?")).toBe(true);
    expect(renderTaskAnsi(task)).toContain("\x1b[48;2;255;65;54m"); // red, colour 2
  });
});

describe("HTML", () => {
  test("grids are compact cells with the palette in the page's CSS", () => {
    expect(gridHtml([[0, 1], [2, 3]])).toBe(
      '<div class="arc-grid" style="grid-template-columns:repeat(2,auto)" title="2x2"><i class="c0"></i><i class="c1"></i><i class="c2"></i><i class="c3"></i></div>',
    );
    expect(gridHtml([[7]], { cell: 20 })).toContain("--arc-cell:20px");
    for (const [i, c] of PALETTE.entries()) expect(ARC_CSS).toContain(`.arc-grid .c${i}{background:${c}}`);
    expect(PALETTE).toEqual(["#000000", "#0074D9", "#FF4136", "#2ECC40", "#FFDC00", "#AAAAAA", "#F012BE", "#FF851B", "#7FDBFF", "#870C25"]);
  });

  test("a task with attempts marks right and wrong ones; text is escaped", () => {
    const html = taskHtml(task, { attempts: [[[[8, 9]], [[9, 8]], null]] });
    expect(html).toContain('<h2>t&lt;1&gt;</h2>');
    expect(html).toContain('<figure class="arc-ok"><figcaption>attempt 1 \u2713 1x2</figcaption>');
    expect(html).toContain('<figure class="arc-bad"><figcaption>attempt 2 \u2717 1x2</figcaption>');
    expect(html).toContain("<figcaption>attempt 3</figcaption><div class=\"arc-arrow\">(none)</div>");
    expect(html).toContain("<figcaption>target 1x2</figcaption>");
    expect(html.match(/class="arc-grid"/g)!.length).toBe(6); // 2 train, test input, target, 2 attempts
    const page = htmlPage("Report <x>", html);
    expect(page.startsWith("<!doctype html>")).toBe(true);
    expect(page).toContain("<title>Report &lt;x&gt;</title>");
    expect(page).toContain(ARC_CSS);
    expect(page).toContain(html);
  });
});

describe("PNG", () => {
  test("a grid: cells in the palette, grid lines in grey, valid chunks", () => {
    const { w, h, px } = decodePng(gridPng([[0, 1, 2], [9, 4, 3]], { cell: 4, line: 1 }));
    expect([w, h]).toEqual([3 * 5 + 1, 2 * 5 + 1]);
    expect(px(0, 0)).toBe("#444444");
    expect(px(2, 2)).toBe(PALETTE[0]);
    expect(px(7, 2)).toBe(PALETTE[1]);
    expect(px(12, 3)).toBe(PALETTE[2]);
    expect(px(2, 7)).toBe(PALETTE[9]);
    expect(px(7, 8)).toBe(PALETTE[4]);
    expect(px(13, 9)).toBe(PALETTE[3]);
    expect(px(5, 5)).toBe("#444444");
  });

  test("a task: one row per pair on white paper", () => {
    const { w, h, px } = decodePng(taskPng(task, { cell: 2, line: 1 }));
    // gap = cell = 2; row 1: 2x2 (7x7 px) + gap + 1x1 (4x4); row 2: 1x3 (4x10) + gap + 1x2 (4x7).
    expect(w).toBe(2 + 10 + 2 + 7 + 2);
    expect(h).toBe(2 + 7 + 2 + 4 + 2);
    expect(px(0, 0)).toBe("#FFFFFF");
    expect(px(2 + 1, 2 + 1)).toBe(PALETTE[0]);
    expect(px(2 + 7 + 2 + 1, 2 + 1)).toBe(PALETTE[4]);
    expect(px(2 + 1, 2 + 7 + 2 + 1)).toBe(PALETTE[5]);
  });
});
