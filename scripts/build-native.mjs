#!/usr/bin/env node
// Builds the native addon (native/ -> build/Release/arc_torch.node) with cmake-js.
// Runs on `npm install` / `bun install` (the package's install script) and `bun run build:native`.
// LibTorch is looked for, in order: $LIBTORCH (a libtorch folder), $Torch_DIR / $CMAKE_PREFIX_PATH,
// the PyTorch of `python3` (build time only), the system (Debian's libtorch-dev).
// Skips the build when the addon is newer than every native source and was built against the same
// LibTorch (pass --force to rebuild anyway).
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "build", "Release", "arc_torch.node");
const stamp = join(root, "build", "libtorch.txt");
const force = process.argv.includes("--force");

function fail(msg) {
  console.error(`\nbuild-native: ${msg}\n`);
  process.exit(1);
}

const hasTorchConfig = (dir) => existsSync(join(dir, "TorchConfig.cmake")) || existsSync(join(dir, "Torch", "TorchConfig.cmake"));

function findLibTorch() {
  const env = process.env;
  if (env.LIBTORCH) {
    const dir = join(env.LIBTORCH, "share", "cmake");
    if (!hasTorchConfig(dir)) fail(`LIBTORCH=${env.LIBTORCH} has no share/cmake/Torch/TorchConfig.cmake (is it an unpacked libtorch folder?)`);
    return { how: "LIBTORCH", prefix: dir };
  }
  if (env.Torch_DIR) return { how: "Torch_DIR", prefix: null };
  if (env.CMAKE_PREFIX_PATH && env.CMAKE_PREFIX_PATH.split(":").some((p) => p && hasTorchConfig(join(p, "Torch")) || hasTorchConfig(p))) {
    return { how: "CMAKE_PREFIX_PATH", prefix: null };
  }
  const py = spawnSync("python3", ["-c", "import torch; print(torch.utils.cmake_prefix_path)"], { encoding: "utf8" });
  if (py.status === 0 && py.stdout.trim() && hasTorchConfig(py.stdout.trim())) return { how: "python3's PyTorch", prefix: py.stdout.trim() };
  for (const lib of ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/usr/local/lib"]) {
    const dir = join(lib, "cmake");
    if (existsSync(join(dir, "Torch", "TorchConfig.cmake"))) return { how: "system", prefix: dir };
  }
  fail(
    "LibTorch was not found. Get one of:\n" +
      "  Debian/Ubuntu (CPU):  sudo apt-get install -y libtorch-dev\n" +
      "  a LibTorch download:  unpack the C++ LibTorch zip from https://pytorch.org/get-started/locally/ and set LIBTORCH=/path/to/libtorch\n" +
      "  pip's PyTorch:        pip install torch   (python3's PyTorch is found at build time)\n" +
      "or set Torch_DIR / CMAKE_PREFIX_PATH to a folder holding TorchConfig.cmake. Then run: bun run build:native",
  );
}

function newestSource() {
  const dir = join(root, "native");
  return Math.max(...readdirSync(dir).map((f) => statSync(join(dir, f)).mtimeMs), statSync(fileURLToPath(import.meta.url)).mtimeMs);
}

const torch = findLibTorch();
const key = `${torch.how}:${torch.prefix ?? process.env.Torch_DIR ?? process.env.CMAKE_PREFIX_PATH}`;
if (!force && existsSync(out) && existsSync(stamp) && readFileSync(stamp, "utf8") === key && statSync(out).mtimeMs > newestSource()) {
  console.log(`build-native: up to date (${out})`);
  process.exit(0);
}

const cmakeCheck = spawnSync("cmake", ["--version"], { encoding: "utf8" });
if (cmakeCheck.status !== 0) fail("cmake was not found. Install it (Debian/Ubuntu: sudo apt-get install -y cmake g++).");

console.log(`build-native: LibTorch from ${torch.how}${torch.prefix ? ` (${torch.prefix})` : ""}`);
const args = ["compile", "--out", "build", "--config", "Release"];
if (torch.prefix) {
  const prefixes = [torch.prefix, process.env.CMAKE_PREFIX_PATH].filter(Boolean).join(";");
  args.push(`--CDCMAKE_PREFIX_PATH=${prefixes}`);
}
const jobs = process.env.CMAKE_BUILD_PARALLEL_LEVEL ?? "2";
args.push("--parallel", jobs);
const cmakeJs = join(root, "node_modules", "cmake-js", "bin", "cmake-js");
const r = spawnSync(process.execPath, [cmakeJs, ...args], { cwd: root, stdio: "inherit" });
if (r.status !== 0) fail(`the native build failed (cmake-js exit ${r.status}); see the compiler output above.`);
if (!existsSync(out)) fail(`the build finished but ${out} is missing`);
writeFileSync(stamp, key);
console.log(`build-native: built ${out}`);
