// The S3 backend against a real S3-compatible server (tests/e2e/s3_server.h):
// the backend contract (pagination, ranges, multipart, missing objects), the
// whole CLI cycle on an S3 repository, request counts in --json, and clear,
// quick failures for wrong credentials and an unreachable endpoint.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <set>
#include <unordered_set>
#include <string>
#include <vector>

#include "bulwark/base/error.h"
#include "bulwark/ops/reachable.h"
#include "bulwark/repo/repository.h"
#include "bulwark/storage/s3/s3.h"
#include "fault_proxy.h"
#include "harness.h"
#include "s3_server.h"
#include "treegen.h"
#include "../unit/backend_conformance.h"
#include "../unit/test_util.h"  // CodeOf

namespace bulwark::testing {
namespace {

namespace fs = std::filesystem;

class S3BackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    srv_ = S3Server::Start(&why);
    if (!srv_) GTEST_SKIP() << why;
    ASSERT_EQ(srv_->CreateBucket("bulwark-test").status, 200);
    url_ = "s3://" + HostPort(srv_->endpoint()) + "/bulwark-test/repos/one";
  }

  std::unique_ptr<storage::Backend> Backend() {
    storage::s3::S3Options o;
    o.endpoint = srv_->endpoint();
    o.region = srv_->region();
    o.bucket = "bulwark-test";
    o.prefix = "contract";
    o.path_style = true;
    return storage::s3::NewS3Backend(o, {srv_->access_key(), srv_->secret_key(), "", "test"});
  }

  RunResult Bw(const Scratch& s, std::vector<std::string> args, const std::vector<std::string>& env) {
    args.insert(args.begin(), {BulwarkBin(), "--repo", url_});
    return bulwark::testing::Run(args, env);
  }

  std::unique_ptr<S3Server> srv_;
  std::string url_;
};

TEST_F(S3BackendTest, BackendContractOnARealServer) {
  auto be = Backend();
  EXPECT_FALSE(be->Stat("config").has_value());
  EXPECT_EQ(CodeOf([&] { be->Get("config"); }), ErrorCode::kNotFound);
  be->Remove("missing/object");  // not an error
  std::string hello = "hello, object storage";
  be->Put("keys/k1", AsBytes(hello));
  auto st = be->Stat("keys/k1");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->size, hello.size());
  int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_LT(std::llabs(st->mtime_ns - now_ns), int64_t(300) * 1000000000) << "Last-Modified parsed";
  Bytes part = be->GetRange("keys/k1", 7, 6);
  EXPECT_EQ(std::string(part.begin(), part.end()), "object");
  EXPECT_EQ(CodeOf([&] { be->GetRange("keys/k1", 10, 100); }), ErrorCode::kCorrupt) << "short read detected";
  // More than one ListObjectsV2 page.
  for (int i = 0; i < 1003; ++i) be->Put("index/" + std::to_string(100000 + i), AsBytes("x"));
  auto listed = be->List("index/");
  EXPECT_EQ(listed.size(), 1003u);
  EXPECT_EQ(be->List("keys/").size(), 1u);
  // Multipart upload above the threshold.
  std::string big = RandomBytes(storage::s3::kMultipartThreshold + 3 * 1024 * 1024 + 17, 5);
  be->Put("data/aa/big", AsBytes(big));
  Bytes back = be->Get("data/aa/big");
  ASSERT_EQ(back.size(), big.size());
  EXPECT_TRUE(std::string(back.begin(), back.end()) == big) << "multipart object reads back identically";
  be->Remove("keys/k1");
  EXPECT_FALSE(be->Stat("keys/k1").has_value());
  const auto& counts = storage::s3::ProcessStats();
  EXPECT_GE(counts.put.load(), 1005u);
  EXPECT_GE(counts.list.load(), 3u);
  EXPECT_GE(counts.post.load(), 2u) << "multipart create + complete";
}

