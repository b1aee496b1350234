// See treegen.h.
#include "treegen.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

namespace bulwark::testing {

namespace {

constexpr uint64_t kKiB = uint64_t{1} << 10;
constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr size_t kBuf = 256 * 1024;

[[noreturn]] void Fail(const std::string& what, const std::string& path, int err) {
  throw std::runtime_error("treegen: " + what + " " + path + ": " + std::strerror(err));
}

// splitmix64: small, fast and identical everywhere (unlike std distributions).
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t Next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  uint64_t Below(uint64_t n) { return n == 0 ? 0 : Next() % n; }
  uint64_t Range(uint64_t lo, uint64_t hi) { return lo + Below(hi - lo + 1); }  // inclusive
  bool Chance(double p) { return static_cast<double>(Next() >> 11) * 0x1.0p-53 < p; }
  template <typename T>
  const T& Pick(const std::vector<T>& v) { return v[Below(v.size())]; }

 private:
  uint64_t s_;
};

uint64_t Mix(uint64_t a, uint64_t b) {
  Rng r(a ^ (b * 0xd1342543de82ef95ULL) ^ 0x5851f42d4c957f2dULL);
  r.Next();
  return r.Next();
}

// ---------------------------------------------------------------------------
// Deterministic content.

enum class Kind { kRandom, kText, kZeros, kRepeat, kMixed };

struct Content {
  Kind kind = Kind::kRandom;
  uint64_t seed = 0;
  uint64_t size = 0;
  std::string prefix;  // emitted before the generated stream (counts in size)
};

const char* const kWords[] = {
    "backup",  "restore", "chunk",    "snapshot", "repository", "index",   "pack",
    "blob",    "tree",    "deduplicate", "encrypt", "compress", "verify", "prune",
    "the",     "a",       "of",       "and",      "to",         "in",      "is",
    "request", "worker",  "status",   "ok",       "error",      "retry",   "latency",
    "lorem",   "ipsum",   "dolor",    "sit",      "amet",       "consectetur",
    "adipiscing", "elit", "sed",      "do",       "eiusmod",    "tempor",  "incididunt"};
const char* const kLevels[] = {"INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"};

// Produces the bytes of a Content sequentially.
class Stream {
 public:
  explicit Stream(const Content& c)
      : c_(c), rng_(Mix(c.seed, 1)), text_rng_(Mix(c.seed, 2)) {
    if (c_.kind == Kind::kRepeat) {
      block_.resize(64 * kKiB);
      FillRandom(rng_, block_.data(), block_.size());
    }
  }

  void Fill(char* buf, size_t n) {
    while (n > 0) {
      if (prefix_pos_ < c_.prefix.size()) {
        size_t k = std::min(n, c_.prefix.size() - prefix_pos_);
        std::memcpy(buf, c_.prefix.data() + prefix_pos_, k);
        prefix_pos_ += k;
        buf += k;
        n -= k;
        continue;
      }
      Kind kind = c_.kind;
      size_t k = n;
      if (kind == Kind::kMixed) {
        // 256 KiB segments cycling text, random, zeros, text, random.
        constexpr uint64_t kSeg = 256 * kKiB;
        static constexpr Kind kCycle[] = {Kind::kText, Kind::kRandom, Kind::kZeros, Kind::kText,
                                          Kind::kRandom};
        kind = kCycle[(pos_ / kSeg) % 5];
        k = static_cast<size_t>(std::min<uint64_t>(n, kSeg - pos_ % kSeg));
      }
      switch (kind) {
        case Kind::kRandom: FillRandom(rng_, buf, k); break;
        case Kind::kText: FillText(buf, k); break;
        case Kind::kZeros: std::memset(buf, 0, k); break;
        case Kind::kRepeat:
          for (size_t i = 0; i < k; ++i) buf[i] = block_[(pos_ + i) % block_.size()];
          break;
        case Kind::kMixed: break;
      }
      pos_ += k;
      buf += k;
      n -= k;
    }
  }

  static void FillRandom(Rng& rng, char* buf, size_t n) {
    while (n >= 8) {
      uint64_t v = rng.Next();
      std::memcpy(buf, &v, 8);
      buf += 8;
      n -= 8;
    }
    if (n > 0) {
      uint64_t v = rng.Next();
      std::memcpy(buf, &v, n);
    }
  }

 private:
  void FillText(char* buf, size_t n) {
    while (n > 0) {
      if (line_pos_ == line_len_) NextLine();
      size_t k = std::min(n, line_len_ - line_pos_);
      std::memcpy(buf, line_ + line_pos_, k);
      line_pos_ += k;
      buf += k;
      n -= k;
    }
  }

