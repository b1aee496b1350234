// A background thread that redraws one status line on a terminal (stderr)
// or emits JSON status lines, every `interval`.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

namespace bulwark::cli {

class ProgressPrinter {
 public:
  // `render` returns the current status line. Prints only if stderr is a TTY
  // (and not --quiet/--json).
  // With --json, `render_json` (if given) is printed to stdout as one JSON
  // line ({"message_type":"status",...}) every second instead.
  explicit ProgressPrinter(std::function<std::string(double elapsed_s)> render,
                           std::function<nlohmann::json(double elapsed_s)> render_json = nullptr);
  ~ProgressPrinter();  // stops and clears the line

 private:
  std::function<std::string(double)> render_;
  std::function<nlohmann::json(double)> render_json_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool active_ = false;
  std::chrono::steady_clock::time_point start_;
  std::thread thread_;
};

std::string FormatDuration(double seconds);  // "1:02:03" / "02:03"

// A "phase done/total" progress callback that redraws one stderr line, or
// null when stderr is no terminal or with --json/--quiet. Call
// ClearPhaseProgress() after the work when it was not null.
std::function<void(const std::string& phase, uint64_t done, uint64_t total)> PhaseProgress();
void ClearPhaseProgress();

}  // namespace bulwark::cli
