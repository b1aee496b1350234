// bulwark audit [verify]: list and verify the repository's audit log; and the
// per-process audit session that records every command (docs/AUDIT.md).
//
// The session: main() calls AuditBegin before parsing; OpenRepository (and
// init) call AuditAttach for each repository a command opens as its own;
// main() calls AuditFinish with the exit code, which appends one record per
// attached repository (repo::AuditLog). A failed append only warns: the
// command's result and exit code stay what they were.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <mutex>

#include "bulwark/base/error.h"
#include "bulwark/base/log.h"
#include "bulwark/base/sys.h"
#include "bulwark/cli/common.h"
#include "bulwark/repo/audit.h"

namespace bulwark::cli {

namespace {

using nlohmann::json;

// Commands that are not recorded: the audit commands themselves (reading
// the log must not grow it, and verify must not race with its own record),
// PostgreSQL's per-segment archive/restore commands (docs/AUDIT.md), and the
// agent process itself: each of its jobs is recorded on its own (JobAudit),
// and what it opens outside a job (repository figures for /metrics) is
// reading only, every minute.
bool Unaudited(const std::string& command) {
  return command == "audit" || command.rfind("audit ", 0) == 0 || command == "wal-push" || command == "wal-fetch" ||
         command == "agent";
}

// A repository the operation opened as its own: its own backend (the
// operation's repository object is gone by the time the record is written)
// and the AEAD of its master key.
struct Target {
  Target(const std::string& u, const repo::Repository& r)
      : url(u), repository(r.config().id), backend(OpenBackend(u)), aead(r.master_key().enc), key(r.key_id()) {
    repo::ApplyObjectLock(*backend, r.config());  // records are retained like every other object
  }
  std::string url;
  Id repository;
  std::unique_ptr<storage::Backend> backend;
  crypto::Aead aead;
  Id key;
  std::mutex mu;                   // guards added, removed (the listener runs on the writer's thread)
  std::vector<Id> added, removed;  // snapshots (Repository::set_snapshot_listener)
};

// The repositories of one audited operation (the command, or one agent job).
struct Targets {
  std::mutex mu;
  std::vector<std::unique_ptr<Target>> list;

  void Attach(repo::Repository* repo, const std::string& url) {
    std::lock_guard<std::mutex> lock(mu);
    for (auto& t : list)
      if (t->repository == repo->config().id) return;  // opened twice: one record
    std::unique_ptr<Target> t;
    try {
      t = std::make_unique<Target>(url, *repo);
    } catch (const Error& e) {  // never fails the operation
      log::Warn("audit: this operation will not be recorded in the audit log of " + url + ": " + e.what());
      return;
    }
    Target* raw = t.get();
    repo->set_snapshot_listener([raw](const Id& id, bool added) {
      std::lock_guard<std::mutex> lock(raw->mu);
      (added ? raw->added : raw->removed).push_back(id);
    });
    list.push_back(std::move(t));
  }