  // A log-like line, e.g. "2024-03-17T12:34:56 INFO worker-3: backup the chunk id=42\n".
  void NextLine() {
    Rng& r = text_rng_;
    char* p = line_;
    auto put = [&p](const char* s) {
      while (*s) *p++ = *s++;
    };
    auto num = [&p](uint64_t v) {
      char tmp[24];
      int n = 0;
      do {
        tmp[n++] = static_cast<char>('0' + v % 10);
        v /= 10;
      } while (v);
      while (n) *p++ = tmp[--n];
    };
    put("2024-03-");
    num(10 + r.Below(20));
    *p++ = 'T';
    num(10 + r.Below(14));
    *p++ = ':';
    num(10 + r.Below(50));
    *p++ = ':';
    num(10 + r.Below(50));
    *p++ = ' ';
    put(kLevels[r.Below(std::size(kLevels))]);
    put(" worker-");
    num(r.Below(16));
    *p++ = ':';
    for (uint64_t i = 0, words = 3 + r.Below(12); i < words; ++i) {
      *p++ = ' ';
      put(kWords[r.Below(std::size(kWords))]);
    }
    put(" id=");
    num(++line_no_);
    *p++ = '\n';
    line_len_ = static_cast<size_t>(p - line_);
    line_pos_ = 0;
  }

  Content c_;
  Rng rng_, text_rng_;
  uint64_t pos_ = 0;
  size_t prefix_pos_ = 0;
  std::vector<char> block_;
  char line_[512];  // longest line: ~60 + 14 * 12 + 25 bytes
  size_t line_len_ = 0, line_pos_ = 0;
  uint64_t line_no_ = 0;
};

void WriteAll(int fd, const char* buf, size_t n, uint64_t off, const std::string& path) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, buf, n, static_cast<off_t>(off));
    if (w < 0) {
      if (errno == EINTR) continue;
      Fail("write", path, errno);
    }
    buf += w;
    n -= static_cast<size_t>(w);
    off += static_cast<uint64_t>(w);
  }
}

std::string Parent(const std::string& rel) {
  size_t p = rel.rfind('/');
  return p == std::string::npos ? std::string() : rel.substr(0, p);
}

int Depth(const std::string& rel) {
  return rel.empty() ? 0 : 1 + static_cast<int>(std::count(rel.begin(), rel.end(), '/'));
}

struct timespec RandomTime(Rng& r, int64_t base, uint64_t span) {
  struct timespec ts;
  ts.tv_sec = static_cast<time_t>(base + static_cast<int64_t>(r.Below(span)));
  ts.tv_nsec = static_cast<long>(1 + r.Below(999999999));
  return ts;
}

void SetTimes(const std::string& path, const struct timespec& mtime, const struct timespec& atime) {
  struct timespec ts[2] = {atime, mtime};
  if (::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) {
    Fail("utimensat", path, errno);
  }
}

// ---------------------------------------------------------------------------
// GenerateTree.

struct Owner {
  int uid = -1;  // -1: leave as created
  int gid = -1;
};

class Builder {
 public:
  Builder(std::string root, const TreeGenOptions& o)
      : root_(std::move(root)), o_(o), rng_(Mix(o.seed, 100)), time_rng_(Mix(o.seed, 200)) {}

  TreeGenStats Build() {
    if (::mkdir(root_.c_str(), 0700) != 0) Fail("mkdir", root_, errno);
    is_root_ = ::geteuid() == 0;
    AddEntry("", 'd', 0755, {});
    ++stats_.dirs;
    ProbeXattrs();

    Catalogue();
    Names();
    Modes();
    Owners();
    Links();
    Hardlinks();
    if (o_.special_files) Special();
    Sparse();
    Empty();
    Deep();
    RandomTree();

    Finalize();
    return stats_;
  }

 private:
  struct Entry {
    std::string rel;
    char type;  // f d l o
    mode_t mode;
    Owner owner;
    struct timespec mtime, atime;
  };

  std::string P(const std::string& rel) const { return rel.empty() ? root_ : root_ + "/" + rel; }

  Entry& AddEntry(const std::string& rel, char type, mode_t mode, Owner owner) {
    Entry e{rel, type, mode, owner, RandomTime(time_rng_, 1400000000, 300000000), {}};
    e.atime = e.mtime;
    e.atime.tv_sec += static_cast<time_t>(time_rng_.Below(1000000));
    entries_.push_back(e);
    return entries_.back();
  }

  void ProbeXattrs() {
    static const char kRootComment[] = "bulwark treegen root";
    user_xattrs_ = ::lsetxattr(root_.c_str(), "user.comment", kRootComment,
                               sizeof kRootComment - 1, 0) == 0;
    static const char kTrusted[] = "\x01trusted\x00root";
    trusted_xattrs_ =
        ::lsetxattr(root_.c_str(), "trusted.x", kTrusted, sizeof kTrusted - 1, 0) == 0;
  }

