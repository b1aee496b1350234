#include "bulwark/jobs/copy.h"

#include <set>

#include "bulwark/source/postgres/pitr.h"

namespace bulwark::jobs {

CopyWithWalResult CopyWithWal(repo::Repository& src, repo::Repository& dst, const ops::CopyOptions& options) {
  CopyWithWalResult out;
  out.copy = ops::Copy(src, dst, options);
  // PostgreSQL base backups need their WAL to be restorable.
  std::set<std::string> pg_sources;
  for (const auto& c : out.copy.snapshots)
    if (source::postgres::IsPhysicalSnapshot(c.source)) pg_sources.insert(c.source.source);
  for (const auto& name : pg_sources) out.wal.emplace_back(name, ops::CopyWal(src, dst, name, 1, options.dry_run));
  return out;
}

}  // namespace bulwark::jobs
