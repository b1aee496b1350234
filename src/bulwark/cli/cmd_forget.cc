// bulwark forget / tag (work in progress: registered by a later change).
#include "bulwark/cli/common.h"

namespace bulwark::cli {

void AddForget(CLI::App& app) {}

}  // namespace bulwark::cli
