#include "bulwark/repo/format.h"

#include <cstring>

#include "bulwark/base/error.h"
#include "bulwark/compress/zstd.h"

namespace bulwark::repo {

std::string_view ObjectTypeName(ObjectType t) {
  switch (t) {
    case ObjectType::kConfig: return "config";
    case ObjectType::kKey: return "key";
    case ObjectType::kPack: return "pack";
    case ObjectType::kIndex: return "index";
    case ObjectType::kSnapshot: return "snapshot";
    case ObjectType::kLock: return "lock";
    case ObjectType::kMarks: return "marks";
    case ObjectType::kWal: return "wal";
    case ObjectType::kAudit: return "audit";
    case ObjectType::kDrill:
      return "drill";
  }
  return "unknown";
}

void PutEnvelope(ObjectType type, Bytes* out) {
  const uint8_t h[kEnvelopeSize] = {'B', 'W', 'R', 'K', static_cast<uint8_t>(type), kFormatVersion, 0, 0};
  out->insert(out->end(), h, h + kEnvelopeSize);
}

void CheckEnvelope(ByteSpan data, ObjectType type, std::string_view what) {
  if (data.size() < kEnvelopeSize)
    throw Error(ErrorCode::kCorrupt, std::string(what) + ": truncated (" + std::to_string(data.size()) + " bytes)");
  if (std::memcmp(data.data(), "BWRK", 4) != 0)
    throw Error(ErrorCode::kCorrupt, std::string(what) + ": not a bulwark object (bad magic)");
  if (data[4] != static_cast<uint8_t>(type))
    throw Error(ErrorCode::kCorrupt, std::string(what) + ": wrong object type " + std::to_string(data[4]) +
                                         " (expected " + std::string(ObjectTypeName(type)) + ")");
  if (data[5] != kFormatVersion)
    throw Error(ErrorCode::kUnsupported, std::string(what) + ": format version " + std::to_string(data[5]) +
                                             " is not supported by this bulwark (knows version " +
                                             std::to_string(kFormatVersion) + ")");
}

Bytes SealObject(const crypto::Aead& aead, ObjectType type, ByteSpan payload) {
  Bytes plain;
  Bytes compressed;
  bool z = compress::Compress(payload, 3, &compressed);
  Writer w(&plain);
  w.U8(z ? 1 : 0);
  w.Varint(payload.size());
  w.Raw(z ? ByteSpan(compressed) : payload);
  Bytes out;
  PutEnvelope(type, &out);
  Bytes header(out.begin(), out.end());
  aead.Seal(plain, header, &out);
  return out;
}

Bytes OpenObject(const crypto::Aead& aead, ObjectType type, ByteSpan data, std::string_view what) {
  CheckEnvelope(data, type, what);
  Bytes plain = aead.Open(data.subspan(kEnvelopeSize), data.subspan(0, kEnvelopeSize), what);
  Reader r(plain, what);
  uint8_t comp = r.U8();
  uint64_t raw_len = r.Varint();
  ByteSpan body = r.Raw(r.remaining());
  if (comp == 0) {
    if (body.size() != raw_len) r.Fail("length mismatch");
    return Bytes(body.begin(), body.end());
  }
  if (comp != 1) r.Fail("unknown compression");
  return compress::Decompress(body, raw_len, what);
}

}  // namespace bulwark::repo
