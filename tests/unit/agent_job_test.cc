// The job runner (jobs::RunBackupJob): hooks, backup, forget by retention,
// copy_to, with in-memory repositories behind the opener.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <map>

#include "bulwark/config/config.h"
#include "bulwark/jobs/job.h"
#include "bulwark/repo/repository.h"
#include "bulwark/storage/backend.h"
#include "test_util.h"

namespace bulwark::jobs {
namespace {

class JobFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"main", "offsite"}) {
      std::shared_ptr<storage::Backend> b = storage::NewMemoryBackend();
      repo::InitOptions o;
      o.kdf = crypto::KdfParams{1, 8 << 20, {}};
      repo::Repository::Init(*b, "pw", o);
      stores_[name] = b;
    }
    std::ofstream(data_.path() + "/a.txt") << "hello";
  }

  config::Config Config(const std::string& extra) {
    return config::Parse(
        "version: 1\nrepositories:\n  main: {url: /unused/main}\n  offsite: {url: /unused/offsite}\n"
        "sources:\n  docs:\n    kind: fs\n    repository: main\n    paths: [" +
            data_.path() + "]\n" + extra,
        "test.yaml");
  }

  JobEnv Env(const config::Config& cfg) {
    JobEnv env;
    env.config = &cfg;
    env.threads = 2;
    env.open_repository = [this](const config::RepositoryConfig& rc) {
      ++opened_;
      return repo::Repository::Open(std::make_unique<storage::ForwardingBackend>(stores_.at(rc.name)), "pw");
    };
    return env;
  }

  std::vector<repo::Snapshot> Snapshots(const std::string& name) {
    auto r = repo::Repository::Open(std::make_unique<storage::ForwardingBackend>(stores_.at(name)), "pw");
    return r->LoadSnapshots();
  }

  TempDir data_;
  std::map<std::string, std::shared_ptr<storage::Backend>> stores_;
  int opened_ = 0;
};

TEST_F(JobFixture, AgentJobBackupForgetCopy) {
  auto cfg = Config("    retention: {keep_last: 2}\n    copy_to: [offsite]\n");
  for (int i = 0; i < 3; ++i) {
    JobReport r = RunBackupJob(Env(cfg), "docs", "run-" + std::to_string(i));
    ASSERT_EQ(r.status, JobStatus::kSuccess) << r.error;
    EXPECT_EQ(r.name, "run-" + std::to_string(i));
    EXPECT_EQ(r.snapshot_id.size(), 64u);
    EXPECT_GT(r.snapshot_time, 0);
    EXPECT_EQ(r.bytes_processed, 5u);
    EXPECT_TRUE(r.forget.applied);
    ASSERT_EQ(r.copies.size(), 1u);
    EXPECT_EQ(r.copies[0].error, "");
    EXPECT_EQ(r.ToJson()["status"], "success");
  }
  EXPECT_EQ(Snapshots("main").size(), 2u);     // keep_last 2
  EXPECT_EQ(Snapshots("offsite").size(), 3u);  // copies are not forgotten by the source's policy
}

TEST_F(JobFixture, AgentJobFailingPreHookStoresNothing) {
  auto cfg = Config(
      "    hooks:\n      pre:\n        - {command: [\"false\"], on_error: fail}\n      post:\n"
      "        - {command: [touch, " +
      data_.path() + "/post-ran]}\n");
  JobReport r = RunBackupJob(Env(cfg), "docs", "x");
  EXPECT_EQ(r.status, JobStatus::kFailed);
  EXPECT_NE(r.error.find("pre hook 'false' exited with status 1"), std::string::npos) << r.error;
  EXPECT_EQ(r.snapshot_id, "");
  EXPECT_EQ(opened_, 0);  // the repository was not even opened
  EXPECT_TRUE(Snapshots("main").empty());
  EXPECT_TRUE(std::filesystem::exists(data_.path() + "/post-ran"));  // post hooks always run
}

TEST_F(JobFixture, AgentJobContinueGoesOn) {
  auto cfg = Config(
      "    hooks:\n      pre:\n        - {command: [\"false\"], on_error: continue}\n"
      "        - {command: [sleep, \"5\"], timeout: 1s, on_error: continue}\n");
  JobReport r = RunBackupJob(Env(cfg), "docs", "x");
  EXPECT_EQ(r.status, JobStatus::kSuccess) << r.error;
  EXPECT_EQ(r.errors.size(), 2u);
  EXPECT_NE(r.errors[1].find("timed out after 1 s"), std::string::npos) << r.errors[1];
  EXPECT_LT(r.hooks_seconds, 4);
  EXPECT_EQ(Snapshots("main").size(), 1u);
}

TEST_F(JobFixture, AgentJobHookTimeoutKillsWhatAShellStarted) {
  // The shell's child holds the output pipe: killing only the shell would
  // leave the job waiting for `sleep 30`.
  auto cfg = Config(
      "    hooks:\n      pre:\n"
      "        - {command: [sh, -c, \"sleep 30; true\"], timeout: 1s, on_error: fail}\n");
  JobReport r = RunBackupJob(Env(cfg), "docs", "x");
  EXPECT_EQ(r.status, JobStatus::kFailed);
  EXPECT_NE(r.error.find("timed out after 1 s"), std::string::npos) << r.error;
  EXPECT_LT(r.hooks_seconds, 10);
  EXPECT_TRUE(Snapshots("main").empty());
}

TEST_F(JobFixture, AgentJobHooksDoNotInheritBlockedSignals) {
  // The agent blocks SIGTERM in its threads (a sigwait thread takes it); a
  // hook must still die of SIGTERM.
  sigset_t term, old;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, &old);
  auto cfg = Config("    hooks:\n      pre:\n        - {command: [sh, -c, \"kill -TERM $$; exit 0\"]}\n");
  JobReport r = RunBackupJob(Env(cfg), "docs", "x");
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  EXPECT_EQ(r.status, JobStatus::kFailed);
  EXPECT_NE(r.error.find("killed by signal 15"), std::string::npos) << r.error;
}

TEST_F(JobFixture, AgentJobFailingPostHookFailsTheRunButKeepsTheSnapshot) {
  auto cfg = Config("    hooks:\n      post:\n        - {command: [\"false\"]}\n");
  JobReport r = RunBackupJob(Env(cfg), "docs", "x");
  EXPECT_EQ(r.status, JobStatus::kFailed);
  EXPECT_NE(r.snapshot_id, "");
  EXPECT_EQ(Snapshots("main").size(), 1u);
}

TEST_F(JobFixture, AgentJobMissingPathFails) {
  auto cfg = Config("");
  std::filesystem::remove_all(data_.path());
  JobReport r = RunBackupJob(Env(cfg), "docs", "x");
  EXPECT_EQ(r.status, JobStatus::kFailed);
  EXPECT_EQ(r.error_code, ErrorCode::kNotFound);
  EXPECT_NE(r.error.find("does not exist"), std::string::npos);
}

TEST_F(JobFixture, AgentJobCancelledBeforeCommitIsAbandoned) {
  auto cfg = Config("");
  std::atomic<bool> cancel{true};
  JobEnv env = Env(cfg);
  env.cancel = &cancel;
  JobReport r = RunBackupJob(env, "docs", "x");
  EXPECT_EQ(r.status, JobStatus::kAbandoned);
  EXPECT_TRUE(Snapshots("main").empty());
}

}  // namespace
}  // namespace bulwark::jobs
