// Check: verifies a repository's structure and, optionally, every byte.
//
// Structure: every index object loads; every indexed pack exists with a
// plausible size; every snapshot loads; every tree reachable from a snapshot
// loads and every blob it references is indexed. Packs that no index lists
// are reported as warnings (an interrupted backup leaves them; prune removes
// them). With read_data: each selected pack is read whole, its SHA-256 must
// equal its name, its header must match the index, and every blob must
// decrypt and match its keyed id.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "bulwark/repo/repository.h"

namespace bulwark::ops {

struct CheckOptions {
  bool read_data = false;
  // Subset of packs to read: bucket `subset_n` of `subset_m` (1-based; packs
  // are bucketed by id) or a percentage (random sample).
  uint32_t subset_n = 0, subset_m = 0;
  double subset_percent = 0;
  int threads = 0;
  std::atomic<uint64_t>* packs_done = nullptr;  // progress
};

struct CheckResult {
  std::vector<std::string> errors;    // damage: non-zero exit
  std::vector<std::string> warnings;  // e.g. unreferenced packs
  uint64_t snapshots = 0, trees = 0, packs = 0, blobs = 0, index_objects = 0;
  uint64_t packs_read = 0, blobs_read = 0, bytes_read = 0;
  bool ok() const { return errors.empty(); }
};

// `repo` must be open; the index need not be loaded (check loads it itself,
// reporting each damaged index object instead of stopping at the first).
CheckResult Check(repo::Repository& repo, const CheckOptions& options);

}  // namespace bulwark::ops
