#include "bulwark/base/sys.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <map>
#include <mutex>

#include "bulwark/base/error.h"

namespace bulwark::sys {

std::string Hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

std::string Username() { return UserName(geteuid()); }

std::string UserName(uint32_t uid) {
  static std::mutex mu;
  static std::map<uint32_t, std::string> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(uid);
  if (it != cache.end()) return it->second;
  struct passwd pw, *res = nullptr;
  char buf[4096];
  std::string name;
  if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) == 0 && res) name = res->pw_name;
  cache[uid] = name;
  return name;
}

std::string GroupName(uint32_t gid) {
  static std::mutex mu;
  static std::map<uint32_t, std::string> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(gid);
  if (it != cache.end()) return it->second;
  struct group gr, *res = nullptr;
  char buf[4096];
  std::string name;
  if (getgrgid_r(gid, &gr, buf, sizeof buf, &res) == 0 && res) name = res->gr_name;
  cache[gid] = name;
  return name;
}

bool ProcessAlive(int64_t pid) {
  if (pid <= 0) return false;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

std::string ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw ErrnoError("opening", path);
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      throw ErrnoError("reading", path, e);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

Fd::~Fd() {
  if (fd >= 0) ::close(fd);
}

void WriteAll(int fd, ByteSpan data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw ErrnoError("writing", path);
    }
    done += static_cast<size_t>(n);
  }
}

void FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw ErrnoError("opening directory", dir);
  Fd guard(fd);
  if (::fsync(fd) != 0 && errno != EINVAL) throw ErrnoError("syncing directory", dir);
}

void CommitTempFile(int fd, const std::string& tmp, const std::string& path, ByteSpan data) {
  try {
    Fd guard(fd);
    WriteAll(fd, data, path);  // errors name the file being written, not its temp name
    if (::fsync(fd) != 0) throw ErrnoError("syncing", path);
    if (::rename(tmp.c_str(), path.c_str()) != 0) throw ErrnoError("renaming into place", path);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  const size_t slash = path.rfind('/');
  FsyncDir(slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash));
}

void WriteFileAtomic(const std::string& path, ByteSpan data) {
  std::string tmp = path + ".tmp.XXXXXX";
  const int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) throw ErrnoError("creating a temporary file for", path);
  CommitTempFile(fd, tmp, path, data);
}

}  // namespace bulwark::sys