TEST_F(S3BackendTest, InitBackupRestoreCheckForgetPruneOnS3) {
  Scratch s;
  auto env = S3Env(s, *srv_);
  RunResult init = Bw(s, {"init", "--kdf-ops", "1", "--kdf-memory", "8MiB"}, env);
  ASSERT_EQ(init.exit_code, 0) << init.err;
  TreeGenOptions o;
  o.seed = 3;
  o.files = 60;
  o.sparse_large = false;
  GenerateTree(s.Path("src"), o);
  RunResult b1 = Bw(s, {"--json", "backup", s.Path("src")}, env);
  ASSERT_EQ(b1.exit_code, 0) << b1.err;
  auto req = b1.JsonLine("storage_requests");
  ASSERT_FALSE(req.is_null()) << "--json ends with the request counts: " << b1.out;
  EXPECT_GT(req["put"].get<uint64_t>(), 0u);
  EXPECT_GT(req["bytes_uploaded"].get<uint64_t>(), 0u);
  EXPECT_EQ(req["retries"].get<uint64_t>(), 0u);
  MutateTree(s.Path("src"), 4, 0.3);
  RunResult b2 = Bw(s, {"--json", "backup", s.Path("src")}, env);
  ASSERT_EQ(b2.exit_code, 0) << b2.err;
  RunResult r = Bw(s, {"restore", "latest", "--target", s.Path("out")}, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectIdentical(s.Path("src"), s.Path("out") + s.Path("src"));
  RunResult f = Bw(s, {"forget", "--keep-last", "1", "--prune", "--grace", "0"}, env);
  ASSERT_EQ(f.exit_code, 0) << f.err;
  RunResult c = Bw(s, {"--json", "check", "--read-data"}, env);
  EXPECT_EQ(c.exit_code, 0) << c.out << c.err;
  auto creq = c.JsonLine("storage_requests");
  ASSERT_FALSE(creq.is_null());
  EXPECT_GT(creq["get"].get<uint64_t>(), 0u);
  EXPECT_GT(creq["list"].get<uint64_t>(), 0u);
  RunResult r2 = Bw(s, {"restore", "latest", "--target", s.Path("out2")}, env);
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  ExpectIdentical(s.Path("src"), s.Path("out2") + s.Path("src"));
  // Object Lock is an S3 feature: a local repository refuses it clearly.
  RunResult local = bulwark::testing::Run({BulwarkBin(), "--repo", s.Path("local"), "init", "--object-lock", "governance",
                         "--lock-days", "7", "--kdf-ops", "1", "--kdf-memory", "8MiB"},
                        s.Env());
  EXPECT_NE(local.exit_code, 0);
  EXPECT_NE(local.err.find("object lock needs an S3 repository"), std::string::npos) << local.err;
}

// The S3 settings a URL does not carry come from bulwark.yaml's `s3:` block
// or the --s3-* flags as well as the environment: an AWS-style URL
// (virtual-hosted, https, AWS endpoint) reaches the test server either way.
TEST_F(S3BackendTest, EndpointAndRegionFromConfigFileOrFlags) {
  Scratch s;
  auto env = S3Env(s, *srv_);
  fs::create_directories(s.Path("src"));
  WriteFile(s.Path("src/f.txt"), "settings\n");
  std::string yaml = "version: 1\ndefault_repository: remote\nrepositories:\n  remote:\n    url: s3:bulwark-test/from-config\n    password_file: " +
                     s.Path("password") + "\n    s3:\n      endpoint: " + srv_->endpoint() + "\n      region: " +
                     srv_->region() + "\n      max_attempts: 2\n";
  WriteFile(s.Path("bulwark.yaml"), yaml);
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), BulwarkBin());
    return bulwark::testing::Run(args, env);
  };
  RunResult init = run({"--config", s.Path("bulwark.yaml"), "init", "--kdf-ops", "1", "--kdf-memory", "8MiB"});
  ASSERT_EQ(init.exit_code, 0) << init.err;
  RunResult b = run({"--config", s.Path("bulwark.yaml"), "backup", s.Path("src")});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  RunResult flags = run({"-r", "s3:bulwark-test/from-flags", "--s3-endpoint", srv_->endpoint(), "--s3-region",
                         srv_->region(), "--s3-path-style", "true", "init", "--kdf-ops", "1", "--kdf-memory", "8MiB"});
  ASSERT_EQ(flags.exit_code, 0) << flags.err;
  // The objects landed under each URL's prefix on the test server.
  S3Response list = srv_->Request("GET", "/bulwark-test?list-type=2&prefix=from-");
  ASSERT_EQ(list.status, 200) << list.Describe();
  auto keys = list.Xml("Key");
  EXPECT_TRUE(std::count(keys.begin(), keys.end(), "from-config/config") == 1) << list.body;
  EXPECT_TRUE(std::count(keys.begin(), keys.end(), "from-flags/config") == 1) << list.body;
  EXPECT_TRUE(std::any_of(keys.begin(), keys.end(), [](const std::string& k) { return k.rfind("from-config/snapshots/", 0) == 0; }))
      << list.body;
  // Flags override the file: a wrong endpoint given as a flag is used (and
  // fails fast with one attempt), not the file's.
  RunResult wrong = run({"--config", s.Path("bulwark.yaml"), "--s3-endpoint", "http://127.0.0.1:1", "--s3-max-attempts",
                         "1", "snapshots"});
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_NE(wrong.err.find("127.0.0.1:1"), std::string::npos) << wrong.err;
}

