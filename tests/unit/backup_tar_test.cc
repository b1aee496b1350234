// Tests for ops::BackupTar (ops/backup.h): tars written in-process with
// libarchive's writer are backed up into an in-memory repository, restored
// with ops::Restore and compared with what went in.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

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

struct Member {
  std::string name;  // as written into the tar
  mode_t type = AE_IFREG;
  int perm = 0640;
  std::string data;    // files
  std::string target;  // symlinks and hardlinks
  int64_t mtime = 1700000000;
  long mtime_nsec = 0;
};

// A tar (pax, so that nanosecond mtimes survive) of `members`, in memory.
std::string MakeTar(const std::vector<Member>& members, const char* format = "pax") {
  std::vector<char> buf(64u << 20);
  size_t used = 0;
  archive* a = archive_write_new();
  archive_write_set_format_by_name(a, format);
  archive_write_set_bytes_in_last_block(a, 1);
  EXPECT_EQ(archive_write_open_memory(a, buf.data(), buf.size(), &used), ARCHIVE_OK) << archive_error_string(a);
  for (const auto& m : members) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, m.name.c_str());
    archive_entry_set_perm(e, m.perm);
    archive_entry_set_uid(e, 1234);
    archive_entry_set_gid(e, 5678);
    archive_entry_set_uname(e, "pguser");
    archive_entry_set_gname(e, "pggroup");
    archive_entry_set_mtime(e, m.mtime, m.mtime_nsec);
    if (m.type == 0) {  // a hardlink
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_hardlink(e, m.target.c_str());
      archive_entry_set_size(e, 0);
    } else {
      archive_entry_set_filetype(e, m.type);
      if (m.type == AE_IFLNK) archive_entry_set_symlink(e, m.target.c_str());
      archive_entry_set_size(e, m.type == AE_IFREG ? static_cast<la_int64_t>(m.data.size()) : 0);
    }
    EXPECT_EQ(archive_write_header(a, e), ARCHIVE_OK) << m.name << ": " << archive_error_string(a);
    if (m.type == AE_IFREG && !m.data.empty()) {
      EXPECT_EQ(archive_write_data(a, m.data.data(), m.data.size()), static_cast<la_ssize_t>(m.data.size()));
    }
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  return std::string(buf.data(), used);
}

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

class BackupTarTest : public ::testing::Test {
 protected:
  BackupTarTest() : store_(storage::NewMemoryBackend()) {
    repo::InitOptions o;
    o.kdf = crypto::KdfParams{1, 8 << 20, {}};
    repo::Repository::Init(*store_, "pw", o);
    repo_ = repo::Repository::Open(std::make_unique<storage::ForwardingBackend>(store_), "pw");
    repo_->LoadIndex();
  }

  // Backs up `tar` read from a file descriptor.
  BackupResult Backup(const std::string& tar, const TarHooks& hooks = {}) {
    std::string path = dir_.path() + "/in-" + std::to_string(counter_++) + ".tar";
    std::ofstream(path, std::ios::binary) << tar;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_GE(fd, 0);
    struct Closer {
      int fd;
      ~Closer() { ::close(fd); }
    } closer{fd};
    BackupOptions o;
    o.threads = 2;
    o.host = "test-host";
    o.source = "db";
    o.chunker = chunk::Params{4096, 16384, 65536};  // several chunks for the bigger members
    return BackupTar(*repo_, fd, "db", "postgres", o, hooks);
  }

  std::string Restore(const repo::Snapshot& s) {
    std::string target = dir_.path() + "/out-" + std::to_string(counter_++);
    RestoreOptions ro;
    ro.target = target;
    RestoreResult r = ops::Restore(*repo_, s, ro);
    EXPECT_TRUE(r.errors.empty()) << r.errors.front();
    return target + "/db";
  }

  size_t Snapshots() { return store_->List("snapshots/").size(); }

  std::shared_ptr<storage::Backend> store_;
  std::unique_ptr<repo::Repository> repo_;
  TempDir dir_;
  int counter_ = 0;
};

