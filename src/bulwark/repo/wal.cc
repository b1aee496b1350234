#include "bulwark/repo/wal.h"

#include <cstdio>

#include "bulwark/base/error.h"
#include "bulwark/compress/zstd.h"
#include "bulwark/repo/format.h"

namespace bulwark::repo {

namespace {

bool IsUpperHex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'))) return false;
  return true;
}

uint32_t Hex32(std::string_view s) { return static_cast<uint32_t>(std::stoul(std::string(s), nullptr, 16)); }

std::string SegmentName(uint32_t timeline, uint32_t log, uint32_t seg) {
  char buf[25];
  std::snprintf(buf, sizeof buf, "%08X%08X%08X", timeline, log, seg);
  return buf;
}

// The envelope followed by `more` pieces: the associated data of both units.
Bytes Aad(std::initializer_list<ByteSpan> more) {
  Bytes aad;
  PutEnvelope(ObjectType::kWal, &aad);
  for (ByteSpan b : more) aad.insert(aad.end(), b.begin(), b.end());
  return aad;
}

}  // namespace

bool WalFileName::Valid(std::string_view n) {
  auto segment = [](std::string_view s) { return s.size() == 24 && IsUpperHex(s); };
  if (segment(n)) return true;
  if (n.size() == 24 + 8 && n.substr(24) == ".partial") return segment(n.substr(0, 24));
  if (n.size() == 8 + 8 && n.substr(8) == ".history") return IsUpperHex(n.substr(0, 8));
  if (n.size() == 24 + 1 + 8 + 7 && n[24] == '.' && n.substr(33) == ".backup")
    return segment(n.substr(0, 24)) && IsUpperHex(n.substr(25, 8));
  return false;
}

WalFileName WalFileName::Parse(std::string_view n) {
  if (!Valid(n))
    throw Error(ErrorCode::kInvalidArgument,
                "'" + std::string(n.substr(0, 100)) +
                    "' is not a PostgreSQL WAL file name (a segment like 000000010000000000000010, "
                    "00000002.history, 000000010000000000000010.00000028.backup or 000000010000000000000010.partial)");
  WalFileName w;
  w.name = std::string(n);
  w.timeline = Hex32(n.substr(0, 8));
  if (n.size() == 16) {
    w.kind = WalFileKind::kHistory;
    return w;
  }
  w.log = Hex32(n.substr(8, 8));
  w.seg = Hex32(n.substr(16, 8));
  w.kind = n.size() == 24 ? WalFileKind::kSegment : n.back() == 'l' ? WalFileKind::kPartial : WalFileKind::kBackup;
  return w;
}

bool ValidWalSegmentSize(uint64_t size) {
  return size >= (1u << 20) && size <= (1u << 30) && (size & (size - 1)) == 0;
}

WalFileName WalFileName::NextSegment(uint64_t segment_size) const {
  if (kind != WalFileKind::kSegment) throw Error(ErrorCode::kInvalidArgument, name + " is not a WAL segment");
  if (!ValidWalSegmentSize(segment_size))
    throw Error(ErrorCode::kInvalidArgument, "invalid WAL segment size " + std::to_string(segment_size));
  // PostgreSQL's XLogFileName: log = segno / segments per 4 GiB, seg = segno % that.
  const uint64_t per_log = (uint64_t(1) << 32) / segment_size;
  uint64_t segno = uint64_t(log) * per_log + seg + 1;
  if (seg >= per_log || segno / per_log > UINT32_MAX)
    throw Error(ErrorCode::kInvalidArgument, name + " has no next segment for segments of " + std::to_string(segment_size) + " bytes");
  return Parse(SegmentName(timeline, static_cast<uint32_t>(segno / per_log), static_cast<uint32_t>(segno % per_log)));
}

void ValidateWalSource(std::string_view s) {
  bool ok = !s.empty() && s.size() <= 64 && s[0] != '.';
  for (char c : s)
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                c == '-');
  if (!ok)
    throw Error(ErrorCode::kInvalidArgument, "invalid source name '" + std::string(s.substr(0, 100)) +
                                                 "': 1 to 64 letters, digits, '.', '_' or '-', not starting with '.'");
}

