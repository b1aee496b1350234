#include "bulwark/ops/wal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <set>
#include <mutex>
#include <thread>
#include <vector>

#include "bulwark/base/error.h"
#include "bulwark/base/log.h"
#include "bulwark/base/sys.h"
#include "bulwark/repo/wal.h"

namespace bulwark::ops {

namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

using sys::Fd;

std::string BaseName(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string DirName(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// A regular file mapped read-only (PostgreSQL does not change a segment it
// hands to archive_command): no copy and no fresh 16 MiB buffer to fault in.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw ErrnoError("opening WAL file", path);
    Fd guard(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw ErrnoError("stat", path);
    if (!S_ISREG(st.st_mode)) throw Error(ErrorCode::kInvalidArgument, path + ": not a regular file");
    if (static_cast<uint64_t>(st.st_size) > repo::kMaxWalFileSize)
      throw Error(ErrorCode::kInvalidArgument,
                  path + ": " + std::to_string(st.st_size) + " bytes is larger than any WAL file (1 GiB)");
    size_ = static_cast<size_t>(st.st_size);
    if (size_ == 0) return;
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (p == MAP_FAILED) throw ErrnoError("mapping WAL file", path);
    data_ = static_cast<const uint8_t*>(p);
  }
  ~MappedFile() {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ByteSpan bytes() const { return ByteSpan(data_, size_); }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// The spool directory of one DEST, locked (flock) for the lifetime of this
// object, so that its temp files and contents are ours alone. Files: ".lock",
// ".source" ("<repository id> <source>": what filled it), prefetched segments
// under their WAL file names, and ".tmp-*" files being written (left over
// only by a killed call: removed on open).
class Spool {
 public:
  Spool(const std::string& dest, const Id& repository, const std::string& source)
      : dir_(WalSpoolDir(dest)), dest_(dest), lock_(LockedDir(dir_)) {
    // Empty it when it was filled from another repository or source (or
    // never marked), then mark it; drop temp files of killed calls.
    std::string owner = repository.Hex() + " " + source + "\n";
    bool ours = ReadSmall(dir_ + "/.source") == owner;
    for (const std::string& n : Entries())
      if (n.rfind(".tmp-", 0) == 0 || (!ours && n != ".lock")) Unlink(n);
    if (!ours) WriteFile(".source", AsBytes(owner));
  }
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Removes spooled segments before `w`'s position (any timeline): recovery
  // only moves forward.
  void DropBefore(const repo::WalFileName& w) {
    std::string_view pos = std::string_view(w.name).substr(8, 16);
    for (const std::string& n : Entries()) {
      if (n[0] == '.') continue;
      if (!repo::WalFileName::Valid(n) || n.size() != 24 || std::string_view(n).substr(8, 16) < pos) Unlink(n);
    }
  }

  bool Has(const std::string& name) const {
    struct stat st {};
    return ::stat((dir_ + "/" + name).c_str(), &st) == 0;
  }

  // Moves the spooled `name` to DEST; false if it is not spooled.
  bool ServeTo(const std::string& name, uint64_t* bytes) {
    std::string from = dir_ + "/" + name;
    struct stat st {};
    if (::stat(from.c_str(), &st) != 0) return false;
    if (::rename(from.c_str(), dest_.c_str()) != 0) throw ErrnoError("renaming " + from + " to", dest_);
    *bytes = static_cast<uint64_t>(st.st_size);
    return true;
  }

  // Writes DEST atomically (temp file here, then rename). Not synced:
  // PostgreSQL reads it at once and fetches it again if the host crashes
  // before it is done with it (it fsyncs what it keeps).
  void WriteDest(ByteSpan data) {
    std::string tmp = WriteTemp(data, false);
    if (::rename(tmp.c_str(), dest_.c_str()) != 0) {
      int e = errno;
      ::unlink(tmp.c_str());
      throw ErrnoError("renaming " + tmp + " to", dest_, e);
    }
  }

  // Writes `name` into the spool durably (temp, fsync, rename, fsync of the
  // directory): it may be served after a crash, without being checked again.
  void WriteFile(const std::string& name, ByteSpan data, bool sync = true) {
    std::string tmp = WriteTemp(data, sync);
    std::string path = dir_ + "/" + name;
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      int e = errno;
      ::unlink(tmp.c_str());
      throw ErrnoError("renaming into place", path, e);
    }
    if (sync) sys::FsyncDir(dir_);
  }

 private:
  std::vector<std::string> Entries() const {
    std::vector<std::string> out;
    DIR* d = ::opendir(dir_.c_str());
    if (!d) throw ErrnoError("listing", dir_);
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") out.push_back(n);
    }
    ::closedir(d);
    return out;
  }

  void Unlink(const std::string& name) const {
    std::string path = dir_ + "/" + name;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) throw ErrnoError("removing", path);
  }

  std::string ReadSmall(const std::string& path) const {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return "";
    Fd guard(fd);
    char buf[256];
    ssize_t n = ::read(fd, buf, sizeof buf);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }

  std::string WriteTemp(ByteSpan data, bool sync) {
    std::string tmp = dir_ + "/.tmp-" + std::to_string(::getpid()) + "-" + std::to_string(next_tmp_++);
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw ErrnoError("creating", tmp);
    try {
      Fd guard(fd);
      sys::WriteAll(fd, data, tmp);
      if (sync && ::fsync(fd) != 0) throw ErrnoError("syncing", tmp);
    } catch (...) {
      ::unlink(tmp.c_str());
      throw;
    }
    return tmp;
  }

  // Creates `dir` (0700) if needed; returns its ".lock" file, locked (flock, exclusive).
  static int LockedDir(const std::string& dir) {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) throw ErrnoError("creating the spool directory", dir);
    std::string lock = dir + "/.lock";
    int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) throw ErrnoError("opening", lock);
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      throw ErrnoError("locking", lock, e);
    }
    return fd;
  }

  std::string dir_, dest_;
  Fd lock_;  // closing it releases the lock
  std::atomic<uint64_t> next_tmp_{0};
};

