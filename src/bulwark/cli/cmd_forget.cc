// bulwark forget: remove snapshots by id, or by a retention policy (flags, a
// configured source's `retention:`, snapshot TTLs); bulwark tag: rewrite a
// snapshot's tags. The policy logic is ops/retention.h; this file parses
// flags, takes the lock, prints the plan and deletes.
#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "bulwark/base/civil_time.h"
#include "bulwark/base/error.h"
#include "bulwark/base/log.h"
#include "bulwark/cli/common.h"
#include "bulwark/config/config.h"
#include "bulwark/jobs/forget.h"
#include "bulwark/ops/retention.h"
#include "bulwark/repo/lock.h"

namespace bulwark::cli {

const config::Config* Config();

namespace {

using nlohmann::json;

// Policy flags as given; an option's count() says whether it was given, so
// flags override a configured source's retention field by field.
struct PolicyFlags {
  std::string counts[6];     // keep-last, -hourly, -daily, -weekly, -monthly, -yearly
  std::string durations[6];  // keep-within, -within-hourly, ..., -within-yearly
  std::vector<std::string> keep_tags;
  std::string group_by;
  CLI::Option* count_opts[6] = {};
  CLI::Option* duration_opts[6] = {};
  CLI::Option* keep_tag_opt = nullptr;
  CLI::Option* group_by_opt = nullptr;

  static std::string Flag(const CLI::Option* opt) { return "--" + opt->get_lnames().front(); }

  bool any() const {
    for (int i = 0; i < 6; ++i)
      if (count_opts[i]->count() || duration_opts[i]->count()) return true;
    return keep_tag_opt->count() || group_by_opt->count();
  }

