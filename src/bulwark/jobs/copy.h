// Copying snapshots together with what they need to be restorable: ops::Copy,
// then, for every source whose PostgreSQL physical base backups were
// selected, its archived WAL (ops::CopyWal). `bulwark copy` and the agent's
// job (copy_to) both call it.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "bulwark/ops/copy.h"
#include "bulwark/ops/wal.h"

namespace bulwark::jobs {

struct CopyWithWalResult {
  ops::CopyResult copy;
  std::vector<std::pair<std::string, ops::CopyWalResult>> wal;  // by source name
};

// Both repositories open with their index loaded, locked by the caller
// (source: shared, destination: shared for writing). Throws what ops::Copy
// and ops::CopyWal throw.
CopyWithWalResult CopyWithWal(repo::Repository& source, repo::Repository& destination, const ops::CopyOptions& options);

}  // namespace bulwark::jobs
