// Small wrappers over POSIX process and user facts.
// Thread-safety: all functions are safe to call concurrently.
#pragma once

#include <cstdint>
#include <string>

#include "bulwark/base/bytes.h"

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

// A file descriptor, closed when it goes out of scope (-1: none).
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd();
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};
// Writes all of `data` to `fd` (retrying short writes and EINTR); throws
// ErrnoError naming `path`.
void WriteAll(int fd, ByteSpan data, const std::string& path);
// fsync of a directory, so that renames and creations in it are durable;
// throws ErrnoError naming it (EINVAL, a file system that cannot, is ignored).
void FsyncDir(const std::string& dir);
// Replaces the file `path` with `data` atomically and durably: a temp file
// beside it (mode 0600), write, fsync, rename over `path`, fsync of the
// directory. A crash leaves the old or the new content, never a mix (a
// leftover "<path>.tmp.XXXXXX" at worst). Throws ErrnoError naming the file.
void WriteFileAtomic(const std::string& path, ByteSpan data);
// The second half of such a replacement, for callers that create the temp
// file themselves: writes `data` to `fd` (open for writing, empty; named
// `tmp`, in the directory of `path`), fsyncs, renames `tmp` over `path` and
// fsyncs that directory. Always closes `fd`; removes `tmp` when it fails.
void CommitTempFile(int fd, const std::string& tmp, const std::string& path, ByteSpan data);

}  // namespace bulwark::sys
