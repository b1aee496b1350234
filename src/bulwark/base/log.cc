#include "bulwark/base/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace bulwark::log {
namespace {
std::atomic<Level> g_level{Level::kInfo};
std::mutex g_mu;
}  // namespace

void SetLevel(Level level) { g_level = level; }
Level GetLevel() { return g_level; }

void Write(Level level, std::string_view message) {
  if (level < g_level.load()) return;
  const char* prefix = level == Level::kWarn ? "warning: " : level == Level::kError ? "error: " : "";
  std::lock_guard<std::mutex> lock(g_mu);
  std::fprintf(stderr, "%s%.*s\n", prefix, static_cast<int>(message.size()), message.data());
}

}  // namespace bulwark::log
