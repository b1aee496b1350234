#include "bulwark/compress/zstd.h"

#include <zstd.h>

#include <memory>
#include <new>
#include <string>

#include "bulwark/base/error.h"

namespace bulwark::compress {
namespace {
struct Contexts {
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_DCtx* d = ZSTD_createDCtx();
  ~Contexts() {
    ZSTD_freeCCtx(c);
    ZSTD_freeDCtx(d);
  }
};
thread_local Contexts tls;
}  // namespace

bool Compress(ByteSpan data, int level, Bytes* out, int workers) {
  if (data.size() < 64) return false;
  size_t limit = data.size() - data.size() / 32;
  // Not zero-filled: of a large bound, only the pages written are touched
  // (a 16 MiB WAL segment compresses to about 2 MiB).
  size_t bound = ZSTD_compressBound(data.size());
  std::unique_ptr<uint8_t[]> buf(new uint8_t[bound]);
  size_t n;
  if (workers > 0) {
    // A context of its own: its worker threads end with it.
    std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> c(ZSTD_createCCtx(), ZSTD_freeCCtx);
    if (!c) throw std::bad_alloc();
    ZSTD_CCtx_setParameter(c.get(), ZSTD_c_compressionLevel, level);
    // Without libzstd's multithreading support this fails and the
    // compression runs in this thread.
    ZSTD_CCtx_setParameter(c.get(), ZSTD_c_nbWorkers, workers);
    n = ZSTD_compress2(c.get(), buf.get(), bound, data.data(), data.size());
  } else {
    n = ZSTD_compressCCtx(tls.c, buf.get(), bound, data.data(), data.size(), level);
  }
  if (ZSTD_isError(n) || n >= limit) return false;
  out->assign(buf.get(), buf.get() + n);
  return true;
}

ByteSpan CompressInto(ByteSpan data, int level, Bytes* scratch) {
  if (data.size() < 64) return {};
  size_t bound = ZSTD_compressBound(data.size());
  if (scratch->size() < bound) scratch->resize(bound);
  size_t n = ZSTD_compressCCtx(tls.c, scratch->data(), scratch->size(), data.data(), data.size(), level);
  if (ZSTD_isError(n) || n >= data.size() - data.size() / 32) return {};
  return ByteSpan(scratch->data(), n);
}

Bytes Decompress(ByteSpan frame, uint64_t raw_len, std::string_view what) {
  Bytes out;
  ByteSpan d = DecompressInto(frame, raw_len, what, &out);
  out.resize(d.size());
  return out;
}

ByteSpan DecompressInto(ByteSpan frame, uint64_t raw_len, std::string_view what, Bytes* buf) {
  if (raw_len > (1ull << 31))
    throw Error(ErrorCode::kCorrupt,
                std::string(what) + ": implausible uncompressed length " + std::to_string(raw_len));
  if (buf->size() < raw_len) buf->resize(raw_len);
  size_t n = ZSTD_decompressDCtx(tls.d, buf->data(), raw_len, frame.data(), frame.size());
  if (ZSTD_isError(n)) throw Error(ErrorCode::kCorrupt, std::string(what) + ": zstd: " + ZSTD_getErrorName(n));
  if (n != raw_len)
    throw Error(ErrorCode::kCorrupt, std::string(what) + ": decompressed to " + std::to_string(n) +
                                         " bytes, expected " + std::to_string(raw_len));
  return ByteSpan(buf->data(), n);
}

}  // namespace bulwark::compress
