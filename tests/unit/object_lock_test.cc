// Tests for Object Lock handling (ops/object_lock.h, the Object Lock parts
// of ops/prune.h) on the in-memory backend, which models Object Lock
// strictly: a retained object can be neither overwritten nor removed. A fake
// clock lets days pass.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "bulwark/base/error.h"
#include "bulwark/ops/backup.h"
#include "bulwark/ops/check.h"
#include "bulwark/ops/object_lock.h"
#include "bulwark/ops/prune.h"
#include "bulwark/ops/reachable.h"
#include "bulwark/ops/restore.h"
#include "bulwark/repo/lock.h"
#include "bulwark/repo/repository.h"
#include "bulwark/storage/backend.h"
#include "test_util.h"

namespace bulwark::ops {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kDay = int64_t(86400) * 1000000000;
constexpr int64_t kLockDays = 10;

void WriteFile(const std::string& path, ByteSpan data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

class ObjectLockTest : public ::testing::Test {
 protected:
  ObjectLockTest() {
    now_ = repo::NowNs();
    mem_ = storage::NewMemoryBackend([this] { return now_.load(); });
    repo::InitOptions o;
    o.kdf = crypto::KdfParams{1, 8 << 20, {}};
    o.chunker = chunk::Params{16 << 10, 64 << 10, 256 << 10};
    o.object_lock_mode = "governance";
    o.object_lock_days = kLockDays;
    repo::Repository::Init(*mem_, "pw", o);
  }

  // A new "process": opening pins this process's retain-until date.
  std::unique_ptr<repo::Repository> Open() {
    return repo::Repository::Open(std::make_unique<storage::ForwardingBackend>(mem_), "pw");
  }

  repo::Snapshot Backup(int g) {
    std::string dir = tmp_.path() + "/src" + std::to_string(g);
    fs::create_directories(dir);
    WriteFile(dir + "/shared.bin", RandomData(1 << 20, 1000));
    WriteFile(dir + "/mine.bin", RandomData(600 << 10, g));
    auto r = Open();
    r->LoadIndex();
    BackupOptions bo;
    bo.paths = {dir};
    return BackupPaths(*r, bo).snapshot;
  }

  LockExtendStats Extend(int64_t margin = kDay, bool dry_run = false) {
    auto r = Open();
    auto lock = repo::Lock::Acquire(r.get(), false);
    LockExtendOptions o;
    o.now_ns = lock->Touch();
    o.margin_ns = margin;
    o.dry_run = dry_run;
    return ExtendLocks(*r, o);
  }

  PruneStats Prune(PruneOptions po = {}) {
    auto r = Open();
    auto lock = repo::Lock::Acquire(r.get(), true);
    po.storage_now_ns = lock->Touch();
    po.grace_ns = 0;
    po.lock_margin_ns = kDay;
    return ops::Prune(*r, po);
  }

  void ExpectHealthy() {
    auto r = Open();
    CheckOptions co;
    co.read_data = true;
    auto res = Check(*r, co);
    EXPECT_TRUE(res.ok()) << (res.errors.empty() ? "" : res.errors[0]);
  }

  int64_t RetainedUntil(const std::string& name) {
    auto info = mem_->Stat(name);
    EXPECT_TRUE(info) << name;
    return info ? info->retain_until_ns : 0;
  }

  std::vector<std::string> Names(const std::string& prefix) {
    std::vector<std::string> out;
    for (const auto& o : mem_->List(prefix)) out.push_back(o.name);
    return out;
  }

  // The packs snapshot `s` needs, by name.
  std::vector<std::string> PacksOf(const repo::Snapshot& s) {
    auto r = Open();
    r->LoadIndex();
    BlobMarks marks(r->index().sorted_size());
    std::unordered_set<Id, IdHash> missing;
    MarkReachable(*r, {s}, &marks, &missing);
    EXPECT_TRUE(missing.empty());
    std::vector<std::string> out;
    auto used = PacksInUse(r->index(), marks);
    for (uint32_t pk = 0; pk < used.size(); ++pk)
      if (used[pk]) out.push_back(repo::Repository::ObjectName(repo::ObjectType::kPack, r->index().PackById(pk)));
    return out;
  }

  std::string SnapshotName(const repo::Snapshot& s) {
    return repo::Repository::ObjectName(repo::ObjectType::kSnapshot, s.id);
  }

  std::atomic<int64_t> now_;
  std::shared_ptr<storage::Backend> mem_;
  TempDir tmp_;
};

TEST_F(ObjectLockTest, EveryObjectButLocksAndMarksIsWrittenRetainedAndCannotBeRemoved) {
  const int64_t t0 = now_;
  repo::Snapshot s = Backup(1);
  for (const char* prefix : {"config", "keys/", "data/", "index/", "snapshots/"}) {
    auto names = Names(prefix);
    ASSERT_FALSE(names.empty()) << prefix;
    for (const auto& n : names) {
      EXPECT_GE(RetainedUntil(n), t0 + kLockDays * kDay) << n;
      EXPECT_EQ(CodeOf([&] { mem_->Remove(n); }), ErrorCode::kPermission) << n;
    }
  }
  EXPECT_FALSE(storage::IsObjectLockExempt("data/ab/cd"));
  EXPECT_TRUE(storage::IsObjectLockExempt("locks/x"));
  EXPECT_TRUE(storage::IsObjectLockExempt("marked/x"));
  // A lock object is released (removed) even under Object Lock.
  {
    auto r = Open();
    auto lock = repo::Lock::Acquire(r.get(), true);
    EXPECT_EQ(Names("locks/").size(), 1u);
  }
  EXPECT_TRUE(Names("locks/").empty());
  ExpectHealthy();
}

TEST_F(ObjectLockTest, ExtendKeepsLivePacksRetainedAsLongAsTheNewestSnapshot) {
  const int64_t t0 = now_;
  repo::Snapshot s1 = Backup(1);
  now_ += 5 * kDay;
  repo::Snapshot s2 = Backup(2);  // shares shared.bin with s1: reuses s1's pack
  const int64_t s2_until = RetainedUntil(SnapshotName(s2));
  EXPECT_GE(s2_until, t0 + 15 * kDay);
  auto old_packs = PacksOf(s1);
  ASSERT_FALSE(old_packs.empty());
  // Before maintenance, s2 depends on a pack whose lock ends 5 days earlier.
  int64_t weakest = INT64_MAX;
  for (const auto& p : PacksOf(s2)) weakest = std::min(weakest, RetainedUntil(p));
  EXPECT_LT(weakest, s2_until);

  LockExtendStats dry = Extend(kDay, /*dry_run=*/true);
  EXPECT_GT(dry.objects_extended, 0u);
  for (const auto& p : old_packs) EXPECT_LT(RetainedUntil(p), s2_until) << "dry run changed " << p;

  LockExtendStats st = Extend();
  EXPECT_EQ(st.objects_extended, dry.objects_extended);
  EXPECT_EQ(st.required_until_ns, s2_until);
  EXPECT_EQ(st.extended_until_ns, s2_until + kDay);
  EXPECT_EQ(st.objects_expired, 0u);
  EXPECT_EQ(st.objects_missing, 0u);
  // Every object either snapshot needs now outlasts the newest snapshot.
  for (const auto& s : {s1, s2})
    for (const auto& p : PacksOf(s)) EXPECT_GE(RetainedUntil(p), s2_until) << p;
  for (const auto& n : Names("index/")) EXPECT_GE(RetainedUntil(n), s2_until) << n;
  for (const auto& n : Names("keys/")) EXPECT_GE(RetainedUntil(n), s2_until) << n;
  EXPECT_GE(RetainedUntil("config"), s2_until);
  // Snapshot objects keep their own lock: s1 can be forgotten when it ends.
  EXPECT_LT(RetainedUntil(SnapshotName(s1)), s2_until);

  // Within the margin nothing needs extending again.
  EXPECT_EQ(Extend().objects_extended, 0u);
  ExpectHealthy();
}

TEST_F(ObjectLockTest, ExpiredLiveObjectsAreReportedAndRelocked) {
  Backup(1);
  now_ += (kLockDays + 2) * kDay;  // maintenance never ran: everything expired
  repo::Snapshot s2 = Backup(2);
  LockExtendStats st = Extend();
  EXPECT_GT(st.objects_expired, 0u);
  ASSERT_FALSE(st.expired_examples.empty());
  for (const auto& p : PacksOf(s2)) EXPECT_GE(RetainedUntil(p), RetainedUntil(SnapshotName(s2))) << p;
}

TEST_F(ObjectLockTest, ExtendRefusesARepositoryWithoutObjectLock) {
  auto plain = storage::NewMemoryBackend();
  repo::InitOptions o;
  o.kdf = crypto::KdfParams{1, 8 << 20, {}};
  repo::Repository::Init(*plain, "pw", o);
  auto r = repo::Repository::Open(std::move(plain), "pw");
  LockExtendOptions lo;
  lo.now_ns = repo::NowNs();
  EXPECT_EQ(CodeOf([&] { ExtendLocks(*r, lo); }), ErrorCode::kInvalidArgument);
}

TEST_F(ObjectLockTest, PruneNeverDeletesRetainedObjectsAndFinishesOnceTheyAreFree) {
  repo::Snapshot s1 = Backup(1);  // pack A: shared.bin and s1's mine.bin
  now_ += 5 * kDay;
  repo::Snapshot s3 = Backup(3);  // reuses shared.bin from A
  std::vector<std::string> pack_a;
  for (const auto& p : PacksOf(s1)) {
    auto of3 = PacksOf(s3);
    if (std::find(of3.begin(), of3.end(), p) != of3.end()) pack_a.push_back(p);
  }
  ASSERT_EQ(pack_a.size(), 1u);
  Extend();   // A is live: extended past the newest snapshot's lock (day 15)
  const int64_t a_until = RetainedUntil(pack_a[0]);

  now_ += 6 * kDay;  // day 11: s1's own lock is over, A's is not
  EXPECT_LT(RetainedUntil(SnapshotName(s1)), now_.load());
  mem_->Remove(SnapshotName(s1));

  // A is now partly unused (s1's mine.bin): repacked, then due for deletion,
  // but still retained: reported and kept. The index objects the new one
  // supersedes are retained too (extended while in effect): kept, superseded.
  PruneOptions po;
  po.max_unused = 0;
  PruneStats p1 = Prune(po);
  EXPECT_EQ(p1.packs_repack, 1u);
  EXPECT_GE(p1.packs_locked, 1u);  // A, and s1's tree pack
  EXPECT_EQ(p1.packs_deleted, 0u);
  EXPECT_GT(p1.index_objects_locked, 0u);
  EXPECT_EQ(p1.index_objects_removed, 0u);
  EXPECT_TRUE(mem_->Stat(pack_a[0]));
  ASSERT_TRUE(p1.locks_extended);
  EXPECT_EQ(p1.locks.objects_missing, 0u);
  EXPECT_FALSE(Names("marked/").empty());  // A's marks stay for a later run
  ExpectHealthy();

  // Nothing to do while the locks hold: no new index objects pile up.
  PruneStats p2 = Prune(po);
  EXPECT_EQ(p2.packs_locked, p1.packs_locked);
  EXPECT_EQ(p2.index_objects_written, 0u);

  // A's lock is over, and so is that of the index objects repacking wrote
  // (superseded at once by the consolidated index).
  now_ += (kLockDays + 1) * kDay;
  EXPECT_GT(now_.load(), a_until);
  PruneStats p3 = Prune(po);
  EXPECT_EQ(p3.packs_locked, 0u);
  EXPECT_EQ(p3.packs_deleted, p1.packs_locked);
  EXPECT_EQ(p3.index_objects_locked, 0u);
  EXPECT_GT(p3.index_objects_removed, 0u);
  EXPECT_FALSE(mem_->Stat(pack_a[0]));
  EXPECT_TRUE(Names("marked/").empty());
  ExpectHealthy();
}

}  // namespace
}  // namespace bulwark::ops
