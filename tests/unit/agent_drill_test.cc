// Drills as agent jobs: jobs::RunDrillJob on an in-memory repository, the
// drill figures in metrics, the RTO alert rule, and the agent's drill lane
// (a fake runner and clock: the drill schedule makes drill jobs, one job per
// source at a time).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <fstream>
#include <mutex>
#include <thread>

#include "bulwark/agent/agent.h"
#include "bulwark/agent/alerts.h"
#include "bulwark/config/config.h"
#include "bulwark/jobs/drill.h"
#include "bulwark/jobs/job.h"
#include "bulwark/metrics/bulwark_metrics.h"
#include "bulwark/repo/drill_record.h"
#include "bulwark/repo/repository.h"
#include "bulwark/storage/backend.h"
#include "test_util.h"

namespace bulwark {
namespace {

int64_t Utc2024() { return 1704067200; }  // 2024-01-01T00:00:00Z (date -d @1704067200 -u)

// Polls `cond` every 10 ms for up to `seconds` (the agent's loop wakes at
// least once a second).
bool WaitUntil(const std::function<bool()>& cond, int seconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

class DrillJobTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = storage::NewMemoryBackend();
    repo::InitOptions o;
    o.kdf = crypto::KdfParams{1, 8 << 20, {}};
    repo::Repository::Init(*store_, "pw", o);
    std::ofstream(data_.path() + "/a.txt") << "drill me";
    std::ofstream(data_.path() + "/b.txt") << std::string(100000, 'b');
    cfg_ = config::Parse("version: 1\nrepositories:\n  main: {url: /unused}\nsources:\n  docs:\n    kind: fs\n"
                         "    paths: [" +
                             data_.path() + "]\n    drill:\n      schedule: \"@daily\"\n      target: {dir: " +
                             scratch_.path() + "}\n",
                         "t.yaml");
    env_.config = &cfg_;
    env_.threads = 2;
    env_.open_repository = [this](const config::RepositoryConfig&) {
      return repo::Repository::Open(std::make_unique<storage::ForwardingBackend>(store_), "pw");
    };
  }

  std::vector<repo::DrillRecord> Records() {
    auto r = repo::Repository::Open(std::make_unique<storage::ForwardingBackend>(store_), "pw");
    return repo::LoadDrillRecords(*r);
  }

  std::shared_ptr<storage::Backend> store_;
  TempDir data_, scratch_;
  config::Config cfg_;
  jobs::JobEnv env_;
};

TEST_F(DrillJobTest, NothingToDrillFailsWithoutARecord) {
  jobs::JobReport r = jobs::RunDrillJob(env_, "docs", "scheduled-x", "");
  EXPECT_EQ(r.kind, jobs::JobKind::kDrill);
  EXPECT_EQ(r.status, jobs::JobStatus::kFailed);
  EXPECT_FALSE(r.drill_passed.has_value());
  EXPECT_NE(r.error.find("drill: "), std::string::npos) << r.error;
  EXPECT_TRUE(Records().empty());
  metrics::SourceFigures f;
  metrics::ApplyReport(&f, r);
  EXPECT_EQ(f.drill_ok, false);  // nothing proven restorable
  EXPECT_FALSE(f.drill_duration_seconds.has_value());
  EXPECT_EQ(f.success_total + f.failure_total, 0u);  // backup counters untouched
}

TEST_F(DrillJobTest, PassingDrillStoresItsRecordAndSetsTheFigures) {
  jobs::JobReport b = jobs::RunBackupJob(env_, "docs", "manual-1");
  ASSERT_TRUE(b.ok()) << b.error;
  jobs::JobReport r = jobs::RunDrillJob(env_, "docs", "scheduled-1", "");
  ASSERT_TRUE(r.ok()) << r.error;
  ASSERT_EQ(r.drill_passed, true);
  EXPECT_EQ(r.snapshot_id, b.snapshot_id);
  EXPECT_GT(r.drill_rto_seconds, 0);
  auto records = Records();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].id.Hex(), r.drill_id);
  EXPECT_TRUE(records[0].passed);
  EXPECT_EQ(r.ToJson()["drill"]["passed"], true);
  // The scratch directory is gone again.
  EXPECT_TRUE(std::filesystem::is_empty(scratch_.path()));

  // The figures from the report, and from the repository after a restart.
  metrics::SourceFigures from_job, from_repo;
  metrics::ApplyReport(&from_job, r);
  EXPECT_EQ(from_job.drill_ok, true);
  EXPECT_EQ(from_job.drill_duration_seconds, r.drill_rto_seconds);
  from_repo.source = "docs";
  auto repo = env_.open_repository(*cfg_.Repository("main"));
  metrics::RefreshFromRepository(&from_repo, *repo);
  EXPECT_EQ(from_repo.drill_ok, true);
  EXPECT_DOUBLE_EQ(*from_repo.drill_duration_seconds, records[0].total_seconds);
}

