// Least privilege on S3 (docs/S3.md, "Least-privilege credentials"), against
// the test server's per-key roles (S3Server::AddKey): backup works with
// append-only credentials (no delete of anything: its lock is marked released
// instead of deleted, stale locks are skipped with a warning), restore, dump,
// check --read-data and the listing commands with read-only ones (no lock,
// with a warning), and prune, forget and unlock fail at once without delete
// permission, leaving the repository exactly as it was.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "bulwark/base/sys.h"
#include "bulwark/repo/format.h"
#include "bulwark/repo/lock.h"
#include "bulwark/repo/repository.h"
#include "bulwark/repo/snapshot.h"
#include "bulwark/storage/s3/s3.h"
#include "harness.h"
#include "s3_server.h"

namespace bulwark::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kBucket[] = "bulwark-test";
constexpr char kPrefix[] = "repos/one";

class S3PrivilegeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    srv_ = S3Server::Start(&why);
    if (!srv_) GTEST_SKIP() << why;
    ASSERT_EQ(srv_->CreateBucket(kBucket).status, 200);
    url_ = "s3://" + HostPort(srv_->endpoint()) + "/" + kBucket + "/" + kPrefix;
    read_only_ = srv_->AddKey("read-only");
    append_only_ = srv_->AddKey("append-only");
    ASSERT_FALSE(read_only_.access_key.empty());
    ASSERT_FALSE(append_only_.access_key.empty());
    RunResult init = Bw({"init", "--kdf-ops", "1", "--kdf-memory", "8MiB"});
    ASSERT_EQ(init.exit_code, 0) << init.err;
    fs::create_directories(s_.Path("src/sub"));
    WriteFile(s_.Path("src/a.bin"), RandomBytes(700 << 10, 1));
    WriteFile(s_.Path("src/sub/b.txt"), "least privilege\n");
  }

  void TearDown() override {
    if (HasFailure() && srv_) std::cerr << "server log (" << srv_->dir() << "/server.log):\n" << srv_->Log();
  }

  // bulwark --repo URL args..., with `key` (the server's full key when empty).
  RunResult Bw(std::vector<std::string> args, const S3Key& key = {}) {
    args.insert(args.begin(), {BulwarkBin(), "--repo", url_});
    return bulwark::testing::Run(args, S3Env(s_, *srv_, key));
  }

  std::unique_ptr<storage::Backend> FullBackend() {
    storage::s3::S3Options o;
    o.endpoint = srv_->endpoint();
    o.region = srv_->region();
    o.bucket = kBucket;
    o.prefix = kPrefix;
    return storage::s3::NewS3Backend(o, {srv_->access_key(), srv_->secret_key(), "", "test"});
  }

  std::unique_ptr<repo::Repository> OpenRepo() {
    std::string password = ReadFileOrDie(s_.Path("password"));
    while (!password.empty() && password.back() == '\n') password.pop_back();
    return repo::Repository::Open(FullBackend(), password);
  }

  // Every object of the repository, by name, with its size; but audit
  // records: a refused command is recorded too, where the credentials may
  // write (docs/AUDIT.md).
  std::map<std::string, uint64_t> Objects() {
    std::map<std::string, uint64_t> out;
    for (const auto& o : FullBackend()->List(""))
      if (o.name.rfind("audit/", 0) != 0) out[o.name] = o.size;
    return out;
  }

  // The server's log lines of successful requests with `method` by `key`.
  std::vector<std::string> Succeeded(const std::string& method, const S3Key& key) {
    std::vector<std::string> out;
    std::istringstream log(srv_->Log());
    for (std::string line; std::getline(log, line);)
      if (line.find(" " + method + " /") != std::string::npos && line.find("-> 2") != std::string::npos &&
          line.find("(key " + key.access_key + ")") != std::string::npos)
        out.push_back(line);
    return out;
  }

  // The snapshot ids `bulwark --json snapshots` lists, oldest first.
  std::vector<std::string> SnapshotIds() {
    RunResult r = Bw({"--json", "snapshots"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::istringstream out(r.out);
    std::vector<std::string> ids;
    for (std::string line; std::getline(out, line);)
      if (!line.empty() && line[0] == '[')
        for (const auto& snap : nlohmann::json::parse(line)) ids.push_back(snap["id"]);
    return ids;
  }

  void ExpectRestores(const std::string& snapshot, const std::string& out) {
    RunResult r = Bw({"restore", snapshot, "--target", s_.Path(out)});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ExpectIdentical(s_.Path("src"), s_.Path(out) + s_.Path("src"));
  }

  Scratch s_;
  std::unique_ptr<S3Server> srv_;
  std::string url_;
  S3Key read_only_, append_only_;
};

TEST_F(S3PrivilegeTest, AppendOnlyBackupSucceedsAndLeavesItsLockReleased) {
  RunResult b = Bw({"--json", "backup", s_.Path("src")}, append_only_);
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_FALSE(b.JsonLine("summary").is_null()) << b.out;
  EXPECT_NE(b.err.find("warning: lock object s3:" + std::string(kBucket) + "/" + kPrefix + "/locks/"),
            std::string::npos)
      << "names the lock object left behind: " << b.err;
  EXPECT_NE(b.err.find("stays behind"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find("AccessDenied"), std::string::npos) << "says why: " << b.err;
  EXPECT_NE(b.err.find("the next command with delete permission"), std::string::npos) << b.err;
  EXPECT_EQ(b.err.find("error"), std::string::npos) << b.err;
  EXPECT_TRUE(Succeeded("DELETE", append_only_).empty()) << "no DELETE of this key succeeded";
  EXPECT_FALSE(Succeeded("PUT", append_only_).empty());

  // The lock object stays, marked released: it locks nothing.
  auto repo = OpenRepo();
  auto locks = repo::Lock::List(repo.get(), /*remove_stale=*/false);
  ASSERT_EQ(locks.size(), 1u);
  EXPECT_TRUE(locks[0].released);

  // A stale lock of a dead process on this host: the next append-only backup
  // cannot remove it (nor the released one), says so, and succeeds.
  nlohmann::json dead = {{"host", sys::Hostname()},  {"username", "x"},
                         {"pid", 2147483000},        {"time", repo::FormatTime(repo::NowNs())},
                         {"time_ns", repo::NowNs()}, {"exclusive", false}};
  std::string body = dead.dump();
  repo->backend().Put(repo::Repository::ObjectName(repo::ObjectType::kLock, crypto::RandomId()),
                      repo::SealObject(repo->aead(), repo::ObjectType::kLock, AsBytes(body)));
  WriteFile(s_.Path("src/c.txt"), "second backup\n");
  RunResult b2 = Bw({"backup", s_.Path("src")}, append_only_);
  ASSERT_EQ(b2.exit_code, 0) << b2.err;
  EXPECT_NE(b2.err.find("warning: cannot remove 2 stale or released lock(s)"), std::string::npos) << b2.err;
  EXPECT_NE(b2.err.find("no delete permission"), std::string::npos) << b2.err;
  EXPECT_TRUE(Succeeded("DELETE", append_only_).empty());
  EXPECT_EQ(repo::Lock::List(repo.get(), false).size(), 3u) << "two released, one stale";

  // A command with delete permission removes the leftovers (the released
  // ones at once, the dead process's as stale) and needs no waiting.
  RunResult p = Bw({"prune"});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_NE(p.err.find("removed released shared lock"), std::string::npos) << p.err;
  EXPECT_NE(p.err.find("removed stale shared lock"), std::string::npos) << p.err;
  EXPECT_TRUE(FullBackend()->List("locks/").empty());

  // Backups with these credentials restore and check like any other.
  ExpectRestores("latest", "out");
  RunResult c = Bw({"check", "--read-data"});
  EXPECT_EQ(c.exit_code, 0) << c.out << c.err;
}

TEST_F(S3PrivilegeTest, ReadOnlyRestoreDumpCheckAndListingsWork) {
  RunResult b = Bw({"backup", s_.Path("src")}, append_only_);
  ASSERT_EQ(b.exit_code, 0) << b.err;
  auto before = Objects();

  RunResult r = Bw({"restore", "latest", "--target", s_.Path("out")}, read_only_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectIdentical(s_.Path("src"), s_.Path("out") + s_.Path("src"));
  EXPECT_NE(r.err.find("proceeding without a repository lock"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("a concurrent prune could remove data being read"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("AccessDenied"), std::string::npos) << "says why: " << r.err;
  // The released lock of the append-only backup is in the way of nobody, but
  // read-only credentials cannot remove it either.
  EXPECT_NE(r.err.find("cannot remove 1 stale or released lock(s)"), std::string::npos) << r.err;

  RunResult c = Bw({"--json", "check", "--read-data"}, read_only_);
  EXPECT_EQ(c.exit_code, 0) << c.out << c.err;
  auto sum = c.JsonLine("summary");
  ASSERT_FALSE(sum.is_null()) << c.out;
  EXPECT_TRUE(sum["ok"].get<bool>());
  EXPECT_GT(sum["packs_read"].get<uint64_t>(), 0u);

  RunResult d = Bw({"dump", "latest", s_.Path("src/sub/b.txt")}, read_only_);
  EXPECT_EQ(d.exit_code, 0) << d.err;
  EXPECT_EQ(d.out, "least privilege\n");
  for (std::vector<std::string> args : {std::vector<std::string>{"snapshots"}, {"ls", "latest"}, {"stats"}}) {
    RunResult l = Bw(args, read_only_);
    EXPECT_EQ(l.exit_code, 0) << args[0] << ": " << l.err;
  }

  // --no-lock: no lock attempted, no lock warning.
  RunResult n = Bw({"--no-lock", "restore", "latest", "--target", s_.Path("out2")}, read_only_);
  ASSERT_EQ(n.exit_code, 0) << n.err;
  EXPECT_EQ(n.err.find("without a repository lock"), std::string::npos) << n.err;
  ExpectIdentical(s_.Path("src"), s_.Path("out2") + s_.Path("src"));
  RunResult nc = Bw({"check", "--no-lock"}, read_only_);
  EXPECT_EQ(nc.exit_code, 0) << nc.err;
  EXPECT_EQ(nc.err.find("without a repository lock"), std::string::npos) << nc.err;

  EXPECT_TRUE(Succeeded("PUT", read_only_).empty());
  EXPECT_TRUE(Succeeded("DELETE", read_only_).empty());
  EXPECT_EQ(Objects(), before) << "reading changed nothing in the repository";

  // Writing needs write permission: a clear failure, nothing written.
  RunResult w = Bw({"backup", s_.Path("src")}, read_only_);
  EXPECT_NE(w.exit_code, 0);
  EXPECT_NE(w.err.find("s3:PutObject"), std::string::npos) << w.err;
  RunResult nl = Bw({"--no-lock", "backup", s_.Path("src")});
  EXPECT_EQ(nl.exit_code, 2) << nl.err;
  EXPECT_NE(nl.err.find("--no-lock is only for commands that read"), std::string::npos) << nl.err;
  EXPECT_EQ(Objects(), before);
}

TEST_F(S3PrivilegeTest, PruneAndForgetFailAtOnceWithoutDeletePermission) {
  ASSERT_EQ(Bw({"backup", s_.Path("src")}).exit_code, 0);
  auto ids = SnapshotIds();
  ASSERT_EQ(ids.size(), 1u);
  std::string first_id = ids[0];
  WriteFile(s_.Path("src/a.bin"), RandomBytes(700 << 10, 2));  // the first snapshot's a.bin becomes garbage
  ASSERT_EQ(Bw({"backup", s_.Path("src")}).exit_code, 0);
  auto before = Objects();

  // The old documented backup role: delete on locks/ only. Also not enough.
  S3Key locks_only = srv_->AddKey("s3:ListBucket,s3:GetObject,s3:PutObject,s3:DeleteObject@" + std::string(kBucket) +
                                  "/" + kPrefix + "/locks/*");
  struct Case {
    S3Key key;
    std::vector<std::string> args;
    std::string message;
  };
  std::vector<Case> cases;
  for (const S3Key& k : {read_only_, append_only_, locks_only}) {
    cases.push_back({k, {"prune", "--grace", "0", "--max-unused", "0%"}, "prune needs delete permission"});
    cases.push_back({k, {"forget", "--keep-last", "1", "--prune", "--grace", "0"}, "forget needs delete permission"});
    cases.push_back({k, {"forget", first_id}, "forget needs delete permission"});
  }
  for (const S3Key& k : {read_only_, append_only_}) cases.push_back({k, {"unlock"}, "unlock needs delete permission"});
  cases.push_back({append_only_, {"tag", "latest", "--add", "x"}, "tag needs delete permission"});
  for (const auto& c : cases) {
    RunResult r = Bw(c.args, c.key);
    std::string what = c.key.role + ": " + c.args[0] + (c.args.size() > 1 ? " " + c.args[1] : "");
    EXPECT_NE(r.exit_code, 0) << what;
    EXPECT_NE(r.err.find(c.message + " on the repository: "), std::string::npos) << what << ": " << r.err;
    EXPECT_NE(r.err.find("403 AccessDenied"), std::string::npos) << what << ": " << r.err;
    EXPECT_NE(r.err.find("s3:DeleteObject"), std::string::npos) << "names the permission: " << what << ": " << r.err;
    EXPECT_EQ(Objects(), before) << what << " changed the repository";
  }

  // Unharmed: both snapshots, check passes, both restore.
  EXPECT_EQ(SnapshotIds().size(), 2u);
  RunResult c = Bw({"check", "--read-data"}, read_only_);
  EXPECT_EQ(c.exit_code, 0) << c.out << c.err;
  ExpectRestores("latest", "out");

  // With delete permission the same commands work.
  RunResult f = Bw({"forget", "--keep-last", "1", "--prune", "--grace", "0", "--max-unused", "0%"});
  ASSERT_EQ(f.exit_code, 0) << f.err;
  EXPECT_EQ(SnapshotIds().size(), 1u);
  auto after = Objects();
  size_t packs_gone = 0;
  for (const auto& [name, size] : before) packs_gone += name.rfind("data/", 0) == 0 && !after.count(name);
  EXPECT_GT(packs_gone, 0u) << "the first snapshot's a.bin was deleted";
  RunResult c2 = Bw({"check", "--read-data"});
  EXPECT_EQ(c2.exit_code, 0) << c2.out << c2.err;
  ExpectRestores("latest", "out2");
  EXPECT_TRUE(FullBackend()->List("locks/").empty());
}

}  // namespace
}  // namespace bulwark::testing
