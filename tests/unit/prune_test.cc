// Tests for src/bulwark/ops/prune.h on a local repository in a temporary
// directory (storage timestamps are file mtimes, which the tests move back
// to age objects): what is kept, repacked, marked and deleted, the grace
// period by the storage's clock, putting marked packs back when a snapshot
// needs them, index consolidation and recovery from a stopped prune.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "bulwark/base/error.h"
#include "bulwark/ops/backup.h"
#include "bulwark/ops/check.h"
#include "bulwark/ops/prune.h"
#include "bulwark/ops/restore.h"
#include "bulwark/repo/lock.h"
#include "bulwark/repo/repository.h"
#include "bulwark/storage/backend.h"
#include "test_util.h"

namespace bulwark::ops {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kHour = int64_t(3600) * 1000000000;

void WriteFile(const std::string& path, ByteSpan data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// Moves a file's mtime `ns` into the past.
void Age(const std::string& path, int64_t ns) {
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0) << path;
  int64_t t = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec - ns;
  struct timespec ts[2] = {{t / 1000000000, t % 1000000000}, {t / 1000000000, t % 1000000000}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), ts, 0), 0) << path;
}

class PruneTest : public ::testing::Test {
 protected:
  PruneTest() {
    repo_dir_ = tmp_.path() + "/repo";
    repo::InitOptions o;
    o.kdf = crypto::KdfParams{1, 8 << 20, {}};
    // Small chunks: many blobs per file, so snapshots share and differ finely.
    o.chunker = chunk::Params{16 << 10, 64 << 10, 256 << 10};
    auto be = storage::Open(repo_dir_);
    repo::Repository::Init(*be, "pw", o);
  }

  std::unique_ptr<repo::Repository> Open() { return repo::Repository::Open(storage::Open(repo_dir_), "pw"); }

  // Writes generation `g` of the source: files shared by neighbours plus
  // files unique to it; backs it up; returns the snapshot.
  repo::Snapshot Backup(int g) {
    std::string dir = tmp_.path() + "/src" + std::to_string(g);
    fs::create_directories(dir + "/sub");
    WriteFile(dir + "/shared.bin", RandomData(1 << 20, 1000));
    WriteFile(dir + "/sub/mine.bin", RandomData(600 << 10, g));
    WriteFile(dir + "/sub/pair.bin", RandomData(300 << 10, 100 + g / 2));
    auto r = Open();
    r->LoadIndex();
    BackupOptions bo;
    bo.paths = {dir};
    return BackupPaths(*r, bo).snapshot;
  }

  // Prunes; deletes of objects under `refuse_deletes` are refused
  // (kPermission, as S3 refuses a DeleteObject the key may not do).
  PruneStats Prune(PruneOptions po = {}, const std::vector<std::string>& refuse_deletes = {}) {
    auto be = std::make_shared<RestrictedBackend>(storage::Open(repo_dir_), std::vector<std::string>{},
                                                  refuse_deletes);
    auto r = repo::Repository::Open(std::make_unique<storage::ForwardingBackend>(be), "pw");
    auto lock = repo::Lock::Acquire(r.get(), true);
    po.storage_now_ns = lock->Touch();
    return ops::Prune(*r, po);
  }

  void ExpectHealthy() {
    auto r = Open();
    CheckOptions co;
    co.read_data = true;
    auto res = Check(*r, co);
    EXPECT_TRUE(res.ok()) << (res.errors.empty() ? "" : res.errors[0]);
  }

  // Restores snapshot `s` of generation `g` and compares it with the source.
  void ExpectRestores(const repo::Snapshot& s, int g) {
    auto r = Open();
    r->LoadIndex();
    RestoreOptions ro;
    ro.target = tmp_.path() + "/restore-" + std::to_string(++restores_);
    auto res = Restore(*r, s, ro);
    ASSERT_TRUE(res.errors.empty()) << res.errors[0];
    std::string src = tmp_.path() + "/src" + std::to_string(g);
    std::string out = ro.target + src;
    for (const char* f : {"/shared.bin", "/sub/mine.bin", "/sub/pair.bin"})
      EXPECT_EQ(ReadAll(out + f), ReadAll(src + f)) << f;
  }

