#include "bulwark/compress/zstd.h"

#include <zstd.h>

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

bool Compress(ByteSpan data, int level, Bytes* out) {
  if (data.size() < 64) return false;
  size_t limit = data.size() - data.size() / 32;
  out->resize(ZSTD_compressBound(data.size()));
  size_t n = ZSTD_compressCCtx(tls.c, out->data(), out->size(), data.data(), data.size(), level);
  if (ZSTD_isError(n) || n >= limit) return false;
  out->resize(n);
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
    throw Error(ErrorCode::kCorrupt, std::string(what) + ": implausible uncompressed length " + std::to_string(raw_len));
  if (buf->size() < raw_len) buf->resize(raw_len);
  size_t n = ZSTD_decompressDCtx(tls.d, buf->data(), raw_len, frame.data(), frame.size());
  if (ZSTD_isError(n))
    throw Error(ErrorCode::kCorrupt, std::string(what) + ": zstd: " + ZSTD_getErrorName(n));
  if (n != raw_len)
    throw Error(ErrorCode::kCorrupt, std::string(what) + ": decompressed to " + std::to_string(n) +
                                         " bytes, expected " + std::to_string(raw_len));
  return ByteSpan(buf->data(), n);
}

}  // namespace bulwark::compress
