// Tests for src/bulwark/ops/copy.h on in-memory repositories: id mapping
// between repositories with different blob-id keys, verbatim copies with a
// shared key, and snapshot origins (idempotence across copy chains).
#include "bulwark/ops/copy.h"

#include <gtest/gtest.h>

#include "test_util.h"

#include "bulwark/repo/blob_saver.h"
#include "bulwark/storage/backend.h"

namespace bulwark::ops {
namespace {

using repo::Repository;

std::unique_ptr<Repository> MakeRepo(const Repository* share_ids_with = nullptr) {
  std::shared_ptr<storage::Backend> store = storage::NewMemoryBackend();
  repo::InitOptions o;
  o.kdf = crypto::KdfParams{1, 8 << 20, {}};
  if (share_ids_with) {
    o.copy_chunker_from = share_ids_with->config();
    o.id_key = share_ids_with->master_key().id;
  }
  Repository::Init(*store, "pw", o);
  auto r = Repository::Open(std::make_unique<storage::ForwardingBackend>(store), "pw");
  r->LoadIndex();
  return r;
}

Bytes Data(std::string_view s) { return Bytes(s.begin(), s.end()); }

// Stores /dir/{a,b} (b holds two chunks, one shared with a) and a snapshot.
repo::Snapshot Backup(Repository& r, const std::string& host, int64_t time_ns) {
  repo::BlobSaver saver(&r, 3);
  std::vector<Bytes> chunks = {Data("chunk one"), Data("chunk two")};
  std::vector<Id> ids;
  for (auto& c : chunks) {
    ids.push_back(r.ids().Mac(c));
    saver.Save(repo::BlobType::kData, c, ids.back());
  }
  repo::Tree dir;
  dir.nodes.push_back({.name = "a", .size = 9, .content = {ids[0]}});
  dir.nodes.push_back({.name = "b", .size = 18, .content = {ids[1], ids[0]}});
  repo::Tree root;
  root.nodes.push_back({.name = "dir", .type = repo::NodeType::kDir, .subtree = saver.SaveTree(dir)});
  Id root_id = saver.SaveTree(root);
  saver.Flush();
  repo::Snapshot s;
  s.host = host;
  s.time_ns = time_ns;
  s.tree = root_id;
  r.SaveSnapshot(s);
  return s;
}

// The plaintext of /dir/b in snapshot `s` of `r`, read through r's ids.
Bytes ReadB(Repository& r, const repo::Snapshot& s) {
  repo::Tree root = r.LoadTree(s.tree);
  repo::Tree dir = r.LoadTree(root.nodes.at(0).subtree);
  Bytes out;
  for (const auto& id : dir.nodes.at(1).content) {
    Bytes b = r.LoadBlob(id);
    out.insert(out.end(), b.begin(), b.end());
  }
  return out;
}

TEST(CopyOp, DifferentKeysMapIdsAndRewriteTrees) {
  auto a = MakeRepo(), b = MakeRepo();
  repo::Snapshot s = Backup(*a, "h", 100);
  CopyResult r = Copy(*a, *b, {});
  EXPECT_FALSE(r.shared_id_key);
  EXPECT_EQ(r.snapshots_copied, 1u);
  EXPECT_EQ(r.blobs_read, 2u) << "each distinct data blob is read once";
  EXPECT_EQ(r.blobs_copied, 4u) << "two data blobs and two trees";
  auto copies = b->LoadSnapshots();
  ASSERT_EQ(copies.size(), 1u);
  EXPECT_NE(copies[0].tree, s.tree);
  ASSERT_TRUE(copies[0].copied_from.has_value());
  EXPECT_EQ(copies[0].copied_from->repository, a->config().id);
  EXPECT_EQ(copies[0].copied_from->snapshot, s.id);
  EXPECT_EQ(ReadB(*b, copies[0]), Data("chunk twochunk one"));
  EXPECT_EQ(CodeOf([&] { Copy(*a, *a, {}); }), ErrorCode::kInvalidArgument);
}

TEST(CopyOp, SharedKeyCopiesVerbatimAndSkipsPresentBlobsWithoutReading) {
  auto a = MakeRepo();
  auto b = MakeRepo(a.get());
  repo::Snapshot s1 = Backup(*a, "h", 100);
  CopyOptions dry;
  dry.dry_run = true;
  CopyResult d = Copy(*a, *b, dry);
  EXPECT_TRUE(d.exact);
  EXPECT_EQ(d.blobs_copied, 4u);
  EXPECT_TRUE(b->LoadSnapshots().empty());
  CopyResult r = Copy(*a, *b, {});
  EXPECT_TRUE(r.shared_id_key);
  EXPECT_EQ(b->LoadSnapshots().at(0).tree, s1.tree);
  // Same content again in a new snapshot: nothing to read, nothing to store.
  Backup(*a, "h", 200);
  CopyResult r2 = Copy(*a, *b, {});
  EXPECT_EQ(r2.snapshots_copied, 1u);
  EXPECT_EQ(r2.snapshots_skipped, 1u);
  EXPECT_EQ(r2.blobs_read, 0u);
  EXPECT_EQ(r2.blobs_copied, 0u);
}

TEST(CopyOp, OriginsMakeCopyChainsIdempotent) {
  auto a = MakeRepo(), b = MakeRepo(), c = MakeRepo();
  Backup(*a, "h", 100);
  Backup(*a, "other", 200);
  CopyOptions only_h;
  only_h.filter.host = "h";
  EXPECT_EQ(Copy(*a, *b, only_h).snapshots_copied, 1u);
  EXPECT_EQ(Copy(*b, *c, {}).snapshots_copied, 1u);
  auto in_c = c->LoadSnapshots();
  ASSERT_EQ(in_c.size(), 1u);
  EXPECT_EQ(in_c[0].copied_from->repository, a->config().id) << "a copy of a copy names the original";
  CopyResult direct = Copy(*a, *c, {});
  EXPECT_EQ(direct.snapshots_copied, 1u) << "only the snapshot C does not have";
  EXPECT_EQ(direct.snapshots_skipped, 1u);
  EXPECT_EQ(direct.snapshots[0].existing, in_c[0].id);
  EXPECT_EQ(Copy(*c, *a, {}).snapshots_copied, 0u) << "copying back duplicates nothing";
  CopyOptions unknown;
  unknown.snapshots = {"abcdef"};
  EXPECT_EQ(CodeOf([&] { Copy(*a, *b, unknown); }), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace bulwark::ops
