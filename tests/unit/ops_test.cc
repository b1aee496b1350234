// Tests for src/bulwark/ops/{backup,restore,check}.h on an in-memory
// repository: backup of a generated directory, restore and byte comparison,
// stream and command backups, and check on healthy and damaged repositories.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bulwark/base/error.h"
#include "bulwark/crypto/crypto.h"
#include "bulwark/ops/backup.h"
#include "bulwark/ops/check.h"
#include "bulwark/ops/restore.h"
#include "bulwark/repo/repository.h"
#include "bulwark/storage/backend.h"
#include "test_util.h"

namespace bulwark::ops {
namespace {

namespace fs = std::filesystem;
using repo::Node;

// Shares one store between Repository objects; can be told to fail pack uploads.
class TestBackend : public storage::ForwardingBackend {
 public:
  TestBackend(std::shared_ptr<storage::Backend> b, std::shared_ptr<std::atomic<bool>> fail_packs)
      : ForwardingBackend(std::move(b)), fail_packs_(std::move(fail_packs)) {}
  void Put(const std::string& n, ByteSpan d) override {
    if (*fail_packs_ && n.rfind("data/", 0) == 0) throw Error(ErrorCode::kNoSpace, "test: " + n + ": disk full");
    ForwardingBackend::Put(n, d);
  }

 private:
  std::shared_ptr<std::atomic<bool>> fail_packs_;
};

Bytes Text(size_t n) {
  std::string s;
  while (s.size() < n) s += "row " + std::to_string(s.size()) + ": lorem ipsum dolor sit amet\n";
  s.resize(n);
  return Bytes(s.begin(), s.end());
}

void WriteFile(const std::string& path, ByteSpan data, mode_t mode = 0644) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  ::close(fd);
  ::chmod(path.c_str(), mode);
}

Bytes ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// Bytes written by `fn(fd)` to a temporary file.
template <typename Fn>
Bytes Capture(Fn&& fn) {
  TempDir d;
  std::string p = d.path() + "/out";
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  EXPECT_GE(fd, 0);
  fn(fd);
  ::close(fd);
  return ReadFile(p);
}

// Compares two directory trees: names, types, file bytes, modes, mtimes,
// symlink targets. Returns a list of differences.
std::vector<std::string> CompareTrees(const std::string& a, const std::string& b) {
  std::vector<std::string> diffs;
  std::map<std::string, fs::file_type> ea, eb;
  for (const auto& e : fs::recursive_directory_iterator(a))
    ea[fs::relative(e.path(), a).string()] = e.symlink_status().type();
  for (const auto& e : fs::recursive_directory_iterator(b))
    eb[fs::relative(e.path(), b).string()] = e.symlink_status().type();
  for (const auto& [rel, type] : ea) {
    auto it = eb.find(rel);
    if (it == eb.end()) {
      diffs.push_back("missing: " + rel);
      continue;
    }
    if (it->second != type) {
      diffs.push_back("type differs: " + rel);
      continue;
    }
    std::string pa = a + "/" + rel, pb = b + "/" + rel;
    struct stat sa, sb;
    ::lstat(pa.c_str(), &sa);
    ::lstat(pb.c_str(), &sb);
    if (type == fs::file_type::symlink) {
      if (fs::read_symlink(pa) != fs::read_symlink(pb)) diffs.push_back("link target differs: " + rel);
      continue;
    }
    if ((sa.st_mode & 07777) != (sb.st_mode & 07777)) diffs.push_back("mode differs: " + rel);
    if (sa.st_mtim.tv_sec != sb.st_mtim.tv_sec || sa.st_mtim.tv_nsec != sb.st_mtim.tv_nsec)
      diffs.push_back("mtime differs: " + rel);
    if (type == fs::file_type::regular && ReadFile(pa) != ReadFile(pb)) diffs.push_back("content differs: " + rel);
  }
  for (const auto& [rel, type] : eb)
    if (!ea.count(rel)) diffs.push_back("extra: " + rel);
  return diffs;
}

class OpsTest : public ::testing::Test {
 protected:
  OpsTest() : store_(storage::NewMemoryBackend()), fail_packs_(std::make_shared<std::atomic<bool>>(false)) {
    repo::InitOptions o;
    o.kdf = crypto::KdfParams{1, 8 << 20, {}};
    repo::Repository::Init(*store_, "pw", o);
    repo_ = Open();
  }

