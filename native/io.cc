// safetensors data in and out. The JS side parses and validates the JSON header (it knows the format
// and gives the better errors); this file maps the file and makes tensors over it, or writes bytes.
#include "common.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

using arc::Args;

namespace {

// A read-only file mapping shared by every tensor viewing it; unmapped when the last one goes.
struct Mapping {
  void* base = MAP_FAILED;
  size_t size = 0;
  ~Mapping() {
    if (base != MAP_FAILED) munmap(base, size);
  }
};

std::string sysError(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

}  // namespace

// safetensorsLoad(path, dataStart, entries: [dtype, shape[], begin, end][], device) -> handles.
// Tensors on the CPU view the mapping without a copy when their data is aligned for their dtype
// (copy-on-write private mapping: in-place updates never reach the file); otherwise they are copied.
OP(safetensorsLoad,
   auto path = a.str(0);
   auto dataStart = static_cast<size_t>(a.i64(1));
   auto dev = a.device(3);
   Fd f{open(path.c_str(), O_RDONLY | O_CLOEXEC)};
   if (f.fd < 0) throw std::runtime_error(sysError("cannot open", path));
   struct stat st;
   if (fstat(f.fd, &st) != 0) throw std::runtime_error(sysError("cannot stat", path));
   auto map = std::make_shared<Mapping>();
   map->size = static_cast<size_t>(st.st_size);
   if (map->size > 0) {
     map->base = mmap(nullptr, map->size, PROT_READ | PROT_WRITE, MAP_PRIVATE, f.fd, 0);
     if (map->base == MAP_FAILED) throw std::runtime_error(sysError("cannot map", path));
   }
   bool isArr = false;
   napi_is_array(a.env, a.argv[2], &isArr);
   if (!isArr) a.bad(2, "an array of entries");
   uint32_t n;
   napi_get_array_length(a.env, a.argv[2], &n);
   std::vector<at::Tensor> out;
   out.reserve(n);
   for (uint32_t k = 0; k < n; ++k) {
     napi_value el;
     napi_get_element(a.env, a.argv[2], k, &el);
     napi_value parts[4];
     for (uint32_t j = 0; j < 4; ++j) napi_get_element(a.env, el, j, &parts[j]);
     Args e = a;
     e.argc = 4;
     for (int j = 0; j < 4; ++j) e.argv[j] = parts[j];
     auto dt = e.dtype(0);
     auto shape = e.ints(1);
     auto begin = static_cast<size_t>(e.i64(2)), end = static_cast<size_t>(e.i64(3));
     int64_t numel = 1;
     for (auto s : shape) numel *= s;
     size_t bytes = static_cast<size_t>(numel) * c10::elementSize(dt);
     if (end < begin || end - begin != bytes || dataStart + end > map->size)
       throw std::runtime_error("tensor " + std::to_string(k) + " of " + path + " lies outside the file (truncated or corrupt)");
     char* ptr = static_cast<char*>(map->base) + dataStart + begin;
     auto opts = at::TensorOptions().dtype(dt);
     at::Tensor t;
     if (bytes == 0) {
       t = at::empty(shape, opts);
     } else if (reinterpret_cast<uintptr_t>(ptr) % c10::elementSize(dt) == 0) {
       auto keep = map;
       t = at::from_blob(ptr, shape, [keep](void*) mutable { keep.reset(); }, opts);
     } else {
       t = at::empty(shape, opts);
       std::memcpy(t.data_ptr(), ptr, bytes);
     }
     out.push_back(dev.is_cpu() ? t : t.to(dev));
   }
   return out;)

// safetensorsSave(path, header, tensors): writes the 8-byte little-endian header length, the header
// (already padded by JS) and every tensor's bytes in order, then fsyncs. The caller renames.
OP(safetensorsSave,
   auto path = a.str(0);
   auto header = a.str(1);
   auto ts = a.tensors(2);
   Fd f{open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
   if (f.fd < 0) throw std::runtime_error(sysError("cannot create", path));
   auto writeAll = [&](const void* p, size_t n) {
     auto c = static_cast<const char*>(p);
     while (n > 0) {
       ssize_t w = ::write(f.fd, c, n);
       if (w < 0) {
         if (errno == EINTR) continue;
         throw std::runtime_error(sysError("cannot write", path));
       }
       c += w;
       n -= static_cast<size_t>(w);
     }
   };
   uint64_t hlen = header.size();
   unsigned char le[8];
   for (int i = 0; i < 8; ++i) le[i] = static_cast<unsigned char>((hlen >> (8 * i)) & 0xff);
   writeAll(le, 8);
   writeAll(header.data(), header.size());
   arc::countHostRead();  // one read per save, however many tensors
   for (auto& t0 : ts) {
     auto t = t0.detach().to(at::kCPU).contiguous();
     writeAll(t.data_ptr(), static_cast<size_t>(t.numel()) * t.element_size());
   }
   if (fsync(f.fd) != 0) throw std::runtime_error(sysError("cannot fsync", path));)
