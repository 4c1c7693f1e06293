#!/usr/bin/env node
// Builds the native addon (native/ -> build/Release/arc_torch.node) with cmake-js against exactly one
// LibTorch. Runs on `npm install` (the package's install script) and `npm run build:native`.
//
//   node scripts/build-native.mjs [--force] [--print] [--cmake-arg -DX=Y ...]
//
// LibTorch is looked for, in order: $LIBTORCH (a LibTorch folder), $Torch_DIR (the folder with
// TorchConfig.cmake), $CMAKE_PREFIX_PATH (colon-separated), .libtorch (written by scripts/setup.sh
// --torch pip-*), the PyTorch of $PYTHON or python3 (build time only), the system (Debian's libtorch-dev). CUDA builds find the toolkit through CUDA_HOME,
// CUDA_PATH, the nvcc on PATH or /usr/local/cuda, and pip's nvidia-* libraries beside its torch.
// $ARC_CMAKE_ARGS (space-separated) and --cmake-arg add anything else.
//
// The build is skipped when the addon is newer than every native source and was configured for the
// same LibTorch and arguments; a changed LibTorch or --force reconfigures from scratch (CMake's cache
// would otherwise keep the old library's paths).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { LibTorchError, describeLibTorch, findCudaToolkit, findLibTorch, findPipNvidiaLib, neededLibraries } from "./lib/libtorch.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const buildDir = join(root, "build");
const out = join(buildDir, "Release", "arc_torch.node");
const stamp = join(buildDir, "libtorch.json");

