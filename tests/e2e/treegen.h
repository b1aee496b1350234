// Deterministic generator of directory trees that hold every kind of entry
// a backup must handle, for end-to-end tests.
//
// Standalone: depends only on the C++ standard library and POSIX/Linux calls.
// Some features need root (chown, mknod, trusted.* xattrs); without the
// privilege they are skipped (and not counted), so a tree generated twice by
// the same user on the same filesystem is always identical.
#pragma once

#include <cstdint>
#include <string>

namespace bulwark::testing {

struct TreeGenOptions {
  uint64_t seed = 1;
  // Number of randomly placed regular files under "tree/", on top of the
  // fixed catalogue of special cases (about 75 more regular files).
  int files = 200;
  // Maximum nesting depth of the random directories below the root
  // (the fixed "deep/" chain is always 40 levels deep).
  int max_depth = 6;
  // Upper bound for regular file sizes (the sparse files excepted). The
  // "big" catalogue files are exactly this large.
  uint64_t max_file_size = 2 << 20;
  // Adds sparse/sparse-1g.img: 1 GiB apparent size, ~3 MiB of data at
  // offsets 0, 300 MiB and at the very end.
  bool sparse_large = true;
  // Adds a FIFO and char/block device nodes (devices need CAP_MKNOD).
  bool special_files = true;
};

struct TreeGenStats {
  int files = 0;      // distinct regular-file inodes
  int dirs = 0;       // directories, including the root
  int symlinks = 0;
  int hardlinks = 0;  // additional names of already counted files
  int fifos = 0;
  int devices = 0;    // char + block devices
  uint64_t bytes = 0; // apparent size of all regular files, each inode once
};

// Creates (under `root`, which must not exist; its parent must) a
// deterministic tree: the same options give the same names, contents, modes,
// owners, mtimes (with ns, also of dirs and symlinks), xattrs, hard links and
// holes. Throws std::runtime_error on failure.
//
// Regular files in a tree, counted by bulwark-treecmp / CompareTrees,
// number stats.files + stats.hardlinks; symlinks stats.symlinks; dirs
// stats.dirs; others stats.fifos + stats.devices; bytes stats.bytes.
//
// Contents: files/ (sizes 0, 1, 4095..4097, KiB, max_file_size text, random,
// mixed, repeated blocks, explicit zeros), dup/ (copies for deduplication),
// modes/ (0600 0755 04755 02755 0444 0000, 01777 and 0555 and 02775 dirs),
// owners/ (1234:5678 and 65534:65534), names/ (spaces, \n, \t, leading dash,
// é, 日本, "\xff\xfe", 255 bytes, ...), links/ (relative, absolute, dangling,
// to a dir, loops, weird and long targets), hard/ (a file with 3 links in
// different dirs and a pair), special/ (FIFO, char and block devices),
// sparse/ (small sparse files with leading/middle/trailing holes, and the
// 1 GiB one), empty-dir/, empty-nested/, deep/ (a 40-level chain), tree/
// (opts.files random files in random dirs up to max_depth, ~10% duplicates).
// Timestamps include one before 1970 and one after 2038. Xattrs: user.* with
// text, binary and empty values, trusted.x (skipped where unsupported).
TreeGenStats GenerateTree(const std::string& root, const TreeGenOptions& opts);

// Modifies about `fraction` of the regular files (distinct inodes, at least
// one if fraction > 0) in place: appends, overwrites (inverts) a range, or
// truncates; and adds and deletes a few entries (files, a new dir with a
// file), and changes only the mode of one more file (a ctime-only change).
// Changed files and directories get new explicit mtimes. Deterministic:
// applying the same seed to two identical trees gives identical trees.
// fraction <= 0 changes nothing. Throws std::runtime_error on failure.
void MutateTree(const std::string& root, uint64_t seed, double fraction);

// Removes a tree generated above (making read-only dirs writable first).
// Returns false if something could not be removed. Missing root is fine.
bool RemoveTree(const std::string& root);

}  // namespace bulwark::testing
