// Tests for src/bulwark/repo/audit.h on the in-memory backend: append, list,
// the chain rule under concurrency and stale listings, and every kind of
// tampering Verify must name (removed, reordered, altered, moved records),
// plus argument redaction.
#include "bulwark/repo/audit.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bulwark/base/error.h"
#include "bulwark/repo/format.h"
#include "bulwark/repo/repository.h"
#include "bulwark/storage/backend.h"
#include "test_util.h"

namespace bulwark::repo {
namespace {

// A handle whose List returns what the store held when Freeze was called:
// an appender that listed, then stalled while others appended.
class StaleListBackend : public storage::ForwardingBackend {
 public:
  using ForwardingBackend::ForwardingBackend;
  void Freeze(const std::string& prefix) { frozen_ = inner().List(prefix); }
  std::vector<storage::ObjectInfo> List(const std::string& prefix) override {
    std::vector<storage::ObjectInfo> out;
    for (const auto& o : frozen_)
      if (o.name.rfind(prefix, 0) == 0) out.push_back(o);
    return out;
  }

 private:
  std::vector<storage::ObjectInfo> frozen_;
};

class AuditTest : public ::testing::Test {
 protected:
  AuditTest() : store_(storage::NewMemoryBackend()) {
    InitOptions o;
    o.kdf = crypto::KdfParams{1, 8 << 20, {}};
    Repository::Init(*store_, "pw", o);
    repo_ = Repository::Open(std::make_unique<storage::ForwardingBackend>(store_), "pw");
  }

  AuditLog Log() { return AuditLog(repo_->backend(), repo_->aead()); }

  AuditRecord Record(const std::string& command, int i = 0) {
    AuditRecord r;
    r.host = "host-" + std::to_string(i);
    r.username = "alice";
    r.uid = 1000;
    r.command = command;
    r.args = {command, "--n", std::to_string(i)};
    r.start_ns = 1700000000000000000 + i;
    r.duration_ns = 5;
    r.program_version = "test";
    return r;
  }

  std::vector<AuditRef> AppendN(int n) {
    std::vector<AuditRef> refs;
    for (int i = 0; i < n; ++i) refs.push_back(Log().Append(Record("backup", i)));
    return refs;
  }

  void Rename(const std::string& from, const std::string& to) {
    Bytes b = store_->Get(from);
    store_->Remove(from);
    store_->Put(to, b);
  }

  // The first problem, or fails.
  AuditProblem First(const AuditVerifyReport& rep) {
    EXPECT_FALSE(rep.ok());
    return rep.problems.empty() ? AuditProblem{} : rep.problems.front();
  }

