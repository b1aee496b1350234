// Tests for src/bulwark/repo/tree.h: the tree blob codec, checked against an
// independent encoder written from the format comment in tree.h, and the
// decoder's refusal of unsafe or malformed input.
#include "bulwark/repo/tree.h"

#include <gtest/gtest.h>

#include "test_util.h"

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "bulwark/base/error.h"
#include "bulwark/crypto/crypto.h"

namespace bulwark::repo {
namespace {

Id IdOf(std::string_view s) { return crypto::Sha256(AsBytes(s)); }

// Field-by-field encoder following the documented layout (tree.h), with
// overridable raw values so tests can produce invalid encodings.
struct RawNode {
  std::string name = "x";
  uint8_t type = 1;
  uint64_t mode = 0644, uid = 0, gid = 0;
  std::string user, group;
  int64_t mtime = 0, atime = 0, ctime = 0;
  uint64_t inode = 0, device = 0, nlink = 1, size = 0, rdev = 0;
  std::string link;
  std::vector<Id> content;
  uint8_t has_subtree = 0;
  Id subtree;
  std::vector<std::pair<std::string, std::string>> xattrs;
  uint8_t flags = 0;

  void EncodeTo(Writer& w) const {
    w.Str(name);
    w.U8(type);
    w.Varint(mode);
    w.Varint(uid);
    w.Varint(gid);
    w.Str(user);
    w.Str(group);
    w.SignedVarint(mtime);
    w.SignedVarint(atime);
    w.SignedVarint(ctime);
    w.Varint(inode);
    w.Varint(device);
    w.Varint(nlink);
    w.Varint(size);
    w.Varint(rdev);
    w.Str(link);
    w.Varint(content.size());
    for (const auto& id : content) w.Raw(id);
    w.U8(has_subtree);
    if (has_subtree == 1) w.Raw(subtree);
    w.Varint(xattrs.size());
    for (const auto& [k, v] : xattrs) {
      w.Str(k);
      w.Str(v);
    }
    w.U8(flags);
  }
};

Bytes RawTree(const std::vector<RawNode>& nodes, uint8_t version = 1) {
  Bytes out;
  Writer w(&out);
  w.U8(version);
  w.Varint(nodes.size());
  for (const auto& n : nodes) n.EncodeTo(w);
  return out;
}

RawNode Dir(std::string name) {
  RawNode n;
  n.name = std::move(name);
  n.type = 2;
  n.mode = 0755;
  n.has_subtree = 1;
  n.subtree = IdOf("sub");
  return n;
}

// A tree using every field with awkward values.
Tree FullTree() {
  Tree t;
  Node file;
  file.name = std::string("bin\nary\xff") + "\x01 name";
  file.type = NodeType::kFile;
  file.mode = 04755;
  file.uid = std::numeric_limits<uint32_t>::max();
  file.gid = 12345;
  file.user = "rööt";
  file.group = std::string("g\0p", 3);
  file.mtime_ns = -1234567890123456789;  // before 1970
  file.atime_ns = std::numeric_limits<int64_t>::max();
  file.ctime_ns = std::numeric_limits<int64_t>::min();
  file.inode = std::numeric_limits<uint64_t>::max();
  file.device = 0x0803;
  file.nlink = 3;
  file.size = 5ull << 40;
  file.content = {IdOf("a"), IdOf("b"), IdOf("a")};
  file.xattrs = {{"security.selinux", std::string("system_u\0", 9)}, {"user.bin", std::string("\xff\x00\n", 3)}};
  file.sparse = true;
  t.nodes.push_back(file);

  Node dir;
  dir.name = "dir";
  dir.type = NodeType::kDir;
  dir.mode = 01777;
  dir.subtree = IdOf("subtree");
  dir.xattrs = {{"user.empty", ""}};
  t.nodes.push_back(dir);

  Node link;
  link.name = "link";
  link.type = NodeType::kSymlink;
  link.mode = 0777;
  link.link_target = std::string("../../etc/\xfe") + "\npasswd";
  t.nodes.push_back(link);

  Node fifo;
  fifo.name = "fifo";
  fifo.type = NodeType::kFifo;
  t.nodes.push_back(fifo);

  Node chr;
  chr.name = "null";
  chr.type = NodeType::kCharDev;
  chr.rdev = (1 << 8) | 3;
  t.nodes.push_back(chr);

  Node blk;
  blk.name = "sda";
  blk.type = NodeType::kBlockDev;
  blk.rdev = (8 << 8);
  t.nodes.push_back(blk);

  Node sock;
  sock.name = "socket";
  sock.type = NodeType::kSocket;
  t.nodes.push_back(sock);

  Node empty_file;
  empty_file.name = "\xff";  // sorts after every ASCII name
  t.nodes.push_back(empty_file);
  Node a;
  a.name = "A";  // sorts before lower case
  t.nodes.push_back(a);
  return t;
}

TEST(TreeCodec, RoundTripAllFields) {
  Tree t = FullTree();
  const std::vector<Node> original = t.nodes;
  Bytes enc = t.Encode();
  Tree back = Tree::Decode(enc, "tree x");
  ASSERT_EQ(back.nodes.size(), original.size());
  // Encode sorted the nodes bytewise (unsigned): "A" < "bin\n..." < ... < "\xff".
  EXPECT_EQ(back.nodes.front().name, "A");
  EXPECT_EQ(back.nodes.back().name, "\xff");
  for (size_t i = 1; i < back.nodes.size(); ++i) EXPECT_LT(back.nodes[i - 1].name, back.nodes[i].name);
  for (const Node& n : original) {
    auto it = std::find_if(back.nodes.begin(), back.nodes.end(), [&](const Node& b) { return b.name == n.name; });
    ASSERT_NE(it, back.nodes.end()) << n.name;
    EXPECT_EQ(*it, n) << n.name;
  }
  EXPECT_EQ(back.nodes, t.nodes);  // Encode sorted t in place
  EXPECT_EQ(back.Encode(), enc);   // canonical
}

TEST(TreeCodec, MatchesDocumentedLayout) {
  Tree t;
  Node f;
  f.name = "f";
  f.mode = 0640;
  f.uid = 1000;
  f.gid = 100;
  f.user = "u";
  f.group = "g";
  f.mtime_ns = -5;
  f.atime_ns = 6;
  f.ctime_ns = 7;
  f.inode = 8;
  f.device = 9;
  f.nlink = 1;
  f.size = 300;
  f.content = {IdOf("c")};
  f.xattrs = {{"user.k", "v"}};
  f.sparse = true;
  t.nodes.push_back(f);
  Node d;
  d.name = "d";
  d.type = NodeType::kDir;
  d.subtree = IdOf("s");
  t.nodes.push_back(d);

  RawNode rf;
  rf.name = "f";
  rf.type = 1;
  rf.mode = 0640;
  rf.uid = 1000;
  rf.gid = 100;
  rf.user = "u";
  rf.group = "g";
  rf.mtime = -5;
  rf.atime = 6;
  rf.ctime = 7;
  rf.inode = 8;
  rf.device = 9;
  rf.nlink = 1;
  rf.size = 300;
  rf.content = {IdOf("c")};
  rf.xattrs = {{"user.k", "v"}};
  rf.flags = 1;
  RawNode rd = Dir("d");
  rd.mode = 0;
  rd.nlink = 0;
  rd.subtree = IdOf("s");
  EXPECT_EQ(t.Encode(), RawTree({rd, rf}));  // sorted: "d" < "f"
}

TEST(TreeCodec, EmptyTree) {
  Tree t;
  Bytes enc = t.Encode();
  EXPECT_EQ(enc, (Bytes{1, 0}));
  EXPECT_TRUE(Tree::Decode(enc, "t").nodes.empty());
}

TEST(TreeCodec, EncodeRefusesDuplicateNames) {
  Tree t;
  t.nodes.resize(2);
  t.nodes[0].name = "same";
  t.nodes[1].name = "same";
  EXPECT_EQ(CodeOf([&] { t.Encode(); }), ErrorCode::kInternal);
}

TEST(TreeCodec, DecodeRejectsUnsafeNames) {
  RawNode ok;
  ok.name = "fine";
  EXPECT_EQ(Tree::Decode(RawTree({ok}), "t").nodes.at(0).name, "fine");
  for (std::string bad : {std::string(""), std::string("."), std::string(".."), std::string("a/b"), std::string("/"),
                          std::string("/etc"), std::string("../x"), std::string("a\0b", 3), std::string("\0", 1),
                          std::string(4097, 'n')}) {
    RawNode n;
    n.name = bad;
    try {
      Tree::Decode(RawTree({n}), "tree 1234");
      ADD_FAILURE() << "accepted name '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kCorrupt);
      EXPECT_NE(std::string(e.what()).find("tree 1234"), std::string::npos) << e.what();
    }
  }
  // Names that merely look odd are fine.
  for (std::string fine : {std::string("..."), std::string(".hidden"), std::string("a.."), std::string("\n"),
                           std::string("\xff\xfe"), std::string(4096, 'n')}) {
    RawNode n;
    n.name = fine;
    EXPECT_EQ(Tree::Decode(RawTree({n}), "t").nodes.at(0).name, fine);
  }
}

TEST(TreeCodec, DecodeRejectsUnsortedOrDuplicateNames) {
  RawNode a, b;
  a.name = "a";
  b.name = "b";
  EXPECT_EQ(Tree::Decode(RawTree({a, b}), "t").nodes.size(), 2u);
  EXPECT_EQ(CodeOf([&] { Tree::Decode(RawTree({b, a}), "t"); }), ErrorCode::kCorrupt);
  EXPECT_EQ(CodeOf([&] { Tree::Decode(RawTree({a, a}), "t"); }), ErrorCode::kCorrupt);
  EXPECT_EQ(CodeOf([&] { Tree::Decode(RawTree({a, b, a}), "t"); }), ErrorCode::kCorrupt);
  // Bytewise (unsigned) order: "\xff" sorts after "z".
  RawNode z, ff;
  z.name = "z";
  ff.name = "\xff";
  EXPECT_EQ(Tree::Decode(RawTree({z, ff}), "t").nodes.size(), 2u);
  EXPECT_EQ(CodeOf([&] { Tree::Decode(RawTree({ff, z}), "t"); }), ErrorCode::kCorrupt);
}

TEST(TreeCodec, DecodeRejectsBadFields) {
  auto rejects = [](const RawNode& n) {
    try {
      Tree::Decode(RawTree({n}), "t");
      return false;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kCorrupt) << e.what();
      return true;
    }
  };
  RawNode n;
  for (uint8_t type : {0, 8, 255}) {
    n = RawNode();
    n.type = type;
    EXPECT_TRUE(rejects(n)) << int(type);
  }
  n = RawNode();
  n.mode = 010000;
  EXPECT_TRUE(rejects(n));
  n = RawNode();
  n.uid = 1ull << 32;
  EXPECT_TRUE(rejects(n));
  n = RawNode();
  n.gid = 1ull << 32;
  EXPECT_TRUE(rejects(n));
  n = RawNode();
  n.flags = 2;
  EXPECT_TRUE(rejects(n));
  n = RawNode();
  n.has_subtree = 2;
  EXPECT_TRUE(rejects(n));
  n = RawNode();  // a file with a subtree
  n.has_subtree = 1;
  EXPECT_TRUE(rejects(n));
  n = Dir("d");  // a directory without one
  n.has_subtree = 0;
  EXPECT_TRUE(rejects(n));
  n = Dir("d");  // a directory with content
  n.content = {IdOf("c")};
  EXPECT_TRUE(rejects(n));
  n = RawNode();  // a symlink with content
  n.type = 3;
  n.content = {IdOf("c")};
  EXPECT_TRUE(rejects(n));
  n = Dir("d");  // an all-zero id means "no subtree" to Encode: it could not round-trip
  n.subtree = Id{};
  EXPECT_TRUE(rejects(n));
  n = RawNode();
  n.user = std::string(257, 'u');
  EXPECT_TRUE(rejects(n));
  n = RawNode();
  n.xattrs = {{std::string(256, 'k'), "v"}};
  EXPECT_TRUE(rejects(n));
  // Valid counterparts are accepted (so the rejections above are specific).
  EXPECT_FALSE(rejects(Dir("d")));
  n = RawNode();
  n.mode = 07777;
  n.uid = n.gid = std::numeric_limits<uint32_t>::max();
  n.user = std::string(256, 'u');
  n.xattrs = {{std::string(255, 'k'), "v"}};
  n.type = 7;
  EXPECT_FALSE(rejects(n));

