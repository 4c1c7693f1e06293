// Which LibTorch (and which CUDA toolkit) the native addon builds against. Pure lookups over the
// environment and the file system, so the build script and its tests share one answer.
//
// A route names exactly one LibTorch; everything else is derived from the folder holding its
// TorchConfig.cmake ("torchDir"):
//   LIBTORCH=<root>                 an unpacked LibTorch (root/share/cmake/Torch)
//   Torch_DIR=<torchDir>            the folder itself
//   CMAKE_PREFIX_PATH=a:b:<root>    the first entry (colon- or semicolon-separated) holding a Torch config
//   .libtorch                       the LibTorch root `scripts/setup.sh --torch pip-cpu|pip-cuda` installed
//   python3's torch                 torch.utils.cmake_prefix_path (build time only); $PYTHON picks the interpreter
//   the system                      Debian's libtorch-dev (<libdir>/cmake/Torch)
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, realpathSync } from "node:fs";
import { dirname, join } from "node:path";

export class LibTorchError extends Error {}

export const SYSTEM_LIB_DIRS = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib"];

const isTorchDir = (d) => !!d && existsSync(join(d, "TorchConfig.cmake"));

/** `<p>/Torch`, `<p>/share/cmake/Torch`, `<p>/lib/cmake/Torch` or `<p>` itself: where a prefix keeps its Torch config. */
export function torchDirUnder(prefix) {
  for (const d of [join(prefix, "share", "cmake", "Torch"), join(prefix, "lib", "cmake", "Torch"), join(prefix, "Torch"), prefix]) {
    if (isTorchDir(d)) return d;
  }
  return null;
}

const real = (p) => {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
};

/** python's torch.utils.cmake_prefix_path, or null (no python, no torch). */
export function pythonTorchPrefix(python = process.env.PYTHON || "python3") {
  // torch.utils.cmake_prefix_path is <torch>/share/cmake; found without importing torch (which takes
  // seconds and may warn about optional packages).
  const code = 'import importlib.util as u, os; s = u.find_spec("torch"); print(os.path.join(s.submodule_search_locations[0], "share", "cmake") if s else "")';
  const r = spawnSync(python, ["-c", code], { encoding: "utf8" });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : null;
}

/**
 * The one LibTorch a route names: { how, torchDir }. Throws a LibTorchError saying what is wrong with
 * the route asked for (a route that is set but names no LibTorch is an error, never a fall-through to
 * the next one: that is how a build silently picks the wrong library).
 */
export function findLibTorch(env = process.env, opts = {}) {
  const systemLibDirs = opts.systemLibDirs ?? SYSTEM_LIB_DIRS;
  if (env.LIBTORCH) {
    const d = torchDirUnder(env.LIBTORCH);
    if (!d) throw new LibTorchError(`LIBTORCH=${env.LIBTORCH} holds no share/cmake/Torch/TorchConfig.cmake (is it an unpacked LibTorch folder?)`);
    return { how: "LIBTORCH", torchDir: real(d) };
  }
  if (env.Torch_DIR) {
    if (!isTorchDir(env.Torch_DIR)) throw new LibTorchError(`Torch_DIR=${env.Torch_DIR} holds no TorchConfig.cmake`);
    return { how: "Torch_DIR", torchDir: real(env.Torch_DIR) };
  }
  if (env.CMAKE_PREFIX_PATH) {
    const entries = env.CMAKE_PREFIX_PATH.split(/[:;]/).filter(Boolean);
    for (const p of entries) {
      const d = torchDirUnder(p);
      if (d) return { how: "CMAKE_PREFIX_PATH", torchDir: real(d) };
    }
    // No Torch in CMAKE_PREFIX_PATH: it may be there for other packages; go on with the other routes.
  }
  // The LibTorch `scripts/setup.sh --torch pip-*` installed, recorded in .libtorch.
  if (opts.recorded) {
    const d = torchDirUnder(opts.recorded);
    if (!d) throw new LibTorchError(`.libtorch names ${opts.recorded}, which holds no LibTorch any more (run scripts/setup.sh again, or delete .libtorch)`);
    return { how: ".libtorch (scripts/setup.sh)", torchDir: real(d) };
  }
  const py = opts.pythonPrefix !== undefined ? opts.pythonPrefix : pythonTorchPrefix(env.PYTHON || "python3");
  if (py) {
    const d = torchDirUnder(py);
    if (d) return { how: `${env.PYTHON || "python3"}'s PyTorch`, torchDir: real(d) };
  }
  for (const lib of systemLibDirs) {
    const d = join(lib, "cmake", "Torch");
    if (isTorchDir(d)) return { how: "system", torchDir: real(d) };
  }
  throw new LibTorchError(
    "LibTorch was not found. Get one of:\n" +
      "  Debian/Ubuntu (CPU):  bash scripts/setup.sh             (apt's libtorch-dev)\n" +
      "  pip's PyTorch:        bash scripts/setup.sh --torch pip-cpu | pip-cuda\n" +
      "  a LibTorch download:  unpack the C++ LibTorch zip from pytorch.org and set LIBTORCH=/path/to/libtorch\n" +
      "or set Torch_DIR (the folder with TorchConfig.cmake) or CMAKE_PREFIX_PATH. Then run: npm run build:native",
  );
}

