// bulwark prune (work in progress).
#include "bulwark/base/error.h"
#include "bulwark/cli/common.h"

namespace bulwark::cli {

void AddPruneFlags(CLI::App* cmd, PruneFlags* f) {
  cmd->add_option("--max-unused", f->max_unused, "tolerated unused share of the repository, e.g. 5% (default)");
  cmd->add_option("--max-repack-size", f->max_repack_size, "repack at most this many bytes, e.g. 2GiB");
  cmd->add_option("--grace", f->grace, "delete marked packs only after this storage-time grace period (default 1h)");
}

void RunPrune(repo::Repository* repo, const PruneFlags& f) {
  throw Error(ErrorCode::kUnsupported, "prune is not implemented yet");
}

void AddPrune(CLI::App& app) {}

}  // namespace bulwark::cli
