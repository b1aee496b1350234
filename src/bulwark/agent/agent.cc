#include "bulwark/agent/agent.h"

#include <fcntl.h>
#include <httplib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>

#include "bulwark/base/bytes.h"
#include "bulwark/base/error.h"
#include "bulwark/base/log.h"
#include "bulwark/base/sys.h"
#include "bulwark/crypto/crypto.h"

namespace bulwark::agent {

namespace {

constexpr const char* kLockFile = "agent.lock";
constexpr const char* kTokenFile = "control.token";
constexpr const char* kEndpointFile = "agent.json";
constexpr const char* kDrillStateFile = "drills.json";  // the drill lane's schedule state
constexpr size_t kMaxRecords = 1000;

std::pair<std::string, int> SplitListen(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0)
    throw Error(ErrorCode::kInvalidArgument, "--listen '" + listen + "': want HOST:PORT, e.g. 127.0.0.1:9464");
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int port = -1;
  try {
    size_t used = 0;
    port = std::stoi(listen.substr(colon + 1), &used);
    if (used != listen.size() - colon - 1) port = -1;
  } catch (...) {
  }
  if (port < 0 || port > 65535)
    throw Error(ErrorCode::kInvalidArgument, "--listen '" + listen + "': the port must be 0..65535");
  return {host, port};
}

int OpenLockFile(const std::string& dir) {
  const std::string path = dir + "/" + kLockFile;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) throw ErrnoError("opening", path);
  return fd;
}

std::string LockHolder(const std::string& dir) {
  try {
    return sys::ReadFile(dir + "/" + kLockFile);
  } catch (const Error&) {
    return "";
  }
}

void WriteHolder(int fd, const std::string& holder) {
  if (::ftruncate(fd, 0) == 0) {
    ssize_t n = ::pwrite(fd, holder.data(), holder.size(), 0);
    (void)n;
  }
}

}  // namespace

// ---------------------------------------------------------------------------

std::unique_ptr<StateDirLock> StateDirLock::TryLock(const std::string& dir, const std::string& holder) {
  int fd = OpenLockFile(dir);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return nullptr;
  }
  WriteHolder(fd, holder);
  return std::unique_ptr<StateDirLock>(new StateDirLock(fd));
}

StateDirLock::~StateDirLock() { ::close(fd_); }

int RecoverInterruptedJobs(Scheduler& scheduler) {
  int n = 0;
  for (const auto& p : scheduler.policies()) {
    auto it = scheduler.state().sources.find(p.name);
    if (it == scheduler.state().sources.end() || !it->second.running) continue;
    log::Warn("source '" + p.name +
              "': its last job was still recorded as running; the process that ran it ended before it finished "
              "(recorded as abandoned)");
    scheduler.Finish(p.name, JobResult::kAbandoned,
                     "interrupted: the process running the job ended before it finished");
    ++n;
  }
  return n;
}

