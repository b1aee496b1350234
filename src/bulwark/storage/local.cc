#include "bulwark/storage/local.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <map>

#include "bulwark/base/error.h"
#include "bulwark/base/sys.h"
#include "bulwark/crypto/crypto.h"

namespace bulwark::storage {
namespace {

using sys::Fd;

void ReadAt(int fd, uint8_t* buf, size_t len, uint64_t offset, const std::string& path) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd, buf + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw ErrnoError("reading", path);
    }
    if (n == 0)
      throw Error(ErrorCode::kCorrupt, "reading " + path + ": object is shorter than expected (truncated): wanted " +
                                           std::to_string(len) + " bytes at offset " + std::to_string(offset));
    done += static_cast<size_t>(n);
  }
}

class LocalBackend : public Backend {
 public:
  explicit LocalBackend(std::string root) : root_(std::move(root)) {
    while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
  }

  std::string Location() const override { return root_; }
  Capabilities capabilities() const override { return {true, 4, true}; }

  void Put(const std::string& name, ByteSpan data) override {
    std::string path = Path(name);
    std::string dir = path.substr(0, path.rfind('/'));
    std::string tmp = dir + "/.tmp-" + crypto::RandomId().Short() + crypto::RandomId().Short();
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == ENOENT) {
      MakeDirs(dir);
      fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    }
    if (fd < 0) throw ErrnoError("creating", tmp);
    sys::CommitTempFile(fd, tmp, path, data);
  }

  Bytes Get(const std::string& name) override {
    std::string path = Path(name);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw ErrnoError("opening", path);
    Fd guard(fd);
    struct stat st;
    if (::fstat(fd, &st) != 0) throw ErrnoError("stat", path);
    Bytes out(static_cast<size_t>(st.st_size));
    ReadAt(fd, out.data(), out.size(), 0, path);
    return out;
  }

  Bytes GetRange(const std::string& name, uint64_t offset, uint64_t length) override {
    std::string path = Path(name);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw ErrnoError("opening", path);
    Fd guard(fd);
    Bytes out(length);
    ReadAt(fd, out.data(), length, offset, path);
    return out;
  }

  ByteSpan GetRangeInto(const std::string& name, uint64_t offset, uint64_t length, Bytes* buf) override {
    std::string path = Path(name);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw ErrnoError("opening", path);
    Fd guard(fd);
    if (buf->size() < length) buf->resize(length);
    ReadAt(fd, buf->data(), length, offset, path);
    return ByteSpan(buf->data(), length);
  }

  std::optional<ObjectInfo> Stat(const std::string& name) override {
    std::string path = Path(name);
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
      throw ErrnoError("stat", path);
    }
    return ObjectInfo{name, static_cast<uint64_t>(st.st_size),
                      int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
  }

  std::vector<ObjectInfo> List(const std::string& prefix) override {
    std::vector<ObjectInfo> out;
    // prefix is a directory ("data/") or a name prefix inside one.
    std::string dir_part = prefix.substr(0, prefix.rfind('/') == std::string::npos ? 0 : prefix.rfind('/'));
    ListDir(dir_part, prefix, &out);
    return out;
  }

  void Remove(const std::string& name) override {
    std::string path = Path(name);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) throw ErrnoError("removing", path);
  }

  void Create() override {
    struct stat st;
    if (::stat((root_ + "/config").c_str(), &st) == 0)
      throw Error(ErrorCode::kAlreadyExists, "a repository already exists at " + root_);
    MakeDirs(root_);
    for (const char* d : {"keys", "data", "index", "snapshots", "locks", "marked"}) MakeDirs(root_ + "/" + d);
    char sub[4];
    for (int i = 0; i < 256; ++i) {
      std::snprintf(sub, sizeof sub, "%02x", i);
      MakeDirs(root_ + "/data/" + sub);
    }
  }

 private:
  std::string Path(const std::string& name) const {
    if (name.empty() || name.find("..") != std::string::npos || name[0] == '/')
      throw Error(ErrorCode::kInternal, "invalid object name '" + name + "'");
    return root_ + "/" + name;
  }

  static void MakeDirs(const std::string& dir) {
    if (dir.empty()) return;
    if (::mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) return;
    if (errno == ENOENT) {
      auto slash = dir.rfind('/');
      if (slash != std::string::npos && slash > 0) {
        MakeDirs(dir.substr(0, slash));
        if (::mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) return;
      }
    }
    throw ErrnoError("creating directory", dir);
  }

  void ListDir(const std::string& rel, const std::string& prefix, std::vector<ObjectInfo>* out) {
    std::string path = rel.empty() ? root_ : root_ + "/" + rel;
    DIR* d = ::opendir(path.c_str());
    if (!d) {
      if (errno == ENOENT) return;
      throw ErrnoError("listing", path);
    }
    std::vector<std::pair<std::string, bool>> entries;
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n == "." || n == ".." || n.rfind(".tmp-", 0) == 0) continue;
      entries.emplace_back(n, e->d_type == DT_DIR);
    }
    ::closedir(d);
    for (auto& [n, is_dir] : entries) {
      std::string name = rel.empty() ? n : rel + "/" + n;
      if (is_dir) {
        if (prefix.rfind(name + "/", 0) == 0 || (name + "/").rfind(prefix, 0) == 0) ListDir(name, prefix, out);
        continue;
      }
      if (name.rfind(prefix, 0) != 0) continue;
      struct stat st;
      if (::lstat((root_ + "/" + name).c_str(), &st) != 0) {
        if (errno == ENOENT) continue;  // removed concurrently
        throw ErrnoError("stat", root_ + "/" + name);
      }
      if (S_ISDIR(st.st_mode)) {
        ListDir(name, prefix, out);
        continue;
      }
      out->push_back(
          {name, static_cast<uint64_t>(st.st_size), int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec});
    }
  }

  std::string root_;
};

}  // namespace

std::unique_ptr<Backend> NewLocalBackend(const std::string& root) { return std::make_unique<LocalBackend>(root); }

}  // namespace bulwark::storage
