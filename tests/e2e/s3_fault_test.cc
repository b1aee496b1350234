// The S3 backend under network and server faults: bulwark talks to the S3 test
// server through a fault-injecting proxy (tests/e2e/fault_proxy.h) that drops
// connections, answers 500/503 SlowDown/429, stalls and truncates bodies.
// Backups, restores and `check --read-data` still complete (retries with
// backoff, counted in --json); a permanent error (403) fails at once; faults
// beyond the attempt budget fail with a clear message and leave the
// repository as it was; a cut-off upload never leaves a partial object.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "../unit/test_util.h"  // CodeOf
#include "bulwark/base/error.h"
#include "bulwark/storage/s3/s3.h"
#include "fault_proxy.h"
#include "harness.h"
#include "s3_server.h"
#include "treegen.h"

namespace bulwark::testing {
namespace {

constexpr int kStallSeconds = 2;  // BULWARK_S3_STALL_SECONDS here: a stall costs 2 s, not 60
const std::vector<std::string> kTransientKinds = {"drop", "drop-request", "500",        "503",
                                                  "429",  "stall",        "stall-body", "truncate"};

// Requests [from, end) of `all`.
std::vector<ProxiedRequest> Since(const std::vector<ProxiedRequest>& all, size_t from) {
  return {all.begin() + static_cast<long>(std::min(from, all.size())), all.end()};
}

int Faults(const std::vector<ProxiedRequest>& requests) {
  int n = 0;
  for (const auto& r : requests) n += r.fault != "none";
  return n;
}

uint64_t Retries(const RunResult& r) {
  auto j = JsonLine(r, "storage_requests");
  EXPECT_FALSE(j.is_null()) << "--json ends with the request counts: " << r.out;
  return j.is_null() ? 0 : j["retries"].get<uint64_t>();
}

class S3FaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    srv_ = S3Server::Start(&why);
    if (!srv_) GTEST_SKIP() << why;
    ASSERT_EQ(srv_->CreateBucket("faulty").status, 200);
    proxy_ = FaultProxy::Start(srv_->endpoint(), &why);
    if (!proxy_) GTEST_SKIP() << why;
    env_ = S3Env(s_, *srv_);
    env_.push_back("BULWARK_S3_STALL_SECONDS=" + std::to_string(kStallSeconds));
  }

  // bulwark through the proxy (or straight to the server) with `env`.
  RunResult BwEnv(const std::vector<std::string>& env, std::vector<std::string> args, bool direct = false) {
    std::string url = "s3://" + HostPort(direct ? srv_->endpoint() : proxy_->endpoint()) + "/faulty/repo";
    args.insert(args.begin(), {BulwarkBin(), "--repo", url});
    return bulwark::testing::Run(args, env);
  }
  RunResult Bw(std::vector<std::string> args, const std::vector<std::string>& extra_env = {}, bool direct = false) {
    std::vector<std::string> env = env_;
    env.insert(env.end(), extra_env.begin(), extra_env.end());
    return BwEnv(env, std::move(args), direct);
  }

  // The backend through the proxy, with its own retry budget.
  std::unique_ptr<storage::Backend> ProxiedBackend(int max_attempts) {
    storage::s3::S3Options o;
    o.endpoint = proxy_->endpoint();
    o.region = srv_->region();
    o.bucket = "faulty";
    o.prefix = "direct";
    o.max_attempts = max_attempts;
    o.stall_seconds = kStallSeconds;
    return storage::s3::NewS3Backend(o, {srv_->access_key(), srv_->secret_key(), "", "test"});
  }

  // The keys under `prefix` as the server lists them (not through the proxy).
  std::vector<std::string> ServerKeys(const std::string& prefix) {
    S3Response r = srv_->Request("GET", "/faulty?list-type=2&prefix=" + UriEncode(prefix));
    EXPECT_EQ(r.status, 200) << r.Describe();
    return r.Xml("Key");
  }

  void InitAndBackup(const std::string& src, uint64_t seed) {
    ASSERT_EQ(Bw({"init", "--kdf-ops", "1", "--kdf-memory", "8MiB"}).exit_code, 0);
    TreeGenOptions o;
    o.seed = seed;
    o.files = 40;
    o.sparse_large = false;
    GenerateTree(src, o);
    RunResult b = Bw({"backup", src});
    ASSERT_EQ(b.exit_code, 0) << b.err;
  }