std::optional<AgentEndpoint> FindAgent(const std::string& dir) {
  try {
    auto j = nlohmann::json::parse(sys::ReadFile(dir + "/" + kEndpointFile));
    if (!sys::ProcessAlive(j.at("pid").get<int64_t>())) return std::nullopt;
    auto [host, port] = SplitListen(j.at("listen").get<std::string>());
    std::string token = sys::ReadFile(dir + "/" + kTokenFile);
    while (!token.empty() && (token.back() == '\n' || token.back() == ' ')) token.pop_back();
    return AgentEndpoint{host, port, token};
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::pair<int, nlohmann::json> ControlRequest(const AgentEndpoint& a, const std::string& method,
                                              const std::string& path, const nlohmann::json& body) {
  httplib::Client cli(a.host, a.port);
  cli.set_connection_timeout(5, 0);
  cli.set_read_timeout(30, 0);
  httplib::Headers h{{"Authorization", "Bearer " + a.token}};
  auto res =
      method == "GET" ? cli.Get(path, h) : cli.Post(path, h, body.is_null() ? "{}" : body.dump(), "application/json");
  const std::string where = "agent at " + a.host + ":" + std::to_string(a.port) + path;
  if (!res) throw Error(ErrorCode::kIo, where + ": " + httplib::to_string(res.error()));
  nlohmann::json j = nlohmann::json::parse(res->body, nullptr, false);
  if (j.is_discarded()) j = {{"error", res->body}};
  return {res->status, j};
}

// ---------------------------------------------------------------------------

struct Agent::Http {
  httplib::Server server;
};

Agent::Agent(const config::Config& config, AgentOptions options, JobRunner runner, Refresher refresher,
             const Clock& clock)
    : config_(config),
      options_(std::move(options)),
      runner_(std::move(runner)),
      refresher_(std::move(refresher)),
      clock_(clock) {
  if (options_.max_jobs < 1) throw Error(ErrorCode::kInvalidArgument, "--max-jobs must be at least 1");
  for (const auto& [name, src] : config_.sources) figures_[name] = metrics::FiguresFor(src);
}

Agent::~Agent() {
  Stop();
  if (http_) http_->server.stop();
  if (http_thread_.joinable()) http_thread_.join();
  if (refresh_thread_.joinable()) refresh_thread_.join();
  std::unique_lock<std::mutex> lock(mu_);
  for (auto& [id, r] : running_)
    if (r.thread.joinable()) r.thread.detach();  // abandoned at shutdown: the process ends
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Agent::Lane& Agent::LaneOf(jobs::JobKind kind) {
  for (auto& l : lanes_)
    if (l.kind == kind) return l;
  throw Error(ErrorCode::kInternal, "no lane for job kind " + std::string(jobs::JobKindName(kind)));
}

void Agent::Save(Lane& lane) {
  try {
    lane.store->Save(lane.scheduler->state());
  } catch (const Error& e) {
    log::Err(std::string("saving agent state: ") + e.what());
  }
}

void Agent::CheckSource(const std::string& source) const { config_.Source(source); }

void Agent::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
}

uint64_t Agent::Submit(const std::string& source, const std::string& name) {
  CheckSource(source);
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) throw Error(ErrorCode::kCancelled, "the agent is shutting down");
  for (const auto& [id, r] : running_)
    if (r.request.source == source && !r.done)
      throw Error(ErrorCode::kLocked, "a job of source '" + source + "' is running (" + r.request.name + ")");
  for (const auto& q : queued_)
    if (q.source == source)
      throw Error(ErrorCode::kLocked, "a job of source '" + source + "' is queued (" + q.name + ")");
  JobRequest req{next_id_++, jobs::JobKind::kBackup, source, name, std::nullopt};
  queued_.push_back(req);
  records_[req.id] = {req, "queued", std::nullopt};
  cv_.notify_all();
  return req.id;
}

std::optional<nlohmann::json> Agent::JobInfo(uint64_t id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = records_.find(id);
  if (it == records_.end()) return std::nullopt;
  const Record& r = it->second;
  return nlohmann::json{{"id", id},
                        {"kind", jobs::JobKindName(r.request.kind)},
                        {"source", r.request.source},
                        {"name", r.request.name},
                        {"state", r.state},
                        {"report", r.report ? r.report->ToJson() : nlohmann::json(nullptr)}};
}

void Agent::Suspend(const std::string& source) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& l : lanes_) {
    l.scheduler->Suspend(source);
    Save(l);
  }
  cv_.notify_all();
}

void Agent::Resume(const std::string& source) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& l : lanes_) {
    l.scheduler->Resume(source);
    Save(l);
  }
  cv_.notify_all();
}

std::string Agent::MetricsText() const {
  std::vector<metrics::SourceFigures> figs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, f] : figures_) figs.push_back(f);
  }
  auto storage = metrics::StorageCounters::OfProcess();
  return metrics::Render(metrics::BuildFamilies(figs, &storage, clock_.NowSeconds()));
}

Health Agent::CurrentHealth() const {
  std::vector<HealthInput> in;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const Scheduler& sched = *lanes_.front().scheduler;
    for (const auto& p : sched.policies()) {
      HealthInput h;
      h.source = p.name;
      h.schedule = p.schedule;
      h.suspended = sched.IsSuspended(p.name);
      h.known_since = started_at_;
      if (auto it = figures_.find(p.name); it != figures_.end()) {
        const auto& f = it->second;
        h.last_success = f.last_success;
        h.last_duration_seconds = f.duration_seconds.value_or(0);
        h.pg_physical = f.pg_physical;
        h.wal_last_archived = f.wal_last_archived;
        h.drill_ok = f.drill_ok;
      }
      in.push_back(std::move(h));
    }
  }
  return EvaluateHealth(in, options_.health, clock_.NowSeconds());
}

