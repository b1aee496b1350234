// Whole tree packs in memory, for repositories on remote storage: walking
// the trees of a snapshot (backup's parent tree, restore, prune's and lock
// extend's marking, check) otherwise costs one ranged GET per directory,
// which on S3 is billed per request and slow per round trip (bench/s3-run
// measured 2,439 requests per GB for an incremental backup of 5,097
// directories, against restic's 7.6 with its local tree cache).
//
// Policy: a tree blob is read with a ranged GET until its pack has served
// `kRangedReadsBeforeWholePack` of them; then the whole pack (~16 MiB at
// most, trees only: BlobSaver keeps trees in their own packs) is fetched
// once and later trees come from memory. A walk that touches a pack only a
// few times pays no more than before; one that touches it often pays one
// request instead of thousands. Memory: at most `capacity_bytes` of packs
// (least recently used evicted), plus packs being fetched.
//
// Thread-safety: every method may be called from many threads; concurrent
// requests for a pack being fetched wait for that one download.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "bulwark/base/bytes.h"
#include "bulwark/crypto/crypto.h"

namespace bulwark::repo {

class TreePackCache {
 public:
  static constexpr int kRangedReadsBeforeWholePack = 8;
  explicit TreePackCache(size_t capacity_bytes) : capacity_(capacity_bytes) {}

  // The sealed bytes [offset, offset + length) of `pack`: from memory, or by
  // `ranged()` (returns exactly those bytes), or after `whole()` (returns the
  // whole pack) fetched and kept the pack. Throws what they throw, and
  // kCorrupt when the cached pack is shorter than offset + length.
  Bytes Read(const Id& pack, uint64_t offset, uint64_t length, const std::function<Bytes()>& ranged,
             const std::function<Bytes()>& whole);

  uint64_t whole_fetches() const;  // packs downloaded whole so far

 private:
  struct Entry {
    int ranged_reads = 0;
    bool fetching = false;
    std::shared_ptr<const Bytes> data;  // set once fetched
    std::list<Id>::iterator lru;        // valid while data is set
  };
  mutable std::mutex mu_;
  std::condition_variable fetched_;
  std::unordered_map<Id, Entry, IdHash> packs_;
  std::list<Id> lru_;  // front = most recently used, only packs with data
  size_t capacity_, used_ = 0;
  uint64_t whole_fetches_ = 0;
};

}  // namespace bulwark::repo
