// bulwark drill SOURCE / bulwark drills: restore drills and their evidence
// (ops/drill.h, repo/drill_record.h, docs/DRILLS.md).
#include <cstdio>

#include "bulwark/base/error.h"
#include "bulwark/base/log.h"
#include "bulwark/cli/common.h"
#include "bulwark/config/config.h"
#include "bulwark/ops/drill.h"
#include "bulwark/repo/drill_record.h"

namespace bulwark::cli {

namespace {

std::string Secs(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f s", s);
  return buf;
}

void SayRecord(const repo::DrillRecord& r) {
  Say(std::string(r.passed ? "PASSED" : "FAILED") + "  drill " + (r.id.IsZero() ? std::string("-") : r.id.Short()) +
      "  " + repo::FormatTimeShort(r.time_ns) + "  source " + r.source + "  snapshot " + r.snapshot.Short() + "  " +
      r.target_kind + " " + r.target + (r.kept ? " (kept)" : ""));
  Say("  restore " + Secs(r.restore_seconds) + ", validate " + Secs(r.validate_seconds) + ", RTO " +
      Secs(r.total_seconds) + (r.rto_budget_seconds ? " (budget " + std::to_string(r.rto_budget_seconds) + " s)" : "") +
      ", host " + r.host);
  for (const auto& c : r.checks)
    Say(std::string("  ") + (c.passed ? "ok  " : "FAIL") + "  " + c.name + ": expected " + c.expected + ", got " +
        c.actual);
  if (!r.error.empty()) Say("  error: " + r.error);
}

void AddDrillCommand(CLI::App& app) {
  struct Opts {
    std::string source, snapshot = "latest";
    bool keep = false, dry_run = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "drill", "restore a source's newest snapshot into a scratch target, validate it, time it, store the evidence");
  cmd->add_option("source", o->source, "the configured source")->required();
  cmd->add_option("--snapshot", o->snapshot, "snapshot id, id prefix, or 'latest' (default)");
  cmd->add_flag("--keep", o->keep, "leave the scratch directory / database / data directory in place");
  cmd->add_flag("-n,--dry-run", o->dry_run, "check the target and print the plan; restore and store nothing");
  cmd->callback([o] {
    if (!Config())
      throw Error(ErrorCode::kInvalidArgument,
                  "drill needs a configuration file (--config or BULWARK_CONFIG) "
                  "defining source '" +
                      o->source + "'");
    const config::SourceConfig& src = Config()->Source(o->source);
    auto repo = OpenRepository(false, o->source);
    auto lock = o->dry_run ? LockForReading(repo.get()) : LockForWriting(repo.get(), "drill");
    repo->LoadIndex();  // after the lock: an index read before it could predate a prune
    repo::Snapshot snap = repo->ResolveSnapshot(o->snapshot, {o->source, "", {}, {}});
    ops::DrillOptions d;
    d.keep = o->keep;
    d.dry_run = o->dry_run;
    if (src.kind == config::SourceKind::kPostgres && src.pg_mode == config::PgMode::kPhysical)
      d.restore_command = WalFetchRestoreCommandFor(o->source);
    d.on_step = [](const std::string& s) {
      if (G().json)
        PrintJson({{"message_type", "status"}, {"step", s}});
      else
        Say(s);
    };
    ops::DrillOutcome out = ops::RunDrill(*repo, snap, src, d);
    const repo::DrillRecord& r = out.record;
    if (o->dry_run) {
      if (G().json)
        PrintJson({{"message_type", "summary"},
                   {"dry_run", true},
                   {"source", r.source},
                   {"snapshot", snap.id.Hex()},
                   {"target_kind", r.target_kind},
                   {"target", r.target},
                   {"rto_budget_seconds", r.rto_budget_seconds}});
      else
        Say("dry run: " + out.plan);
      return;
    }
    if (G().json) {
      nlohmann::json j = r.ToJson(true);
      j["message_type"] = "summary";
      j["dry_run"] = false;
      PrintJson(j);
    } else {
      SayRecord(r);
    }
    if (!r.passed) {
      log::Err("drill of source '" + r.source + "' failed; record " + r.id.Short() + " stored");
      ExitCode() = kExitDrillFailed;
    }
  });
}

void AddDrillsCommand(CLI::App& app) {
  auto source = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("drills", "list the stored restore drill records (the evidence)");
  cmd->add_option("--source", *source, "only drills of this source");
  cmd->callback([source] {
    auto repo = OpenRepository(false, ConfiguredSource(*source));
    auto lock = LockForReading(repo.get());
    std::vector<repo::DrillRecord> records;
    for (auto& r : repo::LoadDrillRecords(*repo, [](const Error& e) { log::Warn(e.what()); }))
      if (source->empty() || r.source == *source) records.push_back(std::move(r));
    if (G().json) {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& r : records) arr.push_back(r.ToJson(true));
      PrintJson(arr);
      return;
    }
    if (records.empty()) Say("no drill records" + (source->empty() ? std::string() : " of source '" + *source + "'"));
    for (const auto& r : records) SayRecord(r);
  });
}

}  // namespace

void AddDrill(CLI::App& app) {
  AddDrillCommand(app);
  AddDrillsCommand(app);
}

}  // namespace bulwark::cli
