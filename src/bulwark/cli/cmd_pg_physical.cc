// bulwark pg restore (point-in-time recovery): not built yet (issue 5, item 5).
#include "bulwark/cli/common.h"

namespace bulwark::cli {

void AddPgPhysical(CLI::App* pg) { (void)pg; }

}  // namespace bulwark::cli
