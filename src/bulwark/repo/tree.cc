#include "bulwark/repo/tree.h"

#include <algorithm>

#include "bulwark/base/error.h"

namespace bulwark::repo {

std::string_view NodeTypeName(NodeType t) {
  switch (t) {
    case NodeType::kFile: return "file";
    case NodeType::kDir: return "dir";
    case NodeType::kSymlink: return "symlink";
    case NodeType::kFifo: return "fifo";
    case NodeType::kCharDev: return "chardev";
    case NodeType::kBlockDev: return "blockdev";
    case NodeType::kSocket: return "socket";
  }
  return "unknown";
}

bool IsSafeName(std::string_view name) {
  if (name.empty() || name == "." || name == "..") return false;
  return name.find('/') == std::string_view::npos && name.find('\0') == std::string_view::npos;
}

Bytes Tree::Encode() {
  std::sort(nodes.begin(), nodes.end(), [](const Node& a, const Node& b) { return a.name < b.name; });
  for (size_t i = 1; i < nodes.size(); ++i)
    if (nodes[i].name == nodes[i - 1].name) throw Error(ErrorCode::kInternal, "tree: duplicate name");
  Bytes out;
  Writer w(&out);
  w.U8(1);
  w.Varint(nodes.size());
  for (const auto& n : nodes) {
    w.Str(n.name);
    w.U8(static_cast<uint8_t>(n.type));
    w.Varint(n.mode);
    w.Varint(n.uid);
    w.Varint(n.gid);
    w.Str(n.user);
    w.Str(n.group);
    w.SignedVarint(n.mtime_ns);
    w.SignedVarint(n.atime_ns);
    w.SignedVarint(n.ctime_ns);
    w.Varint(n.inode);
    w.Varint(n.device);
    w.Varint(n.nlink);
    w.Varint(n.size);
    w.Varint(n.rdev);
    w.Str(n.link_target);
    w.Varint(n.content.size());
    for (const auto& id : n.content) w.Raw(id);
    w.U8(n.subtree.IsZero() ? 0 : 1);
    if (!n.subtree.IsZero()) w.Raw(n.subtree);
    w.Varint(n.xattrs.size());
    for (const auto& [k, v] : n.xattrs) {
      w.Str(k);
      w.Str(v);
    }
    w.U8(n.sparse ? 1 : 0);
  }
  return out;
}

Tree Tree::Decode(ByteSpan data, std::string_view what) {
  Reader r(data, what);
  if (r.U8() != 1) r.Fail("unknown tree version");
  uint64_t count = r.Varint();
  if (count > data.size()) r.Fail("node count out of range");
  Tree t;
  t.nodes.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    Node n;
    n.name = r.Str(4096);
    if (!IsSafeName(n.name)) r.Fail("unsafe entry name (empty, '.', '..', or containing '/' or NUL)");
    if (!t.nodes.empty() && !(t.nodes.back().name < n.name)) r.Fail("entry names not sorted or duplicated");
    uint8_t type = r.U8();
    if (type < 1 || type > 7) r.Fail("unknown node type");
    n.type = static_cast<NodeType>(type);
    uint64_t mode = r.Varint(), uid = r.Varint(), gid = r.Varint();
    if (mode > 07777 || uid > UINT32_MAX || gid > UINT32_MAX) r.Fail("mode/uid/gid out of range");
    n.mode = static_cast<uint32_t>(mode);
    n.uid = static_cast<uint32_t>(uid);
    n.gid = static_cast<uint32_t>(gid);
    n.user = r.Str(256);
    n.group = r.Str(256);
    n.mtime_ns = r.SignedVarint();
    n.atime_ns = r.SignedVarint();
    n.ctime_ns = r.SignedVarint();
    n.inode = r.Varint();
    n.device = r.Varint();
    n.nlink = r.Varint();
    n.size = r.Varint();
    n.rdev = r.Varint();
    n.link_target = r.Str(65536);
    uint64_t nc = r.Varint();
    if (nc > r.remaining() / 32) r.Fail("content count out of range");
    n.content.reserve(nc);
    for (uint64_t j = 0; j < nc; ++j) n.content.push_back(r.ReadId());
    uint8_t has_sub = r.U8();
    if (has_sub > 1) r.Fail("bad subtree flag");
    if (has_sub) n.subtree = r.ReadId();
    if (has_sub && n.subtree.IsZero()) r.Fail("zero subtree id");  // zero means "none" to Encode
    if ((n.type == NodeType::kDir) != (has_sub == 1)) r.Fail("subtree present on a non-directory or missing");
    if (n.type != NodeType::kFile && nc) r.Fail("content on a non-file");
    uint64_t nx = r.Varint();
    if (nx > r.remaining() / 2) r.Fail("xattr count out of range");
    for (uint64_t j = 0; j < nx; ++j) {
      std::string k = r.Str(255);
      std::string v = r.Str(1 << 20);
      n.xattrs.emplace_back(std::move(k), std::move(v));
    }
    uint8_t flags = r.U8();
    if (flags > 1) r.Fail("unknown node flags");
    n.sparse = flags & 1;
    t.nodes.push_back(std::move(n));
  }
  if (!r.done()) r.Fail("trailing bytes");
  return t;
}

}  // namespace bulwark::repo
