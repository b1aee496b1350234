// Where the PostgreSQL client programs of a server's major version live.
#include <unistd.h>

#include "bulwark/base/error.h"
#include "bulwark/source/postgres/backup.h"

namespace bulwark::source::postgres {

std::string ProgramPath(const std::string& configured, int major, const std::string& program) {
  std::string dir = configured.empty() ? "/usr/lib/postgresql/" + std::to_string(major) + "/bin" : configured;
  std::string path = dir + "/" + program;
  if (::access(path.c_str(), X_OK) == 0) return path;
  std::string hint = configured.empty()
                         ? " (install Debian's postgresql-client-" + std::to_string(major) +
                               ", or set pg_bin_dir in the source; the programs must match the server's major version " +
                               std::to_string(major) + ")"
                         : " (pg_bin_dir in the source)";
  throw Error(ErrorCode::kNotFound, "PostgreSQL program " + path + " not found" + hint);
}

}  // namespace bulwark::source::postgres
