// Reachability: which index entries the snapshots use. Shared by prune
// (mark and sweep) and the Object Lock maintenance (object_lock.h).
//
// Thread-safety: BlobMarks may be set from many threads at once;
// MarkReachable runs its own worker threads and returns when done.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_set>
#include <vector>

#include "bulwark/repo/repository.h"

namespace bulwark::ops {

// One bit per sorted index entry (repo::Index positions), set concurrently.
class BlobMarks {
 public:
  explicit BlobMarks(size_t n);
  // Returns true if the bit was not set before.
  bool Set(size_t i) {
    uint64_t m = uint64_t(1) << (i & 63);
    return !(bits_[i >> 6].fetch_or(m, std::memory_order_relaxed) & m);
  }
  bool Get(size_t i) const { return bits_[i >> 6].load(std::memory_order_relaxed) & (uint64_t(1) << (i & 63)); }

 private:
  size_t words_;
  std::unique_ptr<std::atomic<uint64_t>[]> bits_;
};

// Marks every blob reachable from `snapshots` in `marks` (sized to the
// repository's loaded index). Trees are loaded by a few threads; a tree is
// walked once however many snapshots share it (its mark bit is the visited
// flag). Referenced ids the index lacks are added to `missing`.
// `progress(trees_done, trees_known)` is called now and then (may be null).
// Throws the first error reading a tree (kCorrupt, kNotFound, backend errors),
// with the tree's id as context.
void MarkReachable(const repo::Repository& repo, const std::vector<repo::Snapshot>& snapshots, BlobMarks* marks,
                   std::unordered_set<Id, IdHash>* missing,
                   const std::function<void(uint64_t done, uint64_t total)>& progress = nullptr);

// Numbers (repo::Index pack numbers) of the indexed packs that hold at least
// one marked blob: the packs the snapshots need.
std::vector<bool> PacksInUse(const repo::Index& index, const BlobMarks& marks);

}  // namespace bulwark::ops
