// bulwark agent, run, suspend, resume, alerts: the scheduled side of bulwark
// (docs/AGENT.md). The logic is in agent/ and jobs/; this file wires the
// CLI's repository opening, state directory and output to it.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "bulwark/agent/agent.h"
#include "bulwark/agent/alerts.h"
#include "bulwark/base/error.h"
#include "bulwark/base/log.h"
#include "bulwark/cli/common.h"
#include "bulwark/config/config.h"
#include "bulwark/jobs/drill.h"
#include "bulwark/jobs/job.h"
#include "bulwark/metrics/push.h"

namespace bulwark::cli {
namespace {

const config::Config& RequireConfig(const char* command) {
  const config::Config* c = Config();
  if (!c)
    throw Error(ErrorCode::kInvalidArgument,
                std::string(command) + " needs a configuration file (--config or BULWARK_CONFIG)");
  return *c;
}

// --state-dir, BULWARK_STATE_DIR, /var/lib/bulwark (root), else
// $XDG_STATE_HOME/bulwark or ~/.local/state/bulwark; created 0700.
std::string StateDir(const std::string& flag) {
  std::string dir = flag;
  if (dir.empty() && std::getenv("BULWARK_STATE_DIR")) dir = std::getenv("BULWARK_STATE_DIR");
  if (dir.empty() && ::geteuid() == 0) dir = "/var/lib/bulwark";
  if (dir.empty() && std::getenv("XDG_STATE_HOME")) dir = std::string(std::getenv("XDG_STATE_HOME")) + "/bulwark";
  if (dir.empty() && std::getenv("HOME")) dir = std::string(std::getenv("HOME")) + "/.local/state/bulwark";
  if (dir.empty())
    throw Error(ErrorCode::kInvalidArgument, "no state directory: give --state-dir or BULWARK_STATE_DIR");
  std::string partial;
  for (size_t i = 0; i <= dir.size(); ++i) {
    if (i == dir.size() || (dir[i] == '/' && i > 0)) {
      partial = dir.substr(0, i);
      if (::mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) throw ErrnoError("creating state directory", partial);
    }
  }
  return dir;
}

jobs::JobEnv MakeJobEnv(const config::Config& cfg) {
  jobs::JobEnv env;
  env.config = &cfg;
  env.open_repository = [](const config::RepositoryConfig& rc) { return OpenConfiguredRepository(rc, false); };
  env.lock_wait_seconds = LockWaitSeconds();
  return env;
}

void RefreshFigures(const config::Config& cfg, metrics::SourceFigures* f) {
  const config::RepositoryConfig* rc = cfg.Repository(f->repository);
  if (!rc) return;
  auto repo = OpenConfiguredRepository(*rc, false);
  metrics::RefreshFromRepository(f, *repo);
}

int ExitCodeOf(const jobs::JobReport& r) {
  switch (r.status) {
    case jobs::JobStatus::kSuccess:
      return kExitOk;
    case jobs::JobStatus::kPartial:
      return kExitPartial;
    default:
      return kExitError;
  }
}

void PrintReport(const nlohmann::json& j) {
  if (G().json) {
    PrintJson(j);
    return;
  }
  std::string line = "source '" + j.value("source", "") + "' job " + j.value("name", "") + ": " + j.value("status", "");
  if (!j.value("snapshot_id", "").empty()) line += ", snapshot " + j.value("snapshot_id", "").substr(0, 8);
  Say(line);
  if (!j.value("error", "").empty()) Say("  error: " + j.value("error", ""));
  if (j.contains("forget") && j["forget"].value("applied", false))
    Say("  forget: kept " + std::to_string(j["forget"].value("kept", 0)) + ", removed " +
        std::to_string(j["forget"].value("removed", 0)));
  for (const auto& c : j.value("copies", nlohmann::json::array()))
    Say("  copy to '" + c.value("repository", "") + "': " +
        (c.value("error", "").empty() ? std::to_string(c.value("snapshots_copied", 0)) + " snapshots copied"
                                      : "FAILED: " + c.value("error", "")));
}

// ---------------------------------------------------------------------------
// agent

struct AgentOpts {
  std::string state_dir, listen = "127.0.0.1:9464", grace = "60s", min_slack = "5m", max_wal_lag = "15m",
                         refresh = "60s";
  int max_jobs = 2;
  bool once = false;
};

agent::HealthOptions HealthFlags(const std::string& min_slack, const std::string& max_wal_lag) {
  agent::HealthOptions h;
  h.min_slack_seconds = WithContext("--min-slack", [&] { return config::ParseDuration(min_slack); });
  h.max_wal_lag_seconds = WithContext("--max-wal-lag", [&] { return config::ParseDuration(max_wal_lag); });
  return h;
}

constexpr int64_t kAgentLockWaitSeconds = 3600;

void RunAgent(const AgentOpts& o) {
  const config::Config& cfg = RequireConfig("agent");
  agent::AgentOptions ao;
  ao.state_dir = StateDir(o.state_dir);
  ao.listen = o.listen;
  ao.max_jobs = o.max_jobs;
  ao.once = o.once;
  ao.shutdown_grace_seconds = WithContext("--shutdown-grace", [&] { return config::ParseDuration(o.grace); });
  ao.refresh_seconds = WithContext("--refresh", [&] { return config::ParseDuration(o.refresh); });
  ao.health = HealthFlags(o.min_slack, o.max_wal_lag);
  // Signals go to one thread (sigwait), which asks the agent to stop; block
  // them before any thread starts so that every thread inherits the mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  static agent::SystemClock clock;
  jobs::JobEnv env = MakeJobEnv(cfg);
  // The agent's own jobs meet on shared repositories (one source's forget
  // needs the exclusive lock while another source's backup or drill holds a
  // shared one): they wait for each other instead of failing, unless
  // --lock-wait says otherwise.
  if (G().lock_wait == "0s") env.lock_wait_seconds = kAgentLockWaitSeconds;
  auto* a = new agent::Agent(
      cfg, ao,
      [env](const agent::JobRequest& req, const std::atomic<bool>& cancel) {
        jobs::JobEnv e = env;
        e.cancel = &cancel;
        // Every job is recorded in the audit log of the repositories it
        // opened (its source's, its copy_to destinations).
        if (req.kind == jobs::JobKind::kDrill) {
          JobAudit audit("agent drill", {"agent", "drill", req.source, "--name", req.name});
          const config::SourceConfig& src = env.config->Source(req.source);
          const bool physical = src.kind == config::SourceKind::kPostgres && src.pg_mode == config::PgMode::kPhysical;
          jobs::JobReport r =
              jobs::RunDrillJob(e, req.source, req.name, physical ? WalFetchRestoreCommandFor(req.source) : "");
          const Error error(r.error.empty() ? ErrorCode::kInternal : r.error_code, r.error);
          audit.Finish(r.ok() ? kExitOk : r.drill_passed ? kExitDrillFailed : ExitCodeFor(r.error_code),
                       r.error.empty() ? nullptr : &error);
          return r;
        }
        JobAudit audit("agent job", {"agent", "job", req.source, "--name", req.name});
        jobs::JobReport r = jobs::RunBackupJob(e, req.source, req.name);
        const Error error(r.error.empty() ? ErrorCode::kInternal : r.error_code, r.error);
        audit.Finish(ExitCodeOf(r), r.error.empty() ? nullptr : &error);
        return r;
      },
      [&cfg](metrics::SourceFigures* f) { RefreshFigures(cfg, f); }, clock);
  std::thread([a, set] {
    int sig = 0;
    sigwait(&set, &sig);
    log::Info(std::string("agent: ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") + " received, shutting down");
    a->Stop();
  }).detach();
  int rc = a->Run();
  // Jobs abandoned at shutdown may still run on their threads: end the
  // process without destructors (the state is saved; the repository is
  // crash-safe, ARCHITECTURE.md "Crash recovery").
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(rc);
}

// ---------------------------------------------------------------------------
// run

struct RunOpts {
  std::string source, name, state_dir, pushgateway;
  bool wait = false;
};

std::string PushgatewayUrl(const std::string& flag) {
  if (!flag.empty()) return flag;
  const char* e = std::getenv("BULWARK_PUSHGATEWAY");
  return e ? e : "";
}

void RunViaAgent(const agent::AgentEndpoint& ep, const RunOpts& o) {
  auto [status, j] = agent::ControlRequest(ep, "POST", "/api/v1/run", {{"source", o.source}, {"name", o.name}});
  if (status != 202)
    throw Error(status == 404   ? ErrorCode::kNotFound
                : status == 409 ? ErrorCode::kLocked
                                : ErrorCode::kIo,
                "agent refused the run: " + j.value("error", "HTTP " + std::to_string(status)));
  const uint64_t id = j.value("id", uint64_t{0});
  if (!o.wait) {
    if (G().json)
      PrintJson({{"message_type", "queued"}, {"id", id}, {"source", o.source}, {"name", j.value("name", "")}});
    else
      Say("job " + std::to_string(id) + " (" + j.value("name", "") + ") of source '" + o.source +
          "' queued in the agent");
    return;
  }
  for (;;) {
    auto [st, info] = agent::ControlRequest(ep, "GET", "/api/v1/jobs/" + std::to_string(id));
    if (st != 200) throw Error(ErrorCode::kIo, "agent: job " + std::to_string(id) + ": " + info.value("error", ""));
    if (info.value("state", "") == "done") {
      PrintReport(info["report"]);
      const std::string s = info["report"].value("status", "failed");
      ExitCode() = s == "success" ? kExitOk : s == "partial" ? kExitPartial : kExitError;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
}

void PushReport(const std::string& flag, const config::Config& cfg, const jobs::JobReport& r) {
  if (PushgatewayUrl(flag).empty()) return;
  metrics::SourceFigures f = metrics::FiguresFor(cfg.Source(r.source));
  metrics::ApplyReport(&f, r);
  try {
    RefreshFigures(cfg, &f);
  } catch (const Error& e) {
    log::Warn(std::string("pushgateway: repository figures not available: ") + e.what());
  }
  PushCommandMetrics(flag, r.source, f.repository, &f, /*replace_group=*/f.last_success.has_value());
}

void RunInProcess(const std::string& dir, const RunOpts& o) {
  const config::Config& cfg = RequireConfig("run");
  auto lock =
      agent::StateDirLock::TryLock(dir, "bulwark run " + o.source + " (pid " + std::to_string(::getpid()) + ")");
  if (!lock)
    throw Error(ErrorCode::kLocked, "state directory " + dir +
                                        " is locked by another bulwark process but no running agent answers there; "
                                        "retry, or check agent.lock");
  agent::SystemClock clock;
  agent::StateStore store(dir);
  agent::Scheduler sched(agent::SourcePolicy::FromConfig(cfg), store.Load(), clock);
  agent::RecoverInterruptedJobs(sched);
  sched.Start(o.source, std::nullopt);
  store.Save(sched.state());
  jobs::JobReport r = jobs::RunBackupJob(MakeJobEnv(cfg), o.source, o.name);
  sched.Finish(o.source, r.ok() ? agent::JobResult::kSuccess : agent::JobResult::kFailure, r.error);
  store.Save(sched.state());
  PrintReport(r.ToJson());
  PushReport(o.pushgateway, cfg, r);
  ExitCode() = ExitCodeOf(r);
}

void RunRun(RunOpts o) {
  const config::Config& cfg = RequireConfig("run");
  cfg.Source(o.source);  // unknown source: kNotFound naming the known ones
  if (o.name.empty()) o.name = jobs::RunName("manual", agent::SystemClock().NowSeconds());
  for (char c : o.name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      throw Error(ErrorCode::kInvalidArgument, "--name '" + o.name + "': use letters, digits, '-', '_', '.'");
  const std::string dir = StateDir(o.state_dir);
  if (auto ep = agent::FindAgent(dir)) return RunViaAgent(*ep, o);
  RunInProcess(dir, o);
}

// ---------------------------------------------------------------------------
// suspend / resume

void RunSuspend(const std::string& source, const std::string& state_dir, bool suspend) {
  const config::Config& cfg = RequireConfig(suspend ? "suspend" : "resume");
  cfg.Source(source);
  const std::string dir = StateDir(state_dir);
  bool via_agent = false;
  if (auto ep = agent::FindAgent(dir)) {
    auto [status, j] =
        agent::ControlRequest(*ep, "POST", suspend ? "/api/v1/suspend" : "/api/v1/resume", {{"source", source}});
    if (status != 200)
      throw Error(status == 400 ? ErrorCode::kInvalidArgument : ErrorCode::kIo,
                  "agent: " + j.value("error", "HTTP " + std::to_string(status)));
    via_agent = true;
  } else {
    auto lock = agent::StateDirLock::TryLock(
        dir, "bulwark " + std::string(suspend ? "suspend" : "resume") + " (pid " + std::to_string(::getpid()) + ")");
    if (!lock) throw Error(ErrorCode::kLocked, "state directory " + dir + " is locked but no agent answers; retry");
    agent::SystemClock clock;
    agent::StateStore store(dir);
    agent::Scheduler sched(agent::SourcePolicy::FromConfig(cfg), store.Load(), clock);
    if (suspend)
      sched.Suspend(source);
    else
      sched.Resume(source);
    store.Save(sched.state());
  }
  if (G().json)
    PrintJson({{"source", source}, {"suspended", suspend}, {"via_agent", via_agent}, {"state_dir", dir}});
  else
    Say("source '" + source + "' " + (suspend ? "suspended" : "resumed") +
        (via_agent ? " (running agent updated)" : " (state in " + dir + ")"));
}

}  // namespace

void AddPushgatewayFlag(CLI::App* cmd, std::string* url) {
  cmd->add_option("--pushgateway", *url,
                  "push this command's metrics to a Prometheus Pushgateway at this URL (or BULWARK_PUSHGATEWAY); "
                  "a failed push is only a warning");
}

void PushCommandMetrics(const std::string& flag, const std::string& source, const std::string& repository,
                        const metrics::SourceFigures* figures, bool replace_group) {
  const std::string url = PushgatewayUrl(flag);
  if (url.empty()) return;
  try {
    auto storage = metrics::StorageCounters::OfProcess();
    std::vector<metrics::SourceFigures> figs;
    if (figures) figs.push_back(*figures);
    auto families = metrics::BuildFamilies(figs, &storage, agent::SystemClock().NowSeconds());
    if (!replace_group) {
      // Only the families with samples: a POST replaces just those, so what
      // the last successful backup pushed (its timestamp) stays.
      std::vector<metrics::Family> nonempty;
      for (auto& f : families)
        if (!f.samples.empty()) nonempty.push_back(std::move(f));
      families = std::move(nonempty);
    }
    const auto mode = replace_group ? metrics::PushMode::kReplaceGroup : metrics::PushMode::kReplaceFamilies;
    if (source.empty())
      metrics::Push(url, "repository", repository, families, mode);
    else
      metrics::Push(url, "source", source, families, mode);
  } catch (const Error& e) {
    log::Warn(std::string("pushing metrics failed (the command's result is not affected): ") + e.what());
  }
}

void AddPushAfterSuccess(CLI::App* cmd, std::function<void()> run) {
  auto url = std::make_shared<std::string>();
  AddPushgatewayFlag(cmd, url.get());
  cmd->callback([cmd, url, run = std::move(run)] {
    run();
    std::string source;
    try {
      if (auto* opt = cmd->get_option_no_throw("--source"); opt && opt->count()) source = opt->as<std::string>();
    } catch (const CLI::Error&) {
    }
    if (PushgatewayUrl(*url).empty()) return;
    std::string repository;
    try {
      repository = RepoUrl(ConfiguredSource(source));
    } catch (const Error&) {
    }
    PushCommandMetrics(*url, source, repository, nullptr, /*replace_group=*/false);
  });
}

void AddAgent(CLI::App& app) {
  {
    auto o = std::make_shared<AgentOpts>();
    auto* cmd = app.add_subcommand("agent", "run every source's jobs on schedule; serve /metrics and /healthz");
    cmd->add_option("--state-dir", o->state_dir,
                    "state directory (or BULWARK_STATE_DIR; default /var/lib/bulwark as root, else "
                    "~/.local/state/bulwark)");
    cmd->add_option("--listen", o->listen,
                    "HTTP address for /metrics, /healthz and control (default 127.0.0.1:9464; "
                    "port 0 = any free port, see agent.json)");
    cmd->add_option("--max-jobs", o->max_jobs, "jobs running at the same time (default 2)");
    cmd->add_flag("--once", o->once, "run every scheduled, unsuspended source once now, then exit (1 if any failed)");
    cmd->add_option("--shutdown-grace", o->grace,
                    "on SIGTERM/SIGINT, wait this long for running jobs before abandoning them (default 60s)");
    cmd->add_option("--min-slack", o->min_slack,
                    "healthz: least slack past a due run before a source counts as stale (default 5m)");
    cmd->add_option("--max-wal-lag", o->max_wal_lag, "healthz: WAL archiving lag limit (default 15m)");
    cmd->add_option("--refresh", o->refresh, "re-read WAL archive figures this often (default 60s)");
    cmd->callback([o] { RunAgent(*o); });
  }
  {
    auto o = std::make_shared<RunOpts>();
    auto* cmd = app.add_subcommand(
        "run", "run a source's job (backup, forget, copy) now: through the running agent, else in this process");
    cmd->add_option("source", o->source, "the configured source")->required();
    cmd->add_option("--name", o->name, "the run's name (default manual-YYYYMMDD-HHMMSS, UTC)");
    cmd->add_flag("--wait", o->wait,
                  "with an agent: wait for the job and print its result (in-process runs always wait)");
    cmd->add_option("--state-dir", o->state_dir, "the agent's state directory (or BULWARK_STATE_DIR)");
    AddPushgatewayFlag(cmd, &o->pushgateway);
    cmd->callback([o] { RunRun(*o); });
  }
  for (bool suspend : {true, false}) {
    auto source = std::make_shared<std::string>();
    auto dir = std::make_shared<std::string>();
    auto* cmd = app.add_subcommand(suspend ? "suspend" : "resume",
                                   suspend ? "stop starting scheduled jobs of a source (persisted)"
                                           : "start scheduled jobs of a suspended source again");
    cmd->add_option("source", *source, "the configured source")->required();
    cmd->add_option("--state-dir", *dir, "the agent's state directory (or BULWARK_STATE_DIR)");
    cmd->callback([source, dir, suspend] { RunSuspend(*source, *dir, suspend); });
  }
  {
    auto o = std::make_shared<AgentOpts>();
    auto* cmd = app.add_subcommand("alerts", "print Prometheus alerting rules (YAML) for the configured policies");
    cmd->add_option("--min-slack", o->min_slack, "as agent --min-slack (default 5m)");
    cmd->add_option("--max-wal-lag", o->max_wal_lag, "as agent --max-wal-lag (default 15m)");
    cmd->callback([o] {
      const config::Config& cfg = RequireConfig("alerts");
      auto rules =
          agent::BuildAlertRules(cfg, HealthFlags(o->min_slack, o->max_wal_lag), agent::SystemClock().NowSeconds());
      if (G().json)
        PrintJson(agent::AlertRulesJson(rules));
      else
        std::cout << agent::RenderAlertRules(rules);
    });
  }
}

}  // namespace bulwark::cli
