#include "bulwark/metrics/bulwark_metrics.h"

#include <algorithm>
#include <optional>

#include "bulwark/base/log.h"
#include "bulwark/repo/drill_record.h"
#include "bulwark/source/postgres/archive.h"
#include "bulwark/storage/s3/s3.h"

namespace bulwark::metrics {

StorageCounters StorageCounters::OfProcess() {
  auto& st = storage::s3::ProcessStats();
  return {st.put.load(), st.get.load(),  st.head.load(),   st.list.load(),
          st.del.load(), st.post.load(), st.retries.load()};
}

SourceFigures FiguresFor(const config::SourceConfig& src) {
  SourceFigures f;
  f.source = src.name;
  f.repository = src.repository;
  f.pg_physical = src.kind == config::SourceKind::kPostgres && src.pg_mode == config::PgMode::kPhysical;
  return f;
}

void ApplyReport(SourceFigures* f, const jobs::JobReport& r) {
  if (r.status == jobs::JobStatus::kAbandoned) return;
  if (r.kind == jobs::JobKind::kDrill) {
    // A drill that could not run (no snapshot, repository unreachable) is a
    // failed drill too: nothing was proven restorable.
    f->drill_ok = r.drill_passed.value_or(false);
    if (r.drill_passed) f->drill_duration_seconds = r.drill_rto_seconds;
    return;
  }
  const bool ok = r.status == jobs::JobStatus::kSuccess;
  f->last_ok = ok;
  (ok ? f->success_total : f->failure_total)++;
  f->duration_seconds = r.duration_seconds;
  if (!r.snapshot_id.empty()) {
    f->added_bytes = r.bytes_added;
    f->processed_bytes = r.bytes_processed;
    if (r.status != jobs::JobStatus::kPartial && r.snapshot_time > f->last_success.value_or(0))
      f->last_success = r.snapshot_time;
  }
}

void RefreshFromRepository(SourceFigures* f, repo::Repository& repo) {
  const auto all = repo.LoadSnapshots();
  uint64_t n = 0;
  for (const auto& s : all) {
    if (s.source != f->source) continue;
    ++n;
    if (!s.partial) f->last_success = std::max(f->last_success.value_or(0), s.time_ns / 1000000000);
  }
  f->snapshots = n;
  // The newest drill record of the source (after an agent restart, the
  // verdict comes from the evidence in the repository).
  std::optional<repo::DrillRecord> newest;
  for (auto& d : repo::LoadDrillRecords(repo, [](const Error& e) { log::Warn(e.what()); }))
    if (d.source == f->source && (!newest || d.time_ns > newest->time_ns)) newest = std::move(d);
  if (newest) {
    f->drill_ok = newest->passed;
    f->drill_duration_seconds = newest->total_seconds;
  }
  uint64_t size = 0;
  for (const char* prefix : {"data/", "index/", "snapshots/", "wal/"})
    for (const auto& o : repo.backend().List(prefix)) size += o.size;
  f->repository_size_bytes = size;
  if (f->pg_physical) {
    auto info = source::postgres::DescribeArchive(repo, f->source, all);
    int64_t newest = 0;
    for (const auto& a : info.files) newest = std::max(newest, a.mtime_ns);
    if (newest) f->wal_last_archived = newest / 1000000000;
    if (info.pitr_earliest_ns && info.pitr_latest_ns)
      f->pitr_window_seconds = (*info.pitr_latest_ns - *info.pitr_earliest_ns) / 1000000000;
  }
}

namespace {

Sample S(const SourceFigures& f, double v) { return {{{"source", f.source}, {"repository", f.repository}}, v}; }

template <typename Get>
Family PerSource(const char* name, const char* help, Type type, const std::vector<SourceFigures>& sources, Get get) {
  Family fam{name, help, type, {}};
  for (const auto& f : sources)
    if (std::optional<double> v = get(f)) fam.samples.push_back(S(f, *v));
  return fam;
}

template <typename T>
std::optional<double> D(const std::optional<T>& v) {
  return v ? std::optional<double>(static_cast<double>(*v)) : std::nullopt;
}

}  // namespace

std::vector<Family> BuildFamilies(const std::vector<SourceFigures>& sources, const StorageCounters* storage,
                                  int64_t now) {
  std::vector<Family> out;
  auto add = [&](const char* name, const char* help, Type type, auto get) {
    out.push_back(PerSource(name, help, type, sources, get));
  };
  add("bulwark_backup_last_success_timestamp_seconds",
      "Time (Unix seconds, UTC) of the newest complete snapshot of the source.", Type::kGauge,
      [](const SourceFigures& f) { return D(f.last_success); });
  add("bulwark_backup_last_status", "Result of the source's last job: 1 success, 0 failure.", Type::kGauge,
      [](const SourceFigures& f) { return f.last_ok ? std::optional<double>(*f.last_ok ? 1 : 0) : std::nullopt; });
  add("bulwark_backup_age_seconds", "Seconds since the newest complete snapshot of the source.", Type::kGauge,
      [now](const SourceFigures& f) {
        return f.last_success ? std::optional<double>(static_cast<double>(now - *f.last_success)) : std::nullopt;
      });
  add("bulwark_backup_duration_seconds", "Wall time of the source's last job (hooks, backup, forget, copy).",
      Type::kGauge, [](const SourceFigures& f) { return f.duration_seconds; });
  add("bulwark_backup_added_bytes", "New bytes the source's last backup stored (before compression).", Type::kGauge,
      [](const SourceFigures& f) { return D(f.added_bytes); });
  add("bulwark_backup_processed_bytes", "Bytes the source's last backup read.", Type::kGauge,
      [](const SourceFigures& f) { return D(f.processed_bytes); });
  add("bulwark_backup_success_total", "Successful jobs of the source.", Type::kCounter,
      [](const SourceFigures& f) { return std::optional<double>(static_cast<double>(f.success_total)); });
  add("bulwark_backup_failure_total", "Failed (or partial) jobs of the source.", Type::kCounter,
      [](const SourceFigures& f) { return std::optional<double>(static_cast<double>(f.failure_total)); });
  add("bulwark_snapshots", "Snapshots of the source in its repository.", Type::kGauge,
      [](const SourceFigures& f) { return D(f.snapshots); });
  add("bulwark_repository_size_bytes", "Stored bytes of the source's repository (packs, index, snapshots, WAL).",
      Type::kGauge, [](const SourceFigures& f) { return D(f.repository_size_bytes); });
  add("bulwark_wal_archive_last_success_timestamp_seconds",
      "Storage time (Unix seconds) of the newest archived WAL file of a PostgreSQL physical source.", Type::kGauge,
      [](const SourceFigures& f) { return D(f.wal_last_archived); });
  add("bulwark_wal_archive_lag_seconds", "Seconds since the newest WAL file of the source was archived.", Type::kGauge,
      [now](const SourceFigures& f) {
        return f.wal_last_archived ? std::optional<double>(static_cast<double>(now - *f.wal_last_archived))
                                   : std::nullopt;
      });
  add("bulwark_pitr_window_seconds", "Length of the point-in-time recovery window of the source.", Type::kGauge,
      [](const SourceFigures& f) { return D(f.pitr_window_seconds); });
  add("bulwark_drill_last_success", "Result of the source's last restore drill: 1 passed, 0 failed.", Type::kGauge,
      [](const SourceFigures& f) { return f.drill_ok ? std::optional<double>(*f.drill_ok ? 1 : 0) : std::nullopt; });
  add("bulwark_drill_duration_seconds", "Wall time of the source's last restore drill (the measured RTO).",
      Type::kGauge, [](const SourceFigures& f) { return f.drill_duration_seconds; });
  if (storage) {
    Family req{"bulwark_storage_requests_total", "Requests to the storage by operation.", Type::kCounter, {}};
    const std::pair<const char*, uint64_t> ops[] = {{"put", storage->put},    {"get", storage->get},
                                                    {"head", storage->head},  {"list", storage->list},
                                                    {"delete", storage->del}, {"post", storage->post}};
    for (const auto& [op, n] : ops) req.samples.push_back({{{"operation", op}}, static_cast<double>(n)});
    out.push_back(std::move(req));
    out.push_back({"bulwark_storage_request_retries_total",
                   "Storage requests that were retried.",
                   Type::kCounter,
                   {{{}, static_cast<double>(storage->retries)}}});
  }
  return out;
}

}  // namespace bulwark::metrics
