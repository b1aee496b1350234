// Pack files (docs/FORMAT.md, "Packs"): many blobs in one object.
//
//   envelope (8 bytes, type pack)
//   blob 0 sealed unit | blob 1 sealed unit | ...        (crypto::Aead units)
//   header sealed unit                                  (lists every blob)
//   u32 LE length of the header unit | "BWPK"
//
// Blob unit AAD: the blob's type byte followed by its 32-byte id, so a unit
// cannot be served as another blob. Header plaintext: varint count, then per
// blob: type (1), flags (1; bit 0 = zstd-compressed), varint sealed length,
// varint raw length, id (32). Blob offsets are implicit: the first blob starts
// at byte 8 and each follows the previous. The pack's name is the SHA-256 of
// its bytes, so `check` can verify a pack without the key.
// Packs are self-describing: the index can be rebuilt from packs alone.
#pragma once

#include <cstdint>
#include <vector>

#include "bulwark/base/bytes.h"
#include "bulwark/crypto/crypto.h"

namespace bulwark::repo {

enum class BlobType : uint8_t { kData = 1, kTree = 2 };

struct PackedBlob {
  Id id;
  BlobType type = BlobType::kData;
  bool compressed = false;
  uint32_t offset = 0;      // bytes from the start of the pack
  uint32_t length = 0;      // sealed length in the pack (bytes)
  uint32_t raw_length = 0;  // plaintext length (bytes)
};

constexpr size_t kPackTrailerSize = 8;

// Reads the `u8 type | u8 flags` pair shared by pack headers and index
// objects into `b`; fails the reader on unknown values.
void ReadTypeAndFlags(Reader& r, PackedBlob* b);

// Builds one pack in memory. Not thread-safe; callers serialise.
class PackBuilder {
 public:
  explicit PackBuilder(const crypto::Aead* aead);
  // Pre-sizes the buffer (bytes) so growth never doubles a full pack.
  void Reserve(size_t bytes);
  // Appends an already-sealed blob unit (see SealBlob).
  void Add(const PackedBlob& meta, ByteSpan sealed);
  size_t size() const { return buf_.size(); }
  size_t count() const { return blobs_.size(); }
  bool empty() const { return blobs_.empty(); }
  // Seals the header, appends the trailer and returns the pack bytes and its
  // blob list (offsets filled in). The builder is empty afterwards.
  Bytes Finish(std::vector<PackedBlob>* blobs);

 private:
  const crypto::Aead* aead_;
  Bytes buf_;
  std::vector<PackedBlob> blobs_;
};

// Compresses (when it pays, at `level`; 0 disables) and seals one blob into
// `*out` (replacing its content; its capacity is reused). Fills
// meta.compressed/raw_length/length; meta.id and meta.type must be set.
void SealBlob(const crypto::Aead& aead, ByteSpan plaintext, int level, PackedBlob* meta, Bytes* out);
inline Bytes SealBlob(const crypto::Aead& aead, ByteSpan plaintext, int level, PackedBlob* meta) {
  Bytes out;
  SealBlob(aead, plaintext, level, meta, &out);
  return out;
}
// Opens one blob unit read from a pack; checks the AEAD tag and then that the
// keyed hash of the plaintext equals the id. Throws kCorrupt naming `what`.
Bytes OpenBlob(const crypto::Aead& aead, const crypto::KeyedHasher& ids, const PackedBlob& meta, ByteSpan sealed,
               std::string_view what);

// Same, using per-thread scratch buffers: returns the verified plaintext,
// valid until the calling thread's next OpenBlobView. For hot paths (restore,
// check) where allocating and zero-filling every blob costs more than the
// decryption.
ByteSpan OpenBlobView(const crypto::Aead& aead, const crypto::KeyedHasher& ids, const PackedBlob& meta, ByteSpan sealed,
                      std::string_view what);

// Reads the blob list of a complete pack (all its bytes); throws kCorrupt.
std::vector<PackedBlob> ParsePack(const crypto::Aead& aead, ByteSpan pack, std::string_view what);
// Same from the pack's tail only: `tail` is the last bytes of a pack of total
// size `pack_size` (bytes); returns false if `tail` is too short to hold the
// header, setting *need to the number of tail bytes required.
bool ParsePackTail(const crypto::Aead& aead, ByteSpan tail, uint64_t pack_size, std::string_view what,
                   std::vector<PackedBlob>* out, size_t* need);

}  // namespace bulwark::repo