TEST_F(S3BackendTest, WrongSecretFailsAtOnceAndIsNeverPrinted) {
  Scratch s;
  std::string bad_secret = "WRONG-secret-ZZZZZZZZZZZZZZZZZZZZZZZZZZ";
  auto env = S3Env(s, *srv_, {srv_->access_key(), bad_secret, "full"});
  auto t0 = std::chrono::steady_clock::now();
  RunResult init = Bw(s, {"--json", "init", "--kdf-ops", "1", "--kdf-memory", "8MiB"}, env);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(init.exit_code, 0);
  EXPECT_NE(init.err.find("403"), std::string::npos) << init.err;
  EXPECT_NE(init.err.find("bulwark-test"), std::string::npos) << "names the bucket: " << init.err;
  EXPECT_EQ((init.out + init.err).find(bad_secret), std::string::npos);
  auto req = init.JsonLine("storage_requests");
  ASSERT_FALSE(req.is_null()) << init.out;
  EXPECT_EQ(req["retries"].get<uint64_t>(), 0u) << "a permanent error is not retried";
  EXPECT_LT(secs, 30.0);
}

TEST_F(S3BackendTest, UnreachableEndpointFailsAfterBoundedRetries) {
  Scratch s;
  auto env = S3Env(s, *srv_);
  env.push_back("BULWARK_S3_MAX_ATTEMPTS=3");
  url_ = "s3://127.0.0.1:1/bulwark-test/repo";  // nothing listens on port 1
  RunResult r = Bw(s, {"--json", "snapshots"}, env);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("after 3 attempts"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("bulwark-test"), std::string::npos) << r.err;
  auto req = r.JsonLine("storage_requests");
  ASSERT_FALSE(req.is_null()) << r.out;
  EXPECT_EQ(req["retries"].get<uint64_t>(), 2u);
}

}  // namespace
}  // namespace bulwark::testing

