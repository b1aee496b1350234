#include "bulwark/jobs/hooks.h"

#include <signal.h>

#include <chrono>

#include "bulwark/base/error.h"
#include "bulwark/base/log.h"
#include "bulwark/base/subprocess.h"

namespace bulwark::jobs {
namespace {

std::string Describe(const config::Hook& h) {
  std::string s;
  for (const auto& a : h.command) s += (s.empty() ? "" : " ") + a;
  return s;
}

// "" on success, else why it failed.
std::string RunOne(const config::Hook& h) {
  SpawnOptions so;
  so.capture_stderr = true;
  so.stdout_to_stderr = true;
  so.own_process_group = true;  // a timeout kills what a shell hook started too
  try {
    Subprocess p(h.command, so);
    std::optional<int> status =
        h.timeout_seconds > 0 ? p.WaitFor(static_cast<double>(h.timeout_seconds)) : std::optional<int>(p.Wait());
    if (!status) {
      p.Kill(SIGKILL);
      p.Wait();
      std::string tail = p.StderrTail();
      return "timed out after " + std::to_string(h.timeout_seconds) + " s (killed)" + (tail.empty() ? "" : ": " + tail);
    }
    if (Subprocess::Succeeded(*status)) return "";
    std::string tail = p.StderrTail();
    return Subprocess::Describe(*status) + (tail.empty() ? "" : ": " + tail);
  } catch (const Error& e) {
    return e.what();
  }
}

}  // namespace

HookOutcome RunHooks(const std::vector<config::Hook>& hooks, const std::string& phase) {
  HookOutcome out;
  const auto t0 = std::chrono::steady_clock::now();
  for (const auto& h : hooks) {
    log::Debug(phase + " hook: " + Describe(h));
    std::string why = RunOne(h);
    if (why.empty()) continue;
    std::string msg = phase + " hook '" + Describe(h) + "' " + why;
    out.errors.push_back(msg);
    if (h.on_error == config::Hook::OnError::kFail) {
      out.failed = true;
      break;
    }
    log::Warn(msg + " (on_error: continue)");
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace bulwark::jobs
