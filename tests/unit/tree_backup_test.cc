// Tests for ops::TreeBackup (ops/backup.h): snapshots built entry by entry
// from readers, memory, local files and unchanged entries of the parent,
// restored with ops::Restore and compared with what went in.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "bulwark/base/error.h"
#include "bulwark/crypto/crypto.h"
#include "bulwark/ops/backup.h"
#include "bulwark/ops/restore.h"
#include "bulwark/repo/repository.h"
#include "bulwark/storage/backend.h"
#include "test_util.h"

namespace bulwark::ops {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// A reader over `s` handing out at most `piece` bytes a call.
TreeBackup::Reader ReaderOf(const std::string& s, size_t piece = 1000) {
  auto pos = std::make_shared<size_t>(0);
  return [&s, pos, piece](uint8_t* buf, size_t n) {
    size_t k = std::min({n, piece, s.size() - *pos});
    std::memcpy(buf, s.data() + *pos, k);
    *pos += k;
    return k;
  };
}

class TreeBackupTest : public ::testing::Test {
 protected:
  TreeBackupTest() : store_(storage::NewMemoryBackend()) {
    repo::InitOptions o;
    o.kdf = crypto::KdfParams{1, 8 << 20, {}};
    repo::Repository::Init(*store_, "pw", o);
    repo_ = repo::Repository::Open(std::make_unique<storage::ForwardingBackend>(store_), "pw");
    repo_->LoadIndex();
  }

  BackupOptions Options() const {
    BackupOptions o;
    o.threads = 2;
    o.host = "test-host";
    o.source = "ch";
    o.chunker = chunk::Params{4096, 16384, 65536};
    return o;
  }

  std::string Restore(const repo::Snapshot& s) {
    std::string target = dir_.path() + "/out-" + std::to_string(counter_++);
    RestoreOptions ro;
    ro.target = target;
    RestoreResult r = ops::Restore(*repo_, s, ro);
    EXPECT_TRUE(r.errors.empty()) << r.errors.front();
    return target;
  }

  size_t Snapshots() { return store_->List("snapshots/").size(); }

