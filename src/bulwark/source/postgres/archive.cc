#include "bulwark/source/postgres/archive.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "bulwark/base/error.h"
#include "bulwark/repo/wal.h"
#include "bulwark/source/postgres/pitr.h"

namespace bulwark::source::postgres {

std::vector<ArchivedFile> ListArchive(repo::Repository& repo, const std::string& source) {
  const std::string prefix = repo::WalPrefix(source);
  std::vector<ArchivedFile> out;
  for (const auto& o : repo.backend().List(prefix)) {
    std::string name = o.name.substr(prefix.size());
    if (!ParseWalFileName(name)) continue;
    out.push_back({std::move(name), o.size, o.mtime_ns});
  }
  std::sort(out.begin(), out.end(), [](const ArchivedFile& a, const ArchivedFile& b) { return a.name < b.name; });
  return out;
}

std::optional<BaseBackupWal> BaseBackupWalOf(const repo::Snapshot& s) {
  if (!IsPhysicalSnapshot(s)) return std::nullopt;
  const auto& pf = s.facts["postgres"];
  auto start = ParseLsn(pf.value("start_lsn", std::string()));
  auto stop = ParseLsn(pf.value("stop_lsn", std::string()));
  if (!start || !stop || !pf.contains("timeline") || !pf["timeline"].is_number_unsigned()) return std::nullopt;
  return BaseBackupWal{pf["timeline"].get<uint32_t>(), *start, *stop};
}

ArchiveInfo DescribeArchive(repo::Repository& repo, const std::string& source,
                            const std::vector<repo::Snapshot>& snapshots) {
  ArchiveInfo info;
  info.source = source;
  info.files = ListArchive(repo, source);
  std::vector<std::string> names;
  for (const auto& f : info.files) {
    names.push_back(f.name);
    info.stored_bytes += f.stored_bytes;
    if (auto w = ParseWalFileName(f.name); w && w->kind == WalFileKind::kHistory)
      info.history_files.push_back(w->timeline);
  }
  info.timelines = Coverage(names);
  for (const auto& s : snapshots) {
    if (s.source != source) continue;
    auto w = BaseBackupWalOf(s);
    if (!w) continue;
    info.backups.push_back({s, *w, Consistent(*w, names)});
  }
  std::sort(info.backups.begin(), info.backups.end(),
            [](const BaseBackupStatus& a, const BaseBackupStatus& b) { return a.snapshot.time_ns < b.snapshot.time_ns; });

  // The window: the oldest consistent backup's stop time ...
  const BaseBackupStatus* oldest = nullptr;
  const BaseBackupStatus* newest = nullptr;
  for (const auto& b : info.backups)
    if (b.consistent) {
      if (!oldest) oldest = &b;
      newest = &b;
    }
  if (!oldest) return info;
  const auto& opf = oldest->snapshot.facts["postgres"];
  info.pitr_earliest_ns = opf.contains("stop_time") ? repo::ParseTime(opf["stop_time"].get<std::string>())
                                                    : oldest->snapshot.time_ns;
  // ... to the newest segment of the run continuing from the newest one.
  const uint64_t stop_seg = SegmentOf(newest->wal.stop_lsn);
  for (const auto& c : info.timelines) {
    if (c.timeline != newest->wal.timeline) continue;
    for (const auto& r : c.runs) {
      if (r.first > stop_seg || r.last < stop_seg) continue;
      int64_t latest = *info.pitr_earliest_ns;
      for (const auto& f : info.files)
        if (auto w = ParseWalFileName(f.name); w && w->kind == WalFileKind::kSegment &&
                                               w->timeline == c.timeline && w->segno >= stop_seg && w->segno <= r.last)
          latest = std::max(latest, f.mtime_ns);
      info.pitr_latest_ns = latest;
    }
  }
  return info;
}

ExpireResult ExpireWal(repo::Repository& repo, const std::string& source, const std::vector<repo::Snapshot>& remaining,
                       bool dry_run) {
  ExpireResult r;
  std::vector<BaseBackupWal> kept;
  for (const auto& s : remaining)
    if (s.source == source)
      if (auto w = BaseBackupWalOf(s)) kept.push_back(*w);
  r.kept_backups = kept.size();
  auto files = ListArchive(repo, source);
  std::vector<std::string> names;
  for (const auto& f : files) names.push_back(f.name);
  for (const auto& name : ExpirableWal(names, kept)) {
    // `files` is sorted by name and holds every expirable name.
    auto it = std::lower_bound(files.begin(), files.end(), name,
                               [](const ArchivedFile& f, const std::string& v) { return f.name < v; });
    if (!dry_run) {
      try {
        repo.backend().Remove(repo::WalObjectName(source, name));
      } catch (const Error& e) {
        r.failed.push_back(name + ": " + e.what());
        continue;
      }
    }
    r.expired.push_back(name);
    r.stored_bytes += it->stored_bytes;
  }
  return r;
}

ArchiveCheck CheckArchiving(repo::Repository& repo, const std::string& source, Connection& conn,
                            double timeout_seconds) {
  ArchiveCheck c;
  c.archive_mode_on = conn.Value("SHOW archive_mode") != "off";
  c.archive_command = conn.Value("SHOW archive_command");
  // A WAL record first: a switch with nothing written since the last one is
  // a no-op that completes no segment.
  conn.Query("SELECT pg_create_restore_point('bulwark check')");
  c.segment = conn.Value("SELECT pg_walfile_name(pg_switch_wal())");
  const auto t0 = std::chrono::steady_clock::now();
  const std::string object = repo::WalObjectName(source, c.segment);
  for (;;) {
    c.arrived = repo.backend().Stat(object).has_value();
    c.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (c.arrived || c.seconds >= timeout_seconds) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  auto rows = conn.Query(
      "SELECT coalesce(last_archived_wal, ''), "
      "coalesce(floor(extract(epoch FROM last_archived_time) * 1000000)::bigint::text, ''), "
      "coalesce(last_failed_wal, ''), "
      "coalesce(floor(extract(epoch FROM last_failed_time) * 1000000)::bigint::text, ''), failed_count "
      "FROM pg_stat_archiver");
  if (rows.size() == 1 && rows[0].size() == 5) {
    const auto& r = rows[0];
    c.last_archived_wal = r[0].value_or("");
    if (r[1] && !r[1]->empty()) c.last_archived_ns = std::stoll(*r[1]) * 1000;
    c.last_failed_wal = r[2].value_or("");
    if (r[3] && !r[3]->empty()) c.last_failed_ns = std::stoll(*r[3]) * 1000;
    c.failed_count = r[4] ? std::stoll(*r[4]) : 0;
  }
  try {  // superusers and pg_monitor members only
    c.ready_files = std::stoll(conn.Value(
        "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'"));
  } catch (const Error&) {
    c.ready_files = -1;
  }
  for (const auto& f : ListArchive(repo, source))
    if (!c.newest_archived_mtime_ns || f.mtime_ns > *c.newest_archived_mtime_ns) c.newest_archived_mtime_ns = f.mtime_ns;
  return c;
}

}  // namespace bulwark::source::postgres