function fail(msg) {
  console.error(`\nbuild-native: ${msg}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const opts = { force: false, print: false, cmakeArgs: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--force") opts.force = true;
    else if (a === "--print") opts.print = true;
    else if (a === "--cmake-arg") {
      if (i + 1 >= argv.length) fail("--cmake-arg needs a value (e.g. --cmake-arg -DCMAKE_CXX_COMPILER=g++-12)");
      opts.cmakeArgs.push(argv[++i]);
    } else if (a.startsWith("--cmake-arg=")) opts.cmakeArgs.push(a.slice("--cmake-arg=".length));
    else fail(`unknown argument ${a} (takes --force, --print, --cmake-arg ARG)`);
  }
  const extra = (process.env.ARC_CMAKE_ARGS ?? "").split(/\s+/).filter(Boolean);
  opts.cmakeArgs = [...extra, ...opts.cmakeArgs];
  return opts;
}

/** Everything that decides the configuration: when any of it changes, CMake's cache is stale. */
function plan(opts) {
  const recordedFile = join(root, ".libtorch");
  const recorded = existsSync(recordedFile) ? readFileSync(recordedFile, "utf8").trim() || null : null;
  const found = findLibTorch(process.env, { recorded });
  const lt = describeLibTorch(found.torchDir);
  const defs = { Torch_DIR: lt.torchDir, Caffe2_DIR: lt.caffe2Dir, ARC_TORCH_LIBDIR: lt.libDir };
  let cuda = null;
  if (lt.cuda) {
    const tk = findCudaToolkit();
    if (!tk) {
      throw new LibTorchError(
        `${lt.root} is a CUDA build of LibTorch, but no CUDA toolkit was found (set CUDA_HOME or CUDA_PATH, or put nvcc on PATH)`,
      );
    }
    cuda = { toolkit: tk.root, how: tk.how };
    defs.CUDAToolkit_ROOT = tk.root;
    defs.CUDA_TOOLKIT_ROOT_DIR = tk.root; // the older FindCUDA that LibTorch 1.x configs use
    // pip's torch was built against the nvidia-* wheels' nvrtc, not the toolkit's; link that one.
    const nvrtc = findPipNvidiaLib(lt.root, "nvrtc");
    if (nvrtc) {
      defs.CUDA_nvrtc_LIBRARY = nvrtc;
      cuda.nvrtc = nvrtc;
    }
  }
  return { how: found.how, ...lt, cudaBuild: cuda, defs, cmakeArgs: opts.cmakeArgs };
}

function newestSource() {
  const dirs = [join(root, "native"), join(root, "scripts", "lib")];
  const files = dirs.flatMap((d) => readdirSync(d).map((f) => join(d, f)));
  files.push(fileURLToPath(import.meta.url), join(root, "CMakeLists.txt"));
  return Math.max(...files.map((f) => statSync(f).mtimeMs));
}

function describe(p) {
  const cuda = p.cuda ? `CUDA ${p.cudaVersion ?? "(version unknown)"}, toolkit ${p.cudaBuild.toolkit} (${p.cudaBuild.how})` : "CPU only";
  return `LibTorch ${p.version} at ${p.root} (from ${p.how}; libraries in ${p.libDir}); ${cuda}`;
}

const opts = parseArgs(process.argv.slice(2));
let p;
try {
  p = plan(opts);
} catch (e) {
  if (e instanceof LibTorchError) fail(e.message);
  throw e;
}
const key = JSON.stringify({ torchDir: p.torchDir, defs: p.defs, cmakeArgs: p.cmakeArgs });
const previous = existsSync(stamp) ? readFileSync(stamp, "utf8") : null;

if (opts.print) {
  console.log(`build-native: ${describe(p)}`);
  if (existsSync(out)) {
    const same = previous === key;
    console.log(`build-native: ${out} ${same ? "was built against it" : "was built against another LibTorch or other arguments (run npm run build:native)"}`);
    const torchLibs = neededLibraries(out).filter((l) => /torch|c10/.test(l));
    if (torchLibs.length) console.log(`build-native: the addon loads ${torchLibs.join(", ")}`);
  } else {
    console.log(`build-native: ${out} is not built yet`);
  }
  process.exit(0);
}

if (!opts.force && existsSync(out) && previous === key && statSync(out).mtimeMs > newestSource()) {
  console.log(`build-native: up to date (${out}; ${describe(p)})`);
  process.exit(0);
}

const cmakeCheck = spawnSync("cmake", ["--version"], { encoding: "utf8" });
if (cmakeCheck.status !== 0) fail("cmake was not found. Install it (Debian/Ubuntu: sudo apt-get install -y cmake g++).");

// A different LibTorch (or --force): start from an empty build folder, so no cached path of the old
// library survives into the new configuration.
if (opts.force || previous !== key) rmSync(buildDir, { recursive: true, force: true });
mkdirSync(buildDir, { recursive: true });

console.log(`build-native: ${describe(p)}`);
const args = ["compile", "--out", "build", "--config", "Release"];
for (const [k, v] of Object.entries(p.defs)) args.push(`--CD${k}=${v}`);
for (const a of p.cmakeArgs) {
  if (!a.startsWith("-D")) fail(`--cmake-arg ${a}: only -DNAME=VALUE arguments are passed on to CMake`);
  args.push(`--CD${a.slice(2)}`);
}
args.push("--parallel", process.env.CMAKE_BUILD_PARALLEL_LEVEL ?? "2");
// TorchConfig.cmake takes TORCH_INSTALL_PREFIX from the environment when it is set, which would point
// the chosen config at another LibTorch's files; CMake's CUDA lookup reads CUDA_PATH.
const env = { ...process.env };
delete env.TORCH_INSTALL_PREFIX;
if (p.cudaBuild) env.CUDA_PATH = p.cudaBuild.toolkit;
const cmakeJs = join(root, "node_modules", "cmake-js", "bin", "cmake-js");
const r = spawnSync(process.execPath, [cmakeJs, ...args], { cwd: root, stdio: "inherit", env });
if (r.status !== 0) fail(`the native build failed (cmake-js exit ${r.status}); see the output above.`);
if (!existsSync(out)) fail(`the build finished but ${out} is missing`);
writeFileSync(stamp, key);
console.log(`build-native: built ${out}`);
