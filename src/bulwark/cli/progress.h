// A background thread that redraws one status line on a terminal (stderr)
// or emits JSON status lines, every `interval`.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace bulwark::cli {

class ProgressPrinter {
 public:
  // `render` returns the current status line. Prints only if stderr is a TTY
  // (and not --quiet/--json).
  explicit ProgressPrinter(std::function<std::string(double elapsed_s)> render);
  ~ProgressPrinter();  // stops and clears the line

 private:
  std::function<std::string(double)> render_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool active_ = false;
  std::chrono::steady_clock::time_point start_;
  std::thread thread_;
};

std::string FormatDuration(double seconds);  // "1:02:03" / "02:03"

}  // namespace bulwark::cli
