// bulwark copy (work in progress: registered by a later change).
#include "bulwark/cli/common.h"

namespace bulwark::cli {

void AddCopy(CLI::App& app) {}

}  // namespace bulwark::cli