// The object `object`, decoded into *out; false if it does not exist.
bool FetchWal(repo::Repository& repo, const std::string& object, Bytes* out) {
  Bytes sealed;
  try {
    sealed = repo.backend().Get(object);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kNotFound) return false;
    throw;
  }
  *out = repo::OpenWal(repo.aead(), object, sealed, repo.backend().Location() + "/" + object);
  return true;
}

// Fetches the segments after `first` into the spool, `threads` at a time,
// stopping at the first that is not archived. Errors only end the prefetch:
// a segment it could not fetch is fetched (and its error reported) when
// PostgreSQL asks for it.
int Prefetch(repo::Repository& repo, Spool& spool, const std::string& source, const repo::WalFileName& first,
             uint64_t segment_size, const WalFetchOptions& o) {
  std::vector<repo::WalFileName> names;
  repo::WalFileName w = first;
  for (int i = 0; i < o.prefetch; ++i) {
    try {
      w = w.NextSegment(segment_size);
    } catch (const Error&) {
      break;  // the end of the WAL address space
    }
    names.push_back(w);
  }
  std::atomic<size_t> next{0}, limit{names.size()};
  std::atomic<int> fetched{0};
  auto work = [&] {
    for (size_t i; (i = next++) < limit.load();) {
      const std::string& n = names[i].name;
      if (spool.Has(n)) continue;
      try {
        Bytes data;
        if (!FetchWal(repo, repo::WalObjectName(source, n), &data)) {
          for (size_t l = limit.load(); i < l && !limit.compare_exchange_weak(l, i);) {
          }
          continue;
        }
        spool.WriteFile(n, data);
        fetched++;
      } catch (const Error& e) {
        log::Debug("prefetch of " + n + " stopped: " + e.what());
        for (size_t l = limit.load(); i < l && !limit.compare_exchange_weak(l, i);) {
        }
      }
    }
  };
  int nthreads = std::clamp(o.threads, 1, std::max(1, static_cast<int>(names.size())));
  std::vector<std::thread> threads;
  for (int t = 1; t < nthreads; ++t) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  return fetched.load();
}

}  // namespace

std::string WalSpoolDir(const std::string& dest) { return DirName(dest) + "/bulwark-spool"; }