namespace bulwark::testing {
namespace {

// "2026-11-22T10:00:00Z" (retain-until) or "20261122T100000Z" (x-amz-date)
// -> Unix seconds; -1 if neither.
int64_t UnixSeconds(const std::string& s) {
  std::tm tm{};
  if (!strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) && !strptime(s.c_str(), "%Y%m%dT%H%M%S", &tm)) return -1;
  return static_cast<int64_t>(timegm(&tm));
}

// Object Lock on a real server that enforces it (Ceph radosgw): a repository
// made with `init --object-lock governance` writes every object but its locks
// with a GOVERNANCE retention, so a pack version cannot be deleted, and the
// repository still works end to end. bulwark reaches radosgw through the
// fault proxy, which faults a tenth of the requests and logs the headers of
// every PUT, first attempts and retries alike.
TEST(S3ObjectLock, InitWithObjectLockRetainsEveryObjectButLocks) {
  std::string why;
  auto srv = S3Server::Start(&why, /*object_lock=*/true);
  if (!srv) GTEST_SKIP() << why;
  ASSERT_EQ(srv->CreateBucket("worm", /*object_lock=*/true).status, 200);
  auto proxy = FaultProxy::Start(srv->endpoint(), &why, FaultSchedule().Seed(3).Rate(0.1));
  if (!proxy) GTEST_SKIP() << why;
  Scratch s;
  auto env = S3Env(s, *srv);
  env.push_back("BULWARK_S3_STALL_SECONDS=2");
  std::string url = "s3://" + HostPort(proxy->endpoint()) + "/worm/repo";
  auto bw = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {BulwarkBin(), "--repo", url});
    return bulwark::testing::Run(args, env);
  };
  RunResult init = bw({"init", "--object-lock", "governance", "--lock-days", "1", "--kdf-ops", "1", "--kdf-memory", "8MiB"});
  ASSERT_EQ(init.exit_code, 0) << init.err;
  fs::create_directories(s.Path("src"));
  WriteFile(s.Path("src/a.bin"), RandomBytes(3 << 20, 9));
  WriteFile(s.Path("src/b.txt"), "hello worm\n");
  RunResult b = bw({"backup", s.Path("src")});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  RunResult r = bw({"restore", "latest", "--target", s.Path("out")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadFileOrDie(s.Path("out") + s.Path("src/b.txt")), "hello worm\n");

  storage::s3::S3Options o;
  o.endpoint = srv->endpoint();
  o.region = srv->region();
  o.bucket = "worm";
  o.prefix = "repo";
  auto be = storage::s3::NewS3Backend(o, {srv->access_key(), srv->secret_key(), "", "test"});
  auto packs = be->List("data/");
  ASSERT_FALSE(packs.empty());
  std::string key = "/worm/repo/" + packs[0].name;
  S3Response ret = srv->Request("GET", key + "?retention=");
  ASSERT_EQ(ret.status, 200) << ret.Describe();
  EXPECT_EQ(ret.Xml("Mode"), std::vector<std::string>{"GOVERNANCE"}) << ret.body;
  S3Response head = srv->Request("HEAD", key);
  std::string version = head.Header("x-amz-version-id");
  ASSERT_FALSE(version.empty()) << head.Describe();
  EXPECT_EQ(srv->Request("DELETE", key + "?versionId=" + UriEncode(version)).status, 403)
      << "a locked pack version cannot be deleted";
  S3Response cfg = srv->Request("GET", "/worm/repo/config?retention=");
  EXPECT_EQ(cfg.status, 200) << "the config is retained too: " << cfg.Describe();
  // A second backup's lock comes and goes: locks carry no retention.
  ASSERT_EQ(bw({"backup", s.Path("src")}).exit_code, 0);
  EXPECT_TRUE(be->List("locks/").empty()) << "locks were removed after use";
  RunResult c = bw({"check", "--read-data"});
  EXPECT_EQ(c.exit_code, 0) << c.out << c.err;

  // Prune never deletes what Object Lock still retains: it reports it and
  // keeps the marks, so a later prune deletes the pack once it is free.
  WriteFile(s.Path("src/a.bin"), RandomBytes(3 << 20, 10));
  ASSERT_EQ(bw({"backup", s.Path("src")}).exit_code, 0);
  std::set<std::string> packs_before;
  for (const auto& o : be->List("data/")) packs_before.insert(o.name);
  // forget keeps snapshots Object Lock still retains: a policy keeps them
  // with the date as the reason; naming one is an error; --ignore-lock
  // removes them anyway (a delete marker on this versioned bucket).
  RunResult f1 = bw({"--json", "forget", "--keep-last", "1"});
  ASSERT_EQ(f1.exit_code, 0) << f1.err;
  EXPECT_NE(f1.out.find("object lock until"), std::string::npos) << f1.out;
  EXPECT_NE(f1.err.find("Object Lock still retains them"), std::string::npos) << f1.err;
  EXPECT_EQ(be->List("snapshots/").size(), 3u) << "no snapshot was removed";
  std::string oldest = be->List("snapshots/")[0].name.substr(10);
  RunResult f2 = bw({"forget", oldest});
  EXPECT_EQ(f2.exit_code, 1) << f2.err;
  EXPECT_NE(f2.err.find("is under Object Lock until"), std::string::npos) << f2.err;
  EXPECT_EQ(be->List("snapshots/").size(), 3u);
  ASSERT_EQ(bw({"forget", "--keep-last", "1", "--ignore-lock"}).exit_code, 0);
  EXPECT_EQ(be->List("snapshots/").size(), 1u);
  RunResult p = bw({"--json", "prune", "--grace", "0", "--max-unused", "0%"});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  auto sum = p.JsonLine("summary");
  ASSERT_FALSE(sum.is_null()) << p.out;
  EXPECT_GT(sum["packs_locked"].get<uint64_t>(), 0u) << p.out;
  EXPECT_EQ(sum["packs_deleted"].get<uint64_t>(), 0u) << "locked packs are not deleted";
  std::set<std::string> packs_after;
  for (const auto& o : be->List("data/")) packs_after.insert(o.name);
  EXPECT_TRUE(std::includes(packs_after.begin(), packs_after.end(), packs_before.begin(), packs_before.end()))
      << "every pack is still there (repacking may add one)";
  EXPECT_FALSE(be->List("marked/").empty()) << "the marks stay for a later prune";
  RunResult c2 = bw({"check", "--read-data"});
  EXPECT_EQ(c2.exit_code, 0) << c2.out << c2.err;
  RunResult r2 = bw({"restore", "latest", "--target", s.Path("out2")});
  ASSERT_EQ(r2.exit_code, 0) << r2.err;
  EXPECT_EQ(ReadFileOrDie(s.Path("out2") + s.Path("src/a.bin")), ReadFileOrDie(s.Path("src/a.bin")));

  // What bulwark sent, as the proxy saw it: every PUT but a lock's or a prune
  // marks object's (config, keys, packs, indexes, snapshots), retries
  // included, carries the lock mode, a retain-until date one day
  // (--lock-days 1) after its command started (so at most a day after the
  // request's own x-amz-date), and Content-MD5; lock and marks PUTs carry
  // none of them.
  std::set<std::string> kinds_seen;
  int retried_puts = 0, lock_puts = 0;
  std::set<std::string> put_paths;
  for (const auto& req : proxy->Requests()) {
    if (req.method == "POST") ADD_FAILURE() << "no multipart upload expected: " << req.path;
    if (req.method != "PUT") continue;
    if (req.query.rfind("retention", 0) == 0) {  // PutObjectRetention (prune's lock maintenance)
      EXPECT_FALSE(req.Header("content-md5").empty()) << req.path;
      continue;
    }
    ASSERT_EQ(req.path.rfind("/worm/repo/", 0), 0u) << req.path;
    std::string name = req.path.substr(std::string("/worm/repo/").size());
    kinds_seen.insert(name.substr(0, name.find('/')));
    retried_puts += !put_paths.insert(req.path).second;
    SCOPED_TRACE(req.method + " " + name + " (fault " + req.fault + ")");
    bool has_checksum = !req.Header("content-md5").empty();
    for (const auto& [k, v] : req.headers) has_checksum |= k.rfind("x-amz-checksum-", 0) == 0;
    if (name.rfind("locks/", 0) == 0 || name.rfind("marked/", 0) == 0) {
      lock_puts += name.rfind("locks/", 0) == 0;
      EXPECT_EQ(req.Header("x-amz-object-lock-mode"), "");
      EXPECT_EQ(req.Header("x-amz-object-lock-retain-until-date"), "");
      continue;
    }
    EXPECT_EQ(req.Header("x-amz-object-lock-mode"), "GOVERNANCE");
    int64_t until = UnixSeconds(req.Header("x-amz-object-lock-retain-until-date"));
    int64_t sent = UnixSeconds(req.Header("x-amz-date"));
    EXPECT_GT(sent, 0);
    EXPECT_LE(until - sent, 86400 + 1) << req.Header("x-amz-object-lock-retain-until-date");
    EXPECT_GE(until - sent, 86400 - 600) << req.Header("x-amz-object-lock-retain-until-date");
    EXPECT_TRUE(has_checksum) << "Content-MD5 or x-amz-checksum-*";
  }
  for (const char* k : {"config", "keys", "data", "index", "snapshots", "marked", "locks", "audit"})
    EXPECT_EQ(kinds_seen.count(k), 1u) << "a PUT of " << k << " was seen";
  auto counts = FaultCounts(proxy->Requests());
  EXPECT_GT(static_cast<int>(proxy->Requests().size()) - counts["none"], 0) << "faults were injected";
  std::string faults;
  for (const auto& [kind, n] : counts) faults += " " + kind + "=" + std::to_string(n);
  std::cerr << "[ fault    ] through the proxy:" << faults << "; " << put_paths.size() << " objects PUT, "
            << lock_puts << " lock PUTs, " << retried_puts << " PUTs resent\n";

  // prune ran the Object Lock maintenance too.
  ASSERT_TRUE(sum["object_lock"].is_object()) << p.out;
  EXPECT_EQ(sum["object_lock"]["objects_missing"].get<uint64_t>(), 0u) << p.out;

  // lock extend: a new backup reuses b.txt's data from older packs, whose
  // retention (set when their backup ran) ends before the new snapshot's.
  // Extending moves them past it, with PutObjectRetention on the server.
  ASSERT_EQ(bw({"backup", s.Path("src")}).exit_code, 0);
  auto retain_until = [&](const std::string& name) {
    S3Response ret = srv->Request("GET", "/worm/repo/" + name + "?retention=");
    EXPECT_EQ(ret.status, 200) << name << ": " << ret.Describe();
    auto d = ret.Xml("RetainUntilDate");
    return d.empty() ? std::string() : d[0];  // ISO 8601 UTC: compares as text
  };
  std::string newest_snapshot;
  for (const auto& o : be->List("snapshots/")) {
    std::string until = retain_until(o.name);
    if (until > newest_snapshot) newest_snapshot = until;
  }
  RunResult dry = bw({"--json", "lock", "extend", "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  auto dsum = dry.JsonLine("summary");
  ASSERT_FALSE(dsum.is_null()) << dry.out;
  EXPECT_GT(dsum["objects_extended"].get<uint64_t>(), 0u) << dry.out;
  RunResult ext = bw({"--json", "lock", "extend", "--margin", "2d"});
  ASSERT_EQ(ext.exit_code, 0) << ext.err;
  auto esum = ext.JsonLine("summary");
  ASSERT_FALSE(esum.is_null()) << ext.out;
  EXPECT_EQ(esum["objects_extended"], dsum["objects_extended"]) << ext.out;
  EXPECT_EQ(esum["objects_missing"].get<uint64_t>(), 0u) << ext.out;
  EXPECT_EQ(esum["margin_seconds"].get<int64_t>(), 2 * 86400) << ext.out;
  {
    // The live objects, as the library sees them: packs the snapshots use,
    // index objects in effect.
    auto repo = repo::Repository::Open(storage::s3::NewS3Backend(o, {srv->access_key(), srv->secret_key(), "", "test"}),
                                       "correct horse battery staple");
    repo->LoadIndex();
    ops::BlobMarks marks(repo->index().sorted_size());
    std::unordered_set<Id, IdHash> missing;
    ops::MarkReachable(*repo, repo->LoadSnapshots(), &marks, &missing);
    auto used = ops::PacksInUse(repo->index(), marks);
    size_t live_packs = 0;
    for (uint32_t pk = 0; pk < used.size(); ++pk) {
      if (!used[pk]) continue;
      ++live_packs;
      std::string name = repo::Repository::ObjectName(repo::ObjectType::kPack, repo->index().PackById(pk));
      EXPECT_GE(retain_until(name), newest_snapshot) << name;
    }
    EXPECT_GT(live_packs, 0u);
    for (const auto& id : repo->index_ids()) {
      std::string name = repo::Repository::ObjectName(repo::ObjectType::kIndex, id);
      EXPECT_GE(retain_until(name), newest_snapshot) << name;
    }
    EXPECT_GE(retain_until("config"), newest_snapshot);
  }
  RunResult again = bw({"--json", "lock", "extend"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.JsonLine("summary")["objects_extended"].get<uint64_t>(), 0u) << again.out;
  RunResult c3 = bw({"check", "--read-data"});
  EXPECT_EQ(c3.exit_code, 0) << c3.out << c3.err;
}

}  // namespace
}  // namespace bulwark::testing

namespace bulwark::storage {

// The backend conformance suite on S3: each test gets its own test server
// (s3rver, ~0.4 s to start), bucket and prefix.
struct S3Factory {
  std::string why;
  std::unique_ptr<testing::S3Server> srv;
  std::unique_ptr<Backend> Make() {
    srv = testing::S3Server::Start(&why);
    if (!srv) return nullptr;
    if (srv->CreateBucket("conformance").status != 200) {
      why = "cannot create the bucket";
      return nullptr;
    }
    s3::S3Options o;
    o.endpoint = srv->endpoint();
    o.region = srv->region();
    o.bucket = "conformance";
    o.prefix = "repo";
    return s3::NewS3Backend(o, {srv->access_key(), srv->secret_key(), "", "test"});
  }
};
INSTANTIATE_TYPED_TEST_SUITE_P(s3, BackendConformance, ::testing::Types<S3Factory>);

}  // namespace bulwark::storage
