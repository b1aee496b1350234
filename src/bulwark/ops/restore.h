// Restore: writes a snapshot's tree into a target directory.
//
// Plan, then execute: (1) walk the trees, create directories, symlinks,
// FIFOs, devices, hardlinks and empty-sized files; (2) read the needed blobs
// pack by pack (one ranged read per pack, parallel), verify every blob (AEAD
// tag and keyed hash against its id) and write it at its offsets; all-zero
// blobs of sparse files are left as holes; (3) apply metadata, files first and
// directories last (deepest first) so their mtimes stick.
//
// A damaged or missing blob does not stop the restore: the files it affects
// are named in `errors` and the caller exits non-zero.
// Safety: names were validated when trees were decoded ('..', '/', NUL are
// refused), files are created with O_NOFOLLOW, and the target must be new or
// empty (a `lost+found` directory, as at the root of a new file system, does
// not count) unless `overwrite` is set.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "bulwark/repo/repository.h"

namespace bulwark::ops {

struct RestoreProgress {
  std::atomic<uint64_t> files{0}, dirs{0}, bytes{0}, total_bytes{0}, total_files{0};
};

struct RestoreOptions {
  std::string target;
  std::vector<std::string> includes, excludes;  // fnmatch on snapshot paths ("/etc/*")
  bool overwrite = false;
  int threads = 0;  // 0 = 2 x hardware concurrency (I/O bound)
  RestoreProgress* progress = nullptr;
};

struct RestoreResult {
  uint64_t files = 0, dirs = 0, symlinks = 0, others = 0, bytes = 0;
  std::vector<std::string> errors;    // damaged data: non-zero exit
  std::vector<std::string> warnings;  // metadata that could not be applied
};

RestoreResult Restore(repo::Repository& repo, const repo::Snapshot& snapshot, const RestoreOptions& options);

// Finds the node at `path` ("/etc/hosts") in a snapshot. Throws kNotFound.
repo::Node FindNode(repo::Repository& repo, const repo::Snapshot& snapshot, const std::string& path);

// Writes a file node's content to `fd`, verifying every blob.
uint64_t DumpFile(repo::Repository& repo, const repo::Node& node, int fd);

}  // namespace bulwark::ops