  Scratch s_;
  std::unique_ptr<S3Server> srv_;
  std::unique_ptr<FaultProxy> proxy_;
  std::vector<std::string> env_;
};

// The whole cycle with 15% of all requests faulted, every kind of fault
// among them: each command completes, counts its retries, and the restored
// tree is identical; check --read-data proves no truncated body was taken
// for data. (Few requests are uploads: each command's first one is cut off
// mid-body for sure, the rest at random.)
TEST_F(S3FaultTest, BackupRestoreAndCheckCompleteUnderFaults) {
  TreeGenOptions o;
  o.seed = 21;
  o.files = 30;
  o.sparse_large = false;
  GenerateTree(s_.Path("src"), o);
  const std::vector<std::vector<std::string>> steps = {
      {"--json", "init", "--kdf-ops", "1", "--kdf-memory", "8MiB"},
      {"--json", "backup", s_.Path("src")},
      {"--json", "restore", "latest", "--target", s_.Path("out")},
      {"--json", "check", "--read-data"},
  };
  uint64_t total_retries = 0;
  std::map<std::string, int> counts;
  for (size_t i = 0; i < steps.size(); ++i) {
    const auto& args = steps[i];
    proxy_->SetSchedule(FaultSchedule().Seed(11 + i).Rate(0.15).Sequence({"drop-request"}));
    size_t before = proxy_->Requests().size();
    auto t0 = std::chrono::steady_clock::now();
    RunResult r = Bw(args);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_EQ(r.exit_code, 0) << args[1] << " under faults: " << r.err << r.out;
    auto mine = Since(proxy_->Requests(), before);
    int faults = Faults(mine);
    uint64_t retries = Retries(r);
    // Every fault but a drop costs bulwark one failed attempt, which it
    // retries; a dropped request is also resent by curl itself when its
    // reused connection died before any answer (not counted in retries).
    int drops = 0;
    for (const auto& q : mine) drops += q.fault == "drop" || q.fault == "drop-request";
    EXPECT_GE(retries, static_cast<uint64_t>(faults - drops)) << args[1];
    total_retries += retries;
    for (const auto& [kind, n] : FaultCounts(mine)) counts[kind] += n;
    std::cerr << "[ fault    ] " << args[1] << ": " << mine.size() << " requests, " << faults << " faults, " << retries
              << " retries, " << secs << " s\n";
  }
  ExpectIdentical(s_.Path("src"), s_.Path("out") + s_.Path("src"));
  for (const auto& kind : kTransientKinds)
    EXPECT_GT(counts[kind], 0) << "fault kind " << kind << " was never injected; raise the rate or the tree";
  EXPECT_GT(total_retries, 0u);
  // And straight to the server, with no proxy at all: the repository is sound.
  RunResult c = Bw({"check", "--read-data"}, {}, /*direct=*/true);
  EXPECT_EQ(c.exit_code, 0) << c.out << c.err;
}

