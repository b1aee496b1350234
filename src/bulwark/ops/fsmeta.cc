#include "bulwark/ops/fsmeta.h"

#include <fcntl.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "bulwark/base/error.h"
#include "bulwark/base/sys.h"

namespace bulwark::ops {

using repo::Node;
using repo::NodeType;

NodeType TypeOf(mode_t mode) {
  if (S_ISREG(mode)) return NodeType::kFile;
  if (S_ISDIR(mode)) return NodeType::kDir;
  if (S_ISLNK(mode)) return NodeType::kSymlink;
  if (S_ISFIFO(mode)) return NodeType::kFifo;
  if (S_ISCHR(mode)) return NodeType::kCharDev;
  if (S_ISBLK(mode)) return NodeType::kBlockDev;
  return NodeType::kSocket;
}

static void ReadXattrs(const std::string& path, Node* node) {
  ssize_t n = ::llistxattr(path.c_str(), nullptr, 0);
  if (n <= 0) return;  // none, or not supported: not an error
  std::string names(static_cast<size_t>(n), '\0');
  n = ::llistxattr(path.c_str(), names.data(), names.size());
  if (n <= 0) return;
  names.resize(static_cast<size_t>(n));
  for (size_t pos = 0; pos < names.size();) {
    std::string name(names.c_str() + pos);
    pos += name.size() + 1;
    if (name.empty() || name == "security.selinux") continue;
    ssize_t vlen = ::lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
    if (vlen < 0) continue;
    std::string value(static_cast<size_t>(vlen), '\0');
    vlen = ::lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
    if (vlen < 0) continue;
    value.resize(static_cast<size_t>(vlen));
    node->xattrs.emplace_back(std::move(name), std::move(value));
  }
  std::sort(node->xattrs.begin(), node->xattrs.end());
}

void ReadNode(const std::string& path, std::string_view name, Node* node, struct stat* st) {
  if (::lstat(path.c_str(), st) != 0) throw ErrnoError("stat", path);
  node->name = std::string(name);
  node->type = TypeOf(st->st_mode);
  node->mode = st->st_mode & 07777;
  node->uid = st->st_uid;
  node->gid = st->st_gid;
  node->user = sys::UserName(st->st_uid);
  node->group = sys::GroupName(st->st_gid);
  node->mtime_ns = int64_t(st->st_mtim.tv_sec) * 1000000000 + st->st_mtim.tv_nsec;
  // atime is not recorded: reading a file changes it, so recording it would
  // make every backup write new tree blobs for unchanged directories.
  node->atime_ns = 0;
  node->ctime_ns = int64_t(st->st_ctim.tv_sec) * 1000000000 + st->st_ctim.tv_nsec;
  node->inode = st->st_ino;
  node->device = st->st_dev;
  node->nlink = st->st_nlink;
  node->size = node->type == NodeType::kFile ? static_cast<uint64_t>(st->st_size) : 0;
  if (node->type == NodeType::kCharDev || node->type == NodeType::kBlockDev) node->rdev = st->st_rdev;
  if (node->type == NodeType::kSymlink) {
    std::string target(static_cast<size_t>(st->st_size > 0 ? st->st_size : 4096) + 1, '\0');
    ssize_t n = ::readlink(path.c_str(), target.data(), target.size());
    if (n < 0) throw ErrnoError("readlink", path);
    target.resize(static_cast<size_t>(n));
    node->link_target = std::move(target);
  }
  if (node->type == NodeType::kFile)
    node->sparse = uint64_t(st->st_blocks) * 512 < static_cast<uint64_t>(st->st_size);
  ReadXattrs(path, node);
}

std::vector<std::string> ApplyMetadata(const std::string& path, const Node& node) {
  std::vector<std::string> problems;
  bool is_link = node.type == NodeType::kSymlink;
  if (::lchown(path.c_str(), node.uid, node.gid) != 0 && geteuid() == 0)
    problems.push_back("chown " + path + ": " + std::strerror(errno));
  for (const auto& [k, v] : node.xattrs) {
    if (::lsetxattr(path.c_str(), k.c_str(), v.data(), v.size(), 0) != 0 && errno != ENOTSUP && errno != EPERM)
      problems.push_back("setxattr " + k + " on " + path + ": " + std::strerror(errno));
  }
  // chmod after chown: chown clears setuid/setgid bits.
  if (!is_link && ::chmod(path.c_str(), node.mode) != 0) problems.push_back("chmod " + path + ": " + std::strerror(errno));
  struct timespec ts[2];
  ts[0].tv_sec = node.atime_ns / 1000000000;
  ts[0].tv_nsec = node.atime_ns % 1000000000;
  ts[1].tv_sec = node.mtime_ns / 1000000000;
  ts[1].tv_nsec = node.mtime_ns % 1000000000;
  if (ts[0].tv_nsec < 0) { ts[0].tv_nsec += 1000000000; --ts[0].tv_sec; }
  if (node.atime_ns == 0) ts[0].tv_nsec = UTIME_OMIT;  // not recorded
  if (ts[1].tv_nsec < 0) { ts[1].tv_nsec += 1000000000; --ts[1].tv_sec; }
  if (::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0)
    problems.push_back("set times on " + path + ": " + std::strerror(errno));
  return problems;
}

}  // namespace bulwark::ops
