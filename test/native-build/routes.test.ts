// The build's LibTorch routes: each names exactly one LibTorch, and a configuration that would mix two
// (the chosen one's headers with another's libraries) fails naming both. Fake LibTorch folders shaped
// like the real ones (TorchConfig.cmake finds its Caffe2 config and c10 the way pip's and Debian's do)
// keep this fast: the CMake cases configure only.
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { LibTorchError, describeLibTorch, findCudaToolkit, findLibTorch, findPipNvidiaLib } from "../../scripts/lib/libtorch.mjs";

const ROOT = join(import.meta.dir, "..", "..");
const tmp = mkdtempSync(join(os.tmpdir(), "arc-routes-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const touch = (p: string, text = "") => {
  mkdirSync(join(p, ".."), { recursive: true });
  writeFileSync(p, text);
};

/** TorchConfig.cmake as the real ones are written: Caffe2 and c10 are looked up with PATHS hints only. */
const TORCH_CONFIG = `
if(DEFINED ENV{TORCH_INSTALL_PREFIX})
  set(TORCH_INSTALL_PREFIX $ENV{TORCH_INSTALL_PREFIX})
else()
  get_filename_component(TORCH_INSTALL_PREFIX "\${CMAKE_CURRENT_LIST_DIR}/../../../" ABSOLUTE)
endif()
set(TORCH_INCLUDE_DIRS \${TORCH_INSTALL_PREFIX}/include)
find_package(Caffe2 REQUIRED PATHS \${CMAKE_CURRENT_LIST_DIR}/../Caffe2)
find_library(c10_LIBRARY c10 PATHS "\${TORCH_INSTALL_PREFIX}/lib")
find_library(TORCH_LIBRARY torch PATHS "\${TORCH_INSTALL_PREFIX}/lib")
set(TORCH_LIBRARIES \${TORCH_LIBRARY} \${c10_LIBRARY})
message(STATUS "fake torch: caffe2=\${FAKE_CAFFE2} c10=\${c10_LIBRARY} include=\${TORCH_INCLUDE_DIRS}")
`;
const VERSION = (v: string) => `set(PACKAGE_VERSION "${v}")\nset(PACKAGE_VERSION_COMPATIBLE TRUE)\n`;

/** A download/pip-shaped LibTorch at root: share/cmake/{Torch,Caffe2}, lib/libtorch.so, lib/libc10.so. */
function fakeLibTorch(root: string, name: string, opts: { c10?: boolean; cuda?: boolean; version?: string } = {}) {
  touch(join(root, "share", "cmake", "Torch", "TorchConfig.cmake"), TORCH_CONFIG);
  touch(join(root, "share", "cmake", "Torch", "TorchConfigVersion.cmake"), VERSION(opts.version ?? "2.99.0"));
  touch(join(root, "share", "cmake", "Caffe2", "Caffe2Config.cmake"), `set(FAKE_CAFFE2 "${name}")\n`);
  touch(join(root, "lib", "libtorch.so"));
  if (opts.c10 !== false) touch(join(root, "lib", "libc10.so"));
  if (opts.cuda) touch(join(root, "lib", "libtorch_cuda.so"));
  return root;
}

const A = fakeLibTorch(join(tmp, "a", "torch"), "a");
const B = fakeLibTorch(join(tmp, "b"), "b", { version: "1.13.0" });
const NOC10 = fakeLibTorch(join(tmp, "noc10", "torch"), "noc10", { c10: false });
// Debian's layout: <libdir>/cmake/Torch, the libraries in <libdir> itself.
const DEB = join(tmp, "usr", "lib", "x86_64-linux-gnu");
touch(join(DEB, "cmake", "Torch", "TorchConfig.cmake"), TORCH_CONFIG);
touch(join(DEB, "cmake", "Torch", "TorchConfigVersion.cmake"), VERSION("1.13.0"));
touch(join(DEB, "cmake", "Caffe2", "Caffe2Config.cmake"), `set(FAKE_CAFFE2 "debian")\n`);
for (const lib of ["libtorch.so", "libtorch.so.1.13", "libc10.so", "libc10.so.1.13"]) touch(join(DEB, lib));

const none = { pythonPrefix: null, systemLibDirs: [] as string[] };
const torchDir = (root: string) => join(root, "share", "cmake", "Torch");

describe("which LibTorch a route names", () => {
  test("LIBTORCH, Torch_DIR, CMAKE_PREFIX_PATH, python3, the system: each finds its own, in that order", () => {
    expect(findLibTorch({ LIBTORCH: A }, none)).toEqual({ how: "LIBTORCH", torchDir: torchDir(A) });
    expect(findLibTorch({ Torch_DIR: torchDir(A) }, none)).toEqual({ how: "Torch_DIR", torchDir: torchDir(A) });
    // A colon- (or semicolon-) separated list: the first entry with a Torch config, not the whole string.
    expect(findLibTorch({ CMAKE_PREFIX_PATH: `/no/such:${join(tmp, "x")}:${A}:${B}` }, none).torchDir).toBe(torchDir(A));
    expect(findLibTorch({ CMAKE_PREFIX_PATH: `${B};${A}` }, none).torchDir).toBe(torchDir(B));
    expect(findLibTorch({ CMAKE_PREFIX_PATH: join(A, "share", "cmake") }, none).torchDir).toBe(torchDir(A));
    // .libtorch (what setup.sh --torch pip-* installed) comes after the environment, before python3 and the system.
    expect(findLibTorch({}, { recorded: A, pythonPrefix: join(B, "share", "cmake"), systemLibDirs: [DEB] })).toEqual({ how: ".libtorch (scripts/setup.sh)", torchDir: torchDir(A) });
    expect(findLibTorch({ CMAKE_PREFIX_PATH: B }, { recorded: A }).torchDir).toBe(torchDir(B));
    expect(findLibTorch({}, { pythonPrefix: join(B, "share", "cmake"), systemLibDirs: [DEB] })).toEqual({ how: "python3's PyTorch", torchDir: torchDir(B) });
    expect(findLibTorch({ PYTHON: "/opt/py/bin/python" }, { pythonPrefix: join(B, "share", "cmake") }).how).toBe("/opt/py/bin/python's PyTorch");
    expect(findLibTorch({}, { pythonPrefix: null, systemLibDirs: ["/no/such", DEB] })).toEqual({ how: "system", torchDir: join(DEB, "cmake", "Torch") });
    // Precedence: an explicit route wins over everything found on its own.
    const all = { LIBTORCH: A, Torch_DIR: torchDir(B), CMAKE_PREFIX_PATH: B };
    expect(findLibTorch(all, { pythonPrefix: join(B, "share", "cmake"), systemLibDirs: [DEB] }).torchDir).toBe(torchDir(A));
    expect(findLibTorch({ Torch_DIR: torchDir(B), CMAKE_PREFIX_PATH: A }, none).torchDir).toBe(torchDir(B));
  });

  test("a route that is set but names no LibTorch is an error, not a fall-through to another LibTorch", () => {
    const fallback = { pythonPrefix: join(B, "share", "cmake"), systemLibDirs: [DEB] };
    expect(() => findLibTorch({ LIBTORCH: join(tmp, "nothing") }, fallback)).toThrow(`LIBTORCH=${join(tmp, "nothing")} holds no share/cmake/Torch/TorchConfig.cmake`);
    expect(() => findLibTorch({ Torch_DIR: A }, fallback)).toThrow(`Torch_DIR=${A} holds no TorchConfig.cmake`);
    expect(() => findLibTorch({}, { ...fallback, recorded: join(tmp, "gone") })).toThrow(`.libtorch names ${join(tmp, "gone")}, which holds no LibTorch any more`);
    expect(() => findLibTorch({}, none)).toThrow(LibTorchError);
    expect(() => findLibTorch({}, none)).toThrow(/LibTorch was not found/);
  });

  test("the root, libraries, Caffe2 config, version and CUDA-ness come from the chosen config's folder", () => {
    expect(describeLibTorch(torchDir(A))).toEqual({
      torchDir: torchDir(A), root: A, libDir: join(A, "lib"), caffe2Dir: join(A, "share", "cmake", "Caffe2"), version: "2.99.0", cuda: false, cudaVersion: null,
    });
    const deb = describeLibTorch(join(DEB, "cmake", "Torch"));
    expect(deb.libDir).toBe(DEB);
    expect(deb.root).toBe(join(tmp, "usr"));
    expect(deb.version).toBe("1.13.0");
    expect(deb.caffe2Dir).toBe(join(DEB, "cmake", "Caffe2"));
    // pip's CUDA torch: libtorch_cuda beside libtorch, its CUDA release in version.py, nvrtc in the nvidia-* wheels.
    const site = join(tmp, "site-packages");
    const cu = fakeLibTorch(join(site, "torch"), "cu", { cuda: true });
    touch(join(cu, "version.py"), "__version__ = '2.14.1'\ncuda: Optional[str] = '13.0'\n");
    touch(join(site, "nvidia", "cu13", "lib", "libnvrtc.so.13"));
    const d = describeLibTorch(torchDir(cu));
    expect([d.cuda, d.cudaVersion]).toEqual([true, "13.0"]);
    expect(findPipNvidiaLib(cu, "nvrtc")).toBe(join(site, "nvidia", "cu13", "lib", "libnvrtc.so.13"));
    expect(findPipNvidiaLib(A, "nvrtc")).toBeNull();
    expect(() => describeLibTorch(join(tmp, "nowhere", "share", "cmake", "Torch"))).toThrow(/no libtorch\.so beside this Torch config/);
  });

  test("the CUDA toolkit: CUDA_HOME, then CUDA_PATH; one that is set but is no toolkit is named", () => {
    const tk = join(tmp, "cuda-13.0");
    touch(join(tk, "bin", "nvcc"));
    touch(join(tk, "include", "cuda_runtime.h"));
    expect(findCudaToolkit({ CUDA_HOME: tk, CUDA_PATH: "/elsewhere", PATH: "" })).toEqual({ how: "CUDA_HOME", root: tk });
    expect(findCudaToolkit({ CUDA_PATH: tk, PATH: "" })).toEqual({ how: "CUDA_PATH", root: tk });
    expect(() => findCudaToolkit({ CUDA_HOME: join(tmp, "a") })).toThrow(`CUDA_HOME=${join(tmp, "a")} is not a CUDA toolkit`);
  });
});

/** Configures native/CMakeLists.txt alone (no compile) in a fresh folder. */
function configure(defs: Record<string, string>, env: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmp, "cfg-"));
  const args = ["-S", join(ROOT, "native"), "-B", dir, ...Object.entries(defs).map(([k, v]) => `-D${k}=${v}`)];
  const r = spawnSync("cmake", args, { encoding: "utf8", env: { ...process.env, ...env } });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe("CMake builds against the chosen LibTorch only", () => {
  test("the mix is real: a bare find_package(Torch) takes Caffe2 and c10 from another LibTorch on CMAKE_PREFIX_PATH", () => {
    const proj = join(tmp, "bare");
    touch(join(proj, "CMakeLists.txt"), "cmake_minimum_required(VERSION 3.18)\nproject(bare NONE)\nset(CMAKE_FIND_LIBRARY_PREFIXES lib)\nset(CMAKE_FIND_LIBRARY_SUFFIXES .so)\nfind_package(Torch REQUIRED)\n");
    const r = spawnSync("cmake", ["-S", proj, "-B", join(proj, "build"), `-DTorch_DIR=${torchDir(A)}`, `-DCMAKE_PREFIX_PATH=${B}`], { encoding: "utf8" });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`fake torch: caffe2=b c10=${join(B, "lib", "libc10.so")}`);
  }, 60000);

  test("pinned: with another LibTorch on CMAKE_PREFIX_PATH, Caffe2 and c10 still come from the chosen one", () => {
    const r = configure({ Torch_DIR: torchDir(A), CMAKE_PREFIX_PATH: B });
    expect(r.out).toContain(`fake torch: caffe2=a c10=${join(A, "lib", "libc10.so")}`);
    expect(r.out).toContain(`arc_torch: LibTorch 2.99.0 from ${join(A, "lib")}`);
    expect(r.code).toBe(0);
  }, 60000);

  test("Debian's layout (<libdir>/cmake/Torch) is pinned to <libdir>", () => {
    const r = configure({ Torch_DIR: join(DEB, "cmake", "Torch"), CMAKE_PREFIX_PATH: A });
    expect(r.out).toContain("fake torch: caffe2=debian");
    expect(r.out).toContain(`arc_torch: LibTorch 1.13.0 from ${DEB}`);
    expect(r.code).toBe(0);
  }, 60000);

  test("a library that can only come from the other LibTorch fails the configuration, naming both", () => {
    const r = configure({ Torch_DIR: torchDir(NOC10), CMAKE_PREFIX_PATH: B });
    expect(r.code).not.toBe(0);
    expect(r.out).toContain("two LibTorch installations are mixed");
    expect(r.out).toContain(join(NOC10, "lib"));
    expect(r.out).toContain(join(B, "lib", "libc10.so"));
  }, 60000);

  test("TORCH_INSTALL_PREFIX in the environment does not redirect the chosen config", () => {
    const r = configure({ Torch_DIR: torchDir(A) }, { TORCH_INSTALL_PREFIX: B });
    expect(r.code).toBe(0);
    expect(r.out).toContain(`c10=${join(A, "lib", "libc10.so")} include=${join(A, "include")}`);
  }, 60000);
});