std::string WalPrefix(std::string_view source) {
  ValidateWalSource(source);
  return "wal/" + std::string(source) + "/";
}

std::string WalObjectName(std::string_view source, std::string_view file_name) {
  WalFileName::Parse(file_name);
  return WalPrefix(source) + std::string(file_name);
}

WalBody CompressWal(ByteSpan content, int level, int workers) {
  WalBody b;
  b.compressed = level > 0 && compress::Compress(content, level, &b.frame, workers);
  if (!b.compressed) b.frame = Bytes();
  return b;
}

Bytes SealWal(const crypto::Aead& aead, std::string_view object_name, ByteSpan content, const Id& sha256,
              const WalBody& body) {
  if (content.size() > kMaxWalFileSize)
    throw Error(ErrorCode::kInvalidArgument, std::string(object_name) + ": " + std::to_string(content.size()) +
                                                 " bytes is larger than any WAL file (1 GiB)");
  ByteSpan stored = body.compressed ? ByteSpan(body.frame) : content;
  Bytes header;
  Writer w(&header);
  w.U8(body.compressed ? 1 : 0);
  w.U64(content.size());
  w.Raw(sha256);
  Bytes out;
  out.reserve(kWalPrefixSize + crypto::Aead::kOverhead + stored.size());
  PutEnvelope(ObjectType::kWal, &out);
  aead.Seal(header, Aad({AsBytes(object_name)}), &out);
  ByteSpan sealed_header(out.data() + kEnvelopeSize, kWalPrefixSize - kEnvelopeSize);
  Bytes body_aad = Aad({sealed_header, AsBytes(object_name)});
  aead.Seal(stored, body_aad, &out);
  return out;
}

Bytes SealWal(const crypto::Aead& aead, std::string_view object_name, ByteSpan content, int level) {
  return SealWal(aead, object_name, content, crypto::Sha256(content), CompressWal(content, level));
}

WalHeader OpenWalHeader(const crypto::Aead& aead, std::string_view object_name, ByteSpan prefix,
                        std::string_view what) {
  CheckEnvelope(prefix, ObjectType::kWal, what);
  if (prefix.size() < kWalPrefixSize)
    throw Error(ErrorCode::kCorrupt, std::string(what) + ": truncated (" + std::to_string(prefix.size()) + " bytes)");
  Bytes plain = aead.Open(prefix.subspan(kEnvelopeSize, kWalPrefixSize - kEnvelopeSize),
                          Aad({AsBytes(object_name)}), what);
  Reader r(plain, what);
  WalHeader h;
  uint8_t comp = r.U8();
  if (comp > 1) r.Fail("unknown compression");
  h.compressed = comp == 1;
  h.size = r.U64();
  if (h.size > kMaxWalFileSize) r.Fail("implausible size " + std::to_string(h.size));
  h.sha256 = r.ReadId();
  if (!r.done()) r.Fail("trailing bytes in the header");
  return h;
}

Bytes OpenWal(const crypto::Aead& aead, std::string_view object_name, ByteSpan object, std::string_view what,
              WalHeader* header_out) {
  WalHeader h = OpenWalHeader(aead, object_name, object, what);
  ByteSpan sealed_header = object.subspan(kEnvelopeSize, kWalPrefixSize - kEnvelopeSize);
  Bytes body = aead.Open(object.subspan(kWalPrefixSize), Aad({sealed_header, AsBytes(object_name)}), what);
  Bytes content;
  if (h.compressed) {
    content = compress::Decompress(body, h.size, what);
  } else {
    if (body.size() != h.size)
      throw Error(ErrorCode::kCorrupt, std::string(what) + ": " + std::to_string(body.size()) +
                                           " bytes stored, the header says " + std::to_string(h.size));
    content = std::move(body);
  }
  if (crypto::Sha256(content) != h.sha256)
    throw Error(ErrorCode::kCorrupt, std::string(what) + ": content does not match its SHA-256");
  if (header_out) *header_out = h;
  return content;
}

}  // namespace bulwark::repo