// Each kind of fault, one at a time, on the backend's own calls: the call
// returns the right bytes after a retry, and a stall costs the stall timeout
// (BULWARK_S3_STALL_SECONDS), not a minute.
TEST_F(S3FaultTest, EveryFaultKindIsRetriedAndNeverReturnsPartialData) {
  auto be = ProxiedBackend(3);
  std::string blob = RandomBytes(300000, 5);
  be->Put("data/00/blob", AsBytes(blob));
  auto& stats = storage::s3::ProcessStats();
  for (const auto& kind : kTransientKinds) {
    SCOPED_TRACE(kind);
    proxy_->SetSchedule(FaultSchedule().Sequence({kind}));
    uint64_t retries_before = stats.retries.load();
    size_t before = proxy_->Requests().size();
    auto t0 = std::chrono::steady_clock::now();
    if (kind == "drop-request") {
      std::string other = RandomBytes(200000, 6);
      be->Put("data/00/other", AsBytes(other));
      Bytes back = be->Get("data/00/other");
      EXPECT_TRUE(std::string(back.begin(), back.end()) == other);
    } else {
      Bytes whole = be->Get("data/00/blob");
      EXPECT_TRUE(std::string(whole.begin(), whole.end()) == blob) << "whole object, " << whole.size() << " bytes";
      Bytes part = be->GetRange("data/00/blob", 1000, 100000);
      EXPECT_TRUE(std::string(part.begin(), part.end()) == blob.substr(1000, 100000)) << "range";
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    auto mine = Since(proxy_->Requests(), before);
    ASSERT_FALSE(mine.empty());
    EXPECT_EQ(mine[0].fault, kind);
    EXPECT_EQ(Faults(mine), 1);
    uint64_t retries = stats.retries.load() - retries_before;
    if (kind == "drop" || kind == "drop-request")
      EXPECT_LE(retries, 1u) << "bulwark retries, or curl resends on a fresh connection";
    else
      EXPECT_EQ(retries, 1u);
    if (kind == "stall" || kind == "stall-body") {
      EXPECT_GE(secs, kStallSeconds - 0.5);
      EXPECT_LT(secs, kStallSeconds + 12.0) << "the stall timeout, one backoff and the retry";
    }
  }
}

// A permanent error is not retried: a wrong secret (the server's 403) and a
// 403 in the middle of a backup both fail at once, naming the status, the
// bucket and the object.
TEST_F(S3FaultTest, PermanentErrorFailsAtOnceWithAClearMessage) {
  RunResult bad = BwEnv(S3Env(s_, *srv_, {srv_->access_key(), "WRONG-secret-ZZZZZZZZZZZZZZZZZZZZZZZZZZ", "full"}),
                        {"--json", "init", "--kdf-ops", "1", "--kdf-memory", "8MiB"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("HTTP 403"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("check the access key, the secret"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("s3:faulty/repo"), std::string::npos) << "names the repository: " << bad.err;
  std::cerr << "[ fault    ] wrong secret: " << bad.err;
  EXPECT_EQ(Retries(bad), 0u);
  EXPECT_EQ(proxy_->Requests().size(), 1u) << "one request, not retried";

  InitAndBackup(s_.Path("src"), 31);
  proxy_->SetSchedule(FaultSchedule().Methods({"PUT"}).PathRegex("/data/").Sequence({"403"}));
  size_t before = proxy_->Requests().size();
  WriteFile(s_.Path("src/new.bin"), RandomBytes(1 << 20, 32));
  RunResult b = Bw({"--json", "backup", s_.Path("src")});
  EXPECT_NE(b.exit_code, 0);
  EXPECT_NE(b.err.find("403 AccessDenied"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find("PUT s3:faulty/repo/data/"), std::string::npos) << "names the object: " << b.err;
  EXPECT_EQ(Retries(b), 0u);
  std::cerr << "[ fault    ] 403 mid-backup: " << b.err;
  std::map<std::string, int> attempts;
  for (const auto& r : Since(proxy_->Requests(), before)) attempts[r.method + " " + r.path]++;
  for (const auto& [what, n] : attempts)
    if (what.find("/data/") != std::string::npos && what.rfind("PUT", 0) == 0) {
      EXPECT_EQ(n, 1) << what;
    }
  proxy_->SetSchedule(FaultSchedule());
  RunResult c = Bw({"check", "--read-data"});
  EXPECT_EQ(c.exit_code, 0) << c.out << c.err;
}

// Faults beyond the attempt budget: every data upload answers 503 SlowDown.
// The backup fails after exactly BULWARK_S3_MAX_ATTEMPTS attempts of an
// object, says so, and the snapshot that was already there is intact.
TEST_F(S3FaultTest, FaultsBeyondTheAttemptBudgetFailClearlyAndHarmNothing) {
  InitAndBackup(s_.Path("src"), 41);
  proxy_->SetSchedule(FaultSchedule().Rate(1).Kinds({"503"}).Methods({"PUT"}).PathRegex("/data/"));
  TreeGenOptions o;
  o.seed = 42;
  o.files = 10;
  o.sparse_large = false;
  o.special_files = false;
  GenerateTree(s_.Path("src2"), o);
  size_t before = proxy_->Requests().size();
  auto t0 = std::chrono::steady_clock::now();
  RunResult b = Bw({"--json", "backup", s_.Path("src2")}, {"BULWARK_S3_MAX_ATTEMPTS=3"});
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(b.exit_code, 0);
  EXPECT_NE(b.err.find("503 SlowDown"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find("after 3 attempts"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find("PUT s3:faulty/repo/data/"), std::string::npos) << "names the object: " << b.err;
  EXPECT_GE(Retries(b), 2u);
  std::cerr << "[ fault    ] 503 beyond the budget (" << secs << " s): " << b.err;
  EXPECT_LT(secs, 60.0) << "bounded: 3 attempts, backoff capped";
  std::map<std::string, int> attempts;
  for (const auto& r : Since(proxy_->Requests(), before))
    if (r.fault == "503") attempts[r.path]++;
  ASSERT_FALSE(attempts.empty());
  int exhausted = 0;
  for (const auto& [path, n] : attempts) {
    EXPECT_LE(n, 3) << path;
    exhausted += n == 3;
  }
  EXPECT_GT(exhausted, 0) << "an object was tried exactly 3 times";

  proxy_->SetSchedule(FaultSchedule());
  RunResult c = Bw({"check", "--read-data"});
  EXPECT_EQ(c.exit_code, 0) << c.out << c.err;
  RunResult snaps = Bw({"--json", "snapshots"});
  ASSERT_EQ(snaps.exit_code, 0) << snaps.err;
  EXPECT_EQ(snaps.out.rfind("[{", 0), 0u) << snaps.out;
  EXPECT_EQ(nlohmann::json::parse(snaps.out.substr(0, snaps.out.find('\n'))).size(), 1u)
      << "no snapshot of the failed backup: " << snaps.out;
  RunResult r = Bw({"restore", "latest", "--target", s_.Path("out")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectIdentical(s_.Path("src"), s_.Path("out") + s_.Path("src"));
}

// An upload cut off mid-body never becomes a (partial) object: with no
// attempts left the PUT fails and the server lists nothing; with attempts
// left the retry stores the whole object.
TEST_F(S3FaultTest, UploadCutOffMidBodyLeavesNoPartialObject) {
  std::string blob = RandomBytes(1 << 20, 51);
  proxy_->SetSchedule(FaultSchedule().Rate(1).Kinds({"drop-request"}).Methods({"PUT"}));
  auto one = ProxiedBackend(1);
  EXPECT_EQ(CodeOf([&] { one->Put("data/aa/cut", AsBytes(blob)); }), ErrorCode::kIo);
  auto cut = proxy_->Requests();
  ASSERT_FALSE(cut.empty());
  EXPECT_EQ(cut.back().fault, "drop-request");
  EXPECT_EQ(ServerKeys("direct/data/"), std::vector<std::string>{}) << "nothing of the cut upload is visible";

  proxy_->SetSchedule(FaultSchedule().Methods({"PUT"}).Sequence({"drop-request"}));
  auto three = ProxiedBackend(3);
  three->Put("data/aa/cut", AsBytes(blob));
  EXPECT_EQ(ServerKeys("direct/data/"), std::vector<std::string>{"direct/data/aa/cut"});
  S3Response got = srv_->Request("GET", "/faulty/direct/data/aa/cut");
  ASSERT_EQ(got.status, 200);
  EXPECT_TRUE(got.body == blob) << "the whole object, " << got.body.size() << " bytes";
}

// The answer to CompleteMultipartUpload is lost after the server completed
// the upload: the resent request finds the upload gone (404 NoSuchUpload),
// and the Put still succeeds, because the object is there, whole.
TEST_F(S3FaultTest, LostAnswerToCompleteMultipartUploadStillSucceeds) {
  auto be = ProxiedBackend(3);
  std::string big = RandomBytes(storage::s3::kMultipartThreshold + 1, 61);
  proxy_->SetSchedule(FaultSchedule().Methods({"POST"}).PathRegex("uploadId=").Sequence({"drop"}));
  be->Put("data/bb/big", AsBytes(big));
  std::vector<ProxiedRequest> completes;
  for (const auto& r : proxy_->Requests())
    if (r.method == "POST" && r.query.find("uploadId=") != std::string::npos) completes.push_back(r);
  ASSERT_EQ(completes.size(), 2u);
  EXPECT_EQ(completes[0].fault, "drop");
  EXPECT_EQ(completes[0].upstream_status, 200) << "the server completed the upload";
  EXPECT_EQ(completes[1].status, 404) << "NoSuchUpload on the resend";
  S3Response head = srv_->Request("HEAD", "/faulty/direct/data/bb/big");
  ASSERT_EQ(head.status, 200);
  EXPECT_EQ(head.Header("content-length"), std::to_string(big.size()));
}

}  // namespace
}  // namespace bulwark::testing