TEST(NormalizeTarPath, DropsDotsAndSlashes) {
  EXPECT_EQ(NormalizeTarPath("./pg_wal/archive_status/"), "pg_wal/archive_status");
  EXPECT_EQ(NormalizeTarPath("pg_wal/"), "pg_wal");
  EXPECT_EQ(NormalizeTarPath("base//1/./1259"), "base/1/1259");
  EXPECT_EQ(NormalizeTarPath("/etc/hosts"), "etc/hosts");
  EXPECT_EQ(NormalizeTarPath("./"), "");
  EXPECT_EQ(NormalizeTarPath("."), "");
  EXPECT_EQ(CodeOf([] { NormalizeTarPath("a/../../etc"); }), ErrorCode::kSourceFailed);
  EXPECT_EQ(CodeOf([] { NormalizeTarPath(".."); }), ErrorCode::kSourceFailed);
}

TEST_F(BackupTarTest, RestoresWhatTheTarHolds) {
  std::string big(AsString(RandomData(300000, 7)));
  std::vector<Member> members{
      {"backup_label", AE_IFREG, 0600, "START WAL LOCATION: 0/2000028\n"},
      {"./pg_wal/", AE_IFDIR, 0700},
      {"./pg_wal/archive_status/", AE_IFDIR, 0750},
      {"base/1/1259", AE_IFREG, 0600, big, "", 1700000001, 123456789},  // parent dirs implied
      {"global/", AE_IFDIR, 0700},
      {"global/pg_control", AE_IFREG, 0600, std::string(8192, 'c')},
      {"empty", AE_IFREG, 0644, ""},
      {"link", AE_IFLNK, 0777, "", "global/pg_control"},
      {"hard", 0, 0600, "", "global/pg_control"},
      {"dup", AE_IFREG, 0600, "first version"},
      {"dup", AE_IFREG, 0600, "second version"},  // the last one wins
      {"backup_manifest", AE_IFREG, 0600, "{\"manifest\": true}\n"},
  };
  std::map<std::string, std::string> wanted;
  TarHooks hooks;
  hooks.want_content = [](const std::string& p) { return p == "backup_label" || p == "backup_manifest"; };
  hooks.on_content = [&](const std::string& p, std::string c) { wanted[p] = std::move(c); };
  bool finished = false;
  hooks.finish = [&](nlohmann::json* facts) {
    finished = true;
    (*facts)["postgres"] = {{"mode", "physical"}};
  };
  BackupResult r = Backup(MakeTar(members), hooks);
  EXPECT_TRUE(finished);
  EXPECT_EQ(wanted["backup_label"], "START WAL LOCATION: 0/2000028\n");
  EXPECT_EQ(wanted["backup_manifest"], "{\"manifest\": true}\n");
  EXPECT_EQ(r.snapshot.kind, "postgres");
  EXPECT_EQ(r.snapshot.paths, std::vector<std::string>{"/db"});
  EXPECT_EQ(r.snapshot.facts["postgres"]["mode"], "physical");
  EXPECT_EQ(r.snapshot.summary.files_new, 7u);  // label, 1259, pg_control, empty, hard, dup, manifest
  EXPECT_EQ(r.snapshot.summary.other_entries, 1u);
  EXPECT_EQ(r.snapshot.summary.dirs, 6u);  // db, pg_wal, archive_status, base, base/1, global
  EXPECT_EQ(Snapshots(), 1u);

  std::string out = Restore(repo_->LoadSnapshot(r.snapshot.id));
  EXPECT_EQ(ReadAll(out + "/base/1/1259"), big);
  EXPECT_EQ(ReadAll(out + "/global/pg_control"), std::string(8192, 'c'));
  EXPECT_EQ(ReadAll(out + "/dup"), "second version");
  EXPECT_EQ(ReadAll(out + "/hard"), std::string(8192, 'c'));
  EXPECT_EQ(fs::file_size(out + "/empty"), 0u);
  EXPECT_EQ(fs::read_symlink(out + "/link").string(), "global/pg_control");
  EXPECT_TRUE(fs::is_directory(out + "/pg_wal/archive_status"));
  struct stat st;
  ASSERT_EQ(::stat((out + "/hard").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 2u) << "a hardlink is restored as a link";
  ASSERT_EQ(::stat((out + "/base/1/1259").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1700000001);
  EXPECT_EQ(st.st_mtim.tv_nsec, 123456789) << "pax keeps nanoseconds";
  ASSERT_EQ(::stat((out + "/pg_wal/archive_status").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  ASSERT_EQ(::stat((out + "/base").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u) << "an implied directory";

  // The tree: owner and names from the tar headers.
  repo::Node root = FindNode(*repo_, r.snapshot, "/db");
  EXPECT_EQ(root.type, repo::NodeType::kDir);
  EXPECT_EQ(root.uid, 1234u);
  repo::Node label = FindNode(*repo_, r.snapshot, "/db/backup_label");
  EXPECT_EQ(label.user, "pguser");
  EXPECT_EQ(label.group, "pggroup");
  EXPECT_EQ(label.gid, 5678u);
}

TEST_F(BackupTarTest, AnUnchangedTarAddsNothingAndAChangedMemberLittle) {
  std::vector<Member> members;
  for (int i = 0; i < 20; ++i)
    members.push_back({"base/1/" + std::to_string(16384 + i), AE_IFREG, 0600, std::string(AsString(RandomData(100000, i)))});
  BackupResult first = Backup(MakeTar(members));
  EXPECT_GE(first.snapshot.summary.bytes_added, 2000000u);
  BackupResult second = Backup(MakeTar(members));
  EXPECT_EQ(second.snapshot.summary.bytes_added, 0u);
  EXPECT_EQ(second.snapshot.tree, first.snapshot.tree) << "the same tar gives the same tree";
  members[3].data[50000] ^= 1;  // one byte of one relation file
  BackupResult third = Backup(MakeTar(members));
  EXPECT_GT(third.snapshot.summary.bytes_added, 0u);
  EXPECT_LT(third.snapshot.summary.bytes_added, 200000u);
  EXPECT_EQ(third.snapshot.summary.bytes_processed, 2000000u);
}

TEST_F(BackupTarTest, GnuAndUstarFormatsToo) {
  for (const char* format : {"gnutar", "ustar"}) {
    std::vector<Member> members{{"./a/b", AE_IFREG, 0600, "hello"}, {"./a/", AE_IFDIR, 0711}};
    BackupResult r = Backup(MakeTar(members, format));
    std::string out = Restore(r.snapshot);
    EXPECT_EQ(ReadAll(out + "/a/b"), "hello") << format;
    struct stat st;
    ASSERT_EQ(::stat((out + "/a").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0711u) << format << ": a directory listed after its contents keeps them";
  }
}

TEST_F(BackupTarTest, ATruncatedTarStoresNoSnapshot) {
  std::string tar = MakeTar({{"a", AE_IFREG, 0600, std::string(AsString(RandomData(50000, 1)))}, {"b", AE_IFREG, 0600, "x"}});
  Error e(ErrorCode::kInternal, "");
  try {
    Backup(tar.substr(0, 20000));
    FAIL() << "no error";
  } catch (const Error& err) {
    e = err;
  }
  EXPECT_EQ(e.code(), ErrorCode::kSourceFailed);
  EXPECT_NE(std::string(e.what()).find("tar stream"), std::string::npos) << e.what();
  EXPECT_EQ(Snapshots(), 0u);
}

TEST_F(BackupTarTest, UnsafeNamesAndFailingFinishStoreNoSnapshot) {
  EXPECT_EQ(CodeOf([&] { Backup(MakeTar({{"../escape", AE_IFREG, 0600, "x"}})); }), ErrorCode::kSourceFailed);
  EXPECT_EQ(CodeOf([&] { Backup(MakeTar({{"f", AE_IFREG, 0600, "x"}, {"f/g", AE_IFREG, 0600, "y"}})); }),
            ErrorCode::kSourceFailed);
  TarHooks hooks;
  hooks.finish = [](nlohmann::json*) { throw Error(ErrorCode::kSourceFailed, "the producer failed"); };
  EXPECT_EQ(CodeOf([&] { Backup(MakeTar({{"f", AE_IFREG, 0600, "x"}}), hooks); }), ErrorCode::kSourceFailed);
  EXPECT_EQ(Snapshots(), 0u);
}

TEST_F(BackupTarTest, NotATarIsAnError) {
  EXPECT_EQ(CodeOf([&] { Backup(std::string(4096, 'x')); }), ErrorCode::kSourceFailed);
  EXPECT_EQ(Snapshots(), 0u);
}

}  // namespace
}  // namespace bulwark::ops