TEST_F(DrillJobTest, DrillOfADamagedRepositoryFailsAndKeepsTheEvidence) {
  ASSERT_TRUE(jobs::RunBackupJob(env_, "docs", "manual-1").ok());
  // Lose every data pack: the restore cannot succeed.
  for (const auto& o : store_->List("data/")) store_->Remove(o.name);
  jobs::JobReport r = jobs::RunDrillJob(env_, "docs", "scheduled-2", "");
  EXPECT_EQ(r.status, jobs::JobStatus::kFailed);
  ASSERT_EQ(r.drill_passed, false);
  EXPECT_NE(r.error.find("drill failed"), std::string::npos) << r.error;
  auto records = Records();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_FALSE(records[0].passed);
  metrics::SourceFigures from_repo;
  from_repo.source = "docs";
  auto repo = env_.open_repository(*cfg_.Repository("main"));
  metrics::RefreshFromRepository(&from_repo, *repo);
  EXPECT_EQ(from_repo.drill_ok, false);
}

TEST(DrillAlerts, RestoreRTOExceededPerSourceWithABudget) {
  auto cfg = config::Parse(R"(
version: 1
repositories:
  local: {url: /tmp/r}
sources:
  docs: {kind: fs, paths: [/etc], drill: {rto: 15m}}
  plain: {kind: fs, paths: [/etc], drill: {schedule: "@weekly"}}
)",
                           "t.yaml");
  std::vector<std::string> rto;
  for (const auto& r : agent::BuildAlertRules(cfg, agent::HealthOptions{}, Utc2024()))
    if (r.alert == "RestoreRTOExceeded") rto.push_back(r.source + " " + r.expr);
  EXPECT_EQ(rto, std::vector<std::string>{"docs bulwark_drill_duration_seconds{source=\"docs\"} > 900"});
}

// A clock the test moves while the agent's loop reads it.
class StepClock : public agent::Clock {
 public:
  explicit StepClock(int64_t now) : now_(now) {}
  int64_t NowSeconds() const override { return now_.load(); }
  void Advance(int64_t s) { now_ += s; }

 private:
  std::atomic<int64_t> now_;
};

TEST(AgentDrillLane, TheDrillScheduleRunsDrillJobsOneJobPerSourceAtATime) {
  TempDir state;
  auto cfg = config::Parse(R"(
version: 1
repositories:
  local: {url: /tmp/r}
sources:
  docs: {kind: fs, paths: [/etc], schedule: "0 * * * *", drill: {schedule: "30 * * * *"}}
  nodrill: {kind: fs, paths: [/etc], schedule: "0 * * * *"}
)",
                           "t.yaml");
  StepClock clock(Utc2024());
  std::mutex mu;
  std::vector<std::pair<jobs::JobKind, std::string>> seen;
  std::atomic<int> running_docs{0}, overlap{0};
  agent::AgentOptions o;
  o.state_dir = state.path();
  o.listen = "";
  agent::Agent a(
      cfg, o,
      [&](const agent::JobRequest& req, const std::atomic<bool>&) {
        if (req.source == "docs" && running_docs.fetch_add(1) > 0) ++overlap;
        {
          std::lock_guard<std::mutex> l(mu);
          seen.push_back({req.kind, req.source});
        }
        jobs::JobReport r;
        r.kind = req.kind;
        r.source = req.source;
        r.status = jobs::JobStatus::kSuccess;
        if (req.kind == jobs::JobKind::kDrill) {
          r.drill_passed = true;
          r.drill_rto_seconds = 12.5;
        }
        if (req.source == "docs") --running_docs;
        return r;
      },
      nullptr, clock);
  std::atomic<bool> ready{false};
  a.on_ready = [&] { ready = true; };
  std::thread t([&] { a.Run(); });
  // The schedules count from the agent's start: move the clock only after it.
  if (!WaitUntil([&] { return ready.load(); }, 20)) {
    a.Stop();
    t.join();
    FAIL() << "the agent never became ready";
  }
  auto count = [&](jobs::JobKind k, const std::string& src) {
    std::lock_guard<std::mutex> l(mu);
    return std::count(seen.begin(), seen.end(), std::make_pair(k, src));
  };
  // 00:31: the drill slot of 00:30 has passed, the backup slot of 01:00 not.
  clock.Advance(31 * 60);
  EXPECT_TRUE(WaitUntil([&] { return count(jobs::JobKind::kDrill, "docs") == 1; }, 20));
  EXPECT_EQ(count(jobs::JobKind::kBackup, "docs"), 0);
  EXPECT_EQ(count(jobs::JobKind::kDrill, "nodrill"), 0);
  // 01:31: one backup (01:00) and one more drill (01:30) of docs, never at once.
  clock.Advance(60 * 60);
  EXPECT_TRUE(WaitUntil(
      [&] { return count(jobs::JobKind::kDrill, "docs") == 2 && count(jobs::JobKind::kBackup, "docs") == 1; }, 20));
  EXPECT_EQ(count(jobs::JobKind::kBackup, "nodrill"), 1);
  EXPECT_EQ(overlap.load(), 0);
  EXPECT_TRUE(WaitUntil(
      [&] { return a.MetricsText().find("bulwark_drill_duration_seconds{source=\"docs\",repository=\"local\"} 12.5") !=
                   std::string::npos; },
      20))
      << a.MetricsText();
  a.Stop();
  t.join();
  EXPECT_TRUE(std::filesystem::exists(state.path() + "/drills.json"));
}

}  // namespace
}  // namespace bulwark