void Agent::StartJob(const JobRequest& req) {
  Lane& lane = LaneOf(req.kind);
  lane.scheduler->Start(req.source, req.slot);
  Save(lane);
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  Running& r = running_[req.id];
  r.request = req;
  r.cancel = cancel;
  records_[req.id] = {req, "running", std::nullopt};
  while (records_.size() > kMaxRecords) records_.erase(records_.begin());
  r.thread = std::thread([this, req, cancel] { JobThread(req, cancel); });
}

void Agent::JobThread(JobRequest req, std::shared_ptr<std::atomic<bool>> cancel) {
  jobs::JobReport report;
  try {
    report = runner_(req, *cancel);
  } catch (const std::exception& e) {
    report.kind = req.kind;
    report.source = req.source;
    report.name = req.name;
    report.status = jobs::JobStatus::kFailed;
    report.error = e.what();
    log::Err("source '" + req.source + "': job " + req.name + ": " + e.what());
  }
  // Repository figures (snapshot count, size, WAL) after the job, outside the lock.
  metrics::SourceFigures fig;
  {
    std::lock_guard<std::mutex> lock(mu_);
    fig = figures_[req.source];
  }
  metrics::ApplyReport(&fig, report);
  if (refresher_ && report.status != jobs::JobStatus::kAbandoned) {
    try {
      refresher_(&fig);
    } catch (const std::exception& e) {
      log::Warn("source '" + req.source + "': refreshing metrics: " + e.what());
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  figures_[req.source] = fig;
  Lane& lane = LaneOf(req.kind);
  JobResult result = report.status == jobs::JobStatus::kAbandoned ? JobResult::kAbandoned
                     : report.ok()                                ? JobResult::kSuccess
                                                                  : JobResult::kFailure;
  try {
    lane.scheduler->Finish(req.source, result, report.error);
  } catch (const Error& e) {
    log::Err(e.what());
  }
  Save(lane);
  if (!report.ok()) ++once_failures_;
  records_[req.id] = {req, "done", report};
  running_[req.id].done = true;
  cv_.notify_all();
}

void Agent::Reap() {
  for (auto it = running_.begin(); it != running_.end();) {
    if (it->second.done) {
      if (it->second.thread.joinable()) it->second.thread.join();
      it = running_.erase(it);
    } else {
      ++it;
    }
  }
}

void Agent::StartPending() {
  auto busy = [&](const std::string& source) {
    for (const auto& [id, r] : running_)
      if (r.request.source == source) return true;
    return false;
  };
  while (!queued_.empty() && static_cast<int>(running_.size()) < options_.max_jobs) {
    JobRequest req = queued_.front();
    if (busy(req.source)) break;
    queued_.erase(queued_.begin());
    try {
      StartJob(req);
    } catch (const Error& e) {
      log::Err("source '" + req.source + "': " + e.what());
      records_[req.id].state = "done";
    }
  }
  for (auto& lane : lanes_)
    for (const DueJob& d : lane.scheduler->Due()) {
      if (static_cast<int>(running_.size()) >= options_.max_jobs) return;
      if (busy(d.source)) continue;
      JobRequest req{next_id_++, lane.kind, d.source, jobs::RunName("scheduled", d.slot), d.slot};
      StartJob(req);
    }
}

void Agent::RefreshAll(bool only_wal) {
  for (const auto& [name, src] : config_.sources) {
    metrics::SourceFigures fig;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      fig = figures_[name];
    }
    if (only_wal && !fig.pg_physical) continue;
    try {
      refresher_(&fig);
    } catch (const std::exception& e) {
      log::Warn("source '" + name + "': reading repository figures: " + e.what());
      continue;
    }
    std::lock_guard<std::mutex> lock(mu_);
    auto& f = figures_[name];
    // Keep job-derived figures that raced in meanwhile; take the repository's view.
    f.snapshots = fig.snapshots;
    f.repository_size_bytes = fig.repository_size_bytes;
    f.wal_last_archived = fig.wal_last_archived;
    f.pitr_window_seconds = fig.pitr_window_seconds;
    if (fig.last_success > f.last_success) f.last_success = fig.last_success;
  }
}

void Agent::Serve() {
  auto& s = http_->server;
  auto authorized = [this](const httplib::Request& req, httplib::Response& res) {
    if (req.get_header_value("Authorization") == "Bearer " + token_) return true;
    res.status = 401;
    res.set_content(
        nlohmann::json{{"error", "missing or wrong bearer token (the content of <state dir>/control.token)"}}.dump(),
        "application/json");
    return false;
  };
  auto error = [](httplib::Response& res, int status, const std::string& msg) {
    res.status = status;
    res.set_content(nlohmann::json{{"error", msg}}.dump(), "application/json");
  };
  auto source_of = [](const httplib::Request& req) {
    auto j = nlohmann::json::parse(req.body.empty() ? "{}" : req.body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw Error(ErrorCode::kInvalidArgument, "the body must be a JSON object");
    return j;
  };
  auto status_for = [](ErrorCode c) {
    switch (c) {
      case ErrorCode::kNotFound:
        return 404;
      case ErrorCode::kLocked:
        return 409;
      case ErrorCode::kCancelled:
        return 503;
      case ErrorCode::kInvalidArgument:
        return 400;
      default:
        return 500;
    }
  };
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(MetricsText(), metrics::kContentType);
  });
  s.Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
    Health h = CurrentHealth();
    res.status = h.ok ? 200 : 503;
    res.set_content(h.ToJson().dump(), "application/json");
  });
  s.Get("/api/v1/agent", [=, this](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res)) return;
    res.set_content(
        nlohmann::json{{"pid", ::getpid()}, {"version", BULWARK_VERSION}, {"state_dir", options_.state_dir}}.dump(),
        "application/json");
  });
  s.Post("/api/v1/run", [=, this](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res)) return;
    try {
      auto j = source_of(req);
      std::string source = j.value("source", "");
      std::string name = j.value("name", "");
      if (name.empty()) name = jobs::RunName("manual", clock_.NowSeconds());
      uint64_t id = Submit(source, name);
      res.status = 202;
      res.set_content(nlohmann::json{{"id", id}, {"source", source}, {"name", name}}.dump(), "application/json");
    } catch (const Error& e) {
      error(res, status_for(e.code()), e.what());
    }
  });
  s.Get(R"(/api/v1/jobs/(\d+))", [=, this](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res)) return;
    auto info = JobInfo(std::stoull(req.matches[1]));
    if (!info) return error(res, 404, "no job " + std::string(req.matches[1]));
    res.set_content(info->dump(), "application/json");
  });
  for (bool suspend : {true, false}) {
    s.Post(suspend ? "/api/v1/suspend" : "/api/v1/resume",
           [=, this](const httplib::Request& req, httplib::Response& res) {
             if (!authorized(req, res)) return;
             try {
               std::string source = source_of(req).value("source", "");
               CheckSource(source);
               if (suspend)
                 Suspend(source);
               else
                 Resume(source);
               res.set_content(nlohmann::json{{"source", source}, {"suspended", suspend}}.dump(), "application/json");
             } catch (const Error& e) {
               error(res, status_for(e.code()), e.what());
             }
           });
  }
}