describe("scripts/build-native.mjs", () => {
  const run = (args: string[], env: Record<string, string>) => {
    const r = spawnSync(process.execPath, [join(ROOT, "scripts", "build-native.mjs"), ...args], { encoding: "utf8", env: { ...process.env, ...env }, cwd: ROOT });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };

  test("--print says which LibTorch, version, CUDA or not, without building", () => {
    const r = run(["--print"], { LIBTORCH: A });
    expect(r.code).toBe(0);
    expect(r.out).toContain(`LibTorch 2.99.0 at ${A} (from LIBTORCH; libraries in ${join(A, "lib")}); CPU only`);
    // The addon built for this checkout is not the fake one.
    expect(r.out).toMatch(/was built against another LibTorch|is not built yet/);
  }, 30000);

  test("a bad route or argument is one clear error and exit 1", () => {
    const bad = run(["--print"], { LIBTORCH: join(tmp, "nothing") });
    expect(bad.code).toBe(1);
    expect(bad.err).toContain(`build-native: LIBTORCH=${join(tmp, "nothing")} holds no share/cmake/Torch/TorchConfig.cmake`);
    const arg = run(["--bogus"], {});
    expect(arg.code).toBe(1);
    expect(arg.err).toContain("unknown argument --bogus");
    // A CUDA LibTorch with no toolkit anywhere says so before configuring.
    const cu = fakeLibTorch(join(tmp, "cuonly", "torch"), "cuonly", { cuda: true });
    const nocuda = run(["--print"], { LIBTORCH: cu, CUDA_HOME: join(tmp, "a") });
    expect(nocuda.code).toBe(1);
    expect(nocuda.err).toContain("is not a CUDA toolkit");
  }, 30000);
});
