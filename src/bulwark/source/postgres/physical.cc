// Physical base backups: not built yet (issue 5, item 3).
#include "bulwark/base/error.h"
#include "bulwark/source/postgres/backup.h"

namespace bulwark::source::postgres {

ops::BackupResult BackupPhysical(repo::Repository&, const config::SourceConfig& source, const ops::BackupOptions&) {
  throw Error(ErrorCode::kUnsupported, "source '" + source.name + "': mode physical is not implemented yet");
}

}  // namespace bulwark::source::postgres
