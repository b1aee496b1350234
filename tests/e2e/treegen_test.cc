// Tests of the tree generator (treegen) and the tree comparison (treecmp_lib).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "treecmp_lib.h"
#include "treegen.h"

namespace bulwark::testing {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/bulwark-treegen-test-XXXXXX";
    const char* p = ::mkdtemp(tmpl);
    if (!p) std::abort();
    path_ = p;
  }
  ~TempDir() { EXPECT_TRUE(RemoveTree(path_)) << "could not remove " << path_; }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string Show(const CompareResult& r) {
  std::string out;
  for (size_t i = 0; i < r.differences.size() && i < 30; ++i) out += "  " + r.differences[i] + "\n";
  if (r.differences.size() > 30) out += "  ...\n";
  return out;
}

TreeGenOptions SmallOptions(uint64_t seed = 7) {
  TreeGenOptions o;
  o.seed = seed;
  o.files = 20;
  o.max_depth = 4;
  o.max_file_size = 256 << 10;
  o.sparse_large = true;  // cheap: 3 MiB of data
  return o;
}

struct Times {
  struct timespec atime, mtime;
};

Times GetTimes(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path << ": " << std::strerror(errno);
  return {st.st_atim, st.st_mtim};
}

void SetTimes(const std::string& path, const Times& t) {
  struct timespec ts[2] = {t.atime, t.mtime};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW), 0)
      << path << ": " << std::strerror(errno);
}

std::string Parent(const std::string& path) { return path.substr(0, path.rfind('/')); }

bool HasXattr(const std::string& path, const char* name) {
  return ::lgetxattr(path.c_str(), name, nullptr, 0) >= 0;
}

// ---------------------------------------------------------------------------

TEST(TreeGen, SameSeedGivesIdenticalTrees) {
  TempDir tmp;
  const TreeGenOptions o;  // defaults: 200 files, 2 MiB, 1 GiB sparse file
  const TreeGenStats sa = GenerateTree(tmp.Sub("a"), o);
  const TreeGenStats sb = GenerateTree(tmp.Sub("b"), o);
  EXPECT_EQ(sa.files, sb.files);
  EXPECT_EQ(sa.dirs, sb.dirs);
  EXPECT_EQ(sa.symlinks, sb.symlinks);
  EXPECT_EQ(sa.hardlinks, sb.hardlinks);
  EXPECT_EQ(sa.bytes, sb.bytes);

  const CompareResult r = CompareTrees(tmp.Sub("a"), tmp.Sub("b"));
  EXPECT_TRUE(r.identical) << Show(r);
  EXPECT_TRUE(r.differences.empty());
  EXPECT_EQ(r.files, static_cast<uint64_t>(sa.files + sa.hardlinks));
  EXPECT_EQ(r.dirs, static_cast<uint64_t>(sa.dirs));
  EXPECT_EQ(r.symlinks, static_cast<uint64_t>(sa.symlinks));
  EXPECT_EQ(r.others, static_cast<uint64_t>(sa.fifos + sa.devices));
  EXPECT_EQ(r.entries, r.files + r.dirs + r.symlinks + r.others);
  EXPECT_EQ(r.bytes, sa.bytes);

  EXPECT_GE(sa.files, o.files);
  EXPECT_GE(sa.dirs, 40 + o.max_depth);
  EXPECT_GE(sa.symlinks, 10);
  EXPECT_EQ(sa.hardlinks, 4);
  EXPECT_EQ(sa.fifos, 1);
  if (::geteuid() == 0) {
    EXPECT_EQ(sa.devices, 3);
  }
  EXPECT_GT(sa.bytes, uint64_t{1} << 30);
}

