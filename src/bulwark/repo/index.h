// The index: where each blob lives (docs/FORMAT.md, "Index").
//
// On storage: index objects `index/<sha256>`, each listing some packs and
// their blobs. Written by every backup after its packs (commit order: packs,
// index, snapshot); the in-memory Index is the union of all index objects.
// It can always be rebuilt from the pack headers.
//
// In memory: a sorted vector of 48-byte entries (id, pack number, offset,
// lengths, flags) plus a hash map for blobs added since the last Finalize().
// Memory: 48 bytes per blob + about 80 bytes per pack.
//
// Thread-safety: Find/Has/AddPack may run concurrently (shared mutex).
// Finalize must not run concurrently with anything else.
#pragma once

#include <functional>
#include <optional>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

#include "bulwark/base/bytes.h"
#include "bulwark/repo/pack.h"

namespace bulwark::repo {

struct BlobLocation {
  Id pack;
  PackedBlob blob;  // id, type, flags, offset, length, raw length
};

// One index object's content.
struct IndexFile {
  struct Pack {
    Id id;
    std::vector<PackedBlob> blobs;
  };
  std::vector<Pack> packs;
  std::vector<Id> supersedes;  // index objects this one replaces (for prune)

  Bytes Encode() const;
  // Throws kCorrupt naming `what` on malformed input.
  static IndexFile Decode(ByteSpan data, std::string_view what);
};

class Index {
 public:
  void AddPack(const Id& pack, const std::vector<PackedBlob>& blobs);
  std::optional<BlobLocation> Find(const Id& blob) const;
  bool Has(const Id& blob) const { return Find(blob).has_value(); }
  // Sorts pending entries into the main table. Duplicate blobs (same id in
  // two packs) keep the first location seen.
  void Finalize();
  size_t blob_count() const;
  size_t pack_count() const;
  std::vector<Id> Packs() const;
  // Calls fn(pack id, blob) for every indexed blob location (also duplicates
  // dropped by Finalize are not visited). Takes the lock shared.
  void ForEach(const std::function<void(const Id& pack, const PackedBlob& blob)>& fn) const;
  bool HasPack(const Id& pack) const;

  // Bulk loading (Repository::LoadIndex): AppendPack adds a pack's listing
  // unsorted (a pack already known is ignored, as in AddPack); FinishLoad
  // sorts once and drops duplicate blob ids (lowest pack number wins). No
  // hash map is involved: 48 bytes per blob. Clear empties the index.
  void AppendPack(const Id& pack, const std::vector<PackedBlob>& blobs);
  void FinishLoad();
  void Clear();

  // Totals over every blob an index object lists in a pack, including blobs
  // whose id is also stored in another pack (prune counts those as unused).
  struct PackStats {
    uint64_t listed_bytes = 0;  // sum of sealed lengths (bytes)
    uint32_t listed_blobs = 0;
  };

  // Positional access to the sorted table, for prune's one-bit-per-blob
  // marks. Valid after Finalize/FinishLoad while nothing is pending; a
  // position stays valid until the next Finalize/FinishLoad/Clear.
  size_t sorted_size() const;
  std::optional<size_t> Position(const Id& blob) const;
  BlobLocation At(size_t pos) const;
  uint32_t PackNumberAt(size_t pos) const;
  uint32_t LengthAt(size_t pos) const;  // sealed length (bytes)
  BlobType TypeAt(size_t pos) const;
  Id PackById(uint32_t pack_number) const;  // pack_number < pack_count()
  std::optional<uint32_t> PackNumber(const Id& pack) const;
  PackStats pack_stats(uint32_t pack_number) const;

 private:
  struct Entry {
    Id id;
    uint32_t pack_flags;  // bits 0-27 pack number, bit 28 compressed, bits 29-30 blob type
    uint32_t offset, length, raw_length;
  };
  static_assert(sizeof(Entry) == 48);
  Entry MakeEntry(uint32_t pack_no, const PackedBlob& b) const;
  template <typename Put>
  bool RegisterLocked(const Id& pack, const std::vector<PackedBlob>& blobs, Put&& put);
  BlobLocation ToLocation(const Entry& e) const;

  mutable std::shared_mutex mu_;
  std::vector<Id> packs_;
  std::vector<PackStats> pack_stats_;  // parallel to packs_
  std::unordered_map<Id, uint32_t, IdHash> pack_numbers_;
  std::vector<Entry> main_;  // sorted by id
  std::unordered_map<Id, Entry, IdHash> pending_;
};

}  // namespace bulwark::repo
