#include "bulwark/cli/progress.h"

#include <cstdio>

#include "bulwark/cli/common.h"

namespace bulwark::cli {

std::string FormatDuration(double seconds) {
  long s = static_cast<long>(seconds);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%02ld:%02ld", s / 60, s % 60);
  return buf;
}

ProgressPrinter::ProgressPrinter(std::function<std::string(double)> render)
    : render_(std::move(render)), start_(std::chrono::steady_clock::now()) {
  active_ = StderrIsTty() && !G().quiet && !G().json;
  if (!active_) return;
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::milliseconds(250), [&] { return stop_; })) {
      double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
      std::string line = render_(el);
      std::fprintf(stderr, "\r\033[K%s", line.c_str());
      std::fflush(stderr);
    }
  });
}

ProgressPrinter::~ProgressPrinter() {
  if (!active_) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
}

}  // namespace bulwark::cli