  std::vector<std::unique_ptr<Target>> Take() {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<std::unique_ptr<Target>> out;
    out.swap(list);
    return out;
  }
};

struct Session {
  const CLI::App* app = nullptr;
  int64_t start_ns = 0;
  std::chrono::steady_clock::time_point start;
  std::vector<std::string> args;  // redacted
  Targets targets;
};

Session& S() {
  static Session s;
  return s;
}

// The agent job running on this thread, if any (JobAudit).
thread_local JobAudit* t_job = nullptr;

std::string CommandPath(const CLI::App* app) {
  std::string path;
  for (const CLI::App* a = app; a;) {
    auto subs = a->get_subcommands();
    if (subs.empty()) break;
    a = subs.front();
    path += (path.empty() ? "" : " ") + a->get_name();
  }
  return path;
}

void WarnAppendFailed(const Target& t, const Error& e) {
  std::string msg = "audit: could not append this operation's record to the audit log of " + t.url + ": " + e.what();
  if (e.code() == ErrorCode::kPermission)
    msg += " (read-only credentials? the audit log needs permission to write audit/ objects)";
  msg += "; the operation's result is unchanged";
  log::Warn(msg);
  if (G().json)
    PrintJson({{"message_type", "warning"},
               {"component", "audit"},
               {"code", std::string(ErrorCodeName(e.code()))},
               {"message", msg}});
}

// Appends one record per target: `command` with its redacted `args`, started
// at `start_ns` (`start` on the steady clock), ended with `exit_code` and
// `error` (null when none).
void AppendRecords(std::vector<std::unique_ptr<Target>> targets, const std::string& command,
                   const std::vector<std::string>& args, int64_t start_ns, std::chrono::steady_clock::time_point start,
                   int exit_code, const Error* error) {
  if (targets.empty()) return;
  repo::AuditRecord r;
  r.host = sys::Hostname();
  r.username = sys::Username();
  r.uid = static_cast<uint32_t>(::geteuid());
  r.command = command;
  r.args = args;
  r.exit_code = exit_code;
  r.result = exit_code == kExitOk ? "ok" : exit_code == kExitPartial ? "partial" : "error";
  if (error) {
    r.error_code = std::string(ErrorCodeName(error->code()));
    r.error = repo::RedactText(error->what());
  }
  r.start_ns = start_ns;
  r.duration_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
  r.program_version = BULWARK_VERSION;
  for (auto& t : targets) {
    repo::AuditRecord rec = r;
    rec.key = t->key.Hex();
    {
      std::lock_guard<std::mutex> lock(t->mu);
      rec.snapshots_added = t->added;
      rec.snapshots_removed = t->removed;
    }
    try {
      repo::AuditRef ref = repo::AuditLog(*t->backend, t->aead).Append(std::move(rec));
      log::Debug("audit record " + ref.Name());
    } catch (const Error& e) {
      WarnAppendFailed(*t, e);
    } catch (const std::exception& e) {
      WarnAppendFailed(*t, Error(ErrorCode::kInternal, e.what()));
    }
  }
}

}  // namespace

struct JobAudit::Impl {
  std::string command;
  std::vector<std::string> args;
  int64_t start_ns = 0;
  std::chrono::steady_clock::time_point start;
  Targets targets;
  JobAudit* previous = nullptr;
};

JobAudit::JobAudit(std::string command, const std::vector<std::string>& args) : impl_(std::make_unique<Impl>()) {
  impl_->command = std::move(command);
  impl_->args = repo::RedactArguments(args);
  impl_->start_ns = repo::NowNs();
  impl_->start = std::chrono::steady_clock::now();
  impl_->previous = t_job;
  t_job = this;
}

JobAudit::~JobAudit() { t_job = impl_->previous; }

void JobAudit::Finish(int exit_code, const Error* error) {
  AppendRecords(impl_->targets.Take(), impl_->command, impl_->args, impl_->start_ns, impl_->start, exit_code, error);
}

void AuditBegin(const CLI::App& app, int argc, char** argv) {
  Session& s = S();
  s.app = &app;
  s.start_ns = repo::NowNs();
  s.start = std::chrono::steady_clock::now();
  s.args = repo::RedactArguments(std::vector<std::string>(argv + (argc > 0 ? 1 : 0), argv + argc));
}

void AuditAttach(repo::Repository* repo, const std::string& url) {
  if (t_job) return t_job->impl_->targets.Attach(repo, url);
  Session& s = S();
  if (!s.app || Unaudited(CommandPath(s.app))) return;
  s.targets.Attach(repo, url);
}

void AuditFinish(int exit_code, const Error* error) {
  Session& s = S();
  AppendRecords(s.targets.Take(), CommandPath(s.app), s.args, s.start_ns, s.start, exit_code, error);
}

namespace {

json EntryJson(const repo::AuditEntry& e) {
  json j = e.record.ToJson();
  j["name"] = e.ref.Name();
  j["id"] = e.ref.id.Hex();
  j.erase("version");
  return j;
}

std::string JoinArgs(const std::vector<std::string>& args) {
  std::string out;
  for (const auto& a : args) out += (out.empty() ? "" : " ") + a;
  return out;
}

void List(int last) {
  auto repo = OpenRepository(false);
  repo::AuditLog log(repo->backend(), repo->aead());
  bool damaged = false;
  auto entries = log.List([&](const Error& e) {
    damaged = true;
    log::Err(std::string(e.what()) + " (run 'bulwark audit verify')");
  });
  if (last > 0 && entries.size() > static_cast<size_t>(last)) entries.erase(entries.begin(), entries.end() - last);
  if (G().json) {
    json arr = json::array();
    for (const auto& e : entries) arr.push_back(EntryJson(e));
    PrintJson(arr);
  } else {
    for (const auto& e : entries) {
      const auto& r = e.record;
      std::string line = std::to_string(r.seq) + "  " + repo::FormatTimeShort(r.start_ns) + "  " + r.username + "@" +
                         r.host + "  " + r.result;
      if (!r.error_code.empty()) line += " (" + r.error_code + ")";
      line += "  " + JoinArgs(r.args);
      for (const auto& id : r.snapshots_added) line += "  +" + id.Short();
      for (const auto& id : r.snapshots_removed) line += "  -" + id.Short();
      Say(line);
    }
  }
  if (damaged) ExitCode() = kExitDamage;
}

void Verify(const std::string& expect_head) {
  auto repo = OpenRepository(false);
  repo::AuditVerifyReport rep = repo::AuditLog(repo->backend(), repo->aead()).Verify(expect_head);
  if (G().json) {
    json problems = json::array();
    for (const auto& p : rep.problems)
      problems.push_back({{"seq", p.seq}, {"name", p.name}, {"kind", p.kind}, {"message", p.message}});
    PrintJson({{"message_type", "audit_verify"},
               {"ok", rep.ok()},
               {"records", rep.records},
               {"max_seq", rep.max_seq},
               {"forks", rep.forks},
               {"heads", rep.heads},
               {"unanchored", rep.unanchored},
               {"problems", problems}});
  } else {
    for (const auto& p : rep.problems) Say(p.kind + ": " + p.message);
    Say(std::to_string(rep.records) + " audit record(s), sequence numbers 1.." + std::to_string(rep.max_seq) + ", " +
        std::to_string(rep.forks) + " fork(s)");
    for (const auto& h : rep.heads) Say("head: " + h);
  }
  for (const auto& u : rep.unanchored)
    log::Warn("audit record " + u +
              " is named by no later record (its appender stalled while others appended): "
              "its removal could not be detected");
  if (!rep.ok()) {
    const auto& p = rep.problems.front();
    throw Error(
        ErrorCode::kCorrupt,
        "audit log verification failed at " + p.name + " (" + p.kind + "): " + p.message +
            (rep.problems.size() > 1 ? " (and " + std::to_string(rep.problems.size() - 1) + " more problem(s))" : ""));
  }
  Say("audit log verified: no record removed, reordered or altered (removal of the newest records cannot be "
      "detected; see docs/AUDIT.md)");
}

}  // namespace

void AddAudit(CLI::App& app) {
  struct Opts {
    int last = 0;
    std::string expect_head;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("audit", "list the repository's audit log (every operation, hash-chained)");
  cmd->add_option("--last", o->last, "only the newest N records");
  auto* verify = cmd->add_subcommand("verify", "verify the audit log: no record removed, reordered or altered");
  verify->add_option("--expect-head", o->expect_head,
                     "a record name printed by an earlier verify ('head: audit/...'): it must still exist "
                     "(detects truncation of the newest records)");
  verify->callback([o] { Verify(o->expect_head); });
  cmd->callback([o, cmd, verify] {
    if (cmd->got_subcommand(verify)) return;
    List(o->last);
  });
}

}  // namespace bulwark::cli