  std::shared_ptr<storage::Backend> store_;
  std::unique_ptr<repo::Repository> repo_;
  TempDir dir_;
  int counter_ = 0;
};

TEST_F(TreeBackupTest, StreamsFilesAndLocalDirectoriesIntoOneTree) {
  const std::string big(AsString(RandomData(300000, 3)));
  const std::string local = dir_.path() + "/part";
  fs::create_directories(local + "/sub");
  std::ofstream(local + "/a.bin", std::ios::binary) << big;
  std::ofstream(local + "/sub/count.txt") << "42";
  fs::permissions(local + "/a.bin", fs::perms(0640));
  ::symlink("a.bin", (local + "/link").c_str());

  TreeBackup tb(*repo_, Options(), "clickhouse");
  EXPECT_EQ(tb.parent(), nullptr);
  std::string sha;
  EXPECT_EQ(tb.AddStream("db/t/data.native", ReaderOf(big, 777), &sha), big.size());
  EXPECT_EQ(sha, crypto::Sha256(AsBytes(big)).Hex());
  tb.AddFile("db/t/table.sql", "CREATE TABLE t");
  tb.AddFile("db/database.sql", "CREATE DATABASE db");
  tb.AddFile("other/empty", "");
  EXPECT_EQ(tb.AddLocal("db/t/parts/p1", local), big.size() + 2);
  BackupResult r = tb.Commit({{"clickhouse", {{"mode", "test"}}}});
  EXPECT_EQ(r.snapshot.kind, "clickhouse");
  EXPECT_EQ(r.snapshot.source, "ch");
  EXPECT_EQ(r.snapshot.paths, (std::vector<std::string>{"/db", "/other"}));
  EXPECT_EQ(r.snapshot.facts["clickhouse"]["mode"], "test");
  EXPECT_EQ(r.snapshot.summary.files_new, 6u);
  EXPECT_EQ(Snapshots(), 1u);

  const std::string out = Restore(repo_->LoadSnapshot(r.snapshot.id));
  EXPECT_EQ(ReadAll(out + "/db/t/data.native"), big);
  EXPECT_EQ(ReadAll(out + "/db/t/table.sql"), "CREATE TABLE t");
  EXPECT_EQ(ReadAll(out + "/db/database.sql"), "CREATE DATABASE db");
  EXPECT_EQ(fs::file_size(out + "/other/empty"), 0u);
  EXPECT_EQ(ReadAll(out + "/db/t/parts/p1/a.bin"), big);
  EXPECT_EQ(ReadAll(out + "/db/t/parts/p1/sub/count.txt"), "42");
  EXPECT_EQ(fs::read_symlink(out + "/db/t/parts/p1/link").string(), "a.bin");
  struct stat st;
  ASSERT_EQ(::stat((out + "/db/t/parts/p1/a.bin").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u) << "a local file keeps its mode";
  ASSERT_EQ(::stat((out + "/db/t/data.native").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST_F(TreeBackupTest, UnchangedEntriesOfTheParentAreReferencedNotRead) {
  const std::string big(AsString(RandomData(200000, 5)));
  const std::string local = dir_.path() + "/part";
  fs::create_directories(local);
  std::ofstream(local + "/data.bin", std::ios::binary) << big;
  std::ofstream(local + "/checksums.txt") << "sums v1";
  BackupResult first;
  {
    TreeBackup tb(*repo_, Options(), "clickhouse");
    tb.AddLocal("db/t/p1", local);
    tb.AddFile("db/t/table.sql", "v1");
    first = tb.Commit({});
  }
  TreeBackup tb(*repo_, Options(), "clickhouse");
  ASSERT_NE(tb.parent(), nullptr);
  EXPECT_EQ(tb.parent()->id, first.snapshot.id);
  auto part = tb.ParentNode("db/t/p1");
  ASSERT_TRUE(part.has_value());
  EXPECT_EQ(part->type, repo::NodeType::kDir);
  EXPECT_FALSE(tb.ParentNode("db/t/p2").has_value());
  EXPECT_FALSE(tb.ParentNode("db/t/table.sql/x").has_value());
  // A small file is recognised by its content ids.
  auto sums = tb.ParentNode("db/t/p1/checksums.txt");
  ASSERT_TRUE(sums.has_value());
  EXPECT_EQ(tb.ContentIds("sums v1"), sums->content);
  EXPECT_NE(tb.ContentIds("sums v2"), sums->content);
  ASSERT_TRUE(tb.AddUnchanged("db/t/p1", *part));
  tb.AddFile("db/t/table.sql", "v1");
  BackupResult second = tb.Commit({});
  EXPECT_LT(second.snapshot.summary.bytes_added, 2000u) << "new trees only (table.sql has a new mtime)";
  EXPECT_EQ(second.snapshot.summary.bytes_processed, 2u) << "only table.sql was read";
  EXPECT_EQ(second.snapshot.summary.files_unmodified, 2u);
  EXPECT_EQ(FindNode(*repo_, second.snapshot, "/db/t/p1").subtree, part->subtree);
  const std::string out = Restore(repo_->LoadSnapshot(second.snapshot.id));
  EXPECT_EQ(ReadAll(out + "/db/t/p1/data.bin"), big);
}

TEST_F(TreeBackupTest, AFailingReaderStoresNoSnapshotAndBadPathsAreRefused) {
  {
    TreeBackup tb(*repo_, Options(), "clickhouse");
    tb.AddFile("db/ok", "fine");
    const std::string data(100000, 'x');
    size_t calls = 0;
    auto failing = [&](uint8_t* buf, size_t n) -> size_t {
      if (++calls > 3) throw Error(ErrorCode::kSourceFailed, "the server went away");
      size_t k = std::min<size_t>(n, 1000);
      std::memset(buf, 'x', k);
      return k;
    };
    EXPECT_EQ(CodeOf([&] { tb.AddStream("db/broken", failing); }), ErrorCode::kSourceFailed);
    // The TreeBackup is abandoned without Commit.
  }
  EXPECT_EQ(Snapshots(), 0u);
  TreeBackup tb(*repo_, Options(), "clickhouse");
  for (const char* bad : {"", "/abs", "a//b", "a/../b", "a/.", "trailing/"})
    EXPECT_EQ(CodeOf([&] { tb.AddFile(bad, "x"); }), ErrorCode::kInvalidArgument) << bad;
  tb.AddFile("file", "x");
  EXPECT_EQ(CodeOf([&] { tb.AddFile("file/below", "y"); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf([&] { tb.AddLocal("x", dir_.path() + "/does-not-exist"); }), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace bulwark::ops