  std::unique_ptr<repo::Repository> Open() {
    auto r = repo::Repository::Open(std::make_unique<TestBackend>(store_, fail_packs_), "pw");
    r->LoadIndex();
    return r;
  }

  std::vector<std::string> Names(const std::string& prefix) {
    std::vector<std::string> out;
    for (const auto& o : store_->List(prefix)) out.push_back(o.name);
    return out;
  }

  // A small tree with every common entry kind; returns its path.
  std::string MakeSource() {
    std::string s = src_.path() + "/src";
    fs::create_directories(s + "/sub/deeper");
    fs::create_directories(s + "/emptydir");
    WriteFile(s + "/hello.txt", AsBytes("hello world\n"), 0640);
    WriteFile(s + "/empty", {});
    WriteFile(s + "/big.bin", RandomData(3 << 20, 1));  // several chunks at the default sizes
    WriteFile(s + "/sub/nested.txt", Text(100000), 0600);
    WriteFile(s + "/sub/deeper/x.bin", RandomData(10, 2), 0755);
    WriteFile(s + std::string("/odd\nname\xff", 10), AsBytes("odd"));
    Bytes dup = Text(200000);
    WriteFile(s + "/dup1.txt", dup);
    WriteFile(s + "/dup2.txt", dup);
    fs::create_symlink("hello.txt", s + "/link");
    fs::create_symlink("/nonexistent/target", s + "/sub/dangling");
    return s;
  }

  BackupOptions Opts(const std::string& path) {
    BackupOptions o;
    o.paths = {path};
    o.threads = 2;
    o.host = "test-host";
    return o;
  }