  std::shared_ptr<storage::Backend> store_;
  std::unique_ptr<Repository> repo_;
};

TEST_F(AuditTest, AppendWritesSequentialNamedRecordsThatListAndVerify) {
  AuditRecord r = Record("forget", 7);
  r.result = "error";
  r.exit_code = 1;
  r.error_code = "locked";
  r.error = "the repository is locked";
  r.snapshots_added = {crypto::Sha256(AsBytes("a"))};
  r.snapshots_removed = {crypto::Sha256(AsBytes("b")), crypto::Sha256(AsBytes("c"))};
  AuditRef first = Log().Append(r);
  EXPECT_EQ(first.seq, 1u);
  std::vector<AuditRef> more = AppendN(5);
  EXPECT_EQ(more.back().seq, 6u);

  // Names: audit/<20-digit seq>-<sha256 of the stored object>.
  auto objects = store_->List("audit/");
  ASSERT_EQ(objects.size(), 6u);
  EXPECT_EQ(objects[0].name, first.Name());
  EXPECT_EQ(first.Name().substr(0, 27), "audit/00000000000000000001-");
  EXPECT_EQ(crypto::Sha256(store_->Get(first.Name())), first.id);
  CheckEnvelope(store_->Get(first.Name()), ObjectType::kAudit, "record");

  auto entries = Log().List();
  ASSERT_EQ(entries.size(), 6u);
  const AuditRecord& got = entries[0].record;
  EXPECT_EQ(got.command, "forget");
  EXPECT_EQ(got.result, "error");
  EXPECT_EQ(got.exit_code, 1);
  EXPECT_EQ(got.error_code, "locked");
  EXPECT_EQ(got.snapshots_added, r.snapshots_added);
  EXPECT_EQ(got.snapshots_removed, r.snapshots_removed);
  EXPECT_EQ(got.start_ns, r.start_ns);
  EXPECT_EQ(got.host, "host-7");
  EXPECT_TRUE(got.parents.empty());
  // Record 6 names records 2..5 (the window), record 2 names record 1.
  EXPECT_EQ(entries[5].record.parents.size(), kAuditWindow);
  EXPECT_EQ(entries[5].record.parents.front().seq, 2u);
  ASSERT_EQ(entries[1].record.parents.size(), 1u);
  EXPECT_EQ(entries[1].record.parents[0], first);

  AuditVerifyReport rep = Log().Verify();
  EXPECT_TRUE(rep.ok()) << rep.problems.front().message;
  EXPECT_EQ(rep.records, 6u);
  EXPECT_EQ(rep.max_seq, 6u);
  EXPECT_EQ(rep.forks, 0u);
  EXPECT_EQ(rep.heads, std::vector<std::string>{more.back().Name()});
  EXPECT_TRUE(rep.unanchored.empty());
}

// Counts the LISTs an append makes.
class CountingListBackend : public storage::ForwardingBackend {
 public:
  using ForwardingBackend::ForwardingBackend;
  std::vector<storage::ObjectInfo> List(const std::string& prefix) override {
    lists++;
    return inner().List(prefix);
  }
  int lists = 0;
};

// Past 1000 records an append lists blocks of 1000 sequence numbers, not the
// log: the sequence continues across block boundaries, the window reaches
// into the previous block, and the chain verifies.
TEST_F(AuditTest, AppendsAcrossListingBlocksListOnlyAFewBlocks) {
  std::vector<AuditRef> refs = AppendN(2001);
  EXPECT_EQ(refs.back().seq, 2001u);
  for (size_t i = 0; i < refs.size(); ++i) ASSERT_EQ(refs[i].seq, i + 1);
  auto entries = Log().List();
  ASSERT_EQ(entries.size(), 2001u);
  // Record 2001 names 1997..2000, across the block boundary at 2000.
  const auto& parents = entries.back().record.parents;
  ASSERT_EQ(parents.size(), kAuditWindow);
  EXPECT_EQ(parents.front().seq, 1997u);
  EXPECT_EQ(parents.back().seq, 2000u);
  EXPECT_TRUE(Log().Verify().ok());

  CountingListBackend counting(store_);
  AuditRef next = AuditLog(counting, repo_->aead()).Append(Record("check"));
  EXPECT_EQ(next.seq, 2002u);
  // Blocks 0, 1, 2, 4 (empty), 3 (empty), then 1 again for the window
  // (1998..2001): six LISTs of at most 1000 names.
  EXPECT_EQ(counting.lists, 6);
}

TEST_F(AuditTest, RecordsAreSealed) {
  AuditRecord r = Record("backup");
  r.args = {"backup", "needle-in-plaintext"};
  AuditRef ref = Log().Append(r);
  Bytes object = store_->Get(ref.Name());
  std::string stored(AsString(object));
  EXPECT_EQ(stored.find("needle-in-plaintext"), std::string::npos);
  // Another repository's key does not open it.
  auto other = storage::NewMemoryBackend();
  InitOptions o;
  o.kdf = crypto::KdfParams{1, 8 << 20, {}};
  Repository::Init(*other, "pw", o);
  auto other_repo = Repository::Open(std::make_unique<storage::ForwardingBackend>(std::move(other)), "pw");
  other_repo->backend().Put(ref.Name(), store_->Get(ref.Name()));
  AuditVerifyReport rep = AuditLog(other_repo->backend(), other_repo->aead()).Verify();
  EXPECT_EQ(First(rep).kind, "altered");
}

TEST_F(AuditTest, VerifyNamesARemovedRecordInTheMiddle) {
  auto refs = AppendN(8);
  store_->Remove(refs[3].Name());  // seq 4
  AuditVerifyReport rep = Log().Verify();
  AuditProblem p = First(rep);
  EXPECT_EQ(p.seq, 4u);
  EXPECT_EQ(p.kind, "removed");
  EXPECT_NE(p.message.find("sequence number 4"), std::string::npos) << p.message;
  // The successors say which record is missing, by name.
  bool named = std::any_of(rep.problems.begin(), rep.problems.end(),
                           [&](const AuditProblem& q) { return q.name == refs[3].Name() && q.kind == "removed"; });
  EXPECT_TRUE(named);
}

TEST_F(AuditTest, VerifyNamesTheOldestRecordsRemoved) {
  auto refs = AppendN(4);
  store_->Remove(refs[0].Name());
  store_->Remove(refs[1].Name());
  AuditProblem p = First(Log().Verify());
  EXPECT_EQ(p.seq, 1u);
  EXPECT_EQ(p.kind, "removed");
  EXPECT_NE(p.message.find("1..2"), std::string::npos) << p.message;
}

// Documented limit: nothing names the newest record yet, so its removal
// leaves a valid shorter log; only a head kept by the operator catches it.
TEST_F(AuditTest, RemovedNewestRecordIsCaughtOnlyAgainstAKeptHead) {
  auto refs = AppendN(5);
  AuditVerifyReport before = Log().Verify();
  ASSERT_TRUE(before.ok());
  ASSERT_EQ(before.heads, std::vector<std::string>{refs[4].Name()});
  EXPECT_TRUE(Log().Verify(refs[4].Name()).ok());

  store_->Remove(refs[4].Name());
  EXPECT_TRUE(Log().Verify().ok()) << "truncation of the newest record is not detectable by the log alone";
  AuditVerifyReport rep = Log().Verify(refs[4].Name());
  AuditProblem p = First(rep);
  EXPECT_EQ(p.name, refs[4].Name());
  EXPECT_EQ(p.kind, "removed");
  // A later append continues from the truncated head (seq 5 again, another id).
  AuditRef again = Log().Append(Record("check"));
  EXPECT_EQ(again.seq, 5u);
  EXPECT_NE(again.id, refs[4].id);
  EXPECT_FALSE(Log().Verify(refs[4].Name()).ok());
  EXPECT_EQ(CodeOf([&] { Log().Verify("not-a-record"); }), ErrorCode::kInvalidArgument);
}

TEST_F(AuditTest, VerifyNamesAReorderedPair) {
  auto refs = AppendN(6);
  // Swap the objects of records 3 and 4 under each other's names.
  Bytes three = store_->Get(refs[2].Name()), four = store_->Get(refs[3].Name());
  store_->Put(refs[2].Name(), four);
  store_->Put(refs[3].Name(), three);
  AuditProblem p = First(Log().Verify());
  EXPECT_EQ(p.seq, 3u);
  EXPECT_EQ(p.name, refs[2].Name());
  EXPECT_EQ(p.kind, "moved");
}

TEST_F(AuditTest, VerifyNamesAPairRenumberedUnderItsOwnHashes) {
  auto refs = AppendN(6);
  // Renumber: record 4 becomes seq 3 and record 3 seq 4, each keeping the
  // hash in its name (the contents still say 3 and 4).
  AuditRef three_as_four{4, refs[2].id}, four_as_three{3, refs[3].id};
  Rename(refs[2].Name(), three_as_four.Name());
  Rename(refs[3].Name(), four_as_three.Name());
  AuditVerifyReport rep = Log().Verify();
  AuditProblem p = First(rep);
  EXPECT_EQ(p.seq, 3u);
  EXPECT_EQ(p.kind, "moved");
  EXPECT_NE(p.message.find("holds sequence number 4"), std::string::npos) << p.message;
}

TEST_F(AuditTest, VerifyNamesAnAlteredRecordAsAnAuthenticationFailure) {
  auto refs = AppendN(4);
  Bytes b = store_->Get(refs[1].Name());
  b[b.size() / 2] ^= 0x01;
  store_->Put(refs[1].Name(), b);
  AuditProblem p = First(Log().Verify());
  EXPECT_EQ(p.seq, 2u);
  EXPECT_EQ(p.name, refs[1].Name());
  EXPECT_EQ(p.kind, "altered");
  EXPECT_NE(p.message.find("authentication failed"), std::string::npos) << p.message;
  // List reports it and carries on with the others.
  std::vector<std::string> errors;
  auto entries = Log().List([&](const Error& e) { errors.push_back(e.what()); });
  EXPECT_EQ(entries.size(), 3u);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(CodeOf([&] { Log().List(); }), ErrorCode::kCorrupt);
}

TEST_F(AuditTest, VerifyNamesARecordMovedToAnotherName) {
  auto refs = AppendN(4);
  AuditRef moved{2, crypto::Sha256(AsBytes("elsewhere"))};
  Rename(refs[1].Name(), moved.Name());
  AuditVerifyReport rep = Log().Verify();
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& p : rep.problems) seen.insert({p.name, p.kind});
  EXPECT_TRUE(seen.count({moved.Name(), "moved"})) << First(rep).message;
  EXPECT_TRUE(seen.count({refs[1].Name(), "removed"})) << "record 3 names the original name";
  EXPECT_EQ(First(rep).seq, 2u);

