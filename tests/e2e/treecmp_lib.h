// Exhaustive comparison of two directory trees, used by the end-to-end tests
// and by the `bulwark-treecmp` tool (tools/treecmp.cc).
//
// Standalone: depends only on the C++ standard library and POSIX/Linux calls.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bulwark::testing {

struct CompareResult {
  bool identical = true;
  // One line per difference: "PATH: what differs (src=..., dst=...)".
  // PATH is relative to the roots ("." for the roots themselves) and escaped
  // with EscapeBytes().
  std::vector<std::string> differences;
  // Entries examined (present on both sides, counted once per path; the
  // roots count as a dir). others = fifos, char/block devices, sockets.
  uint64_t entries = 0, files = 0, dirs = 0, symlinks = 0, others = 0;
  // Sum of the apparent sizes of the regular files of SRC that were
  // examined, each inode counted once (hard links are not double-counted).
  uint64_t bytes = 0;
};

// Compares SRC and DST recursively without following symlinks (the roots
// themselves are followed if they are symlinks). For every entry it compares:
// the set of names, entry type, st_mode & 07777, uid, gid, mtime (with ns;
// also for symlinks and dirs), size and content of regular files, symlink
// targets, st_rdev of devices, all extended attributes except
// "security.selinux", the hard-link structure within the tree (the partition
// of paths into link groups, not inode numbers or st_nlink), and sparseness:
// if a SRC file has >= 1 MiB of holes, the DST file must not have more than
// SRC's allocation + 1 MiB allocated. atime is compared only when
// ignore_atime is false. Directory sizes and ctimes are never compared.
CompareResult CompareTrees(const std::string& src, const std::string& dst,
                           bool ignore_atime = true);

// Makes arbitrary bytes printable and unambiguous: printable ASCII and valid
// UTF-8 (except control characters) pass through, backslash becomes "\\",
// \n \t \r become "\n" "\t" "\r", other bytes become "\xHH".
std::string EscapeBytes(std::string_view raw);

}  // namespace bulwark::testing