  std::shared_ptr<storage::Backend> store_;
  std::shared_ptr<std::atomic<bool>> fail_packs_;
  std::unique_ptr<repo::Repository> repo_;
  TempDir src_, dst_;
};

TEST_F(OpsTest, BackupRestoreRoundTrip) {
  std::string src = MakeSource();
  BackupResult r = BackupPaths(*repo_, Opts(src));
  EXPECT_TRUE(r.errors.empty()) << r.errors.front();
  EXPECT_FALSE(r.snapshot.partial);
  EXPECT_FALSE(r.snapshot.id.IsZero());
  EXPECT_EQ(r.snapshot.paths, std::vector<std::string>{src});
  EXPECT_EQ(r.snapshot.kind, "fs");
  EXPECT_EQ(r.snapshot.host, "test-host");
  EXPECT_EQ(r.snapshot.summary.files_new, 8u);
  EXPECT_EQ(r.snapshot.summary.other_entries, 2u);  // the symlinks
  EXPECT_EQ(r.snapshot.summary.bytes_processed, uint64_t(12 + (3 << 20) + 100000 + 10 + 3 + 400000));
  // The duplicate file costs nothing: added < processed.
  EXPECT_LE(r.snapshot.summary.bytes_added, r.snapshot.summary.bytes_processed - 200000 + 10000);
  EXPECT_EQ(Names("snapshots/").size(), 1u);

  Node dup1 = FindNode(*repo_, r.snapshot, src + "/dup1.txt");
  Node dup2 = FindNode(*repo_, r.snapshot, src + "/dup2.txt");
  EXPECT_EQ(dup1.content, dup2.content);
  EXPECT_EQ(dup1.size, 200000u);
  Node big = FindNode(*repo_, r.snapshot, src + "/big.bin");
  EXPECT_GE(big.content.size(), 2u);
  EXPECT_EQ(FindNode(*repo_, r.snapshot, src + "/link").link_target, "hello.txt");
  EXPECT_EQ(FindNode(*repo_, r.snapshot, src + "/sub/nested.txt").mode, 0600u);
  EXPECT_EQ(CodeOf([&] { FindNode(*repo_, r.snapshot, src + "/nope"); }), ErrorCode::kNotFound);
  EXPECT_EQ(Capture([&](int fd) { DumpFile(*repo_, big, fd); }), RandomData(3 << 20, 1));

  // Restore from a fresh session into a new directory.
  auto repo = Open();
  repo::Snapshot snap = repo->ResolveSnapshot("latest", {});
  EXPECT_EQ(snap.id, r.snapshot.id);
  RestoreOptions ro;
  ro.target = dst_.path() + "/out";
  ro.threads = 2;
  RestoreResult res = Restore(*repo, snap, ro);
  EXPECT_TRUE(res.errors.empty()) << res.errors.front();
  EXPECT_EQ(res.files, 8u);
  EXPECT_EQ(res.symlinks, 2u);
  EXPECT_EQ(res.bytes, r.snapshot.summary.bytes_processed);
  std::vector<std::string> diffs = CompareTrees(src, ro.target + src);
  EXPECT_TRUE(diffs.empty()) << ::testing::PrintToString(diffs);
  EXPECT_EQ(ReadFile(ro.target + src + "/hello.txt"),
            Bytes(AsBytes("hello world\n").begin(), AsBytes("hello world\n").end()));

  // The target must be empty unless overwriting.
  EXPECT_EQ(CodeOf([&] { Restore(*repo, snap, ro); }), ErrorCode::kAlreadyExists);
}

TEST_F(OpsTest, RestoreWithIncludes) {
  std::string src = MakeSource();
  BackupResult r = BackupPaths(*repo_, Opts(src));
  RestoreOptions ro;
  ro.target = dst_.path() + "/part";
  ro.includes = {src + "/sub"};
  RestoreResult res = Restore(*repo_, r.snapshot, ro);
  EXPECT_TRUE(res.errors.empty());
  EXPECT_TRUE(fs::exists(ro.target + src + "/sub/nested.txt"));
  EXPECT_TRUE(fs::exists(ro.target + src + "/sub/deeper/x.bin"));
  EXPECT_FALSE(fs::exists(ro.target + src + "/hello.txt"));
  EXPECT_FALSE(fs::exists(ro.target + src + "/emptydir"));
}

TEST_F(OpsTest, IncrementalBackupReusesUnchangedFiles) {
  std::string src = MakeSource();
  BackupResult first = BackupPaths(*repo_, Opts(src));
  size_t packs = Names("data/").size();
  BackupResult second = BackupPaths(*repo_, Opts(src));
  ASSERT_TRUE(second.snapshot.parent.has_value());
  EXPECT_EQ(*second.snapshot.parent, first.snapshot.id);
  EXPECT_EQ(second.snapshot.summary.files_unmodified, 8u);
  EXPECT_EQ(second.snapshot.summary.files_new, 0u);
  EXPECT_LT(second.snapshot.summary.bytes_added, 10000u);  // at most some tree blobs
  EXPECT_LE(Names("data/").size(), packs + 1);

  // A modified file is read again; the others are not.
  WriteFile(src + "/hello.txt", AsBytes("changed content\n"), 0640);
  BackupResult third = BackupPaths(*repo_, Opts(src));
  EXPECT_EQ(third.snapshot.summary.files_changed, 1u);
  EXPECT_EQ(third.snapshot.summary.files_unmodified, 7u);
  Node n = FindNode(*repo_, third.snapshot, src + "/hello.txt");
  EXPECT_EQ(Capture([&](int fd) { DumpFile(*repo_, n, fd); }),
            Bytes(AsBytes("changed content\n").begin(), AsBytes("changed content\n").end()));
  // --force reads everything again.
  BackupOptions forced = Opts(src);
  forced.force = true;
  BackupResult fourth = BackupPaths(*repo_, forced);
  EXPECT_EQ(fourth.snapshot.summary.files_unmodified, 0u);
  EXPECT_EQ(Names("snapshots/").size(), 4u);
}

// BackupDirectory: the directory under a root name of its own, the entries
// `select` keeps (an empty directory where asked), `on_file` for every file
// stored, files added by `finish` after every other was read, and the
// incremental rule against the previous snapshot of the same kind.
TEST_F(OpsTest, BackupDirectoryStoresTheSelectionUnderItsRootName) {
  std::string src = MakeSource();
  WriteFile(src + "/sub/skipped.tmp", AsBytes("left out"));
  DirectoryHooks hooks;
  std::vector<std::pair<std::string, bool>> asked;
  hooks.select = [&](const std::string& rel, bool is_dir, const std::vector<std::string>& siblings) {
    asked.emplace_back(rel, is_dir);
    EXPECT_TRUE(std::is_sorted(siblings.begin(), siblings.end()));
    if (rel == "sub/skipped.tmp") return EntryAction::kSkip;
    if (rel == "sub/deeper") return EntryAction::kEmptyDir;
    return EntryAction::kInclude;
  };
  std::mutex mu;
  std::map<std::string, uint64_t> stored;
  hooks.on_file = [&](const std::string& rel, uint64_t size, int64_t) {
    std::lock_guard<std::mutex> lock(mu);
    stored[rel] = size;
  };
  size_t stored_at_finish = 0;
  hooks.finish = [&](nlohmann::json* facts, std::vector<std::pair<std::string, std::string>>* files) {
    std::lock_guard<std::mutex> lock(mu);
    stored_at_finish = stored.size();  // every file is read before finish
    (*facts)["finished"] = true;
    files->emplace_back("added_last", "written at the end\n");
    files->emplace_back("hello.txt", "replaced\n");
  };
  BackupResult first = BackupDirectory(*repo_, src, "root", "test-kind", Opts(src), hooks);
  const repo::Snapshot& s = first.snapshot;
  EXPECT_EQ(s.kind, "test-kind");
  EXPECT_EQ(s.paths, std::vector<std::string>{"/root"});
  EXPECT_EQ(s.facts["finished"], true);
  EXPECT_FALSE(s.partial);
  EXPECT_EQ(stored_at_finish, stored.size());
  EXPECT_EQ(stored.count("sub/skipped.tmp"), 0u);
  EXPECT_EQ(stored.count("sub/deeper/x.bin"), 0u) << "inside a directory stored empty";
  EXPECT_EQ(stored["big.bin"], uint64_t{3} << 20);
  EXPECT_EQ(stored["sub/nested.txt"], 100000u);
  EXPECT_NE(std::find(asked.begin(), asked.end(), std::make_pair(std::string("sub"), true)), asked.end());
  EXPECT_NE(std::find(asked.begin(), asked.end(), std::make_pair(std::string("hello.txt"), false)), asked.end());

  auto content = [&](const repo::Snapshot& snap, const std::string& path) {
    Node n = FindNode(*repo_, snap, path);
    Bytes b = Capture([&](int fd) { DumpFile(*repo_, n, fd); });
    return std::string(b.begin(), b.end());
  };
  EXPECT_EQ(content(s, "/root/added_last"), "written at the end\n");
  EXPECT_EQ(content(s, "/root/hello.txt"), "replaced\n");
  EXPECT_EQ(content(s, "/root/sub/nested.txt").size(), 100000u);
  EXPECT_THROW(FindNode(*repo_, s, "/root/sub/skipped.tmp"), Error);
  Node deeper = FindNode(*repo_, s, "/root/sub/deeper");
  EXPECT_EQ(deeper.type, repo::NodeType::kDir);
  EXPECT_TRUE(repo_->LoadTree(deeper.subtree).nodes.empty());

  // The next backup of the same kind takes unchanged files from it unread,
  // and still reports them to on_file.
  stored.clear();
  BackupResult second = BackupDirectory(*repo_, src, "root", "test-kind", Opts(src), hooks);
  ASSERT_TRUE(second.snapshot.parent.has_value());
  EXPECT_EQ(*second.snapshot.parent, s.id);
  EXPECT_GE(second.snapshot.summary.files_unmodified, 6u);
  EXPECT_EQ(stored["big.bin"], uint64_t{3} << 20);

  // finish throwing stores no snapshot.
  size_t snapshots = Names("snapshots/").size();
  hooks.finish = [](nlohmann::json*, std::vector<std::pair<std::string, std::string>>*) {
    throw Error(ErrorCode::kSourceFailed, "the server went away");
  };
  try {
    BackupDirectory(*repo_, src, "root", "test-kind", Opts(src), hooks);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kSourceFailed);
    EXPECT_NE(std::string(e.what()).find("the server went away"), std::string::npos);
  }
  EXPECT_EQ(Names("snapshots/").size(), snapshots);
}

