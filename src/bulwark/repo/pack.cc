#include "bulwark/repo/pack.h"

#include <cstring>

#include "bulwark/base/error.h"
#include "bulwark/compress/zstd.h"
#include "bulwark/repo/format.h"

namespace bulwark::repo {
namespace {
constexpr std::string_view kHeaderAad = "bulwark-pack-header";

void BlobAad(const PackedBlob& meta, uint8_t out[33]) {
  out[0] = static_cast<uint8_t>(meta.type);
  std::memcpy(out + 1, meta.id.b.data(), 32);
}
}  // namespace

void ReadTypeAndFlags(Reader& r, PackedBlob* b) {
  uint8_t type = r.U8();
  if (type != static_cast<uint8_t>(BlobType::kData) && type != static_cast<uint8_t>(BlobType::kTree))
    r.Fail("unknown blob type");
  b->type = static_cast<BlobType>(type);
  uint8_t flags = r.U8();
  if (flags > 1) r.Fail("unknown blob flags");
  b->compressed = flags & 1;
}

PackBuilder::PackBuilder(const crypto::Aead* aead) : aead_(aead) { PutEnvelope(ObjectType::kPack, &buf_); }

void PackBuilder::Reserve(size_t bytes) { buf_.reserve(bytes); }

void PackBuilder::Add(const PackedBlob& meta, ByteSpan sealed) {
  PackedBlob b = meta;
  b.offset = static_cast<uint32_t>(buf_.size());
  b.length = static_cast<uint32_t>(sealed.size());
  buf_.insert(buf_.end(), sealed.begin(), sealed.end());
  blobs_.push_back(b);
}

Bytes PackBuilder::Finish(std::vector<PackedBlob>* blobs) {
  Bytes header;
  Writer w(&header);
  w.Varint(blobs_.size());
  for (const auto& b : blobs_) {
    w.U8(static_cast<uint8_t>(b.type));
    w.U8(b.compressed ? 1 : 0);
    w.Varint(b.length);
    w.Varint(b.raw_length);
    w.Raw(b.id);
  }
  size_t before = buf_.size();
  aead_->Seal(header, AsBytes(kHeaderAad), &buf_);
  Writer(&buf_).U32(static_cast<uint32_t>(buf_.size() - before));
  buf_.insert(buf_.end(), {'B', 'W', 'P', 'K'});
  Bytes out;
  out.swap(buf_);
  *blobs = std::move(blobs_);
  blobs_.clear();
  buf_.reserve(out.capacity());  // the next pack will need as much
  PutEnvelope(ObjectType::kPack, &buf_);
  return out;
}

void SealBlob(const crypto::Aead& aead, ByteSpan plaintext, int level, PackedBlob* meta, Bytes* out) {
  thread_local Bytes scratch;  // reused: no allocation or page faults per chunk
  ByteSpan compressed = level > 0 ? compress::CompressInto(plaintext, level, &scratch) : ByteSpan();
  meta->compressed = !compressed.empty();
  meta->raw_length = static_cast<uint32_t>(plaintext.size());
  uint8_t aad[33];
  BlobAad(*meta, aad);
  out->clear();
  aead.Seal(meta->compressed ? compressed : plaintext, ByteSpan(aad, 33), out);
  meta->length = static_cast<uint32_t>(out->size());
}

ByteSpan OpenBlobView(const crypto::Aead& aead, const crypto::KeyedHasher& ids, const PackedBlob& meta, ByteSpan sealed,
                      std::string_view what) {
  thread_local Bytes decrypted, decompressed;
  uint8_t aad[33];
  BlobAad(meta, aad);
  ByteSpan plain = aead.OpenInto(sealed, ByteSpan(aad, 33), what, &decrypted);
  if (meta.compressed) plain = compress::DecompressInto(plain, meta.raw_length, what, &decompressed);
  else if (plain.size() != meta.raw_length)
    throw Error(ErrorCode::kCorrupt, std::string(what) + ": blob length mismatch");
  if (ids.Mac(plain) != meta.id)
    throw Error(ErrorCode::kCorrupt, std::string(what) + ": content does not match its id");
  return plain;
}

Bytes OpenBlob(const crypto::Aead& aead, const crypto::KeyedHasher& ids, const PackedBlob& meta, ByteSpan sealed,
               std::string_view what) {
  ByteSpan v = OpenBlobView(aead, ids, meta, sealed, what);
  return Bytes(v.begin(), v.end());
}

bool ParsePackTail(const crypto::Aead& aead, ByteSpan tail, uint64_t pack_size, std::string_view what,
                   std::vector<PackedBlob>* out, size_t* need) {
  if (pack_size < kEnvelopeSize + kPackTrailerSize || tail.size() < kPackTrailerSize)
    throw Error(ErrorCode::kCorrupt, std::string(what) + ": pack too short (" + std::to_string(pack_size) + " bytes)");
  const uint8_t* t = tail.data() + tail.size() - kPackTrailerSize;
  if (std::memcmp(t + 4, "BWPK", 4) != 0)
    throw Error(ErrorCode::kCorrupt, std::string(what) + ": pack trailer missing (truncated or not a pack)");
  uint32_t hlen = GetU32(t);
  if (uint64_t(hlen) + kPackTrailerSize + kEnvelopeSize > pack_size)
    throw Error(ErrorCode::kCorrupt, std::string(what) + ": pack header length out of range");
  if (tail.size() < hlen + kPackTrailerSize) {
    *need = hlen + kPackTrailerSize;
    return false;
  }
  ByteSpan sealed = tail.subspan(tail.size() - kPackTrailerSize - hlen, hlen);
  Bytes header = aead.Open(sealed, AsBytes(kHeaderAad), std::string(what) + " header");
  Reader r(header, what);
  uint64_t n = r.Varint();
  if (n > header.size()) r.Fail("blob count out of range");
  uint64_t offset = kEnvelopeSize;
  uint64_t data_end = pack_size - kPackTrailerSize - hlen;
  out->clear();
  out->reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    PackedBlob b;
    ReadTypeAndFlags(r, &b);
    uint64_t len = r.Varint(), raw = r.Varint();
    if (len < crypto::Aead::kOverhead || len > data_end || raw > (1u << 31)) r.Fail("blob length out of range");
    b.length = static_cast<uint32_t>(len);
    b.raw_length = static_cast<uint32_t>(raw);
    b.id = r.ReadId();
    b.offset = static_cast<uint32_t>(offset);
    offset += len;
    if (offset > data_end) r.Fail("blobs extend past the header");
    out->push_back(b);
  }
  if (!r.done()) r.Fail("trailing bytes in header");
  if (offset != data_end) r.Fail("unaccounted bytes between blobs and header");
  return true;
}

std::vector<PackedBlob> ParsePack(const crypto::Aead& aead, ByteSpan pack, std::string_view what) {
  CheckEnvelope(pack, ObjectType::kPack, what);
  std::vector<PackedBlob> out;
  size_t need = 0;
  if (!ParsePackTail(aead, pack, pack.size(), what, &out, &need))
    throw Error(ErrorCode::kCorrupt, std::string(what) + ": pack header out of range");
  return out;
}

}  // namespace bulwark::repo
