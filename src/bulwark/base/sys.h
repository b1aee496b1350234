// Small wrappers over POSIX process and user facts.
// Thread-safety: all functions are safe to call concurrently.
#pragma once

#include <cstdint>
#include <string>

namespace bulwark::sys {

std::string Hostname();
std::string Username();  // of the effective uid; "" if unknown
// Cached uid -> user name / gid -> group name ("" if unknown).
std::string UserName(uint32_t uid);
std::string GroupName(uint32_t gid);
// True if a process with this pid exists on this host (kill(pid, 0)).
bool ProcessAlive(int64_t pid);
// Reads a whole file; throws Error naming the path.
std::string ReadFile(const std::string& path);

}  // namespace bulwark::sys