int Agent::Run() {
  const std::string& dir = options_.state_dir;
  lock_fd_ = OpenLockFile(dir);
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0)
    throw Error(ErrorCode::kLocked, "state directory " + dir + " is in use by " + LockHolder(dir) +
                                        " (one agent per state directory; an in-process bulwark run/suspend/resume "
                                        "holds it while it runs)");
  WriteHolder(lock_fd_, "bulwark agent (pid " + std::to_string(::getpid()) + ")");
  started_at_ = clock_.NowSeconds();
  {
    std::lock_guard<std::mutex> lock(mu_);
    StateStore* store = new StateStore(dir);
    lanes_.push_back({jobs::JobKind::kBackup,
                      std::make_unique<Scheduler>(SourcePolicy::FromConfig(config_), store->Load(), clock_),
                      std::unique_ptr<StateStore>(store)});
    StateStore* drills = new StateStore(dir, kDrillStateFile);
    lanes_.push_back({jobs::JobKind::kDrill,
                      std::make_unique<Scheduler>(SourcePolicy::DrillsFromConfig(config_), drills->Load(), clock_),
                      std::unique_ptr<StateStore>(drills)});
    for (auto& l : lanes_) RecoverInterruptedJobs(*l.scheduler);
    for (auto& l : lanes_) Save(l);
  }
  // Control token: fresh each start, readable by the agent's user only.
  token_ = ToHex(crypto::RandomBytes(32));
  {
    const std::string path = dir + "/" + kTokenFile;
    ::unlink(path.c_str());
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) throw ErrnoError("creating", path);
    sys::WriteAll(fd, AsBytes(token_ + "\n"), path);
    ::close(fd);
  }
  if (!options_.listen.empty()) {
    auto [host, port] = SplitListen(options_.listen);
    http_ = std::make_unique<Http>();
    Serve();
    int bound = port == 0 ? http_->server.bind_to_any_port(host) : (http_->server.bind_to_port(host, port) ? port : -1);
    if (bound <= 0) throw Error(ErrorCode::kIo, "cannot listen on " + options_.listen + " (address in use?)");
    port_ = bound;
    http_thread_ = std::thread([this] { http_->server.listen_after_bind(); });
    const std::string listen =
        (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(bound);
    sys::WriteFileAtomic(dir + "/" + kEndpointFile,
                         AsBytes(nlohmann::json{{"pid", ::getpid()}, {"listen", listen}}.dump() + "\n"));
    log::Info("agent listening on http://" + listen + " (/metrics, /healthz)");
  }
  // Repository figures (newest snapshot, counts, sizes) in the background, so
  // that /metrics answers at once.
  if (refresher_)
    refresh_thread_ = std::thread([this] {
      RefreshAll(false);
      std::unique_lock<std::mutex> lock(mu_);
      while (!stopping_) {
        cv_.wait_for(lock, std::chrono::seconds(std::max<int64_t>(1, options_.refresh_seconds)));
        if (stopping_) break;
        lock.unlock();
        RefreshAll(true);
        lock.lock();
      }
    });
  if (on_ready) on_ready();

  std::unique_lock<std::mutex> lock(mu_);
  if (options_.once) {
    const Scheduler& sched = *lanes_.front().scheduler;
    for (const auto& p : sched.policies())
      if (p.schedule && !sched.IsSuspended(p.name))
        queued_.push_back(
            {next_id_++, jobs::JobKind::kBackup, p.name, jobs::RunName("once", clock_.NowSeconds()), std::nullopt});
  }
  while (!stopping_) {
    Reap();
    if (options_.once) {
      while (!queued_.empty() && static_cast<int>(running_.size()) < options_.max_jobs) {
        JobRequest req = queued_.front();
        queued_.erase(queued_.begin());
        StartJob(req);
      }
      if (queued_.empty() && running_.empty()) break;
      cv_.wait(lock);
      continue;
    }
    StartPending();
    std::optional<int64_t> wake;
    for (auto& l : lanes_)
      if (auto w = l.scheduler->NextWakeup(); w && (!wake || *w < *wake)) wake = *w;
    if (wake) {
      const int64_t delay = std::max<int64_t>(0, *wake - clock_.NowSeconds());
      // Wake at least every second: the fake/real clock may jump.
      cv_.wait_for(lock, std::chrono::milliseconds(std::min<int64_t>(delay * 1000 + 10, 1000)));
    } else {
      cv_.wait_for(lock, std::chrono::seconds(1));
    }
  }
  // Shutdown: no new jobs; running ones get the grace period.
  stopping_ = true;
  cv_.notify_all();
  if (!running_.empty())
    log::Info("agent stopping: waiting up to " + std::to_string(options_.shutdown_grace_seconds) + " s for " +
              std::to_string(running_.size()) + " running jobs");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(options_.shutdown_grace_seconds);
  while (true) {
    Reap();
    if (running_.empty()) break;
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
      Reap();
      break;
    }
  }
  for (auto& [id, r] : running_) {
    r.cancel->store(true);
    log::Warn("source '" + r.request.source + "': job " + r.request.name +
              " abandoned at shutdown (no snapshot is stored unless it already committed)");
    Lane& lane = LaneOf(r.request.kind);
    try {
      lane.scheduler->Finish(r.request.source, JobResult::kAbandoned, "abandoned at agent shutdown");
    } catch (const Error&) {
    }
    Save(lane);
  }
  const bool all_ok = once_failures_ == 0;
  lock.unlock();
  cv_.notify_all();
  if (http_) http_->server.stop();
  if (http_thread_.joinable()) http_thread_.join();
  if (refresh_thread_.joinable()) refresh_thread_.join();
  ::unlink((dir + "/" + kEndpointFile).c_str());
  log::Info("agent stopped");
  return options_.once && !all_ok ? 1 : 0;
}

}  // namespace bulwark::agent