TEST_F(OpsTest, ExcludesAndMissingPaths) {
  std::string src = MakeSource();
  BackupOptions o = Opts(src);
  o.excludes = {"*.bin", src + "/sub/nested.txt"};
  BackupResult r = BackupPaths(*repo_, o);
  EXPECT_EQ(CodeOf([&] { FindNode(*repo_, r.snapshot, src + "/big.bin"); }), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf([&] { FindNode(*repo_, r.snapshot, src + "/sub/deeper/x.bin"); }), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf([&] { FindNode(*repo_, r.snapshot, src + "/sub/nested.txt"); }), ErrorCode::kNotFound);
  EXPECT_NO_THROW(FindNode(*repo_, r.snapshot, src + "/hello.txt"));
  EXPECT_TRUE(MatchesExclude({"*.tmp"}, "/a/b/x.tmp", "x.tmp"));
  EXPECT_FALSE(MatchesExclude({"/a/*"}, "/a/b/x.tmp", "x.tmp"));  // '*' does not cross '/'
  EXPECT_TRUE(MatchesExclude({"/a/*/x.tmp"}, "/a/b/x.tmp", "x.tmp"));

  BackupOptions missing = Opts(src + "/does-not-exist");
  EXPECT_EQ(CodeOf([&] { BackupPaths(*repo_, missing); }), ErrorCode::kNotFound);
  BackupOptions none = Opts(src);
  none.paths.clear();
  EXPECT_EQ(CodeOf([&] { BackupPaths(*repo_, none); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(Names("snapshots/").size(), 1u);
}

TEST_F(OpsTest, BackupStreamFromPipeMatchesFileChunking) {
  Bytes data = RandomData((5 << 20) + 12345, 3);
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  std::thread writer([&] {
    // Irregular pieces, like a producer would deliver them.
    size_t pos = 0, piece = 1;
    while (pos < data.size()) {
      size_t n = std::min(piece, data.size() - pos);
      ssize_t w = ::write(p[1], data.data() + pos, n);
      if (w <= 0) break;
      pos += static_cast<size_t>(w);
      piece = piece * 7 % 200003 + 1;
    }
    ::close(p[1]);
  });
  bool finished = false;
  BackupResult r = BackupStream(*repo_, p[0], "dump.sql", "stdin", Opts("/"), [&](nlohmann::json* facts) {
    finished = true;
    (*facts)["extra"] = "yes";
  });
  writer.join();
  ::close(p[0]);
  EXPECT_TRUE(finished);
  EXPECT_EQ(r.snapshot.kind, "stdin");
  EXPECT_EQ(r.snapshot.paths, std::vector<std::string>{"/dump.sql"});
  EXPECT_EQ(r.snapshot.facts["stream"]["sha256"], crypto::Sha256(data).Hex());
  EXPECT_EQ(r.snapshot.facts["stream"]["size"], data.size());
  EXPECT_EQ(r.snapshot.facts["extra"], "yes");
  repo::Snapshot stored = repo_->LoadSnapshot(r.snapshot.id);
  EXPECT_EQ(stored.facts, r.snapshot.facts);

  Node n = FindNode(*repo_, stored, "/dump.sql");
  EXPECT_EQ(n.size, data.size());
  EXPECT_EQ(Capture([&](int fd) { EXPECT_EQ(DumpFile(*repo_, n, fd), data.size()); }), data);

  // The same bytes as a file chunk identically, however the pipe delivered them.
  std::string dir = src_.path() + "/same";
  fs::create_directories(dir);
  WriteFile(dir + "/dump.sql", data);
  BackupResult f = BackupPaths(*repo_, Opts(dir));
  Node fn = FindNode(*repo_, f.snapshot, dir + "/dump.sql");
  EXPECT_EQ(fn.content, n.content);
  EXPECT_LT(f.snapshot.summary.bytes_added, 10000u);  // all data blobs already stored

  // Bad stream names are refused.
  EXPECT_EQ(CodeOf([&] { BackupStream(*repo_, p[0], "a/b", "stdin", Opts("/"), nullptr); }),
            ErrorCode::kInvalidArgument);
}

TEST_F(OpsTest, BackupCommand) {
  size_t before = Names("snapshots/").size();
  EXPECT_EQ(CodeOf([&] { BackupCommand(*repo_, {"false"}, "out.txt", Opts("/")); }), ErrorCode::kSourceFailed);
  EXPECT_EQ(CodeOf([&] {
              BackupCommand(*repo_, {"sh", "-c", "printf partial; exit 3"}, "out.txt", Opts("/"));
            }),
            ErrorCode::kSourceFailed);
  try {
    BackupCommand(*repo_, {"sh", "-c", "printf x; kill -9 $$"}, "out.txt", Opts("/"));
    ADD_FAILURE() << "a killed producer was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kSourceFailed);
    EXPECT_NE(std::string(e.what()).find("signal"), std::string::npos) << e.what();
  }
  EXPECT_EQ(CodeOf([&] { BackupCommand(*repo_, {"/nonexistent/producer"}, "out.txt", Opts("/")); }),
            ErrorCode::kSourceFailed);
  EXPECT_EQ(CodeOf([&] { BackupCommand(*repo_, {}, "out.txt", Opts("/")); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(Names("snapshots/").size(), before);  // no failed run stored a snapshot

  BackupResult r = BackupCommand(*repo_, {"sh", "-c", "printf hello"}, "out.txt", Opts("/"));
  EXPECT_EQ(Names("snapshots/").size(), before + 1);
  EXPECT_EQ(r.snapshot.kind, "command");
  EXPECT_EQ(r.snapshot.facts["exit_code"], 0);
  EXPECT_EQ(r.snapshot.facts["command"], (nlohmann::json{"sh", "-c", "printf hello"}));
  auto repo = Open();
  repo::Snapshot snap = repo->ResolveSnapshot(r.snapshot.id.Short(), {});
  Node n = FindNode(*repo, snap, "/out.txt");
  EXPECT_EQ(n.size, 5u);
  Bytes got = Capture([&](int fd) { DumpFile(*repo, n, fd); });
  EXPECT_EQ(std::string(got.begin(), got.end()), "hello");

  RestoreOptions ro;
  ro.target = dst_.path() + "/cmd";
  Restore(*repo, snap, ro);
  EXPECT_EQ(ReadFile(ro.target + "/out.txt"), Bytes(AsBytes("hello").begin(), AsBytes("hello").end()));
}

TEST_F(OpsTest, FailedUploadAbortsBackupWithoutSnapshot) {
  std::string src = MakeSource();
  *fail_packs_ = true;
  EXPECT_EQ(CodeOf([&] { BackupPaths(*repo_, Opts(src)); }), ErrorCode::kNoSpace);
  EXPECT_TRUE(Names("snapshots/").empty());
  *fail_packs_ = false;
  auto repo = Open();
  BackupResult r = BackupPaths(*repo, Opts(src));
  EXPECT_EQ(Names("snapshots/").size(), 1u);
  EXPECT_TRUE(Check(*Open(), {}).ok());
}

// DISABLED: crashes (heap-use-after-free under ASan). In
// src/bulwark/ops/backup.cc, when the upload thread fails while the walker is
// still queueing files (Backup::Submit throws `fatal_`), the exception unwinds
// WalkDir/WalkTrie and destroys their DirState while FileJobs pointing at it are
// still queued or running; StopThreads() then lets the workers drain the queue
// and they dereference job.dir (FileWorker: `job.dir->nodes[job.index]`,
// `job.dir->failed`, `--job.dir->pending`). Needs > 4096 queued files plus one
// full 16 MiB pack before the walk ends. Enable once fixed.
TEST_F(OpsTest, UploadFailureDuringLongWalkIsCleanError) {
  std::string src = src_.path() + "/many";
  fs::create_directories(src);
  for (int i = 0; i < 9000; ++i) WriteFile(src + "/f" + std::to_string(i), RandomData(4096, i));
  *fail_packs_ = true;
  BackupOptions o = Opts(src);
  o.compression = 0;
  EXPECT_EQ(CodeOf([&] { BackupPaths(*repo_, o); }), ErrorCode::kNoSpace);
  EXPECT_TRUE(Names("snapshots/").empty());
}

// ---------------------------------------------------------------- check

TEST_F(OpsTest, CheckHealthyRepository) {
  std::string src = MakeSource();
  BackupPaths(*repo_, Opts(src));
  BackupCommand(*repo_, {"sh", "-c", "printf hello"}, "out.txt", Opts("/"));
  auto repo = Open();
  CheckResult c = Check(*repo, {});
  EXPECT_TRUE(c.ok()) << c.errors.front();
  EXPECT_TRUE(c.warnings.empty());
  EXPECT_EQ(c.snapshots, 2u);
  EXPECT_EQ(c.packs, Names("data/").size());
  EXPECT_EQ(c.index_objects, Names("index/").size());
  EXPECT_GT(c.trees, 5u);
  EXPECT_EQ(c.packs_read, 0u);

  CheckOptions full;
  full.read_data = true;
  full.threads = 2;
  std::atomic<uint64_t> done{0};
  full.packs_done = &done;
  auto repo2 = Open();
  CheckResult d = Check(*repo2, full);
  EXPECT_TRUE(d.ok()) << d.errors.front();
  EXPECT_EQ(d.packs_read, Names("data/").size());
  EXPECT_EQ(done.load(), d.packs_read);
  EXPECT_EQ(d.blobs_read, d.blobs);
  uint64_t bytes = 0;
  for (const auto& o : store_->List("data/")) bytes += o.size;
  EXPECT_EQ(d.bytes_read, bytes);
}

TEST_F(OpsTest, CheckReadDataFindsFlippedByte) {
  std::string src = MakeSource();
  BackupPaths(*repo_, Opts(src));
  // The largest pack holds the file data.
  auto packs = store_->List("data/");
  ASSERT_GE(packs.size(), 2u);
  auto biggest = *std::max_element(packs.begin(), packs.end(), [](auto& a, auto& b) { return a.size < b.size; });
  Bytes data = store_->Get(biggest.name);
  data[data.size() / 3] ^= 0x04;
  store_->Put(biggest.name, data);
  std::string hex = biggest.name.substr(biggest.name.rfind('/') + 1);

  // Structure alone cannot see it (sizes and headers are fine)...
  EXPECT_TRUE(Check(*Open(), {}).ok());
  // ...reading the data does, and names the pack.
  CheckOptions full;
  full.read_data = true;
  CheckResult c = Check(*Open(), full);
  EXPECT_FALSE(c.ok());
  bool named = false;
  for (const auto& e : c.errors) named |= e.find(hex.substr(0, 8)) != std::string::npos;
  EXPECT_TRUE(named) << ::testing::PrintToString(c.errors);
  // The pack's SHA-256 no longer matches its name (checkable without the key):
  // that report carries the full pack id.
  bool by_hash = false;
  for (const auto& e : c.errors) by_hash |= e.find(hex) != std::string::npos;
  EXPECT_TRUE(by_hash) << ::testing::PrintToString(c.errors);
  EXPECT_LT(c.blobs_read, c.blobs);  // the damaged blob did not verify

  // A restore reports the damaged file instead of writing bad bytes silently.
  RestoreOptions ro;
  ro.target = dst_.path() + "/damaged";
  RestoreResult res = Restore(*Open(), Open()->ResolveSnapshot("latest", {}), ro);
  EXPECT_FALSE(res.errors.empty());
}

TEST_F(OpsTest, CheckReportsMissingPack) {
  std::string src = MakeSource();
  BackupPaths(*repo_, Opts(src));
  auto packs = store_->List("data/");
  ASSERT_GE(packs.size(), 2u);
  auto biggest = *std::max_element(packs.begin(), packs.end(), [](auto& a, auto& b) { return a.size < b.size; });
  store_->Remove(biggest.name);
  std::string hex = biggest.name.substr(biggest.name.rfind('/') + 1);
  CheckResult c = Check(*Open(), {});
  EXPECT_FALSE(c.ok());
  bool named = false;
  for (const auto& e : c.errors) named |= e.find(hex) != std::string::npos && e.find("missing") != std::string::npos;
  EXPECT_TRUE(named) << ::testing::PrintToString(c.errors);
}

TEST_F(OpsTest, CheckWarnsAboutUnindexedPackAndReportsTruncation) {
  std::string src = MakeSource();
  BackupPaths(*repo_, Opts(src));
  // A pack no index lists (an interrupted backup): a warning, not an error.
  Bytes orphan = store_->Get(store_->List("data/")[0].name);
  orphan.push_back(0);
  Id orphan_id = crypto::Sha256(orphan);
  store_->Put(repo::Repository::ObjectName(repo::ObjectType::kPack, orphan_id), orphan);
  CheckResult c = Check(*Open(), {});
  EXPECT_TRUE(c.ok());
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_NE(c.warnings[0].find(orphan_id.Short()), std::string::npos) << c.warnings[0];
  store_->Remove(repo::Repository::ObjectName(repo::ObjectType::kPack, orphan_id));

  // A truncated pack is an error even without reading data.
  auto packs = store_->List("data/");
  auto biggest = *std::max_element(packs.begin(), packs.end(), [](auto& a, auto& b) { return a.size < b.size; });
  Bytes data = store_->Get(biggest.name);
  store_->Put(biggest.name, ByteSpan(data).first(data.size() / 2));
  CheckResult t = Check(*Open(), {});
  EXPECT_FALSE(t.ok());
}

}  // namespace
}  // namespace bulwark::ops
