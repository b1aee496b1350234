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

ProgressPrinter::ProgressPrinter(std::function<std::string(double)> render,
                                 std::function<nlohmann::json(double)> render_json)
    : render_(std::move(render)), render_json_(std::move(render_json)), start_(std::chrono::steady_clock::now()) {
  bool json = G().json && render_json_;
  active_ = json || (StderrIsTty() && !G().quiet && !G().json);
  if (!active_) return;
  thread_ = std::thread([this, json] {
    std::unique_lock<std::mutex> lock(mu_);
    auto period = std::chrono::milliseconds(json ? 1000 : 250);
    while (!cv_.wait_for(lock, period, [&] { return stop_; })) {
      double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
      if (json) {
        nlohmann::json j = render_json_(el);
        j["message_type"] = "status";
        j["seconds_elapsed"] = el;
        PrintJson(j);
        continue;
      }
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
  if (G().json) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
}

std::function<void(const std::string& phase, uint64_t done, uint64_t total)> PhaseProgress() {
  if (G().json || G().quiet || !StderrIsTty()) return nullptr;
  return [](const std::string& phase, uint64_t done, uint64_t total) {
    std::fprintf(stderr, "\r%s %llu/%llu   ", phase.c_str(), static_cast<unsigned long long>(done),
                 static_cast<unsigned long long>(total));
  };
}

void ClearPhaseProgress() { std::fprintf(stderr, "\r\033[K"); }

}  // namespace bulwark::cli