  void Forget(const repo::Snapshot& s) { fs::remove(repo_dir_ + "/snapshots/" + s.id.Hex()); }

  std::vector<std::string> Files(const std::string& sub) {
    std::vector<std::string> out;
    if (!fs::exists(repo_dir_ + "/" + sub)) return out;
    for (auto& e : fs::recursive_directory_iterator(repo_dir_ + "/" + sub))
      if (e.is_regular_file()) out.push_back(e.path().string());
    std::sort(out.begin(), out.end());
    return out;
  }

  uint64_t SizeOf(const std::string& sub) {
    uint64_t n = 0;
    for (auto& f : Files(sub)) n += fs::file_size(f);
    return n;
  }

  TempDir tmp_;
  std::string repo_dir_;
  int restores_ = 0;
};

TEST_F(PruneTest, NothingToDoKeepsEverything) {
  auto s1 = Backup(1);
  auto before = Files("data");
  auto st = Prune();
  EXPECT_EQ(st.snapshots, 1u);
  EXPECT_EQ(st.blobs_used, st.blobs);
  EXPECT_EQ(st.packs_repack + st.packs_unused + st.packs_deleted, 0u);
  EXPECT_EQ(Files("data"), before);
  ExpectRestores(s1, 1);
}

TEST_F(PruneTest, DryRunChangesNothingAndAgreesWithTheRun) {
  auto s1 = Backup(1);
  auto s2 = Backup(2);
  auto s3 = Backup(3);
  Forget(s1);
  Forget(s2);
  std::vector<std::string> before;
  for (auto& e : fs::recursive_directory_iterator(repo_dir_))
    if (e.is_regular_file() && e.path().parent_path().filename() != "locks") before.push_back(e.path().string());
  PruneOptions dry;
  dry.dry_run = true;
  dry.grace_ns = 0;
  auto plan = Prune(dry);
  std::vector<std::string> after;
  for (auto& e : fs::recursive_directory_iterator(repo_dir_))
    if (e.is_regular_file() && e.path().parent_path().filename() != "locks") after.push_back(e.path().string());
  EXPECT_EQ(before, after);
  EXPECT_LT(plan.blobs_used, plan.blobs);
  PruneOptions real;
  real.grace_ns = 0;
  auto done = Prune(real);
  EXPECT_EQ(done.blobs_used, plan.blobs_used);
  EXPECT_EQ(done.packs_repack, plan.packs_repack);
  EXPECT_EQ(done.packs_unused, plan.packs_unused);
  ExpectRestores(s3, 3);
  ExpectHealthy();
}

TEST_F(PruneTest, ForgottenDataIsFreedOnlyAfterTheGracePeriodByStorageTime) {
  auto s1 = Backup(1);
  auto s2 = Backup(2);
  Forget(s1);
  uint64_t full = SizeOf("data");
  PruneOptions po;
  po.max_unused = 0;  // repack everything partly used
  po.grace_ns = kHour;
  auto first = Prune(po);
  EXPECT_GT(first.packs_repack + first.packs_unused, 0u);
  EXPECT_EQ(first.packs_deleted, 0u) << "nothing is deleted in the run that marks";
  EXPECT_EQ(Files("marked").size(), 1u);
  EXPECT_GE(SizeOf("data"), full) << "marked packs are still there";
  ExpectHealthy();
  ExpectRestores(s2, 2);

  // Half an hour later by the storage's clock: still waiting.
  for (auto& f : Files("marked")) Age(f, kHour / 2);
  auto second = Prune(po);
  EXPECT_EQ(second.packs_deleted, 0u);
  EXPECT_EQ(second.packs_waiting, first.packs_repack + first.packs_unused);

  // Past the grace period: deleted, and the marks object with them.
  for (auto& f : Files("marked")) Age(f, kHour);
  auto third = Prune(po);
  EXPECT_EQ(third.packs_deleted, first.packs_repack + first.packs_unused);
  EXPECT_TRUE(Files("marked").empty());
  EXPECT_LT(SizeOf("data"), full);
  ExpectHealthy();
  ExpectRestores(s2, 2);
}