  // Anything under audit/ that is not a record name is reported too.
  store_->Put("audit/stray", AsBytes("x"));
  rep = Log().Verify();
  EXPECT_EQ(rep.problems.front().kind, "malformed-name");
}

TEST_F(AuditTest, ConcurrentAppendersProduceAChainThatVerifies) {
  constexpr int kThreads = 2, kEach = 25;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        try {
          Log().Append(Record("backup", t * 100 + i));  // the same repository from both threads
        } catch (const Error&) {
          failures++;
        }
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  AuditVerifyReport rep = Log().Verify();
  EXPECT_TRUE(rep.ok()) << rep.problems.front().message;
  EXPECT_EQ(rep.records, static_cast<uint64_t>(kThreads * kEach));
  EXPECT_LE(rep.max_seq, rep.records);  // forks share sequence numbers
  EXPECT_EQ(rep.max_seq + rep.forks <= rep.records, true);
  auto entries = Log().List();
  ASSERT_EQ(entries.size(), static_cast<size_t>(kThreads * kEach));
  std::set<std::string> hosts;
  for (const auto& e : entries) hosts.insert(e.record.host);
  EXPECT_EQ(hosts.size(), static_cast<size_t>(kThreads * kEach)) << "no record lost or overwritten";
  // Whatever forks the race made, one more append names all of them.
  Log().Append(Record("check"));
  rep = Log().Verify();
  EXPECT_TRUE(rep.ok());
}

TEST_F(AuditTest, AStaleAppenderMakesAForkThatTheNextAppendMerges) {
  AppendN(2);
  auto stale = std::make_shared<StaleListBackend>(store_);
  stale->Freeze("audit/");
  auto later = AppendN(2);  // seq 3, 4
  // The stalled appender writes seq 3 too: a fork, not an overwrite.
  AuditRef fork = AuditLog(*stale, repo_->aead()).Append(Record("prune", 99));
  EXPECT_EQ(fork.seq, 3u);
  EXPECT_EQ(store_->List("audit/").size(), 5u);
  AuditVerifyReport rep = Log().Verify();
  EXPECT_TRUE(rep.ok());
  EXPECT_EQ(rep.forks, 1u);
  EXPECT_EQ(rep.heads.size(), 2u);  // record 4 and the fork

  AuditRef merge = Log().Append(Record("check"));  // seq 5 names 2..4, the fork included
  rep = Log().Verify();
  EXPECT_TRUE(rep.ok());
  EXPECT_EQ(rep.heads, std::vector<std::string>{merge.Name()});

  // Both branches are protected now: removing the fork is detected.
  store_->Remove(fork.Name());
  AuditProblem p = First(Log().Verify());
  EXPECT_EQ(p.name, fork.Name());
  EXPECT_EQ(p.kind, "removed");
}

TEST_F(AuditTest, AnAppenderStalledPastTheWindowIsReportedUnanchored) {
  AppendN(1);
  auto stale = std::make_shared<StaleListBackend>(store_);
  stale->Freeze("audit/");
  AppendN(static_cast<int>(kAuditWindow) + 1);                                   // seq 2..6
  AuditRef late = AuditLog(*stale, repo_->aead()).Append(Record("backup", 42));  // seq 2
  Log().Append(Record("check"));                                                 // seq 7: window 3..6
  AuditVerifyReport rep = Log().Verify();
  EXPECT_TRUE(rep.ok());
  EXPECT_EQ(rep.unanchored, std::vector<std::string>{late.Name()});
}

TEST_F(AuditTest, ReadOnlyCredentialsCannotAppendAndWriteNothing) {
  auto ro = std::make_shared<RestrictedBackend>(store_, std::vector<std::string>{""}, std::vector<std::string>{""});
  auto repo = Repository::Open(std::make_unique<storage::ForwardingBackend>(ro), "pw");
  EXPECT_EQ(CodeOf([&] { AuditLog(repo->backend(), repo->aead()).Append(Record("restore")); }), ErrorCode::kPermission);
  EXPECT_TRUE(store_->List("audit/").empty());
}

TEST_F(AuditTest, RepositoryReportsSnapshotsAddedAndRemoved) {
  std::vector<std::pair<Id, bool>> seen;
  repo_->set_snapshot_listener([&](const Id& id, bool added) { seen.push_back({id, added}); });
  Snapshot s;
  s.time_ns = 1;
  s.host = "h";
  s.source = "x";
  s.tree = crypto::Sha256(AsBytes("tree"));
  Id id = repo_->SaveSnapshot(s);
  repo_->RemoveSnapshot(id);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], std::make_pair(id, true));
  EXPECT_EQ(seen[1], std::make_pair(id, false));
  EXPECT_FALSE(store_->Stat(Repository::ObjectName(ObjectType::kSnapshot, id)));
}