  void Xattr(const std::string& rel, const std::string& name, const std::string& value) {
    const bool user = name.rfind("user.", 0) == 0;
    if (user ? !user_xattrs_ : !trusted_xattrs_) return;
    const std::string p = P(rel);
    if (::lsetxattr(p.c_str(), name.c_str(), value.data(), value.size(), 0) != 0) {
      // user.* is not allowed on symlinks and special files; skip quietly.
      if (errno == EPERM || errno == ENOTSUP) return;
      Fail("lsetxattr " + name, p, errno);
    }
  }

  std::string BinaryValue(size_t n) {
    std::string v(n, '\0');
    Stream::FillRandom(rng_, v.data(), n);
    if (n > 2) {
      v[0] = '\0';
      v[n - 1] = '\xff';
    }
    return v;
  }

  Entry& Dir(const std::string& rel, mode_t mode = 0755, Owner owner = {}) {
    const std::string p = P(rel);
    if (::mkdir(p.c_str(), 0700) != 0) Fail("mkdir", p, errno);
    ++stats_.dirs;
    return AddEntry(rel, 'd', mode, owner);
  }

  Content NewContent(Kind kind, uint64_t size) {
    return Content{kind, rng_.Next(), std::min(size, o_.max_file_size), {}};
  }

  Entry& File(const std::string& rel, const Content& c, mode_t mode = 0644, Owner owner = {}) {
    const std::string p = P(rel);
    int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) Fail("create", p, errno);
    Stream s(c);
    std::vector<char> buf(static_cast<size_t>(std::min<uint64_t>(kBuf, c.size)));
    uint64_t off = 0;
    while (off < c.size) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), c.size - off));
      s.Fill(buf.data(), n);
      WriteAll(fd, buf.data(), n, off, p);
      off += n;
    }
    if (::close(fd) != 0) Fail("close", p, errno);
    ++stats_.files;
    stats_.bytes += c.size;
    return AddEntry(rel, 'f', mode, owner);
  }

  Entry& TextFile(const std::string& rel, uint64_t size, mode_t mode = 0644, Owner owner = {}) {
    return File(rel, NewContent(Kind::kText, size), mode, owner);
  }

  // A file of `size` bytes (holes unless listed) with data at the given
  // (offset, length) ranges. Not limited by max_file_size.
  void SparseFile(const std::string& rel, uint64_t size,
                  const std::vector<std::pair<uint64_t, uint64_t>>& data) {
    const std::string p = P(rel);
    int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) Fail("create", p, errno);
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0) Fail("ftruncate", p, errno);
    std::vector<char> buf(kBuf);
    int i = 0;
    for (const auto& [off, len] : data) {
      Stream s(Content{i++ % 2 ? Kind::kText : Kind::kRandom, rng_.Next(), len, {}});
      for (uint64_t done = 0; done < len;) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), len - done));
        s.Fill(buf.data(), n);
        WriteAll(fd, buf.data(), n, off + done, p);
        done += n;
      }
    }
    if (::close(fd) != 0) Fail("close", p, errno);
    ++stats_.files;
    stats_.bytes += size;
    AddEntry(rel, 'f', 0644, {});
  }

  Entry& Symlink(const std::string& rel, const std::string& target, Owner owner = {}) {
    const std::string p = P(rel);
    if (::symlink(target.c_str(), p.c_str()) != 0) Fail("symlink", p, errno);
    ++stats_.symlinks;
    return AddEntry(rel, 'l', 0777, owner);
  }

  void Hardlink(const std::string& existing, const std::string& rel) {
    const std::string a = P(existing), b = P(rel);
    if (::link(a.c_str(), b.c_str()) != 0) Fail("link", b, errno);
    ++stats_.hardlinks;
  }

  // ---- the catalogue ----

  void Catalogue() {
    Dir("files");
    File("files/empty", NewContent(Kind::kRandom, 0));
    Entry& one = File("files/one-byte", NewContent(Kind::kText, 1));
    one.mtime = {-123456789, 987654321};  // 1966
    File("files/size-4095", NewContent(Kind::kRandom, 4095));
    File("files/size-4096", NewContent(Kind::kRandom, 4096));
    File("files/size-4097", NewContent(Kind::kRandom, 4097));
    few_kib_ = NewContent(Kind::kText, 3 * kKiB + 17);
    Entry& few = File("files/few-kib.txt", few_kib_);
    few.mtime = {4102444800 + 12345, 123456789};  // 2100
    File("files/block-64k.bin", NewContent(Kind::kRandom, 64 * kKiB));
    File("files/size-1m-plus-1.bin", NewContent(Kind::kRandom, kMiB + 1));
    big_text_ = NewContent(Kind::kText, o_.max_file_size);
    File("files/big-text.log", big_text_);
    big_random_ = NewContent(Kind::kRandom, o_.max_file_size);
    File("files/big-random.bin", big_random_);
    mixed_ = NewContent(Kind::kMixed, o_.max_file_size);
    File("files/mixed.dat", mixed_);
    File("files/repeated-blocks.bin", NewContent(Kind::kRepeat, o_.max_file_size));
    File("files/zeros.bin", NewContent(Kind::kZeros, kMiB));

    Xattr("files", "user.comment", "catalogue of sizes");
    Xattr("files/few-kib.txt", "user.comment", "a few KiB of text");
    Xattr("files/big-random.bin", "user.comment", BinaryValue(40));
    Xattr("files/big-random.bin", "user.bulwark.big", std::string(2000, 'v'));
    Xattr("files/empty", "user.empty-value", "");
    Xattr("files/one-byte", "trusted.x", "one");
    Xattr("files/mixed.dat", "trusted.x", BinaryValue(16));

    // Copies, so deduplication matters.
    Dir("dup");
    File("dup/copy-of-big-random.bin", big_random_);
    File("dup/copy-of-few-kib.txt", few_kib_);
    File("dup/copy-of-mixed.dat", mixed_);
    Content shifted = big_text_;
    shifted.prefix = "X";  // same stream shifted by one byte
    File("dup/shifted-big-text.log", shifted);
    Dir("dup/nested");
    Dir("dup/nested/again");
    File("dup/nested/again/copy-of-big-text.log", big_text_);
  }

  void Names() {
    Dir("names");
    Xattr("names", "user.comment", BinaryValue(24));
    const std::vector<std::string> names = {
        "with space.txt",
        " leading-space",
        "trailing-space ",
        "new\nline",
        "tab\there",
        "-leading-dash",
        "--double-dash",
        "café été.txt",
        "日本語.txt",
        "日本",
        std::string("non-utf8-\xff\xfe") + ".bin",
        std::string("\xff\xfe"),
        std::string("ctrl-\x01\x1b-chars"),
        "back\\slash",
        "quote\"s'and'",
        "glob*?[x]{a,b}",
        "#hash %percent &amp; $dollar",
        "colon:semi;",
        ".hidden",
        "...",
        "UPPER",
        "upper",
        std::string(251, 'L') + ".txt",  // 255 bytes
    };
    for (const auto& n : names) TextFile("names/" + n, rng_.Range(1, 300));
    Dir("names/dir with space");
    TextFile("names/dir with space/file in dir", 100);
    Dir(std::string("names/\xff\xfe") + "-dir");
    TextFile(std::string("names/\xff\xfe") + "-dir/inside", 100);
    Dir("names/日本-dir");
    TextFile("names/日本-dir/ファイル.txt", 200);
    Dir("names/new\nline-dir");
    TextFile("names/new\nline-dir/x", 10);
    Dir("names/" + std::string(255, 'D'));
    TextFile("names/" + std::string(255, 'D') + "/" + std::string(255, 'F'), 10);
  }

  void Modes() {
    Dir("modes");
    TextFile("modes/mode-0600", 100, 0600);
    File("modes/mode-0755", Content{Kind::kText, 0, 20, "#!/bin/sh\necho hi\n#\n"}, 0755);
    TextFile("modes/setuid-04755", 1000, 04755);
    TextFile("modes/setgid-02755", 1000, 02755);
    TextFile("modes/sticky-01644", 10, 01644);
    TextFile("modes/mode-0444", 100, 0444);
    TextFile("modes/mode-0640", 100, 0640);
    if (is_root_) TextFile("modes/mode-0000", 100, 0000);  // unreadable for non-root
    Xattr("modes/mode-0600", "user.comment", "private");

    Dir("modes/sticky-dir", 01777);
    TextFile("modes/sticky-dir/file", 50, 0666);
    Dir("modes/readonly-dir", 0555);  // chmod-ed at the end, after its contents
    TextFile("modes/readonly-dir/file", 50, 0444);
    Dir("modes/readonly-dir/inner", 0755);
    TextFile("modes/readonly-dir/inner/file", 50);
    Xattr("modes/readonly-dir", "user.comment", "read-only dir");
    Xattr("modes/readonly-dir", "trusted.x", "ro");
    Dir("modes/private-dir", 0700);
    TextFile("modes/private-dir/secret", 64, 0600);
    Dir("modes/setgid-dir", 02775);
    TextFile("modes/setgid-dir/file", 64, 0664);
    Dir("modes/setgid-dir/sub", 02775);
  }

  void Owners() {
    Dir("owners");
    const Owner u1234{1234, 5678}, nobody{65534, 65534};
    TextFile("owners/uid1234-gid5678", 100, 0644, u1234);
    TextFile("owners/nobody", 100, 0644, nobody);
    TextFile("owners/uid1234-gid0", 100, 0644, {1234, 0});
    TextFile("owners/uid0-gid5678", 100, 0640, {0, 5678});
    TextFile("owners/setuid-1234", 100, 04755, u1234);
    Dir("owners/dir-1234", 0755, u1234);
    TextFile("owners/dir-1234/file", 100, 0600, u1234);
    Dir("owners/dir-nobody", 0750, nobody);
    Symlink("owners/link-1234", "uid1234-gid5678", u1234);
    Xattr("owners/dir-1234", "user.comment", "owned by 1234");
  }

  void Links() {
    Dir("links");
    Entry& rel = Symlink("links/rel", "../files/few-kib.txt");
    rel.mtime.tv_nsec = 1;
    Symlink("links/abs", "/etc/passwd");
    Symlink("links/abs-dangling", "/nonexistent/bulwark-treegen/target");
    Symlink("links/dangling", "does/not/exist");
    Symlink("links/to-dir", "../names");
    Symlink("links/dot", ".");
    Symlink("links/loop-a", "loop-b");
    Symlink("links/loop-b", "loop-a");
    Symlink("links/chain", "rel");
    Symlink("links/into-deep", "../deep/d00/d01/d02");
    Symlink("links/weird-target", std::string("target with space\nnewline\t\xff\xfe"));
    std::string long_target;
    while (long_target.size() < 1000) long_target += "long-component-name/";
    Symlink("links/long-target", long_target + "end");
    Symlink("links/link with space", "rel");
    Xattr("links/rel", "trusted.x", "xattr on a symlink");
  }

  void Hardlinks() {
    Dir("hard");
    Dir("hard/a");
    Dir("hard/b");
    Dir("hard/c");
    Dir("hard/c/deep");
    TextFile("hard/a/orig", 5000, 0640, {1234, 5678});
    Xattr("hard/a/orig", "user.comment", "three links");
    Hardlink("hard/a/orig", "hard/b/link-1");
    Hardlink("hard/a/orig", "hard/c/deep/link-2");
    File("hard/pair-1", NewContent(Kind::kRandom, 20000));
    Hardlink("hard/pair-1", "hard/pair-2");
    File("hard/empty-1", NewContent(Kind::kRandom, 0));
    Hardlink("hard/empty-1", "hard/empty-2");
    File("hard/same-content-not-linked", NewContent(Kind::kRandom, 0));
  }

  void Special() {
    Dir("special");
    const std::string fifo = P("special/fifo");
    if (::mkfifo(fifo.c_str(), 0600) != 0) Fail("mkfifo", fifo, errno);
    ++stats_.fifos;
    AddEntry("special/fifo", 'o', 0644, {});
    Xattr("special/fifo", "trusted.x", "fifo");
    struct Dev {
      const char* name;
      mode_t type;
      dev_t rdev;
      mode_t mode;
    };
    // 1:3 is /dev/null; 4000:1000000 needs the large encoding; block major
    // 240 is reserved for local/experimental use.
    const Dev devs[] = {{"special/char-null", S_IFCHR, makedev(1, 3), 0666},
                        {"special/char-big-numbers", S_IFCHR, makedev(4000, 1000000), 0600},
                        {"special/block-240-7", S_IFBLK, makedev(240, 7), 0660}};
    for (const auto& d : devs) {
      const std::string p = P(d.name);
      if (::mknod(p.c_str(), d.type | 0600, d.rdev) != 0) {
        if (errno == EPERM) continue;
        Fail("mknod", p, errno);
      }
      ++stats_.devices;
      AddEntry(d.name, 'o', d.mode, {});
    }
  }

  void Sparse() {
    Dir("sparse");
    SparseFile("sparse/holes-middle.bin", 8 * kMiB, {{4 * kMiB, 64 * kKiB}});
    SparseFile("sparse/trailing-hole.bin", 4 * kMiB, {{0, 64 * kKiB}});
    SparseFile("sparse/leading-hole.bin", 3 * kMiB + 100 * kKiB, {{3 * kMiB, 100 * kKiB}});
    SparseFile("sparse/all-hole.bin", 2 * kMiB, {});
    if (o_.sparse_large) {
      SparseFile("sparse/sparse-1g.img", kGiB,
                 {{0, kMiB}, {300 * kMiB, kMiB}, {kGiB - kMiB, kMiB}});
      Xattr("sparse/sparse-1g.img", "user.comment", "1 GiB, 3 MiB of data");
    }
  }

  void Empty() {
    Dir("empty-dir");
    Dir("empty-dir-0700", 0700);
    Dir("empty-nested");
    Dir("empty-nested/a");
    Dir("empty-nested/a/b");
    Dir("empty-nested/a/b/c");
    Xattr("empty-dir", "user.comment", "nothing here");
    Xattr("empty-dir", "trusted.x", BinaryValue(8));
  }

  void Deep() {
    std::string rel = "deep";
    Dir(rel);
    for (int i = 0; i < 40; ++i) {
      char name[16];
      std::snprintf(name, sizeof name, "d%02d", i);
      rel += "/";
      rel += name;
      Dir(rel);
      if (i == 20) Xattr(rel, "user.comment", "halfway down");
    }
    TextFile(rel + "/bottom.txt", 500);
  }

  std::string RandomName(const char* base, int i) {
    char num[16];
    std::snprintf(num, sizeof num, "%04d", i);
    switch (rng_.Below(12)) {
      case 0: return std::string(base) + " " + num + " with space";
      case 1: return std::string("é-") + base + "-" + num;
      case 2: return std::string(base) + "-日本-" + num;
      case 3: return std::string("-") + base + "-" + num;
      default: return std::string(base) + "-" + num;
    }
  }

  void RandomTree() {
    std::vector<std::pair<std::string, int>> dirs = {{"tree", 1}};
    Dir("tree");
    const int ndirs = std::max(3, o_.files / 6);
    for (int i = 0; i < ndirs; ++i) {
      std::string parent;
      if (i < o_.max_depth - 1) {
        parent = dirs.back().first;  // first a chain reaching max_depth
      } else {
        std::vector<std::string> eligible;
        for (const auto& [d, depth] : dirs) {
          if (depth < o_.max_depth) eligible.push_back(d);
        }
        if (eligible.empty()) break;
        parent = rng_.Pick(eligible);
      }
      const std::string rel = parent + "/" + RandomName("dir", i);
      static const mode_t kDirModes[] = {0755, 0755, 0755, 0750, 0700, 0775};
      Owner owner;
      if (rng_.Chance(0.1)) owner = {1234, 5678};
      Dir(rel, kDirModes[rng_.Below(std::size(kDirModes))], owner);
      if (rng_.Chance(0.1)) Xattr(rel, "user.comment", BinaryValue(rng_.Range(1, 32)));
      dirs.emplace_back(rel, Depth(rel));
    }
    std::vector<Content> previous;
    static const char* const kExt[] = {".txt", ".bin", ".log", ".dat", "", ".tar.gz"};
    for (int i = 0; i < o_.files; ++i) {
      const std::string& dir = dirs[rng_.Below(dirs.size())].first;
      const std::string rel =
          dir + "/" + RandomName("file", i) + kExt[rng_.Below(std::size(kExt))];
      Content c;
      if (!previous.empty() && rng_.Chance(0.1)) {
        c = rng_.Pick(previous);  // duplicate content
      } else {
        uint64_t size;
        const uint64_t bucket = rng_.Below(100);
        if (bucket < 8) size = 0;
        else if (bucket < 12) size = 1;
        else if (bucket < 62) size = rng_.Range(2, 16 * kKiB);
        else if (bucket < 90) size = rng_.Range(16 * kKiB, 256 * kKiB);
        else size = rng_.Range(256 * kKiB, std::max(256 * kKiB, o_.max_file_size));
        const uint64_t k = rng_.Below(100);
        Kind kind = k < 45 ? Kind::kText : k < 90 ? Kind::kRandom : k < 95 ? Kind::kRepeat
                                                                          : Kind::kZeros;
        c = NewContent(kind, size);
        previous.push_back(c);
      }
      static const mode_t kModes[] = {0644, 0644, 0644, 0644, 0600, 0640, 0755, 0444};
      Owner owner;
      const uint64_t o = rng_.Below(100);
      if (o < 10) owner = {1234, 5678};
      else if (o < 15) owner = {65534, 65534};
      File(rel, c, kModes[rng_.Below(std::size(kModes))], owner);
      if (rng_.Chance(0.15)) Xattr(rel, "user.comment", BinaryValue(rng_.Range(1, 64)));
      if (rng_.Chance(0.05)) Xattr(rel, "trusted.x", BinaryValue(rng_.Range(1, 16)));
    }
  }

  // Ownership, then modes (chown clears setuid/setgid), then times: files
  // and symlinks first, then directories bottom-up (the root last).
  void Finalize() {
    for (const auto& e : entries_) {
      if (e.owner.uid < 0 && e.owner.gid < 0) continue;
      const std::string p = P(e.rel);
      if (::lchown(p.c_str(), static_cast<uid_t>(e.owner.uid), static_cast<gid_t>(e.owner.gid)) != 0) {
        if (errno == EPERM) continue;  // not root
        Fail("lchown", p, errno);
      }
    }
    for (const auto& e : entries_) {
      if (e.type == 'l') continue;
      const std::string p = P(e.rel);
      if (::chmod(p.c_str(), e.mode) != 0) Fail("chmod", p, errno);
    }
    for (const auto& e : entries_) {
      if (e.type != 'd') SetTimes(P(e.rel), e.mtime, e.atime);
    }
    std::vector<const Entry*> dirs;
    for (const auto& e : entries_) {
      if (e.type == 'd') dirs.push_back(&e);
    }
    std::stable_sort(dirs.begin(), dirs.end(), [](const Entry* a, const Entry* b) {
      return Depth(a->rel) > Depth(b->rel);
    });
    for (const Entry* e : dirs) SetTimes(P(e->rel), e->mtime, e->atime);
  }

  const std::string root_;
  const TreeGenOptions o_;
  Rng rng_, time_rng_;
  bool is_root_ = false;
  bool user_xattrs_ = false, trusted_xattrs_ = false;
  // References returned by AddEntry() are only used before the next add.
  std::vector<Entry> entries_;
  TreeGenStats stats_;
  Content few_kib_, big_text_, big_random_, mixed_;
};

