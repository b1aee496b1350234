// Running a source's `hooks:` (bulwark.yaml, config::Hook): each command is
// started without a shell (argv[0] looked up on PATH), its stdout and stderr
// captured together (the last 8 KiB are kept for the error message; never
// mixed into our stdout), and killed (SIGKILL) once its timeout passes,
// together with every process it started (each hook runs in its own process
// group, so a shell's children do not outlive the timeout).
//
// Thread-safety: RunHooks may be called from several threads at once (each
// call runs its own children).
#pragma once

#include <string>
#include <vector>

#include "bulwark/config/config.h"

namespace bulwark::jobs {

struct HookOutcome {
  // A hook with on_error: fail failed: the caller fails the run (for `pre`:
  // before the backup). Hooks after it did not run.
  bool failed = false;
  // One message per failed hook, in order, "pre hook 'fsfreeze -f /data'
  // exited with status 1: <output tail>"; includes on_error: continue
  // failures (which are also logged as warnings).
  std::vector<std::string> errors;
  double seconds = 0;  // wall time of all hooks
};

// Runs `hooks` in order; `phase` ("pre" or "post") names them in messages.
// A hook fails when it cannot start, exits non-zero, dies by a signal, or
// runs past its timeout_seconds (0 = none). With on_error: fail, the first
// such failure stops the list; with continue, the next hook runs. Never
// throws for a hook's failure.
HookOutcome RunHooks(const std::vector<config::Hook>& hooks, const std::string& phase);

}  // namespace bulwark::jobs