TEST_F(PruneTest, MaxUnusedDecidesWhatIsRepacked) {
  Backup(1);
  auto s2 = Backup(2);
  auto s3 = Backup(3);
  repo::Snapshot s1;
  {
    auto r = Open();
    auto all = r->LoadSnapshots();
    ASSERT_EQ(all.size(), 3u);
    s1 = all[0];
  }
  Forget(s1);
  PruneOptions tolerant;
  tolerant.max_unused = 1.0;  // 'unlimited'
  tolerant.dry_run = true;
  EXPECT_EQ(Prune(tolerant).packs_repack, 0u);
  PruneOptions strict;
  strict.max_unused = 0;
  strict.dry_run = true;
  auto plan = Prune(strict);
  EXPECT_GT(plan.packs_repack, 0u);
  strict.dry_run = false;
  strict.grace_ns = 0;
  strict.max_repack_bytes = 1;  // smaller than any pack: nothing may be repacked
  EXPECT_EQ(Prune(strict).packs_repack, 0u);
  strict.max_repack_bytes = std::numeric_limits<uint64_t>::max();
  auto done = Prune(strict);
  EXPECT_GT(done.packs_deleted, 0u);
  auto after = Prune(strict);
  EXPECT_EQ(after.unused_bytes, 0u) << "after a strict prune every indexed byte is used";
  ExpectRestores(s2, 2);
  ExpectRestores(s3, 3);
  ExpectHealthy();
}

TEST_F(PruneTest, MarkedPackIsPutBackWhenASnapshotNeedsIt) {
  // A backup that read the index before a prune marked a pack may still
  // commit a snapshot using its blobs: the next prune must keep that data.
  auto s1 = Backup(1);
  auto s2 = Backup(2);
  std::string snap2 = repo_dir_ + "/snapshots/" + s2.id.Hex();
  std::string saved = ReadAll(snap2);
  Forget(s2);
  PruneOptions po;
  po.max_unused = 0;
  po.grace_ns = kHour;
  auto first = Prune(po);
  ASSERT_GT(first.packs_unused + first.packs_repack, 0u);
  // The "late" snapshot arrives.
  std::ofstream(snap2, std::ios::binary) << saved;
  for (auto& f : Files("marked")) Age(f, 2 * kHour);
  auto second = Prune(po);
  EXPECT_GT(second.packs_recovered, 0u);
  ExpectHealthy();
  ExpectRestores(s1, 1);
  ExpectRestores(s2, 2);
}

TEST_F(PruneTest, MissingDataStopsPruneBeforeAnythingIsDeleted) {
  auto s1 = Backup(1);
  auto s2 = Backup(2);
  Forget(s1);
  // Lose a pack that the remaining snapshot needs.
  auto packs = Files("data");
  ASSERT_FALSE(packs.empty());
  std::string victim;
  for (auto& p : packs)
    if (fs::file_size(p) > (victim.empty() ? 0 : fs::file_size(victim))) victim = p;
  fs::remove(victim);
  auto before = Files("data");
  auto index_before = Files("index");
  PruneOptions po;
  po.grace_ns = 0;
  EXPECT_EQ(CodeOf([&] { Prune(po); }), ErrorCode::kCorrupt);
  EXPECT_EQ(Files("data"), before);
  EXPECT_EQ(Files("index"), index_before);
}

