// Trees: one directory's entries, stored as a tree blob (docs/FORMAT.md,
// "Trees"). Binary, little-endian, LEB128 varints:
//   u8 version (=1) | varint node count | nodes sorted by name (bytewise)
// Node: str name | u8 type | varint mode | varint uid | varint gid |
//   str user | str group | svarint mtime_ns | svarint atime_ns |
//   svarint ctime_ns | varint inode | varint device | varint nlink |
//   varint size | varint rdev | str link_target | varint n, n content ids |
//   u8 has_subtree [id] | varint n, n x (str name, str value) xattrs |
//   u8 flags (bit 0: sparse)
// where str = varint length + bytes. Names are raw bytes (any byte but '/'
// and NUL); "." and ".." and empty names are rejected by Decode, so a
// restored tree can never escape its target directory.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "bulwark/base/bytes.h"

namespace bulwark::repo {

enum class NodeType : uint8_t { kFile = 1, kDir = 2, kSymlink = 3, kFifo = 4, kCharDev = 5, kBlockDev = 6, kSocket = 7 };
std::string_view NodeTypeName(NodeType t);

struct Node {
  std::string name;  // one path component, raw bytes
  NodeType type = NodeType::kFile;
  uint32_t mode = 0;  // permission bits incl. setuid/setgid/sticky (st_mode & 07777)
  uint32_t uid = 0, gid = 0;
  std::string user, group;  // names at backup time (informational)
  int64_t mtime_ns = 0, ctime_ns = 0;  // ns since the Unix epoch, UTC
  int64_t atime_ns = 0;  // 0 = not recorded (bulwark does not record atime: reads change it)
  uint64_t inode = 0, device = 0, nlink = 0;  // change detection and hardlinks
  uint64_t size = 0;                          // bytes (files)
  uint64_t rdev = 0;                          // device number (char/block devices)
  std::string link_target;                    // symlinks, raw bytes
  std::vector<Id> content;                    // data blob ids, in order (files)
  Id subtree;                                 // tree blob id (directories)
  std::vector<std::pair<std::string, std::string>> xattrs;  // name -> value, sorted by name
  bool sparse = false;  // the source file had holes; restore writes zero blobs as holes

  bool operator==(const Node&) const = default;
};

struct Tree {
  std::vector<Node> nodes;  // sorted by name, unique

  // Sorts nodes by name. Throws kInternal on duplicate names.
  Bytes Encode();
  // Throws kCorrupt naming `what` on malformed input or unsafe names.
  static Tree Decode(ByteSpan data, std::string_view what);
};

// True if `name` is a safe single path component.
bool IsSafeName(std::string_view name);

}  // namespace bulwark::repo
