#include "bulwark/base/error.h"
#include "bulwark/source/postgres/backup.h"

namespace bulwark::source::postgres {

ops::BackupResult BackupLogical(repo::Repository&, const config::SourceConfig& source, const ops::BackupOptions&) {
  throw Error(ErrorCode::kUnsupported, "source '" + source.name + "': not implemented yet");
}

}  // namespace bulwark::source::postgres