TEST_F(PruneTest, IndexIsConsolidatedAndLeftoversOfAStoppedPruneAreIgnored) {
  for (int g = 1; g <= 4; ++g) Backup(g);
  auto old_index = Files("index");
  ASSERT_GE(old_index.size(), 4u);
  std::map<std::string, std::string> saved;
  for (auto& f : old_index) saved[f] = ReadAll(f);
  Prune();
  EXPECT_EQ(Files("index").size(), 1u);
  // A prune that stopped after writing the new index but before removing the
  // old objects leaves them behind: readers must ignore them.
  for (auto& [f, content] : saved) std::ofstream(f, std::ios::binary) << content;
  {
    auto r = Open();
    r->LoadIndex();
    EXPECT_EQ(r->index_ids().size(), 1u);
    EXPECT_EQ(r->superseded_index_ids().size(), old_index.size());
  }
  ExpectHealthy();
  Prune();
  EXPECT_EQ(Files("index").size(), 1u);
  ExpectHealthy();
}

TEST_F(PruneTest, UnindexedPacksAreDeletedOnlyWhenOldByStorageTime) {
  auto s1 = Backup(1);
  // A pack a running (or killed) backup uploaded but has not indexed yet.
  auto r = Open();
  r->LoadIndex();
  bulwark::Bytes junk = RandomData(4096, 7);
  std::string name = repo::Repository::ObjectName(repo::ObjectType::kPack, crypto::Sha256(junk));
  r->backend().Put(name, junk);
  PruneOptions po;
  po.grace_ns = kHour;
  auto young = Prune(po);
  EXPECT_EQ(young.packs_waiting, 1u);
  EXPECT_TRUE(fs::exists(repo_dir_ + "/" + name));
  Age(repo_dir_ + "/" + name, 2 * kHour);
  auto old = Prune(po);
  EXPECT_EQ(old.packs_deleted, 1u);
  EXPECT_FALSE(fs::exists(repo_dir_ + "/" + name));
  ExpectRestores(s1, 1);
}

TEST_F(PruneTest, BackupDoesNotReindexMarkedPacks) {
  auto s1 = Backup(1);
  auto s2 = Backup(2);
  Forget(s1);
  PruneOptions po;
  po.max_unused = 0;
  po.grace_ns = kHour;
  auto st = Prune(po);
  ASSERT_GT(st.packs_unused + st.packs_repack, 0u);
  auto r = Open();
  r->LoadIndex();
  EXPECT_EQ(r->IndexOrphanPacks(), 0u) << "marked packs are not orphans";
  ExpectRestores(s2, 2);
}

// Deletes refused part-way (credentials that may delete only some objects, or
// a permission revoked mid-run; the CLI's probe cannot rule out either):
// each step before the refused delete left a valid repository, so check
// passes and the snapshots restore, and a prune that may delete finishes.
TEST_F(PruneTest, RefusedDeletesLeaveAConsistentRepository) {
  auto s1 = Backup(1);
  auto s2 = Backup(2);
  auto s3 = Backup(3);
  Forget(s1);
  PruneOptions po;
  po.max_unused = 0;
  po.grace_ns = 0;
  // Refused in turn: superseded index objects (after repacking, marking and
  // writing the consolidated index), marked packs, the marks object.
  for (const char* refused : {"index/", "data/", "marked/"}) {
    SCOPED_TRACE(refused);
    EXPECT_EQ(CodeOf([&] { Prune(po, {refused}); }), ErrorCode::kPermission);
    ExpectHealthy();
    ExpectRestores(s2, 2);
    ExpectRestores(s3, 3);
  }
  EXPECT_FALSE(Files("marked").empty());
  auto done = Prune(po);
  EXPECT_GT(done.marks_objects_removed, 0u);
  EXPECT_TRUE(Files("marked").empty());
  EXPECT_EQ(Files("index").size(), 1u);
  ExpectHealthy();
  ExpectRestores(s2, 2);
  ExpectRestores(s3, 3);
}

TEST_F(PruneTest, BadOptionsAreRejected) {
  PruneOptions po;
  po.max_unused = 1.5;
  EXPECT_EQ(CodeOf([&] { Prune(po); }), ErrorCode::kInvalidArgument);
  po.max_unused = 0.05;
  po.grace_ns = -1;
  EXPECT_EQ(CodeOf([&] { Prune(po); }), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace bulwark::ops