TEST(AuditRefName, ParsesOnlyCanonicalNames) {
  Id id = crypto::Sha256(AsBytes("x"));
  AuditRef r{42, id};
  EXPECT_EQ(r.Name(), "audit/00000000000000000042-" + id.Hex());
  EXPECT_EQ(AuditRef::Parse(r.Name()), r);
  EXPECT_EQ(AuditRef::Parse(r.Name().substr(6)), r);
  std::string upper = r.Name();
  std::transform(upper.begin() + 27, upper.end(), upper.begin() + 27, ::toupper);
  EXPECT_FALSE(AuditRef::Parse(upper));
  EXPECT_FALSE(AuditRef::Parse("audit/00000000000000000000-" + id.Hex()));  // seq 0
  EXPECT_FALSE(AuditRef::Parse("audit/42-" + id.Hex()));
  EXPECT_FALSE(AuditRef::Parse("audit/99999999999999999999-" + id.Hex()));  // > uint64
  EXPECT_FALSE(AuditRef::Parse("audit/00000000000000000042_" + id.Hex()));
  EXPECT_FALSE(AuditRef::Parse("audit/00000000000000000042-" + id.Hex().substr(1)));
}

TEST(AuditRecordCodec, RoundTripsAndRejectsMalformedRecords) {
  AuditRecord r;
  r.seq = 3;
  r.parents = {{2, crypto::Sha256(AsBytes("p"))}};
  r.host = "h";
  r.command = "key add";
  r.args = {"key", "add"};
  r.start_ns = 12;
  Bytes enc = r.Encode();
  AuditRecord back = AuditRecord::Decode(enc, "t");
  EXPECT_EQ(back.ToJson(), r.ToJson());
  for (std::string bad :
       {"", "[]", "{}", R"({"version":2,"seq":1})",
        R"({"version":1,"seq":0,"parents":[],"host":"h","command":"c","result":"ok","start_ns":1})",
        R"({"version":1,"seq":1,"parents":[{"seq":1,"id":"zz"}],"host":"h","command":"c","result":"ok","start_ns":1})",
        R"({"version":1,"seq":1,"parents":[],"host":"h","command":"c","result":"maybe","start_ns":1})"}) {
    ErrorCode c = CodeOf([&] { AuditRecord::Decode(AsBytes(bad), "t"); });
    EXPECT_TRUE(c == ErrorCode::kCorrupt || c == ErrorCode::kUnsupported) << bad;
  }
}