const hasLib = (dir, name) => existsSync(join(dir, `lib${name}.so`)) || (existsSync(dir) && readdirSync(dir).some((f) => f.startsWith(`lib${name}.so.`)));

/**
 * What a Torch config folder belongs to: the LibTorch root, the folder of its libraries (root/lib for a
 * download or pip; Debian keeps them in the multiarch folder above cmake/), the Caffe2 config beside
 * it, the version, and whether it is a CUDA build (libtorch_cuda present).
 */
export function describeLibTorch(torchDir) {
  const candidates = [join(torchDir, "..", "..", "..", "lib"), join(torchDir, "..", "..")];
  const libDir = candidates.map(real).find((d) => hasLib(d, "torch"));
  if (!libDir) throw new LibTorchError(`${torchDir}: no libtorch.so beside this Torch config (looked in ${candidates.map(real).join(", ")})`);
  // <root>/share/cmake/Torch with <root>/lib, or Debian's <prefix>/lib/<triplet>/cmake/Torch with <prefix>.
  const root = libDir === candidates.map(real)[0] ? real(join(libDir, "..")) : real(join(torchDir, "..", "..", "..", ".."));
  const versionFile = join(torchDir, "TorchConfigVersion.cmake");
  const version = existsSync(versionFile) ? (/PACKAGE_VERSION "([^"]+)"/.exec(readFileSync(versionFile, "utf8"))?.[1] ?? "unknown") : "unknown";
  const cuda = hasLib(libDir, "torch_cuda");
  // pip's torch/version.py and a download's build-version name the CUDA release it was built for.
  let cudaVersion = null;
  const pyVersion = join(root, "version.py");
  if (cuda && existsSync(pyVersion)) cudaVersion = /^cuda(?::[^=]*)?\s*=\s*'([^']+)'/m.exec(readFileSync(pyVersion, "utf8"))?.[1] ?? null;
  const buildVersion = join(root, "build-version");
  if (cuda && !cudaVersion && existsSync(buildVersion)) cudaVersion = /\+cu(\d+)/.exec(readFileSync(buildVersion, "utf8"))?.[1] ?? null;
  return { torchDir, root, libDir, caffe2Dir: real(join(torchDir, "..", "Caffe2")), version, cuda, cudaVersion };
}

/** The CUDA toolkit root the way PyTorch users point at it: CUDA_HOME, CUDA_PATH, the nvcc on PATH, /usr/local/cuda. */
export function findCudaToolkit(env = process.env) {
  const ok = (d) => d && existsSync(join(d, "include", "cuda_runtime.h")) && existsSync(join(d, "bin", "nvcc"));
  for (const v of ["CUDA_HOME", "CUDA_PATH"]) {
    if (env[v]) {
      if (!ok(env[v])) throw new LibTorchError(`${v}=${env[v]} is not a CUDA toolkit (no bin/nvcc and include/cuda_runtime.h)`);
      return { how: v, root: real(env[v]) };
    }
  }
  // nvcc on PATH may be a wrapper script (/usr/local/bin/nvcc -> exec /usr/local/cuda-X/bin/nvcc): ask
  // nvcc where it really lives instead of taking its folder's parent.
  const r = spawnSync("nvcc", ["-v", "--dryrun", "-c", "x.cu"], { encoding: "utf8", env });
  const here = /^#\$ _HERE_=(.+)$/m.exec(`${r.stdout ?? ""}${r.stderr ?? ""}`)?.[1]?.trim();
  if (here && ok(dirname(here))) return { how: "nvcc on PATH", root: real(dirname(here)) };
  if (ok("/usr/local/cuda")) return { how: "/usr/local/cuda", root: real("/usr/local/cuda") };
  return null;
}

/** pip's CUDA torch keeps its CUDA libraries in site-packages/nvidia/<pkg>/lib (cu13: nvidia/cu13/lib). */
export function findPipNvidiaLib(torchRoot, name) {
  const nvidia = join(torchRoot, "..", "nvidia");
  if (!existsSync(nvidia)) return null;
  for (const pkg of readdirSync(nvidia).sort()) {
    const lib = join(nvidia, pkg, "lib");
    if (!existsSync(lib)) continue;
    const f = readdirSync(lib).filter((n) => n === `lib${name}.so` || n.startsWith(`lib${name}.so.`)).sort()[0];
    if (f) return real(join(lib, f));
  }
  return null;
}

/** The libraries a built addon loads (ldd), for --print and the CI's NEEDED check. */
export function neededLibraries(addon) {
  try {
    const out = execFileSync("readelf", ["-d", addon], { encoding: "utf8" });
    return [...out.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
  } catch {
    return [];
  }
}
