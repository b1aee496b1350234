// Reading and applying file-system metadata (mode, owner, times with
// nanoseconds, xattrs, symlink targets, device numbers) for backup/restore.
// Linux only. Thread-safe.
#pragma once

#include <sys/stat.h>

#include <string>

#include "bulwark/repo/tree.h"

namespace bulwark::ops {

// Fills `node` (everything but content/subtree) from lstat(path) plus xattrs
// and the symlink target. Throws Error naming the path (kNotFound if it
// vanished). `st` receives the raw lstat result.
void ReadNode(const std::string& path, std::string_view name, repo::Node* node, struct stat* st);
repo::NodeType TypeOf(mode_t mode);

// Applies ownership (when running as root or the owner), mode, xattrs and
// times to an existing entry at `path`, without following symlinks. Returns a
// list of non-fatal problems ("chown: Operation not permitted").
std::vector<std::string> ApplyMetadata(const std::string& path, const repo::Node& node);

}  // namespace bulwark::ops
