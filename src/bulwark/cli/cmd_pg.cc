// bulwark pg ...: PostgreSQL restores and information (docs/POSTGRES.md).
#include "bulwark/cli/common.h"

namespace bulwark::cli {

void AddPg(CLI::App& app) {
  auto* pg = app.add_subcommand("pg", "PostgreSQL: restore dumps and base backups, WAL information");
  pg->require_subcommand(1);
  AddPgPhysical(pg);
}

}  // namespace bulwark::cli