// ---------------------------------------------------------------------------
// MutateTree / RemoveTree helpers.

struct Listing {
  struct File {
    std::string rel;
    uint64_t size;
  };
  std::vector<File> files;              // regular files, one path per inode
  std::vector<std::string> deletable;   // regular files and symlinks (all paths)
  std::vector<std::string> dirs;        // including the root ("")
};

void ListTree(const std::string& root, const std::string& rel, Listing* out,
              std::set<std::pair<dev_t, ino_t>>* seen) {
  const std::string path = rel.empty() ? root : root + "/" + rel;
  DIR* d = ::opendir(path.c_str());
  if (!d) Fail("opendir", path, errno);
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
      names.emplace_back(e->d_name);
    }
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  out->dirs.push_back(rel);
  for (const auto& n : names) {
    const std::string crel = rel.empty() ? n : rel + "/" + n;
    const std::string cpath = root + "/" + crel;
    struct stat st;
    if (::lstat(cpath.c_str(), &st) != 0) Fail("lstat", cpath, errno);
    if (S_ISDIR(st.st_mode)) {
      ListTree(root, crel, out, seen);
    } else if (S_ISREG(st.st_mode)) {
      if (seen->insert({st.st_dev, st.st_ino}).second) {
        out->files.push_back({crel, static_cast<uint64_t>(st.st_size)});
      }
      out->deletable.push_back(crel);
    } else if (S_ISLNK(st.st_mode)) {
      out->deletable.push_back(crel);
    }
  }
}