  // `base` with every given flag applied. Throws kInvalidArgument naming the flag.
  config::Retention Apply(config::Retention base) const {
    int* count_fields[6] = {&base.keep_last,   &base.keep_hourly,  &base.keep_daily,
                            &base.keep_weekly, &base.keep_monthly, &base.keep_yearly};
    CalendarDuration* duration_fields[6] = {&base.keep_within,         &base.keep_within_hourly,
                                            &base.keep_within_daily,   &base.keep_within_weekly,
                                            &base.keep_within_monthly, &base.keep_within_yearly};
    for (int i = 0; i < 6; ++i) {
      if (count_opts[i]->count())
        *count_fields[i] = WithContext(Flag(count_opts[i]), [&] { return config::ParseRetentionCount(counts[i]); });
      if (duration_opts[i]->count())
        *duration_fields[i] =
            WithContext(Flag(duration_opts[i]), [&] { return CalendarDuration::Parse(durations[i]); });
    }
    if (keep_tag_opt->count()) {
      base.keep_tags.clear();
      for (const auto& t : keep_tags) base.keep_tags.push_back(WithContext("--keep-tag", [&] { return config::ParseTagSet(t); }));
    }
    if (group_by_opt->count()) base.group_by = WithContext("--group-by", [&] { return config::GroupBy::Parse(group_by); });
    return base;
  }
};

void AddPolicyFlags(CLI::App* cmd, PolicyFlags* f) {
  static const char* kRules[6] = {"last", "hourly", "daily", "weekly", "monthly", "yearly"};
  static const char* kPeriods[6] = {"", "hour", "day", "ISO week (Monday..Sunday)", "month", "year"};
  f->count_opts[0] = cmd->add_option("--keep-last", f->counts[0], "keep the N newest snapshots (-1 or unlimited: all)");
  for (int i = 1; i < 6; ++i)
    f->count_opts[i] = cmd->add_option("--keep-" + std::string(kRules[i]), f->counts[i],
                                       "keep the newest snapshot of each " + std::string(kPeriods[i]) +
                                           ", for the N newest that have one (-1 or unlimited: all)");
  f->duration_opts[0] = cmd->add_option("--keep-within", f->durations[0],
                                        "keep every snapshot within this calendar duration of the newest, e.g. 36h, "
                                        "7d, 4w, 3m (months), 1y5m7d2h");
  for (int i = 1; i < 6; ++i)
    f->duration_opts[i] = cmd->add_option("--keep-within-" + std::string(kRules[i]), f->durations[i],
                                          "keep the newest snapshot of each " + std::string(kPeriods[i]) +
                                              " within this calendar duration of the newest snapshot (m = months)");
  f->keep_tag_opt = cmd->add_option("--keep-tag", f->keep_tags,
                                    "keep snapshots having all tags of this set, e.g. a,b (repeatable; '' = untagged)")
                        ->allow_extra_args(false);
  f->group_by_opt = cmd->add_option("--group-by", f->group_by,
                                    "judge these groups separately: comma-separated host,source,paths,tags "
                                    "(default host,source; '' = one group)");
}

std::string JoinStrings(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

json EntryJson(const repo::Snapshot& s, const std::vector<std::string>& reasons) {
  json j = {{"id", s.id.Hex()},       {"short_id", s.id.Short()}, {"time", repo::FormatTime(s.time_ns)},
            {"host", s.host},         {"source", s.source},       {"paths", s.paths},
            {"tags", s.tags},         {"pinned", s.pinned()},     {"reasons", reasons}};
  if (s.expires_ns) j["expires"] = repo::FormatTime(*s.expires_ns);
  return j;
}

// "1 snapshot", "3 snapshots".
std::string Snapshots(size_t n) { return std::to_string(n) + (n == 1 ? " snapshot" : " snapshots"); }

// Prints "keep N snapshots:" (or remove) and a table like `snapshots`, with reasons.
void PrintTable(const char* verb, const std::vector<const ops::RetentionDecision*>& rows) {
  if (rows.empty()) return;
  size_t reasons_width = 7;
  for (const auto* d : rows) reasons_width = std::max(reasons_width, JoinStrings(d->reasons, ", ").size());
  std::printf("%s %s:\n", verb, Snapshots(rows.size()).c_str());
  std::printf("%-8s  %-19s  %-12s  %-12s  %-*s  %s\n", "ID", "Time (UTC)", "Host", "Tags",
              static_cast<int>(reasons_width), "Reasons", "Paths");
  for (const auto* d : rows) {
    const auto& s = d->snapshot;
    std::printf("%-8s  %-19s  %-12s  %-12s  %-*s  %s\n", s.id.Short().c_str(), repo::FormatTimeShort(s.time_ns).c_str(),
                s.host.c_str(), JoinStrings(s.tags, ",").c_str(), static_cast<int>(reasons_width),
                JoinStrings(d->reasons, ", ").c_str(), JoinStrings(s.paths, " ").c_str());
  }
}

using Job = jobs::ForgetSelection;

struct ForgetOpts {
  std::vector<std::string> ids;
  PolicyFlags policy;
  SnapshotFilterFlags filter;
  std::string timezone;
  bool all = false, dry_run = false, prune = false;
  bool ignore_lock = false;  // remove snapshots Object Lock still retains (S3: a delete marker)
  PruneFlags prune_flags;
};

// Under Object Lock (unless --ignore-lock): the snapshots among `ids` whose
// retain-until date (HEAD) is still ahead of now (the storage's clock), with
// that date.
std::map<Id, int64_t> RetainedSnapshots(repo::Repository* repo, repo::Lock* lock, const std::vector<Id>& ids,
                                        const ForgetOpts& o) {
  if (repo->config().object_lock_mode.empty() || o.ignore_lock || ids.empty()) return {};
  const int64_t now = lock ? lock->Touch() : repo::NowNs();  // no lock: a dry run with read-only credentials
  return jobs::RetainedSnapshots(*repo, ids, now);
}

TimeZone ZoneFor(const ForgetOpts& o, const config::SourceConfig* src) {
  if (!o.timezone.empty()) return WithContext("--timezone", [&] { return TimeZone::Load(o.timezone); });
  if (src && !src->timezone.empty())
    return WithContext("timezone of source '" + src->name + "'", [&] { return TimeZone::Load(src->timezone); });
  return TimeZone();
}

// The jobs for --all, --source NAME or plain flags; validates every flag
// before the repository is opened.
std::vector<Job> PlanJobs(const ForgetOpts& o) {
  std::vector<Job> jobs;
  const config::Config* cfg = Config();
  if (o.all) {
    if (!o.filter.source.empty()) throw Error(ErrorCode::kInvalidArgument, "give --source NAME or --all, not both");
    if (!cfg)
      throw Error(ErrorCode::kInvalidArgument, "--all needs a configuration file (--config or BULWARK_CONFIG)");
    for (const auto& [name, src] : cfg->sources) {
      repo::SnapshotFilter f = o.filter.Filter();
      f.source = name;
      jobs.push_back({o.policy.Apply(src.retention), ZoneFor(o, &src), f});
    }
    return jobs;
  }
  const config::SourceConfig* src = nullptr;
  if (!o.filter.source.empty() && cfg) src = &cfg->Source(o.filter.source);
  jobs.push_back({o.policy.Apply(src ? src->retention : config::Retention{}), ZoneFor(o, src), o.filter.Filter()});
  return jobs;
}

// `all`: the repository's snapshots, loaded only when WAL expiry needs them
// (a removed snapshot is a PostgreSQL base backup).
void Finish(repo::Repository* repo, repo::Lock* lock, const ForgetOpts& o, const std::vector<repo::Snapshot>& removed,
            const std::function<std::vector<repo::Snapshot>()>& all) {
  std::vector<Id> remove;
  for (const auto& s : removed) remove.push_back(s.id);
  if (o.dry_run) {
    Say("would remove " + Snapshots(remove.size()) + " (dry run: nothing removed)");
  } else {
    jobs::RemoveSnapshots(*repo, remove);
    Say("removed " + Snapshots(remove.size()));
  }
  // PostgreSQL base backups gone: their WAL may be too.
  ExpireWalAfterForget(repo, removed, all, o.dry_run);
  if (o.prune && !remove.empty()) {
    PruneFlags pf = o.prune_flags;
    pf.dry_run = pf.dry_run || o.dry_run;
    RunPrune(repo, lock, pf);
  }
}

// forget ID...: exactly these snapshots; pinned ones are refused.
void ForgetIds(repo::Repository* repo, repo::Lock* lock, const ForgetOpts& o) {
  std::vector<ops::RetentionDecision> rows;
  std::set<Id> seen;
  for (const auto& spec : o.ids) {
    repo::Snapshot s = repo->ResolveSnapshot(spec, o.filter.Filter());
    if (!seen.insert(s.id).second) continue;
    if (s.pinned())
      throw Error(ErrorCode::kInvalidArgument, "snapshot " + s.id.Short() +
                                                   " is pinned (tag 'keep'); to remove it, unpin it first: bulwark "
                                                   "tag " + s.id.Short() + " --remove keep");
    rows.push_back({std::move(s), false, {"explicit"}});
  }
  std::vector<Id> ids;
  for (const auto& d : rows) ids.push_back(d.snapshot.id);
  auto retained = RetainedSnapshots(repo, lock, ids, o);
  if (!retained.empty()) {
    const auto& [id, until] = *retained.begin();
    throw Error(ErrorCode::kPermission,
                "snapshot " + id.Short() + (retained.size() > 1 ? " (and " + std::to_string(retained.size() - 1) + " more)" : "") +
                    " is under Object Lock until " + repo::FormatTime(until) +
                    "; nothing was removed. Forget it after that date, or now with --ignore-lock (S3 then only "
                    "hides it behind a delete marker: the locked version stays, and is billed, until then)");
  }
  std::vector<repo::Snapshot> remove;
  std::vector<const ops::RetentionDecision*> table;
  json removed = json::array();
  for (const auto& d : rows) {
    remove.push_back(d.snapshot);
    table.push_back(&d);
    removed.push_back(EntryJson(d.snapshot, d.reasons));
  }
  if (G().json) PrintJson(json::array({{{"keep", json::array()}, {"remove", removed}}}));
  else if (!G().quiet) PrintTable("remove", table);
  Finish(repo, lock, o, remove, [repo] { return repo->LoadSnapshots([](const Error& e) { log::Err(e.what()); }); });
}

void ForgetPolicy(repo::Repository* repo, repo::Lock* lock, const ForgetOpts& o, const std::vector<Job>& selections) {
  const int64_t now = repo::NowNs();
  const auto all = repo->LoadSnapshots([](const Error& e) { log::Err(e.what()); });
  // Decide everything before printing or removing anything: a policy that
  // would empty a group throws here.
  auto decided = jobs::DecideForget(selections, all, now);
  if (decided.empty()) {
    if (G().json) PrintJson(json::array());
    Say("no policy given; nothing removed");
    return;
  }
  // Object Lock: snapshots the policy would drop but the storage still
  // retains are kept, with the date as the reason.
  {
    std::vector<Id> candidates;
    for (const auto& s : jobs::Removals(decided)) candidates.push_back(s.id);
    const size_t retained = jobs::KeepRetained(&decided, RetainedSnapshots(repo, lock, candidates, o));
    if (retained)
      log::Warn("kept " + Snapshots(retained) +
                " the policy would remove: Object Lock still retains them (forget them once it ends, or now with "
                "--ignore-lock)");
  }
  const bool text = !G().json && !G().quiet;
  std::vector<repo::Snapshot> remove;
  json doc = json::array();
  for (const auto& [job, groups] : decided) {
    const std::string policy = ops::DescribePolicy(job->policy);
    if (text)
      std::printf("applying policy%s: %s%s\n",
                  job->filter.source.empty() ? "" : (" of source '" + job->filter.source + "'").c_str(),
                  policy.c_str(), job->tz.is_utc() ? "" : (" (calendar in " + job->tz.name() + ")").c_str());
    for (const auto& g : groups) {
      std::vector<const ops::RetentionDecision*> keep, drop;
      json jg = json::object();
      if (g.key.by.host) jg["host"] = g.key.host;
      if (g.key.by.source) jg["source"] = g.key.source;
      if (g.key.by.paths) jg["paths"] = g.key.paths;
      if (g.key.by.tags) jg["tags"] = g.key.tags;
      jg["policy"] = policy;
      jg["keep"] = json::array();
      jg["remove"] = json::array();
      for (const auto& d : g.snapshots) {
        (d.keep ? keep : drop).push_back(&d);
        jg[d.keep ? "keep" : "remove"].push_back(EntryJson(d.snapshot, d.reasons));
        if (!d.keep) remove.push_back(d.snapshot);
      }
      doc.push_back(jg);
      if (!text) continue;
      std::printf("\ngroup %s:\n", g.key.ToString().c_str());
      PrintTable("keep", keep);
      PrintTable("remove", drop);
    }
    if (text) std::printf("\n");
  }
  if (G().json) PrintJson(doc);
  Finish(repo, lock, o, remove, [&all] { return all; });
}

void RunForget(const ForgetOpts& o) {
  if (!o.ids.empty() && (o.policy.any() || o.all))
    throw Error(ErrorCode::kInvalidArgument, "give snapshot ids or a policy (--keep-*, --all), not both");
  // Every flag is checked before the repository is opened (bad usage: exit 2).
  std::vector<Job> jobs;
  if (o.ids.empty()) jobs = PlanJobs(o);
  else if (!o.timezone.empty()) TimeZone::Load(o.timezone);
  auto repo = OpenRepository(false, o.filter.source);
  std::vector<repo::ObjectType> deletes{repo::ObjectType::kSnapshot};
  if (o.prune) for (auto t : PruneDeletes()) deletes.push_back(t);
  auto lock = o.dry_run ? LockForReading(repo.get()) : LockExclusive(repo.get(), "forget", deletes);
  if (!o.ids.empty()) ForgetIds(repo.get(), lock.get(), o);
  else ForgetPolicy(repo.get(), lock.get(), o, jobs);
}

// ---------------------------------------------------------------------------
// tag

struct TagOpts {
  std::vector<std::string> ids, add, remove, set;
  bool dry_run = false;
  CLI::Option* set_opt = nullptr;
};

void CheckTag(const std::string& t, const char* flag) {
  if (t.empty() || t.find(',') != std::string::npos)
    throw Error(ErrorCode::kInvalidArgument,
                std::string(flag) + ": invalid tag '" + t + "' (tags are non-empty and have no ',')");
}

void RunTag(const TagOpts& o) {
  const bool setting = o.set_opt->count() > 0;
  if (!setting && o.add.empty() && o.remove.empty())
    throw Error(ErrorCode::kInvalidArgument, "nothing to do: give --add, --remove or --set");
  if (setting && (!o.add.empty() || !o.remove.empty()))
    throw Error(ErrorCode::kInvalidArgument, "--set replaces all tags; do not combine it with --add or --remove");
  std::vector<std::string> set;
  for (const auto& t : o.set)
    if (!t.empty() || o.set.size() > 1) {  // --set '' clears the tags
      CheckTag(t, "--set");
      if (std::find(set.begin(), set.end(), t) == set.end()) set.push_back(t);
    }
  for (const auto& t : o.add) CheckTag(t, "--add");
  for (const auto& t : o.remove) CheckTag(t, "--remove");

  auto repo = OpenRepository(false);
  auto lock = o.dry_run ? LockForReading(repo.get()) : LockExclusive(repo.get(), "tag", {repo::ObjectType::kSnapshot});
  std::vector<repo::Snapshot> targets;
  std::set<Id> seen;
  for (const auto& spec : o.ids) {
    repo::Snapshot s = repo->ResolveSnapshot(spec, {});
    if (seen.insert(s.id).second) targets.push_back(std::move(s));
  }
  json out = json::array();
  size_t changed = 0;
  for (const auto& old : targets) {
    repo::Snapshot s = old;
    if (setting) {
      s.tags = set;
    } else {
      for (const auto& t : o.add)
        if (std::find(s.tags.begin(), s.tags.end(), t) == s.tags.end()) s.tags.push_back(t);
      for (const auto& t : o.remove) s.tags.erase(std::remove(s.tags.begin(), s.tags.end(), t), s.tags.end());
    }
    json j = {{"old_id", old.id.Hex()}, {"old_tags", old.tags}, {"tags", s.tags}};
    if (s.tags == old.tags) {
      j["changed"] = false;
      out.push_back(j);
      Say("snapshot " + old.id.Short() + ": tags unchanged (" + JoinStrings(old.tags, ",") + ")");
      continue;
    }
    ++changed;
    if (!s.original) s.original = old.id;
    if (!o.dry_run) {
      // Write the new snapshot first, then remove the old: a crash in between
      // leaves both, never neither.
      repo->SaveSnapshot(s);
      jobs::RemoveSnapshots(*repo, {old.id});
      j["new_id"] = s.id.Hex();
    }
    j["changed"] = true;
    out.push_back(j);
    Say("snapshot " + old.id.Short() + (o.dry_run ? " would get" : " -> " + s.id.Short() + ":") + " tags [" +
        JoinStrings(s.tags, ",") + "] (were [" + JoinStrings(old.tags, ",") + "])");
  }
  if (G().json) PrintJson(out);
  Say(Snapshots(changed) + (o.dry_run ? " would change (dry run: nothing written)" : " changed"));
}

}  // namespace

void AddForget(CLI::App& app) {
  {
    auto o = std::make_shared<ForgetOpts>();
    auto* cmd = app.add_subcommand(
        "forget",
        "remove snapshots: the given ones, or those a retention policy (--keep-*, a source's retention:, TTLs) "
        "does not keep");
    cmd->add_option("snapshots", o->ids, "remove exactly these snapshots (id, prefix or 'latest')");
    AddPolicyFlags(cmd, &o->policy);
    cmd->add_option("--timezone", o->timezone,
                    "calendar buckets (days, weeks, ...) in this tz database zone, e.g. Europe/Berlin (default: the "
                    "source's timezone, else UTC)");
    AddFilterFlags(cmd, &o->filter);
    cmd->get_option("--source")
        ->description("only snapshots of this source, judged by its configured retention: (flags override)");
    cmd->add_flag("--all", o->all, "apply each configured source's retention to that source's snapshots");
    cmd->add_flag("-n,--dry-run", o->dry_run, "show what would be kept and removed; remove nothing");
    cmd->add_flag("--prune", o->prune, "run prune after removing snapshots");
    cmd->add_flag("--ignore-lock", o->ignore_lock,
                  "also remove snapshots Object Lock still retains (S3 hides them behind a delete marker; the "
                  "locked version stays until its retention ends)");
    AddPruneFlags(cmd, &o->prune_flags);
    AddPushAfterSuccess(cmd, [o] { RunForget(*o); });
  }
  {
    auto o = std::make_shared<TagOpts>();
    auto* cmd = app.add_subcommand("tag", "change the tags of snapshots (each is rewritten under a new id)");
    cmd->add_option("snapshots", o->ids, "snapshots to change (id, prefix or 'latest')")->required();
    cmd->add_option("--add", o->add, "add this tag (repeatable); 'keep' pins a snapshot")->allow_extra_args(false);
    cmd->add_option("--remove", o->remove, "remove this tag (repeatable)")->allow_extra_args(false);
    o->set_opt = cmd->add_option("--set", o->set, "replace all tags with these (repeatable; --set '' clears)")
                     ->allow_extra_args(false);
    cmd->add_flag("-n,--dry-run", o->dry_run, "show the new tags; write nothing");
    cmd->callback([o] { RunTag(*o); });
  }
}

}  // namespace bulwark::cli
