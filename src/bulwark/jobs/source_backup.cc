#include "bulwark/jobs/source_backup.h"

#include <unistd.h>

#include <cerrno>

#include "bulwark/base/error.h"
#include "bulwark/base/sys.h"
#include "bulwark/source/clickhouse/backup.h"
#include "bulwark/source/postgres/backup.h"

namespace bulwark::jobs {

std::vector<std::string> ReadExcludeFile(const std::string& path) {
  std::vector<std::string> out;
  std::string s = sys::ReadFile(path);
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find('\n', i);
    if (j == std::string::npos) j = s.size();
    std::string line = s.substr(i, j - i);
    i = j + 1;
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r' || line.back() == '\t')) line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    out.push_back(line);
  }
  return out;
}

void CheckPathsExist(const std::vector<std::string>& paths) {
  for (const auto& p : paths)
    if (::access(p.c_str(), F_OK) != 0 && errno == ENOENT)
      throw Error(ErrorCode::kNotFound, "backup path " + p + " does not exist");
}

void ApplySource(const config::SourceConfig& src, ops::BackupOptions* b, BackupPlan* plan) {
  b->source = src.name;
  if (src.kind == config::SourceKind::kFs) {
    if (b->paths.empty()) b->paths = src.paths;
    b->excludes.insert(b->excludes.end(), src.exclude.begin(), src.exclude.end());
    if (!src.exclude_file.empty()) {
      auto ex = ReadExcludeFile(src.exclude_file);
      b->excludes.insert(b->excludes.end(), ex.begin(), ex.end());
    }
    b->one_file_system = b->one_file_system || src.one_file_system;
  } else if (src.kind == config::SourceKind::kCommand) {
    if (plan->kind != BackupPlan::Kind::kStdin) plan->kind = BackupPlan::Kind::kCommand;
    plan->command = src.command;
    if (plan->stream_name.empty()) plan->stream_name = src.stdin_name.empty() ? src.name + ".stream" : src.stdin_name;
  } else if (src.kind == config::SourceKind::kPostgres) {
    if (!b->paths.empty() || plan->kind == BackupPlan::Kind::kStdin || plan->kind == BackupPlan::Kind::kCommand)
      throw Error(ErrorCode::kInvalidArgument,
                  "source '" + src.name + "' is a PostgreSQL source: give no paths, --stdin or --stdin-from-command");
    plan->kind = BackupPlan::Kind::kPostgres;
    plan->postgres = &src;
  } else if (src.kind == config::SourceKind::kClickHouse) {
    if (!b->paths.empty() || plan->kind == BackupPlan::Kind::kStdin || plan->kind == BackupPlan::Kind::kCommand)
      throw Error(ErrorCode::kInvalidArgument,
                  "source '" + src.name + "' is a ClickHouse source: give no paths, --stdin or --stdin-from-command");
    plan->kind = BackupPlan::Kind::kClickHouse;
    plan->clickhouse = &src;
  }
  b->tags.insert(b->tags.end(), src.tags.begin(), src.tags.end());
  if (b->host.empty()) b->host = src.host;
  if (src.chunker) b->chunker = chunk::Params{src.chunker->min_size, src.chunker->avg_size, src.chunker->max_size};
  b->ttl = src.ttl;
}

ops::BackupResult RunBackupPlan(repo::Repository& repo, const BackupPlan& plan, const ops::BackupOptions& b) {
  switch (plan.kind) {
    case BackupPlan::Kind::kPostgres:
      return plan.postgres->pg_mode == config::PgMode::kLogical
                 ? source::postgres::BackupLogical(repo, *plan.postgres, b)
                 : source::postgres::BackupPhysical(repo, *plan.postgres, b);
    case BackupPlan::Kind::kClickHouse:
      return source::clickhouse::Backup(repo, *plan.clickhouse, b);
    case BackupPlan::Kind::kStdin:
      return ops::BackupStream(repo, 0, plan.stream_name.empty() ? "stdin" : plan.stream_name, "stdin", b, nullptr);
    case BackupPlan::Kind::kCommand:
      return ops::BackupCommand(repo, plan.command, plan.stream_name.empty() ? "stdin" : plan.stream_name, b);
    case BackupPlan::Kind::kPaths:
      break;
  }
  return ops::BackupPaths(repo, b);
}

}  // namespace bulwark::jobs
