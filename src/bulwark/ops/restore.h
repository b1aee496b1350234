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

// Does the regular file at `path` hold exactly `node`'s content? Reads it
// once from the start: each chunk's length comes from the index and its
// keyed hash (Repository::ids) must equal the blob id; nothing may follow
// the last chunk. False, never an exception, when the file cannot be opened
// (O_NOFOLLOW) or read, is shorter or longer, or a blob is not indexed.
// Adds the bytes it hashed to `*bytes_read` when given. Needs the index.
// Thread-safe (a per-thread buffer of the largest chunk).
bool FileMatchesNode(const repo::Repository& repo, const repo::Node& node, const std::string& path,
                     std::atomic<uint64_t>* bytes_read = nullptr);

struct VerifyResult {
  uint64_t files = 0, dirs = 0, symlinks = 0;  // entries of the snapshot found intact
  uint64_t bytes = 0;                          // file bytes re-read and matched
  std::vector<std::string> errors;             // "/path: what is wrong", in tree order
};

// Re-reads a restored snapshot at `target` (what Restore wrote, all of it:
// no includes/excludes) and compares it with the snapshot's trees: every
// directory exists, every symlink has its target, and every file matches its
// blob ids (FileMatchesNode). A hardlinked file is checked at each of its
// names. Metadata (modes, owners, times) is not compared. Sequential.
// Throws only for a tree that cannot be loaded (kCorrupt, kNotFound).
VerifyResult VerifyRestore(repo::Repository& repo, const repo::Snapshot& snapshot, const std::string& target);

}  // namespace bulwark::ops