TEST(AuditRedaction, SecretsNeverSurviveAndTheRestDoes) {
  std::vector<std::string> args = {"backup",
                                   "--postgres",
                                   "host=db user=app password=s3cr3t-one dbname=app",
                                   "--conninfo",
                                   "host=db password='s3cr3t two' sslmode=require",
                                   "postgresql://app:s3cr3t-three@db:5432/app?sslmode=require",
                                   "--command",
                                   "PGPASSWORD=s3cr3t-four pg_dump app",
                                   "--token",
                                   "s3cr3t-five",
                                   "--s3-secret-access-key=s3cr3t-six",
                                   "--password-file",
                                   "/etc/bulwark/pw",
                                   "--repo",
                                   "s3://minio:9000/bucket/repo"};
  std::vector<std::string> out = RedactArguments(args);
  std::string all;
  for (const auto& a : out) all += a + "\n";
  EXPECT_EQ(all.find("s3cr3t"), std::string::npos) << all;
  EXPECT_EQ(out.size(), args.size());
  EXPECT_EQ(out[2], "host=db user=app password=*** dbname=app");
  EXPECT_EQ(out[4], "host=db password=*** sslmode=require");
  EXPECT_EQ(out[5], "postgresql://app:***@db:5432/app?sslmode=require");
  EXPECT_EQ(out[7], "PGPASSWORD=*** pg_dump app");
  EXPECT_EQ(out[9], "***");
  EXPECT_EQ(out[10], "--s3-secret-access-key=***");
  EXPECT_EQ(out[12], "/etc/bulwark/pw") << "a path to a secret is not a secret";
  EXPECT_EQ(out[14], "s3://minio:9000/bucket/repo");
  EXPECT_EQ(RedactText("connection to db failed: password=abc is wrong"),
            "connection to db failed: password=*** is wrong");
  EXPECT_EQ(RedactText("https://user@host/x"), "https://user@host/x");
  // A value is the quoted part and whatever follows it up to a space; redacting twice changes nothing
  // (found by audit_fuzz).
  EXPECT_EQ(RedactText("password='='a b' x"), "password=*** b' x");
  EXPECT_EQ(RedactText(RedactText("password='='a b' x")), "password=*** b' x");
}

}  // namespace
}  // namespace bulwark::repo
