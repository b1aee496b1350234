// See treecmp_lib.h. This file is also #included directly by
// tools/treecmp.cc so that the tool stays a single translation unit.
#include "treecmp_lib.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <utility>

namespace bulwark::testing {

namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr size_t kChunk = 1 << 20;

// Owns a file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      Reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

std::string ErrStr(int err) { return std::string("error: ") + std::strerror(err); }

std::string Quote(std::string_view raw) {
  std::string out = "\"";
  for (char c : EscapeBytes(raw)) {
    if (c == '"') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

// Shows a (possibly binary) xattr value; long values are truncated.
std::string ShowValue(const std::string& v) {
  constexpr size_t kMax = 48;
  if (v.size() <= kMax) return Quote(v);
  return Quote(std::string_view(v).substr(0, kMax)) + "...(" + std::to_string(v.size()) + " bytes)";
}

const char* TypeName(mode_t m) {
  switch (m & S_IFMT) {
    case S_IFREG: return "file";
    case S_IFDIR: return "dir";
    case S_IFLNK: return "symlink";
    case S_IFIFO: return "fifo";
    case S_IFCHR: return "char-device";
    case S_IFBLK: return "block-device";
    case S_IFSOCK: return "socket";
    default: return "unknown";
  }
}

std::string Octal(unsigned v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04o", v);
  return buf;
}

std::string Time(const struct timespec& ts) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%lld.%09ld", static_cast<long long>(ts.tv_sec),
                static_cast<long>(ts.tv_nsec));
  return buf;
}

std::string Dev(dev_t d) {
  return std::to_string(major(d)) + ":" + std::to_string(minor(d));
}

std::string Hex8(unsigned char c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", c);
  return buf;
}

std::string JoinPath(const std::string& rel, const std::string& name) {
  return rel.empty() ? name : rel + "/" + name;
}

// Reads the names in the directory `fd` (without "." and ".."), sorted
// bytewise. The fd itself stays open and unchanged.
bool ReadNames(int fd, std::vector<std::string>* names, int* err) {
  int dup_fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) {
    *err = errno;
    return false;
  }
  DIR* d = ::fdopendir(dup_fd);
  if (!d) {
    *err = errno;
    ::close(dup_fd);
    return false;
  }
  ::rewinddir(d);
  names->clear();
  for (;;) {
    errno = 0;
    struct dirent* e = ::readdir(d);
    if (!e) {
      if (errno != 0) {
        *err = errno;
        ::closedir(d);
        return false;
      }
      break;
    }
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    names->emplace_back(e->d_name);
  }
  ::closedir(d);
  std::sort(names->begin(), names->end());
  return true;
}