WalPushResult WalPush(repo::Repository& repo, const std::string& path, const WalPushOptions& o) {
  auto t0 = Clock::now();
  if (o.compression < 0 || o.compression > 19)
    throw Error(ErrorCode::kInvalidArgument, "--compression must be 0 (off) to 19, got " + std::to_string(o.compression));
  WalPushResult r;
  r.name = BaseName(path);
  r.object = repo::WalObjectName(o.source, r.name);  // validates the source and the file name
  MappedFile file(path);
  ByteSpan content = file.bytes();
  r.bytes = content.size();
  storage::Backend& be = repo.backend();
  std::string what = be.Location() + "/" + r.object;

  // The SHA-256 in a second thread, while this one asks whether the object
  // exists (a network round trip on S3) and compresses.
  Id sha;
  std::thread hasher([&] { sha = crypto::Sha256(content); });
  struct Join {
    std::thread& t;
    ~Join() {
      if (t.joinable()) t.join();
    }
  } join{hasher};

  // Already archived? One small ranged read: the header says size and SHA-256.
  std::optional<repo::WalHeader> existing;
  try {
    Bytes prefix = be.GetRange(r.object, 0, repo::kWalPrefixSize);
    existing = repo::OpenWalHeader(repo.aead(), r.object, prefix, what);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kNotFound) {
      if (e.code() == ErrorCode::kCorrupt)
        throw Error(ErrorCode::kCorrupt, std::string(e.what()) +
                                             " (an archived WAL file is damaged; it is not overwritten: check it, "
                                             "then remove it by hand to archive it again)");
      throw;
    }
  }
  if (existing) {
    hasher.join();
    if (existing->size != r.bytes || existing->sha256 != sha)
      throw Error(ErrorCode::kAlreadyExists,
                  what + " is already archived with different content (" + std::to_string(existing->size) +
                      " bytes, SHA-256 " + existing->sha256.Short() + "; this file: " + std::to_string(r.bytes) +
                      " bytes, SHA-256 " + sha.Short() +
                      "): refusing to overwrite it. Is a second cluster archiving into the same source?");
    r.already_archived = true;
    r.seconds = Since(t0);
    return r;
  }
  // One segment is the whole job: every core compresses (a 16 MiB segment
  // is several of libzstd's jobs).
  repo::WalBody body = repo::CompressWal(content, o.compression, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  hasher.join();
  Bytes sealed = repo::SealWal(repo.aead(), r.object, content, sha, body);
  body = {};
  be.Put(r.object, sealed);
  r.stored_bytes = sealed.size();
  r.seconds = Since(t0);
  return r;
}

std::optional<WalFetchResult> WalFetchFromSpool(const Id& repository, const std::string& source,
                                                const std::string& name, const std::string& dest) {
  auto t0 = Clock::now();
  repo::WalFileName w = repo::WalFileName::Parse(name);
  repo::ValidateWalSource(source);
  if (w.kind != repo::WalFileKind::kSegment) return std::nullopt;  // only segments are prefetched
  if (::access(WalSpoolDir(dest).c_str(), F_OK) != 0) return std::nullopt;
  Spool spool(dest, repository, source);
  spool.DropBefore(w);
  WalFetchResult r;
  if (!spool.ServeTo(name, &r.bytes)) return std::nullopt;
  r.found = r.from_spool = true;
  r.seconds = Since(t0);
  return r;
}

WalFetchResult WalFetch(repo::Repository& repo, const std::string& name, const std::string& dest,
                        const WalFetchOptions& o) {
  auto t0 = Clock::now();
  if (o.prefetch < -1) throw Error(ErrorCode::kInvalidArgument, "--prefetch must not be negative");
  WalFetchOptions opt = o;
  if (opt.prefetch < 0) opt.prefetch = repo.backend().capabilities().local ? 0 : kDefaultPrefetch;
  repo::WalFileName w = repo::WalFileName::Parse(name);
  std::string object = repo::WalObjectName(o.source, name);
  Spool spool(dest, repo.config().id, o.source);
  WalFetchResult r;
  if (w.kind == repo::WalFileKind::kSegment) {
    spool.DropBefore(w);
    if (spool.ServeTo(name, &r.bytes)) {
      r.found = r.from_spool = true;
      r.seconds = Since(t0);
      return r;
    }
  }
  Bytes data;
  if (!FetchWal(repo, object, &data)) {
    r.seconds = Since(t0);
    return r;
  }
  spool.WriteDest(data);
  r.found = true;
  r.bytes = data.size();
  data = Bytes();
  if (w.kind == repo::WalFileKind::kSegment && opt.prefetch > 0 && repo::ValidWalSegmentSize(r.bytes))
    r.prefetched = Prefetch(repo, spool, opt.source, w, r.bytes, opt);
  r.seconds = Since(t0);
  return r;
}

CopyWalResult CopyWal(repo::Repository& from, repo::Repository& to, const std::string& source, int level,
                      bool dry_run) {
  const std::string prefix = repo::WalPrefix(source);
  std::set<std::string> present;
  for (const auto& o : to.backend().List(prefix)) present.insert(o.name);
  CopyWalResult r;
  for (const auto& o : from.backend().List(prefix)) {
    if (!repo::WalFileName::Valid(std::string_view(o.name).substr(prefix.size()))) continue;
    if (present.count(o.name)) {
      r.present++;
      continue;
    }
    r.copied++;
    if (dry_run) continue;
    repo::WalHeader header;
    Bytes content = repo::OpenWal(from.aead(), o.name, from.backend().Get(o.name),
                                  from.backend().Location() + "/" + o.name, &header);
    to.backend().Put(o.name, repo::SealWal(to.aead(), o.name, content, header.sha256, repo::CompressWal(content, level)));
    r.bytes += content.size();
  }
  return r;
}

}  // namespace bulwark::ops
