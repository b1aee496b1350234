// bulwark agent: the long-running process that runs every source's jobs on
// schedule, serves Prometheus metrics and health, and accepts commands.
//
// Jobs: the Scheduler (bulwark/agent/scheduler.h) says what is due; the agent
// starts at most `max_jobs` jobs at a time, at most one per source (across
// job kinds), each on its own thread, through the injected JobRunner (the
// real one is jobs::RunBackupJob). A job's failure is recorded and does not
// affect other sources. State is saved (StateStore) after every job start
// and end. On-demand runs (Submit) queue behind --max-jobs like scheduled
// ones and do not count as serving a slot.
//
// Job kinds: each kind has a lane = its own Scheduler and state file:
// backup (the source's `schedule`, scheduler.json) and drill (the source's
// `drill.schedule`, drills.json; the runner runs jobs::RunDrillJob). A
// source runs one job of any kind at a time: a drill due while its source's
// backup runs starts after it. Suspend/Resume apply to both lanes.
//
// HTTP (cpp-httplib, one listener, `listen`, default 127.0.0.1:9464; port 0
// picks a free one):
//   GET  /metrics   Prometheus text format 0.0.4 (bulwark/metrics/bulwark_metrics.h)
//   GET  /healthz   200 {"status":"ok",...} or 503 naming every failing check (health.h)
//   Control (every request needs "Authorization: Bearer <token>", the
//   content of <state dir>/control.token, 0600, made at start: only users
//   who can read the state directory can control the agent):
//   POST /api/v1/run      {"source","name"} -> 202 {"id"}; 404 unknown source;
//                         409 when a job of the source runs or is queued
//   GET  /api/v1/jobs/ID  {"id","state": queued|running|done, "report"}
//   POST /api/v1/suspend  {"source"} ; POST /api/v1/resume {"source"}
//   GET  /api/v1/agent    {"pid","version","state_dir"}
// <state dir>/agent.json {"pid","listen":"127.0.0.1:PORT"} says where the
// running agent listens (written after the listener is bound).
//
// Exclusivity: the agent holds an exclusive flock on <state dir>/agent.lock
// for its lifetime (so does an in-process `bulwark run`/`suspend` while it
// edits the state): a second agent on the same state directory fails with
// Error(kLocked).
//
// Shutdown (Stop, e.g. on SIGTERM/SIGINT): no new job starts; running jobs
// get `shutdown_grace_seconds` to end; after that each is abandoned: its
// cancel flag is set (a backup that has not committed aborts without a
// snapshot), it is recorded as kAbandoned in the state, and Run returns. Run
// returns 0 after a clean shutdown.
//
// Thread-safety: Submit, Suspend, Resume, Stop, MetricsText, Health may be
// called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bulwark/agent/health.h"
#include "bulwark/agent/scheduler.h"
#include "bulwark/agent/state.h"
#include "bulwark/config/config.h"
#include "bulwark/jobs/job.h"
#include "bulwark/metrics/bulwark_metrics.h"

namespace bulwark::agent {

struct AgentOptions {
  std::string state_dir;                  // must exist; created by the CLI
  std::string listen = "127.0.0.1:9464";  // host:port; "" = no HTTP listener
  int max_jobs = 2;                       // jobs running at the same time, >= 1
  int64_t shutdown_grace_seconds = 60;
  int64_t refresh_seconds = 60;  // repository figures of PostgreSQL physical sources (WAL)
  bool once = false;             // run every scheduled, unsuspended source once now, then return
  HealthOptions health;
};

struct JobRequest {
  uint64_t id = 0;
  jobs::JobKind kind = jobs::JobKind::kBackup;
  std::string source;
  std::string name;
  std::optional<int64_t> slot;  // the scheduled slot; nullopt for on-demand runs
};

// Runs one job; `cancel` becomes true at shutdown after the grace period.
using JobRunner = std::function<jobs::JobReport(const JobRequest&, const std::atomic<bool>& cancel)>;
// Refreshes a source's repository figures (metrics::RefreshFromRepository on
// an opened repository). May throw; the agent logs and goes on.
using Refresher = std::function<void(metrics::SourceFigures*)>;

class Agent {
 public:
  Agent(const config::Config& config, AgentOptions options, JobRunner runner, Refresher refresher, const Clock& clock);
  ~Agent();