bool RemoveContents(int dfd) {
  int dup_fd = ::fcntl(dfd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) return false;
  DIR* d = ::fdopendir(dup_fd);
  if (!d) {
    ::close(dup_fd);
    return false;
  }
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
      names.emplace_back(e->d_name);
    }
  }
  ::closedir(d);
  bool ok = true;
  for (const auto& n : names) {
    struct stat st;
    if (::fstatat(dfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      ok = ok && errno == ENOENT;
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      ::fchmodat(dfd, n.c_str(), 0700, 0);
      int cfd = ::openat(dfd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (cfd < 0) {
        ok = false;
        continue;
      }
      ok = RemoveContents(cfd) && ok;
      ::close(cfd);
      if (::unlinkat(dfd, n.c_str(), AT_REMOVEDIR) != 0) ok = false;
    } else if (::unlinkat(dfd, n.c_str(), 0) != 0) {
      ok = false;
    }
  }
  return ok;
}

}  // namespace

TreeGenStats GenerateTree(const std::string& root, const TreeGenOptions& opts) {
  return Builder(root, opts).Build();
}

void MutateTree(const std::string& root, uint64_t seed, double fraction) {
  if (!(fraction > 0)) return;
  Listing l;
  std::set<std::pair<dev_t, ino_t>> seen;
  ListTree(root, "", &l, &seen);
  Rng rng(Mix(seed, 300));
  auto path = [&](const std::string& rel) { return rel.empty() ? root : root + "/" + rel; };
  auto new_time = [&] { return RandomTime(rng, 1700000000, 50000000); };
  auto writable = [&](const std::string& rel) { return ::access(path(rel).c_str(), W_OK) == 0; };
  std::set<std::string> touched_dirs;
  std::set<std::string> used;  // paths modified in place

  // In-place modifications of about `fraction` of the files.
  std::vector<size_t> order(l.files.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.Below(i)]);
  size_t want = static_cast<size_t>(fraction * static_cast<double>(l.files.size()) + 0.5);
  want = std::min(std::max<size_t>(want, 1), l.files.size());
  size_t done = 0;
  for (size_t idx : order) {
    if (done == want) break;
    const auto& f = l.files[idx];
    if (!writable(f.rel)) continue;
    const std::string p = path(f.rel);
    int fd = ::open(p.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) Fail("open", p, errno);
    uint64_t op = rng.Below(3);
    if (f.size == 0) op = 0;
    if (op == 0) {  // append
      std::vector<char> buf(static_cast<size_t>(rng.Range(1, 64 * kKiB)));
      Stream::FillRandom(rng, buf.data(), buf.size());
      WriteAll(fd, buf.data(), buf.size(), f.size, p);
    } else if (op == 1) {  // overwrite a range with different bytes
      const uint64_t off = rng.Below(f.size);
      const size_t len = static_cast<size_t>(std::min<uint64_t>(rng.Range(1, 64 * kKiB), f.size - off));
      std::vector<char> buf(len);
      if (::pread(fd, buf.data(), len, static_cast<off_t>(off)) != static_cast<ssize_t>(len)) {
        Fail("pread", p, errno);
      }
      for (auto& c : buf) c = static_cast<char>(c ^ static_cast<char>(rng.Next() | 1));
      WriteAll(fd, buf.data(), len, off, p);
    } else {  // truncate
      if (::ftruncate(fd, static_cast<off_t>(rng.Below(f.size))) != 0) Fail("ftruncate", p, errno);
    }
    ::close(fd);
    const struct timespec t = new_time();
    SetTimes(p, t, t);
    used.insert(f.rel);
    ++done;
  }

  // Deletions.
  std::vector<std::string> deletable;
  for (const auto& rel : l.deletable) {
    if (!used.count(rel) && writable(Parent(rel))) deletable.push_back(rel);
  }
  for (uint64_t n = rng.Range(1, 3); n > 0 && !deletable.empty(); --n) {
    const size_t i = rng.Below(deletable.size());
    const std::string rel = deletable[i];
    deletable.erase(deletable.begin() + static_cast<std::ptrdiff_t>(i));
    if (::unlink(path(rel).c_str()) != 0) Fail("unlink", path(rel), errno);
    touched_dirs.insert(Parent(rel));
    used.insert(rel);
  }

  // A mode-only change (ctime changes, mtime and size do not).
  for (size_t tries = 0; tries < 20 && !deletable.empty(); ++tries) {
    const std::string& rel = deletable[rng.Below(deletable.size())];
    struct stat st;
    if (used.count(rel) || ::lstat(path(rel).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (::chmod(path(rel).c_str(), (st.st_mode & 07777) ^ 0020) != 0) Fail("chmod", path(rel), errno);
    break;
  }

  // Additions.
  std::vector<std::string> dirs;
  for (const auto& rel : l.dirs) {
    if (writable(rel)) dirs.push_back(rel);
  }
  if (dirs.empty()) return;
  char tag[32];
  std::snprintf(tag, sizeof tag, "%016llx", static_cast<unsigned long long>(seed));
  auto add_file = [&](const std::string& dir, const std::string& name) {
    std::string rel = dir.empty() ? name : dir + "/" + name;
    for (int k = 2; ::access(path(rel).c_str(), F_OK) == 0; ++k) {
      rel = (dir.empty() ? name : dir + "/" + name) + "." + std::to_string(k);
    }
    const std::string p = path(rel);
    int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) Fail("create", p, errno);
    if (::fchmod(fd, 0644) != 0) Fail("fchmod", p, errno);
    std::vector<char> buf(static_cast<size_t>(rng.Below(64 * kKiB)));
    Stream::FillRandom(rng, buf.data(), buf.size());
    WriteAll(fd, buf.data(), buf.size(), 0, p);
    ::close(fd);
    const struct timespec t = new_time();
    SetTimes(p, t, t);
    touched_dirs.insert(dir);
  };
  for (uint64_t n = rng.Range(1, 3), i = 0; i < n; ++i) {
    add_file(rng.Pick(dirs), std::string("added-") + tag + "-" + std::to_string(i) + ".dat");
  }
  if (rng.Chance(0.5)) {
    const std::string parent = rng.Pick(dirs);
    std::string rel = (parent.empty() ? "" : parent + "/") + "added-dir-" + tag;
    for (int k = 2; ::access(path(rel).c_str(), F_OK) == 0; ++k) {
      rel = (parent.empty() ? "" : parent + "/") + "added-dir-" + tag + "." + std::to_string(k);
    }
    if (::mkdir(path(rel).c_str(), 0755) != 0) Fail("mkdir", path(rel), errno);
    if (::chmod(path(rel).c_str(), 0755) != 0) Fail("chmod", path(rel), errno);
    touched_dirs.insert(parent);
    add_file(rel, "inner.txt");
  }

  // New mtimes for the changed directories, deepest first.
  std::vector<std::string> tdirs(touched_dirs.begin(), touched_dirs.end());
  std::stable_sort(tdirs.begin(), tdirs.end(), [](const std::string& a, const std::string& b) {
    return Depth(a) > Depth(b);
  });
  for (const auto& rel : tdirs) {
    const struct timespec t = new_time();
    SetTimes(path(rel), t, t);
  }
}

bool RemoveTree(const std::string& root) {
  struct stat st;
  if (::lstat(root.c_str(), &st) != 0) return errno == ENOENT;
  if (!S_ISDIR(st.st_mode)) return ::unlink(root.c_str()) == 0;
  ::chmod(root.c_str(), 0700);
  int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = RemoveContents(fd);
  ::close(fd);
  return ::rmdir(root.c_str()) == 0 && ok;
}

}  // namespace bulwark::testing
