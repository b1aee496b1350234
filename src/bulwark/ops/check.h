// Check: verifies a repository's structure and, optionally, every byte.
//
// Structure: every index object loads; every indexed pack exists with a
// plausible size; every snapshot loads; every tree reachable from a snapshot
// loads and every blob it references is indexed. Packs that no index lists
// are reported as warnings (an interrupted backup leaves them; prune removes
// them). With read_data: each selected pack is read whole, its SHA-256 must
// equal its name, its header must match the index, and every blob must
// decrypt and match its keyed id.
//
// WAL objects (wal/<source>/<file>, repo/wal.h) are not content-addressed:
// the structure check lists them, reports unexpected names (a warning) and
// objects too short to be one (an error); read_data reads each selected one
// whole and authenticates it against its name, decompresses it and compares
// size and SHA-256 with its header. Subsets and --max-age select them like
// packs, by the SHA-256 of the object name (also their key in `verified`).
//
// Verified-pack records (repo/cache.h, `check --read-data --max-age`): with
// CheckOptions::verified, every pack read without error is recorded at
// now_seconds, a pack found damaged loses its record, and records of packs no
// longer in the repository are dropped. With max_age_seconds > 0 too, a
// selected pack is read only when due (repo::IsDue). Limitation: a pack
// damaged after its last verification is not noticed until it falls due
// again (at most max_age later); a plain --read-data reads everything.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "bulwark/repo/cache.h"
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
  // In/out: when set, updated as described above. Must belong to `repo`.
  repo::VerifiedPacks* verified = nullptr;
  int64_t max_age_seconds = 0;  // > 0: read only due packs (needs `verified`)
  int64_t now_seconds = 0;      // UTC seconds: the time recorded and compared against
};

struct CheckResult {
  std::vector<std::string> errors;    // damage: non-zero exit
  std::vector<std::string> warnings;  // e.g. unreferenced packs
  uint64_t snapshots = 0, trees = 0, packs = 0, blobs = 0, index_objects = 0;
  uint64_t packs_read = 0, blobs_read = 0, bytes_read = 0;
  uint64_t packs_skipped_recent = 0;  // selected but not read: verified within max_age
  uint64_t wal_objects = 0;           // archived WAL files (wal/<source>/<name>)
  uint64_t wal_read = 0;              // WAL objects read and verified (read_data)
  uint64_t wal_skipped_recent = 0;    // WAL objects selected but verified within max_age
  bool ok() const { return errors.empty(); }
};

// `repo` must be open; the index need not be loaded (check loads it itself,
// reporting each damaged index object instead of stopping at the first).
CheckResult Check(repo::Repository& repo, const CheckOptions& options);

}  // namespace bulwark::ops