TEST(TreeGen, MutationIsDetectedAndDeterministic) {
  TempDir tmp;
  const std::string a = tmp.Sub("a"), b = tmp.Sub("b");
  TreeGenOptions o = SmallOptions();
  o.files = 40;
  GenerateTree(a, o);
  GenerateTree(b, o);
  ASSERT_TRUE(CompareTrees(a, b).identical);

  MutateTree(b, 42, 0.2);
  CompareResult r = CompareTrees(a, b);
  EXPECT_FALSE(r.identical);
  EXPECT_GE(r.differences.size(), 5u) << Show(r);

  // The same mutation applied to the other tree makes them identical again.
  MutateTree(a, 42, 0.2);
  r = CompareTrees(a, b);
  EXPECT_TRUE(r.identical) << Show(r);

  MutateTree(a, 43, 0.05);
  EXPECT_FALSE(CompareTrees(a, b).identical);
  MutateTree(b, 43, 0.05);
  r = CompareTrees(a, b);
  EXPECT_TRUE(r.identical) << Show(r);

  // fraction 0 changes nothing.
  MutateTree(b, 44, 0);
  r = CompareTrees(a, b);
  EXPECT_TRUE(r.identical) << Show(r);
}

TEST(TreeCmp, EscapeBytes) {
  EXPECT_EQ(EscapeBytes("plain name.txt"), "plain name.txt");
  EXPECT_EQ(EscapeBytes("a\nb\tc\\d"), "a\\nb\\tc\\\\d");
  EXPECT_EQ(EscapeBytes("caf\xc3\xa9 日本"), "caf\xc3\xa9 日本");
  EXPECT_EQ(EscapeBytes("x\xff\xfey"), "x\\xff\\xfey");
  EXPECT_EQ(EscapeBytes(std::string("\0\x01", 2)), "\\x00\\x01");
  EXPECT_EQ(EscapeBytes("\xc3"), "\\xc3");          // truncated sequence
  EXPECT_EQ(EscapeBytes("\xc0\xaf"), "\\xc0\\xaf");  // overlong
  EXPECT_EQ(EscapeBytes("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // surrogate
}

TEST(TreeCmp, MissingRoot) {
  TempDir tmp;
  const CompareResult r = CompareTrees(tmp.Sub("nope"), tmp.Sub("nope2"));
  EXPECT_FALSE(r.identical);
  ASSERT_EQ(r.differences.size(), 1u);
}

// ---------------------------------------------------------------------------
// Two trees generated once for the suite. Each test changes one attribute in
// b, checks that exactly that is reported, and undoes the change; TearDown
// verifies the trees are identical again (regenerating b if not).

class SharedTrees : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new TempDir;
    a_ = tmp_->Sub("a");
    b_ = tmp_->Sub("b");
    stash_ = tmp_->Sub("stash");
    ASSERT_EQ(::mkdir(stash_.c_str(), 0700), 0);
    GenerateTree(a_, SmallOptions());
    GenerateTree(b_, SmallOptions());
  }
  static void TearDownTestSuite() {
    delete tmp_;
    tmp_ = nullptr;
  }

  void SetUp() override {
    const CompareResult r = CompareTrees(a_, b_);
    ASSERT_TRUE(r.identical) << Show(r);
  }

  void TearDown() override {
    if (undo_) undo_();
    const CompareResult r = CompareTrees(a_, b_);
    EXPECT_TRUE(r.identical) << "undo incomplete, regenerating:\n" << Show(r);
    if (!r.identical) {
      ASSERT_TRUE(RemoveTree(b_));
      GenerateTree(b_, SmallOptions());
    }
  }

  // Expects exactly the given difference lines.
  static void ExpectDifferences(const std::vector<std::string>& want) {
    const CompareResult r = CompareTrees(a_, b_);
    EXPECT_FALSE(r.identical);
    EXPECT_EQ(r.differences, want) << Show(r);
  }

  // Expects exactly one difference line, starting with `prefix`.
  static void ExpectOneDifference(const std::string& prefix) {
    const CompareResult r = CompareTrees(a_, b_);
    EXPECT_FALSE(r.identical);
    ASSERT_EQ(r.differences.size(), 1u) << Show(r);
    EXPECT_EQ(r.differences[0].substr(0, prefix.size()), prefix);
  }

  static std::string B(const std::string& rel) { return b_ + "/" + rel; }

  // Moves an entry out of the tree (keeping its inode) and back.
  static void Stash(const std::string& rel) {
    ASSERT_EQ(::rename(B(rel).c_str(), (stash_ + "/x").c_str()), 0) << std::strerror(errno);
  }
  static void Unstash(const std::string& rel) {
    ASSERT_EQ(::rename((stash_ + "/x").c_str(), B(rel).c_str()), 0) << std::strerror(errno);
  }

  static void PunchHole(const std::string& path, uint64_t off, uint64_t len) {
    int fd = ::open(path.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off),
                          static_cast<off_t>(len)),
              0)
        << std::strerror(errno);
    ::close(fd);
  }

  static inline TempDir* tmp_ = nullptr;
  static inline std::string a_, b_, stash_;
  std::function<void()> undo_;
};