  // Takes the state directory's lock, loads state, starts the listener and
  // runs until Stop() (or, with `once`, until the jobs ended). Returns the
  // exit code: 0 (with `once`: 0 if every job succeeded, else 1). Throws
  // Error(kLocked) when another process holds the state directory,
  // Error(kInvalidArgument) for a bad `listen`, ErrnoError for I/O.
  int Run();
  // Asks Run to shut down (async-signal-unsafe: call it from a thread).
  void Stop();

  // The port actually listened on (after Run started listening), else 0.
  int port() const { return port_.load(); }
  // Called once the listener is up and state is loaded (tests wait for it).
  std::function<void()> on_ready;

  // On-demand run of `source`'s backup job; returns its id. Throws
  // Error(kNotFound) for an unknown source, Error(kLocked) when a job of it
  // is running or queued, Error(kCancelled) while shutting down.
  uint64_t Submit(const std::string& source, const std::string& name);
  // {"id","source","name","state","report"}; nullopt for an unknown id.
  std::optional<nlohmann::json> JobInfo(uint64_t id) const;
  void Suspend(const std::string& source);  // as Scheduler::Suspend, then saved
  void Resume(const std::string& source);   // as Scheduler::Resume, then saved

  std::string MetricsText() const;
  Health CurrentHealth() const;

 private:
  struct Lane {
    jobs::JobKind kind;
    std::unique_ptr<Scheduler> scheduler;
    std::unique_ptr<StateStore> store;
  };
  struct Running {
    JobRequest request;
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> cancel;
    bool done = false;
  };
  struct Record {
    JobRequest request;
    std::string state;  // queued, running, done
    std::optional<jobs::JobReport> report;
  };

  Lane& LaneOf(jobs::JobKind kind);
  void Save(Lane& lane);                     // mu_ held
  void StartJob(const JobRequest& request);  // mu_ held
  void StartPending();                       // mu_ held: queued on-demand jobs, then due jobs
  void JobThread(JobRequest request, std::shared_ptr<std::atomic<bool>> cancel);
  void Reap();  // mu_ held: join finished threads
  void RefreshAll(bool only_wal);
  void Serve();
  void CheckSource(const std::string& source) const;

  const config::Config& config_;
  AgentOptions options_;
  JobRunner runner_;
  Refresher refresher_;
  const Clock& clock_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Lane> lanes_;
  std::map<std::string, metrics::SourceFigures> figures_;
  std::map<uint64_t, Running> running_;  // by job id
  std::vector<JobRequest> queued_;       // on-demand, in order
  std::map<uint64_t, Record> records_;   // recent jobs by id (the last 1000)
  uint64_t next_id_ = 1;
  bool stopping_ = false;
  int64_t started_at_ = 0;
  int once_failures_ = 0;

  std::atomic<int> port_{0};
  std::string token_;
  int lock_fd_ = -1;
  struct Http;
  std::unique_ptr<Http> http_;
  std::thread http_thread_, refresh_thread_;
};

// The state directory's lock (<dir>/agent.lock, flock): for an in-process
// `bulwark run`, `suspend`, `resume`. TryLock returns nullopt when another
// process (an agent) holds it. The fd closes (unlocking) with the object.
class StateDirLock {
 public:
  static std::unique_ptr<StateDirLock> TryLock(const std::string& dir, const std::string& holder);
  ~StateDirLock();
  StateDirLock(const StateDirLock&) = delete;
  StateDirLock& operator=(const StateDirLock&) = delete;

 private:
  explicit StateDirLock(int fd) : fd_(fd) {}
  int fd_;
};

// Jobs the state records as running although nobody runs them: called by
// whoever just took the state directory's lock (the agent at start, an
// in-process `bulwark run`), so no job of this state can still be running;
// the process that ran them ended (crash, SIGKILL, power loss) before it
// recorded their end. Each is finished as kAbandoned, so that the source is
// scheduled again (a source marked running is never due). Returns how many.
int RecoverInterruptedJobs(Scheduler& scheduler);

// Where a running agent of `state_dir` listens and its token; nullopt when
// agent.json or control.token is missing or the pid in agent.json is dead.
struct AgentEndpoint {
  std::string host;
  int port = 0;
  std::string token;
};
std::optional<AgentEndpoint> FindAgent(const std::string& state_dir);

// Sends a control request to the agent: `method` "GET" or "POST", `path`
// "/api/v1/...", `body` JSON (POST). Returns {status, parsed JSON body}.
// Throws Error(kIo) when the agent cannot be reached.
std::pair<int, nlohmann::json> ControlRequest(const AgentEndpoint& agent, const std::string& method,
                                              const std::string& path, const nlohmann::json& body = nullptr);

}  // namespace bulwark::agent