  // Unknown version, trailing bytes, absurd counts.
  RawNode ok;
  EXPECT_EQ(CodeOf([&] { Tree::Decode(RawTree({ok}, 2), "t"); }), ErrorCode::kCorrupt);
  EXPECT_EQ(CodeOf([&] { Tree::Decode(RawTree({ok}, 0), "t"); }), ErrorCode::kCorrupt);
  Bytes trailing = RawTree({ok});
  trailing.push_back(0);
  EXPECT_EQ(CodeOf([&] { Tree::Decode(trailing, "t"); }), ErrorCode::kCorrupt);
  Bytes huge{1};
  Writer(&huge).Varint(uint64_t(1) << 60);
  EXPECT_EQ(CodeOf([&] { Tree::Decode(huge, "t"); }), ErrorCode::kCorrupt);
  Bytes fewer = RawTree({ok});
  fewer[1] = 2;  // claims two nodes, holds one
  EXPECT_EQ(CodeOf([&] { Tree::Decode(fewer, "t"); }), ErrorCode::kCorrupt);
  EXPECT_EQ(CodeOf([&] { Tree::Decode({}, "t"); }), ErrorCode::kCorrupt);
}

TEST(TreeCodec, DecodeRejectsEveryTruncation) {
  Tree t = FullTree();
  Bytes enc = t.Encode();
  for (size_t len = 0; len < enc.size(); ++len)
    EXPECT_EQ(CodeOf([&] { Tree::Decode(ByteSpan(enc).first(len), "t"); }), ErrorCode::kCorrupt) << len;
}

TEST(TreeNames, IsSafeName) {
  EXPECT_TRUE(IsSafeName("a"));
  EXPECT_TRUE(IsSafeName("..."));
  EXPECT_TRUE(IsSafeName("a b\n\xff"));
  EXPECT_FALSE(IsSafeName(""));
  EXPECT_FALSE(IsSafeName("."));
  EXPECT_FALSE(IsSafeName(".."));
  EXPECT_FALSE(IsSafeName("a/b"));
  EXPECT_FALSE(IsSafeName("a/"));
  EXPECT_FALSE(IsSafeName(std::string_view("a\0", 2)));
}

}  // namespace
}  // namespace bulwark::repo