TEST_F(SharedTrees, TreeHasTheEdgeCases) {
  struct stat st;

  ASSERT_EQ(::lstat((a_ + "/sparse/sparse-1g.img").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 1 << 30);
  EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, 8 * kMiB) << "1 GiB file is not sparse";

  ASSERT_EQ(::lstat((a_ + "/hard/a/orig").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 3u);
  struct stat st2;
  ASSERT_EQ(::lstat((a_ + "/hard/c/deep/link-2").c_str(), &st2), 0);
  EXPECT_EQ(st.st_ino, st2.st_ino);

  ASSERT_EQ(::lstat((a_ + "/modes/setuid-04755").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 04755u);
  ASSERT_EQ(::lstat((a_ + "/modes/sticky-dir").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 01777u);
  ASSERT_EQ(::lstat((a_ + "/modes/readonly-dir").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0555u);
  ASSERT_EQ(::lstat((a_ + "/modes/readonly-dir/file").c_str(), &st), 0);

  ASSERT_EQ(::lstat((a_ + "/links/abs").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_NE(st.st_mtim.tv_nsec, 0);
  ASSERT_EQ(::lstat((a_ + "/names").c_str(), &st), 0);
  EXPECT_NE(st.st_mtim.tv_nsec, 0) << "dir mtimes must be set after their contents";
  ASSERT_EQ(::lstat((a_ + "/names/new\nline").c_str(), &st), 0);
  ASSERT_EQ(::lstat((a_ + "/names/non-utf8-\xff\xfe.bin").c_str(), &st), 0);
  ASSERT_EQ(::lstat((a_ + "/names/日本語.txt").c_str(), &st), 0);
  ASSERT_EQ(::lstat((a_ + "/names/" + std::string(251, 'L') + ".txt").c_str(), &st), 0);
  ASSERT_EQ(::lstat((a_ + "/special/fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));

  std::string deep = a_ + "/deep";
  for (int i = 0; i < 40; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "/d%02d", i);
    deep += name;
  }
  ASSERT_EQ(::lstat((deep + "/bottom.txt").c_str(), &st), 0);

  if (::geteuid() == 0) {
    ASSERT_EQ(::lstat((a_ + "/owners/uid1234-gid5678").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 1234u);
    EXPECT_EQ(st.st_gid, 5678u);
    ASSERT_EQ(::lstat((a_ + "/owners/setuid-1234").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 04755u) << "chown after chmod dropped the setuid bit";
    ASSERT_EQ(::lstat((a_ + "/special/block-240-7").c_str(), &st), 0);
    EXPECT_TRUE(S_ISBLK(st.st_mode));
    EXPECT_EQ(st.st_rdev, makedev(240, 7));
  }
}

TEST_F(SharedTrees, DifferentSeedDiffers) {
  const std::string c = tmp_->Sub("c");
  GenerateTree(c, SmallOptions(8));
  const CompareResult r = CompareTrees(a_, c);
  EXPECT_FALSE(r.identical);
  EXPECT_FALSE(r.differences.empty());
  EXPECT_TRUE(RemoveTree(c));
}

TEST_F(SharedTrees, Mode) {
  ASSERT_EQ(::chmod(B("modes/mode-0600").c_str(), 0644), 0);
  undo_ = [] { ::chmod(B("modes/mode-0600").c_str(), 0600); };
  ExpectDifferences({"modes/mode-0600: mode differs (src=0600, dst=0644)"});
}

TEST_F(SharedTrees, SetuidBitLost) {
  ASSERT_EQ(::chmod(B("modes/setuid-04755").c_str(), 0755), 0);
  undo_ = [] { ::chmod(B("modes/setuid-04755").c_str(), 04755); };
  ExpectDifferences({"modes/setuid-04755: mode differs (src=4755, dst=0755)"});
}

TEST_F(SharedTrees, RootMode) {
  ASSERT_EQ(::chmod(b_.c_str(), 0700), 0);
  undo_ = [] { ::chmod(b_.c_str(), 0755); };
  ExpectDifferences({".: mode differs (src=0755, dst=0700)"});
}

TEST_F(SharedTrees, Owner) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  ASSERT_EQ(::lchown(B("owners/nobody").c_str(), 65534, 0), 0);
  undo_ = [] { ::lchown(B("owners/nobody").c_str(), 65534, 65534); };
  ExpectDifferences({"owners/nobody: gid differs (src=65534, dst=0)"});
}

TEST_F(SharedTrees, MtimeOneNanosecond) {
  const std::string p = B("files/size-4096");
  const Times orig = GetTimes(p);
  Times t = orig;
  t.mtime.tv_nsec = t.mtime.tv_nsec == 999999999 ? 1 : t.mtime.tv_nsec + 1;
  SetTimes(p, t);
  undo_ = [=] { SetTimes(p, orig); };
  char want[200];
  std::snprintf(want, sizeof want,
                "files/size-4096: mtime differs (src=%lld.%09ld, dst=%lld.%09ld)",
                static_cast<long long>(orig.mtime.tv_sec), orig.mtime.tv_nsec,
                static_cast<long long>(t.mtime.tv_sec), t.mtime.tv_nsec);
  ExpectDifferences({want});
}

TEST_F(SharedTrees, DirMtime) {
  const std::string p = B("names");
  const Times orig = GetTimes(p);
  Times t = orig;
  t.mtime.tv_sec += 1;
  SetTimes(p, t);
  undo_ = [=] { SetTimes(p, orig); };
  ExpectOneDifference("names: mtime differs (");
}

TEST_F(SharedTrees, SymlinkMtime) {
  const std::string p = B("links/abs");
  const Times orig = GetTimes(p);
  Times t = orig;
  t.mtime.tv_nsec = (t.mtime.tv_nsec + 500) % 1000000000;
  SetTimes(p, t);
  undo_ = [=] { SetTimes(p, orig); };
  ExpectOneDifference("links/abs: mtime differs (");
}

TEST_F(SharedTrees, AtimeOnlyWhenAsked) {
  const std::string p = B("files/size-4097");
  const Times orig = GetTimes(p);
  Times t = orig;
  t.atime.tv_sec -= 1000;
  SetTimes(p, t);
  undo_ = [=] { SetTimes(p, orig); };
  EXPECT_TRUE(CompareTrees(a_, b_).identical);
  const CompareResult r = CompareTrees(a_, b_, /*ignore_atime=*/false);
  EXPECT_FALSE(r.identical);
  bool found = false;
  for (const auto& d : r.differences) found |= d.rfind("files/size-4097: atime differs (", 0) == 0;
  EXPECT_TRUE(found) << Show(r);
}

TEST_F(SharedTrees, XattrValue) {
  const std::string p = B("files/few-kib.txt");
  if (!HasXattr(p, "user.comment")) GTEST_SKIP() << "no user xattrs on this filesystem";
  const char v[] = "a few KiB of texT";
  ASSERT_EQ(::lsetxattr(p.c_str(), "user.comment", v, sizeof v - 1, 0), 0);
  undo_ = [=] { ::lsetxattr(p.c_str(), "user.comment", "a few KiB of text", 17, 0); };
  ExpectDifferences({"files/few-kib.txt: xattr \"user.comment\" value differs "
                     "(src=\"a few KiB of text\", dst=\"a few KiB of texT\")"});
}

TEST_F(SharedTrees, XattrBinaryValue) {
  const std::string p = B("files/big-random.bin");
  if (!HasXattr(p, "user.comment")) GTEST_SKIP() << "no user xattrs on this filesystem";
  std::string v(256, '\0');
  const ssize_t n = ::lgetxattr(p.c_str(), "user.comment", v.data(), v.size());
  ASSERT_GT(n, 3);
  v.resize(static_cast<size_t>(n));
  std::string changed = v;
  changed[changed.size() / 2] ^= 1;
  ASSERT_EQ(::lsetxattr(p.c_str(), "user.comment", changed.data(), changed.size(), 0), 0);
  undo_ = [=] { ::lsetxattr(p.c_str(), "user.comment", v.data(), v.size(), 0); };
  ExpectOneDifference("files/big-random.bin: xattr \"user.comment\" value differs (src=\"\\x00");
}

TEST_F(SharedTrees, TrustedXattrRemoved) {
  const std::string p = B("files/one-byte");
  if (!HasXattr(p, "trusted.x")) GTEST_SKIP() << "no trusted xattrs (needs root)";
  ASSERT_EQ(::lremovexattr(p.c_str(), "trusted.x"), 0);
  undo_ = [=] { ::lsetxattr(p.c_str(), "trusted.x", "one", 3, 0); };
  ExpectDifferences({"files/one-byte: xattr \"trusted.x\" differs (src=\"one\", dst=<absent>)"});
}

TEST_F(SharedTrees, SymlinkTarget) {
  const std::string p = B("links/dangling");
  const Times t = GetTimes(p), parent = GetTimes(Parent(p));
  ASSERT_EQ(::unlink(p.c_str()), 0);
  ASSERT_EQ(::symlink("does/not/exisT", p.c_str()), 0);
  SetTimes(p, t);
  SetTimes(Parent(p), parent);
  undo_ = [=] {
    ::unlink(p.c_str());
    ::symlink("does/not/exist", p.c_str());
    SetTimes(p, t);
    SetTimes(Parent(p), parent);
  };
  ExpectDifferences(
      {"links/dangling: symlink target differs (src=\"does/not/exist\", dst=\"does/not/exisT\")"});
}

TEST_F(SharedTrees, ContentOneByte) {
  const std::string p = B("files/big-random.bin");
  const Times t = GetTimes(p);
  int fd = ::open(p.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  unsigned char c;
  ASSERT_EQ(::pread(fd, &c, 1, 100000), 1);
  const unsigned char flipped = c ^ 0x10;
  ASSERT_EQ(::pwrite(fd, &flipped, 1, 100000), 1);
  ::close(fd);
  SetTimes(p, t);
  undo_ = [=] {
    int fd = ::open(p.c_str(), O_RDWR);
    ASSERT_EQ(::pwrite(fd, &c, 1, 100000), 1);
    ::close(fd);
    SetTimes(p, t);
  };
  char want[200];
  std::snprintf(want, sizeof want,
                "files/big-random.bin: content differs at offset 100000 (src=0x%02x, dst=0x%02x)",
                c, flipped);
  ExpectDifferences({want});
}

TEST_F(SharedTrees, ContentInSparseRegion) {
  // Data written where SRC has a hole is found despite the hole skipping.
  const std::string p = B("sparse/sparse-1g.img");
  const Times t = GetTimes(p);
  int fd = ::open(p.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, "!", 1, 700 * kMiB + 3), 1);
  ::close(fd);
  SetTimes(p, t);
  undo_ = [=] {
    PunchHole(p, 700 * kMiB, 64 << 10);
    SetTimes(p, t);
  };
  ExpectDifferences({"sparse/sparse-1g.img: content differs at offset " +
                     std::to_string(700 * kMiB + 3) + " (src=0x00, dst=0x21)"});
}

TEST_F(SharedTrees, HoleFilledWithZeros) {
  const std::string p = B("sparse/sparse-1g.img");
  const Times t = GetTimes(p);
  int fd = ::open(p.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  const std::vector<char> zeros(4 * kMiB, 0);
  ASSERT_EQ(::pwrite(fd, zeros.data(), zeros.size(), 600 * kMiB),
            static_cast<ssize_t>(zeros.size()));
  ASSERT_EQ(::fsync(fd), 0);
  ::close(fd);
  SetTimes(p, t);
  undo_ = [=] {
    PunchHole(p, 600 * kMiB, 4 * kMiB);
    SetTimes(p, t);
  };
  // The content is the same; only the allocation differs.
  ExpectOneDifference("sparse/sparse-1g.img: holes not preserved: allocated bytes differ (src=");
}

TEST_F(SharedTrees, SizeOnly) {
  const std::string p = B("files/size-4095");
  const Times t = GetTimes(p);
  ASSERT_EQ(::truncate(p.c_str(), 4096), 0);
  SetTimes(p, t);
  undo_ = [=] {
    ::truncate(p.c_str(), 4095);
    SetTimes(p, t);
  };
  ExpectDifferences({"files/size-4095: size differs (src=4095, dst=4096)"});
}

TEST_F(SharedTrees, DeviceNumber) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  const std::string p = B("special/char-null");
  const Times t = GetTimes(p), parent = GetTimes(Parent(p));
  Stash("special/char-null");
  ASSERT_EQ(::mknod(p.c_str(), S_IFCHR | 0600, makedev(1, 5)), 0);
  ASSERT_EQ(::chmod(p.c_str(), 0666), 0);
  SetTimes(p, t);
  SetTimes(Parent(p), parent);
  undo_ = [=] {
    ::unlink(p.c_str());
    Unstash("special/char-null");
    SetTimes(Parent(p), parent);
  };
  ExpectDifferences({"special/char-null: device number differs (src=1:3, dst=1:5)"});
}

TEST_F(SharedTrees, TypeChange) {
  const std::string p = B("links/loop-a");
  const Times parent = GetTimes(Parent(p));
  Stash("links/loop-a");
  ASSERT_EQ(::mkdir(p.c_str(), 0755), 0);
  SetTimes(Parent(p), parent);
  undo_ = [=] {
    ::rmdir(p.c_str());
    Unstash("links/loop-a");
    SetTimes(Parent(p), parent);
  };
  ExpectDifferences({"links/loop-a: type differs (src=symlink, dst=dir)"});
}

TEST_F(SharedTrees, MissingAndExtraNamesAreEscaped) {
  const std::string dir = B("names"), extra = B("names/extra\nname\xff");
  const Times t = GetTimes(dir);
  Stash("names/tab\there");
  const int fd = ::open(extra.c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  ::close(fd);
  SetTimes(dir, t);
  undo_ = [=] {
    ::unlink(extra.c_str());
    Unstash("names/tab\there");
    SetTimes(dir, t);
  };
  ExpectDifferences({"names/extra\\nname\\xff: extra in dst (src=absent, dst=file)",
                     "names/tab\\there: missing in dst (src=file, dst=absent)"});
}

TEST_F(SharedTrees, HardlinkBroken) {
  // Replace one of the three links by an identical but separate file.
  const std::string orig = B("hard/a/orig"), p = B("hard/c/deep/link-2");
  const std::string tmp = B("hard/c/deep/tmp");
  const Times t = GetTimes(orig), parent = GetTimes(Parent(p));
  struct stat st;
  ASSERT_EQ(::lstat(orig.c_str(), &st), 0);
  {
    int in = ::open(orig.c_str(), O_RDONLY);
    int out = ::open(tmp.c_str(), O_CREAT | O_WRONLY | O_EXCL, 0600);
    ASSERT_GE(in, 0);
    ASSERT_GE(out, 0);
    std::vector<char> buf(static_cast<size_t>(st.st_size));
    ASSERT_EQ(::read(in, buf.data(), buf.size()), st.st_size);
    ASSERT_EQ(::write(out, buf.data(), buf.size()), st.st_size);
    ::close(in);
    ::close(out);
  }
  char value[256];
  const ssize_t n = ::lgetxattr(orig.c_str(), "user.comment", value, sizeof value);
  if (n >= 0) {
    ASSERT_EQ(::lsetxattr(tmp.c_str(), "user.comment", value, static_cast<size_t>(n), 0), 0);
  }
  if (::geteuid() == 0) {
    ASSERT_EQ(::lchown(tmp.c_str(), st.st_uid, st.st_gid), 0);
  }
  ASSERT_EQ(::chmod(tmp.c_str(), st.st_mode & 07777), 0);
  SetTimes(tmp, t);
  ASSERT_EQ(::rename(tmp.c_str(), p.c_str()), 0);
  SetTimes(Parent(p), parent);
  undo_ = [=] {
    ::unlink(p.c_str());
    ::link(orig.c_str(), p.c_str());
    SetTimes(Parent(p), parent);
  };
  ExpectDifferences({
      "hard/a/orig: hard links differ (src=[hard/a/orig, hard/b/link-1, hard/c/deep/link-2], "
      "dst=[hard/a/orig, hard/b/link-1])",
      "hard/c/deep/link-2: hard links differ (src=[hard/a/orig, hard/b/link-1, "
      "hard/c/deep/link-2], dst=[hard/c/deep/link-2])",
  });
}

TEST_F(SharedTrees, HardlinkAdded) {
  // Two separate (empty) files in SRC are one inode in DST.
  const std::string p = B("hard/same-content-not-linked");
  const Times parent = GetTimes(Parent(p));
  Stash("hard/same-content-not-linked");
  ASSERT_EQ(::link(B("hard/empty-1").c_str(), p.c_str()), 0);
  SetTimes(Parent(p), parent);
  undo_ = [=] {
    ::unlink(p.c_str());
    Unstash("hard/same-content-not-linked");
    SetTimes(Parent(p), parent);
  };
  const CompareResult r = CompareTrees(a_, b_);
  EXPECT_FALSE(r.identical);
  bool found = false;
  for (const auto& d : r.differences) {
    found |= d ==
             "hard/empty-1: hard links differ (src=[hard/empty-1, hard/empty-2], "
             "dst=[hard/empty-1, hard/empty-2, hard/same-content-not-linked])";
  }
  EXPECT_TRUE(found) << Show(r);
}

// The command-line tool, if its path is known (CMake defines TREECMP_BIN;
// otherwise set the TREECMP_BIN environment variable).
TEST_F(SharedTrees, CommandLineTool) {
  std::string bin;
  if (const char* env = std::getenv("TREECMP_BIN")) bin = env;
#ifdef TREECMP_BIN
  if (bin.empty()) bin = TREECMP_BIN;
#endif
  if (bin.empty()) GTEST_SKIP() << "TREECMP_BIN not set";
  auto run = [&](const std::string& args) {
    const int status = std::system((bin + " " + args + " >/dev/null 2>&1").c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  const std::string both = " '" + a_ + "' '" + b_ + "'";
  EXPECT_EQ(run(both), 0);
  EXPECT_EQ(run("--json --ignore-atime" + both), 0);
  EXPECT_EQ(run("'" + a_ + "'"), 2);
  EXPECT_EQ(run("--bogus" + both), 2);
  EXPECT_EQ(run("'" + a_ + "' '" + tmp_->Sub("missing") + "'"), 2);
  ASSERT_EQ(::chmod(B("modes/mode-0600").c_str(), 0644), 0);
  undo_ = [] { ::chmod(B("modes/mode-0600").c_str(), 0600); };
  EXPECT_EQ(run(both), 1);
  EXPECT_EQ(run("--json" + both), 1);
}

}  // namespace
}  // namespace bulwark::testing