int OpenNoAtime(int dirfd, const char* name, int flags) {
  int fd = ::openat(dirfd, name, flags | O_CLOEXEC | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = ::openat(dirfd, name, flags | O_CLOEXEC);
  return fd;
}

// Extended attributes of `path`: name -> value.
bool ReadXattrs(const std::string& path, bool follow, std::map<std::string, std::string>* out,
                int* err) {
  out->clear();
  std::vector<char> list;
  for (int attempt = 0;; ++attempt) {
    ssize_t n = follow ? ::listxattr(path.c_str(), nullptr, 0)
                       : ::llistxattr(path.c_str(), nullptr, 0);
    if (n < 0) {
      if (errno == ENOTSUP) return true;
      *err = errno;
      return false;
    }
    if (n == 0) return true;
    list.resize(static_cast<size_t>(n));
    n = follow ? ::listxattr(path.c_str(), list.data(), list.size())
               : ::llistxattr(path.c_str(), list.data(), list.size());
    if (n < 0) {
      if (errno == ERANGE && attempt < 8) continue;
      *err = errno;
      return false;
    }
    list.resize(static_cast<size_t>(n));
    break;
  }
  size_t pos = 0;
  while (pos < list.size()) {
    std::string name(list.data() + pos);
    pos += name.size() + 1;
    if (name.empty() || name == "security.selinux") continue;
    std::string value;
    bool have = false;
    for (int attempt = 0; attempt < 8; ++attempt) {
      ssize_t n = follow ? ::getxattr(path.c_str(), name.c_str(), nullptr, 0)
                         : ::lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
      if (n < 0) break;
      value.resize(static_cast<size_t>(n));
      n = follow ? ::getxattr(path.c_str(), name.c_str(), value.data(), value.size())
                 : ::lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
      if (n < 0 && errno == ERANGE) continue;
      if (n < 0) break;
      value.resize(static_cast<size_t>(n));
      have = true;
      break;
    }
    if (!have) {
      if (errno == ENODATA) continue;  // removed meanwhile
      *err = errno;
      return false;
    }
    (*out)[name] = std::move(value);
  }
  return true;
}

// Returns the offset of the next data at or after `pos` (or `size` if the
// rest is a hole). Without SEEK_DATA support everything counts as data.
uint64_t NextData(int fd, uint64_t pos, uint64_t size) {
  off_t r = ::lseek(fd, static_cast<off_t>(pos), SEEK_DATA);
  if (r < 0) return errno == ENXIO ? size : pos;
  return std::min<uint64_t>(static_cast<uint64_t>(r), size);
}

// Reads exactly `len` bytes at `off` unless EOF comes first; returns bytes
// read or -1.
ssize_t ReadFull(int fd, char* buf, size_t len, uint64_t off) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd, buf + done, len - done, static_cast<off_t>(off + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return static_cast<ssize_t>(done);
}

using InodeKey = std::pair<dev_t, ino_t>;

class Comparer {
 public:
  Comparer(bool ignore_atime, CompareResult* result)
      : ignore_atime_(ignore_atime), r_(result), sbuf_(kChunk), dbuf_(kChunk) {
    use_proc_ = ::access("/proc/self/fd", X_OK) == 0;
  }

  void Run(const std::string& src, const std::string& dst) {
    src_root_ = src;
    dst_root_ = dst;
    struct stat ss, ds;
    bool sok = ::stat(src.c_str(), &ss) == 0;
    int serr = errno;
    bool dok = ::stat(dst.c_str(), &ds) == 0;
    int derr = errno;
    if (!sok || !dok) {
      Diff("", "cannot stat root", sok ? "ok" : ErrStr(serr), dok ? "ok" : ErrStr(derr));
      return;
    }
    Side s{AT_FDCWD, src, true}, d{AT_FDCWD, dst, true};
    CompareEntry(s, d, "", ss, ds);
    CheckHardlinks();
  }

 private:
  // An entry on one side: the directory fd it lives in and its name (for
  // the roots: AT_FDCWD and the root path, followed if it is a symlink).
  struct Side {
    int parent;
    std::string name;
    bool root;
  };

  void Diff(const std::string& rel, const std::string& what, const std::string& s,
            const std::string& d) {
    r_->identical = false;
    r_->differences.push_back((rel.empty() ? std::string(".") : EscapeBytes(rel)) + ": " +
                              what + " (src=" + s + ", dst=" + d + ")");
  }

  std::string XattrPath(const Side& side, const std::string& root, const std::string& rel) const {
    if (side.root) return side.name;
    if (use_proc_) return "/proc/self/fd/" + std::to_string(side.parent) + "/" + side.name;
    return root + "/" + rel;
  }

  void Count(mode_t m) {
    ++r_->entries;
    switch (m & S_IFMT) {
      case S_IFREG: ++r_->files; break;
      case S_IFDIR: ++r_->dirs; break;
      case S_IFLNK: ++r_->symlinks; break;
      default: ++r_->others; break;
    }
  }

  void CompareEntry(const Side& s, const Side& d, const std::string& rel, const struct stat& ss,
                    const struct stat& ds) {
    Count(ss.st_mode);
    if ((ss.st_mode & S_IFMT) != (ds.st_mode & S_IFMT)) {
      Diff(rel, "type differs", TypeName(ss.st_mode), TypeName(ds.st_mode));
      return;
    }
    const bool is_dir = S_ISDIR(ss.st_mode);
    if (!is_dir) {
      // Hard-link structure is checked at the end; everything else is a
      // property of the inode, so compare each (src, dst) inode pair once.
      InodeKey sk{ss.st_dev, ss.st_ino}, dk{ds.st_dev, ds.st_ino};
      size_t idx = link_paths_.size();
      link_paths_.push_back(rel);
      link_keys_.emplace_back(sk, dk);
      src_groups_[sk].push_back(idx);
      dst_groups_[dk].push_back(idx);
      if (S_ISREG(ss.st_mode) && counted_src_inodes_.insert(sk).second) {
        r_->bytes += static_cast<uint64_t>(ss.st_size);
      }
      if (!compared_pairs_.insert({sk, dk}).second) return;
    }

    if ((ss.st_mode & 07777) != (ds.st_mode & 07777)) {
      Diff(rel, "mode differs", Octal(ss.st_mode & 07777), Octal(ds.st_mode & 07777));
    }
    if (ss.st_uid != ds.st_uid) {
      Diff(rel, "uid differs", std::to_string(ss.st_uid), std::to_string(ds.st_uid));
    }
    if (ss.st_gid != ds.st_gid) {
      Diff(rel, "gid differs", std::to_string(ss.st_gid), std::to_string(ds.st_gid));
    }
    if (ss.st_mtim.tv_sec != ds.st_mtim.tv_sec || ss.st_mtim.tv_nsec != ds.st_mtim.tv_nsec) {
      Diff(rel, "mtime differs", Time(ss.st_mtim), Time(ds.st_mtim));
    }
    if (!ignore_atime_ &&
        (ss.st_atim.tv_sec != ds.st_atim.tv_sec || ss.st_atim.tv_nsec != ds.st_atim.tv_nsec)) {
      Diff(rel, "atime differs", Time(ss.st_atim), Time(ds.st_atim));
    }

    switch (ss.st_mode & S_IFMT) {
      case S_IFREG: CompareFile(s, d, rel, ss, ds); break;
      case S_IFLNK: CompareSymlink(s, d, rel); break;
      case S_IFCHR:
      case S_IFBLK:
        if (ss.st_rdev != ds.st_rdev) {
          Diff(rel, "device number differs", Dev(ss.st_rdev), Dev(ds.st_rdev));
        }
        break;
      default: break;
    }

    CompareXattrs(s, d, rel);

    if (is_dir) CompareDirContents(s, d, rel, ss, ds);
  }

  void CompareFile(const Side& s, const Side& d, const std::string& rel, const struct stat& ss,
                   const struct stat& ds) {
    const uint64_t s_alloc = static_cast<uint64_t>(ss.st_blocks) * 512;
    const uint64_t d_alloc = static_cast<uint64_t>(ds.st_blocks) * 512;
    const uint64_t s_size = static_cast<uint64_t>(ss.st_size);
    if (s_size >= s_alloc + kMiB && d_alloc > s_alloc + kMiB) {
      Diff(rel, "holes not preserved: allocated bytes differ", std::to_string(s_alloc),
           std::to_string(d_alloc));
    }
    if (ss.st_size != ds.st_size) {
      Diff(rel, "size differs", std::to_string(ss.st_size), std::to_string(ds.st_size));
      return;
    }
    const int flags = O_RDONLY | (s.root ? 0 : O_NOFOLLOW);
    Fd sfd(OpenNoAtime(s.parent, s.name.c_str(), flags));
    int serr = errno;
    Fd dfd(OpenNoAtime(d.parent, d.name.c_str(), flags));
    int derr = errno;
    if (!sfd.ok() || !dfd.ok()) {
      Diff(rel, "cannot open file", sfd.ok() ? "ok" : ErrStr(serr), dfd.ok() ? "ok" : ErrStr(derr));
      return;
    }
    uint64_t pos = 0;
    while (pos < s_size) {
      // Ranges that are holes on both sides read as zeros on both: skip.
      uint64_t skip_to = std::min(NextData(sfd.get(), pos, s_size), NextData(dfd.get(), pos, s_size));
      if (skip_to > pos) {
        pos = skip_to;
        continue;
      }
      size_t len = static_cast<size_t>(std::min<uint64_t>(kChunk, s_size - pos));
      ssize_t sn = ReadFull(sfd.get(), sbuf_.data(), len, pos);
      serr = errno;
      ssize_t dn = ReadFull(dfd.get(), dbuf_.data(), len, pos);
      derr = errno;
      if (sn < 0 || dn < 0) {
        Diff(rel, "read error at offset " + std::to_string(pos), sn < 0 ? ErrStr(serr) : "ok",
             dn < 0 ? ErrStr(derr) : "ok");
        return;
      }
      size_t common = static_cast<size_t>(std::min(sn, dn));
      if (std::memcmp(sbuf_.data(), dbuf_.data(), common) != 0) {
        size_t i = 0;
        while (sbuf_[i] == dbuf_[i]) ++i;
        Diff(rel, "content differs at offset " + std::to_string(pos + i),
             Hex8(static_cast<unsigned char>(sbuf_[i])), Hex8(static_cast<unsigned char>(dbuf_[i])));
        return;
      }
      if (static_cast<size_t>(sn) != len || static_cast<size_t>(dn) != len) {
        Diff(rel, "file shrank while reading at offset " + std::to_string(pos),
             std::to_string(sn) + " bytes read", std::to_string(dn) + " bytes read");
        return;
      }
      pos += len;
    }
  }

  static bool ReadLink(const Side& side, std::string* target, int* err) {
    std::vector<char> buf(256);
    for (;;) {
      ssize_t n = ::readlinkat(side.parent, side.name.c_str(), buf.data(), buf.size());
      if (n < 0) {
        *err = errno;
        return false;
      }
      if (static_cast<size_t>(n) < buf.size()) {
        target->assign(buf.data(), static_cast<size_t>(n));
        return true;
      }
      buf.resize(buf.size() * 4);
    }
  }

  void CompareSymlink(const Side& s, const Side& d, const std::string& rel) {
    std::string st, dt;
    int serr = 0, derr = 0;
    bool sok = ReadLink(s, &st, &serr), dok = ReadLink(d, &dt, &derr);
    if (!sok || !dok) {
      Diff(rel, "cannot read symlink", sok ? "ok" : ErrStr(serr), dok ? "ok" : ErrStr(derr));
    } else if (st != dt) {
      Diff(rel, "symlink target differs", Quote(st), Quote(dt));
    }
  }

  void CompareXattrs(const Side& s, const Side& d, const std::string& rel) {
    std::map<std::string, std::string> sx, dx;
    int serr = 0, derr = 0;
    bool sok = ReadXattrs(XattrPath(s, src_root_, rel), s.root, &sx, &serr);
    bool dok = ReadXattrs(XattrPath(d, dst_root_, rel), d.root, &dx, &derr);
    if (!sok || !dok) {
      Diff(rel, "cannot read xattrs", sok ? "ok" : ErrStr(serr), dok ? "ok" : ErrStr(derr));
      return;
    }
    auto si = sx.begin();
    auto di = dx.begin();
    while (si != sx.end() || di != dx.end()) {
      if (di == dx.end() || (si != sx.end() && si->first < di->first)) {
        Diff(rel, "xattr " + Quote(si->first) + " differs", ShowValue(si->second), "<absent>");
        ++si;
      } else if (si == sx.end() || di->first < si->first) {
        Diff(rel, "xattr " + Quote(di->first) + " differs", "<absent>", ShowValue(di->second));
        ++di;
      } else {
        if (si->second != di->second) {
          Diff(rel, "xattr " + Quote(si->first) + " value differs", ShowValue(si->second),
               ShowValue(di->second));
        }
        ++si;
        ++di;
      }
    }
  }

  Fd OpenDir(const Side& side, const struct stat& expect, int* err) {
    Fd fd(OpenNoAtime(side.parent, side.name.c_str(),
                      O_RDONLY | O_DIRECTORY | (side.root ? 0 : O_NOFOLLOW)));
    if (!fd.ok()) {
      *err = errno;
      return fd;
    }
    struct stat st;
    if (::fstat(fd.get(), &st) != 0 || st.st_dev != expect.st_dev || st.st_ino != expect.st_ino) {
      *err = ESTALE;  // replaced while comparing
      fd.Reset();
    }
    return fd;
  }

  void CompareDirContents(const Side& s, const Side& d, const std::string& rel,
                          const struct stat& ss, const struct stat& ds) {
    int serr = 0, derr = 0;
    Fd sfd = OpenDir(s, ss, &serr);
    Fd dfd = OpenDir(d, ds, &derr);
    if (!sfd.ok() || !dfd.ok()) {
      Diff(rel, "cannot open directory", sfd.ok() ? "ok" : ErrStr(serr),
           dfd.ok() ? "ok" : ErrStr(derr));
      return;
    }
    std::vector<std::string> snames, dnames;
    bool sok = ReadNames(sfd.get(), &snames, &serr);
    bool dok = ReadNames(dfd.get(), &dnames, &derr);
    if (!sok || !dok) {
      Diff(rel, "cannot read directory", sok ? "ok" : ErrStr(serr), dok ? "ok" : ErrStr(derr));
      return;
    }
    size_t i = 0, j = 0;
    while (i < snames.size() || j < dnames.size()) {
      if (j == dnames.size() || (i < snames.size() && snames[i] < dnames[j])) {
        const std::string child = JoinPath(rel, snames[i]);
        struct stat st;
        Diff(child, "missing in dst",
             ::fstatat(sfd.get(), snames[i].c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0
                 ? TypeName(st.st_mode)
                 : ErrStr(errno),
             "absent");
        ++i;
      } else if (i == snames.size() || dnames[j] < snames[i]) {
        const std::string child = JoinPath(rel, dnames[j]);
        struct stat st;
        Diff(child, "extra in dst", "absent",
             ::fstatat(dfd.get(), dnames[j].c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0
                 ? TypeName(st.st_mode)
                 : ErrStr(errno));
        ++j;
      } else {
        const std::string& name = snames[i];
        const std::string child = JoinPath(rel, name);
        struct stat cs, cd;
        bool csok = ::fstatat(sfd.get(), name.c_str(), &cs, AT_SYMLINK_NOFOLLOW) == 0;
        serr = errno;
        bool cdok = ::fstatat(dfd.get(), name.c_str(), &cd, AT_SYMLINK_NOFOLLOW) == 0;
        derr = errno;
        if (!csok || !cdok) {
          Diff(child, "cannot stat", csok ? "ok" : ErrStr(serr), cdok ? "ok" : ErrStr(derr));
        } else {
          Side cs_side{sfd.get(), name, false}, cd_side{dfd.get(), name, false};
          CompareEntry(cs_side, cd_side, child, cs, cd);
        }
        ++i;
        ++j;
      }
    }
  }

  std::string ShowGroup(const std::vector<size_t>& g) const {
    constexpr size_t kMax = 8;
    std::string out = "[";
    for (size_t k = 0; k < g.size() && k < kMax; ++k) {
      if (k) out += ", ";
      out += EscapeBytes(link_paths_[g[k]]);
    }
    if (g.size() > kMax) out += ", ... " + std::to_string(g.size() - kMax) + " more";
    return out + "]";
  }

  // Two paths must be the same inode in SRC iff they are the same inode in
  // DST. Only paths present (with the same type) on both sides take part.
  void CheckHardlinks() {
    std::set<std::pair<std::vector<size_t>, std::vector<size_t>>> reported;
    for (size_t i = 0; i < link_paths_.size(); ++i) {
      const auto& sg = src_groups_[link_keys_[i].first];
      const auto& dg = dst_groups_[link_keys_[i].second];
      if (sg == dg) continue;
      if (!reported.insert({sg, dg}).second) continue;
      Diff(link_paths_[i], "hard links differ", ShowGroup(sg), ShowGroup(dg));
    }
  }

  const bool ignore_atime_;
  CompareResult* r_;
  bool use_proc_ = false;
  std::string src_root_, dst_root_;
  std::vector<char> sbuf_, dbuf_;
  std::vector<std::string> link_paths_;
  std::vector<std::pair<InodeKey, InodeKey>> link_keys_;
  std::map<InodeKey, std::vector<size_t>> src_groups_, dst_groups_;
  std::set<std::pair<InodeKey, InodeKey>> compared_pairs_;
  std::set<InodeKey> counted_src_inodes_;
};

// Length of the valid, printable UTF-8 sequence at s[i] (>= 2), or 0.
size_t Utf8SeqLen(std::string_view s, size_t i) {
  const unsigned char b = static_cast<unsigned char>(s[i]);
  size_t len;
  uint32_t cp;
  if (b >= 0xC2 && b <= 0xDF) {
    len = 2;
    cp = b & 0x1F;
  } else if (b >= 0xE0 && b <= 0xEF) {
    len = 3;
    cp = b & 0x0F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    len = 4;
    cp = b & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    const unsigned char c = static_cast<unsigned char>(s[i + k]);
    if ((c & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (c & 0x3F);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  if (cp < 0xA0) return 0;                     // C1 controls
  if (cp == 0x2028 || cp == 0x2029) return 0;  // line/paragraph separators
  return len;
}

}  // namespace

std::string EscapeBytes(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size();) {
    const unsigned char c = static_cast<unsigned char>(raw[i]);
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
    } else if (size_t n = c >= 0x80 ? Utf8SeqLen(raw, i) : 0; n > 0) {
      out.append(raw.substr(i, n));
      i += n;
      continue;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
    ++i;
  }
  return out;
}

CompareResult CompareTrees(const std::string& src, const std::string& dst, bool ignore_atime) {
  CompareResult result;
  Comparer(ignore_atime, &result).Run(src, dst);
  return result;
}

}  // namespace bulwark::testing
