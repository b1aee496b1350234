// Minimal leveled logging to stderr. Messages never contain secrets: callers
// pass paths, ids and counts, never passwords or keys.
#pragma once

#include <string_view>

namespace bulwark::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kQuiet = 4 };

// Thread-safe. The level is process-wide and set once by the CLI at start-up.
void SetLevel(Level level);
Level GetLevel();
void Write(Level level, std::string_view message);
inline void Debug(std::string_view m) { Write(Level::kDebug, m); }
inline void Info(std::string_view m) { Write(Level::kInfo, m); }
inline void Warn(std::string_view m) { Write(Level::kWarn, m); }
inline void Err(std::string_view m) { Write(Level::kError, m); }

}  // namespace bulwark::log
