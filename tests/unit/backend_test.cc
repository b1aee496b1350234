// Conformance suite for storage backends (src/bulwark/storage/backend.h):
// one typed test suite run against every backend, plus local-only checks
// (atomic writes leave no temp files, full disks, layout on disk).
#include "bulwark/storage/backend.h"
#include "bulwark/storage/s3/s3.h"

#include <gtest/gtest.h>

#include "test_util.h"
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bulwark/base/error.h"
#include "bulwark/crypto/crypto.h"
#include "bulwark/storage/local.h"

namespace bulwark::storage {
namespace {

namespace fs = std::filesystem;

Bytes B(std::string_view s) { return Bytes(s.begin(), s.end()); }

// A fresh temporary directory, removed (with its contents) at the end.
struct MemoryFactory {
  static constexpr const char* kName = "memory";
  std::unique_ptr<Backend> Make() { return NewMemoryBackend(); }
};

struct LocalFactory {
  static constexpr const char* kName = "local";
  TempDir dir;
  // A not-yet-existing subdirectory: Create() must make it.
  std::unique_ptr<Backend> Make() { return NewLocalBackend(dir.path() + "/repo"); }
};

template <typename Factory>
class BackendConformance : public ::testing::Test {
 protected:
  BackendConformance() : backend_(factory_.Make()) { backend_->Create(); }
  std::vector<std::string> Names(const std::string& prefix) {
    std::vector<std::string> out;
    for (const auto& o : backend_->List(prefix)) out.push_back(o.name);
    std::sort(out.begin(), out.end());
    return out;
  }
  Factory factory_;
  std::unique_ptr<Backend> backend_;
};

using Factories = ::testing::Types<MemoryFactory, LocalFactory>;
class FactoryNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return T::kName;
  }
};
TYPED_TEST_SUITE(BackendConformance, Factories, FactoryNames);

TYPED_TEST(BackendConformance, PutGetStat) {
  Backend& b = *this->backend_;
  EXPECT_FALSE(b.Location().empty());
  b.Put("keys/k1", B("hello"));
  EXPECT_EQ(b.Get("keys/k1"), B("hello"));
  auto st = b.Stat("keys/k1");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->name, "keys/k1");
  EXPECT_EQ(st->size, 5u);
  // mtime is ns since the epoch: within a day of now.
  int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_LT(std::llabs(st->mtime_ns - now), int64_t(86400) * 1000000000);

  // Empty and binary objects.
  b.Put("snapshots/empty", {});
  EXPECT_TRUE(b.Get("snapshots/empty").empty());
  EXPECT_EQ(b.Stat("snapshots/empty")->size, 0u);
  Bytes bin(256);
  for (int i = 0; i < 256; ++i) bin[i] = static_cast<uint8_t>(i);
  b.Put("index/bin", bin);
  EXPECT_EQ(b.Get("index/bin"), bin);
}

TYPED_TEST(BackendConformance, MissingObjects) {
  Backend& b = *this->backend_;
  EXPECT_FALSE(b.Stat("keys/none").has_value());
  EXPECT_FALSE(b.Stat("data/00/none").has_value());
  EXPECT_EQ(CodeOf([&] { b.Get("keys/none"); }), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf([&] { b.Get("nodir/none"); }), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf([&] { b.GetRange("keys/none", 0, 1); }), ErrorCode::kNotFound);
  EXPECT_NO_THROW(b.Remove("keys/none"));  // not an error
  EXPECT_TRUE(b.List("nothing/").empty());
  try {
    b.Get("keys/named-in-message");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("keys/named-in-message"), std::string::npos) << e.what();
  }
}

TYPED_TEST(BackendConformance, GetRange) {
  Backend& b = *this->backend_;
  Bytes data = crypto::RandomBytes(3 << 20);
  b.Put("data/ab/big", data);
  EXPECT_EQ(b.Get("data/ab/big"), data);
  EXPECT_EQ(b.GetRange("data/ab/big", 0, 10), Bytes(data.begin(), data.begin() + 10));
  EXPECT_EQ(b.GetRange("data/ab/big", 1234567, 1 << 20), Bytes(data.begin() + 1234567, data.begin() + 1234567 + (1 << 20)));
  EXPECT_EQ(b.GetRange("data/ab/big", data.size() - 7, 7), Bytes(data.end() - 7, data.end()));
  EXPECT_TRUE(b.GetRange("data/ab/big", data.size(), 0).empty());
  EXPECT_TRUE(b.GetRange("data/ab/big", 5, 0).empty());
  // Past the end: the object is shorter than the caller expects.
  EXPECT_EQ(CodeOf([&] { b.GetRange("data/ab/big", data.size() - 7, 8); }), ErrorCode::kCorrupt);
  EXPECT_EQ(CodeOf([&] { b.GetRange("data/ab/big", data.size(), 1); }), ErrorCode::kCorrupt);
  EXPECT_EQ(CodeOf([&] { b.GetRange("data/ab/big", data.size() + 100, 1); }), ErrorCode::kCorrupt);
  b.Put("keys/small", B("abc"));
  EXPECT_EQ(CodeOf([&] { b.GetRange("keys/small", 1, 1 << 20); }), ErrorCode::kCorrupt);
}

TYPED_TEST(BackendConformance, OverwriteAndRemove) {
  Backend& b = *this->backend_;
  b.Put("locks/l", B("first version, longer"));
  b.Put("locks/l", B("second"));
  EXPECT_EQ(b.Get("locks/l"), B("second"));
  EXPECT_EQ(b.Stat("locks/l")->size, 6u);
  EXPECT_EQ(this->Names("locks/"), std::vector<std::string>{"locks/l"});
  b.Remove("locks/l");
  EXPECT_FALSE(b.Stat("locks/l").has_value());
  EXPECT_EQ(CodeOf([&] { b.Get("locks/l"); }), ErrorCode::kNotFound);
  EXPECT_TRUE(this->Names("locks/").empty());
  b.Put("locks/l", B("again"));
  EXPECT_EQ(b.Get("locks/l"), B("again"));
}

TYPED_TEST(BackendConformance, ListPrefixesAndNesting) {
  Backend& b = *this->backend_;
  const std::vector<std::string> all = {"config",          "data/00/0011", "data/00/00ff", "data/ff/ff00",
                                        "index/aaaa",      "index/abcd",   "keys/k",       "locks/x",
                                        "snapshots/s0001"};
  for (const auto& n : all) b.Put(n, B(n));
  EXPECT_EQ(this->Names("data/"), (std::vector<std::string>{"data/00/0011", "data/00/00ff", "data/ff/ff00"}));
  EXPECT_EQ(this->Names("data/00/"), (std::vector<std::string>{"data/00/0011", "data/00/00ff"}));
  EXPECT_EQ(this->Names("data/0"), (std::vector<std::string>{"data/00/0011", "data/00/00ff"}));
  EXPECT_EQ(this->Names("data/00/00f"), (std::vector<std::string>{"data/00/00ff"}));
  EXPECT_EQ(this->Names("index/"), (std::vector<std::string>{"index/aaaa", "index/abcd"}));
  EXPECT_EQ(this->Names("index/ab"), (std::vector<std::string>{"index/abcd"}));
  EXPECT_EQ(this->Names("keys/"), (std::vector<std::string>{"keys/k"}));
  EXPECT_EQ(this->Names("snap"), (std::vector<std::string>{"snapshots/s0001"}));
  EXPECT_EQ(this->Names(""), all);
  EXPECT_TRUE(this->Names("data/11/").empty());
  EXPECT_TRUE(this->Names("index/b").empty());
  for (const auto& o : b.List("data/")) EXPECT_EQ(o.size, o.name.size()) << o.name;
}

TYPED_TEST(BackendConformance, CreateRefusesExistingRepository) {
  Backend& b = *this->backend_;
  EXPECT_NO_THROW(b.Create());  // no config yet: creating again is harmless
  b.Put("config", B("cfg"));
  EXPECT_EQ(CodeOf([&] { b.Create(); }), ErrorCode::kAlreadyExists);
  EXPECT_EQ(b.Get("config"), B("cfg"));  // untouched
}

TYPED_TEST(BackendConformance, ConcurrentPuts) {
  Backend& b = *this->backend_;
  const int kThreads = 8, kPer = 25;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < kPer; ++i) {
        std::string name = "data/" + std::string(1, "0123456789abcdef"[t]) + "0/obj-" + std::to_string(t) + "-" +
                           std::to_string(i);
        b.Put(name, B(name));
        // Everyone also overwrites one shared object with a full, distinct value.
        b.Put("index/hot", Bytes(1000 + t, static_cast<uint8_t>('a' + t)));
      }
    });
  for (auto& t : ts) t.join();
  std::vector<std::string> names = this->Names("data/");
  ASSERT_EQ(names.size(), size_t(kThreads * kPer));
  for (const auto& n : names) EXPECT_EQ(b.Get(n), B(n));
  Bytes hot = b.Get("index/hot");
  ASSERT_GE(hot.size(), 1000u);
  ASSERT_LT(hot.size(), 1000u + kThreads);
  EXPECT_EQ(hot, Bytes(hot.size(), static_cast<uint8_t>('a' + (hot.size() - 1000))));  // one writer's, whole
  EXPECT_EQ(this->Names("index/"), std::vector<std::string>{"index/hot"});
}

TEST(StorageOpen, Urls) {
  EXPECT_EQ(Open("memory:")->Location(), "memory:");
  EXPECT_EQ(CodeOf([] { Open(""); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf([] { Open("s3:"); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf([] { Open("s3://host-only"); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf([] { Open("s3:bucket//double"); }), ErrorCode::kInvalidArgument);
}

TEST(StorageOpen, S3UrlForms) {
  unsetenv("BULWARK_S3_ENDPOINT");
  unsetenv("BULWARK_S3_PATH_STYLE");
  unsetenv("BULWARK_S3_SCHEME");
  setenv("BULWARK_S3_REGION", "eu-central-1", 1);
  auto aws = s3::ParseUrl("s3:my-bucket/backups/host1/");
  EXPECT_EQ(aws.bucket, "my-bucket");
  EXPECT_EQ(aws.prefix, "backups/host1");
  EXPECT_EQ(aws.endpoint, "");
  EXPECT_FALSE(aws.path_style) << "AWS: virtual-hosted addressing";
  EXPECT_EQ(aws.region, "eu-central-1");
  auto minio = s3::ParseUrl("s3://minio.internal:9000/bkt");
  EXPECT_EQ(minio.endpoint, "https://minio.internal:9000");
  EXPECT_EQ(minio.bucket, "bkt");
  EXPECT_EQ(minio.prefix, "");
  EXPECT_TRUE(minio.path_style);
  setenv("BULWARK_S3_SCHEME", "http", 1);
  setenv("BULWARK_S3_MAX_ATTEMPTS", "3", 1);
  auto local = s3::ParseUrl("s3://127.0.0.1:9000/b/p");
  EXPECT_EQ(local.endpoint, "http://127.0.0.1:9000");
  EXPECT_EQ(local.max_attempts, 3);
  EXPECT_EQ(local.stall_seconds, 60) << "default stall timeout";
  setenv("BULWARK_S3_MAX_ATTEMPTS", "0", 1);
  EXPECT_EQ(CodeOf([] { s3::ParseUrl("s3://127.0.0.1:9000/b/p"); }), ErrorCode::kInvalidArgument);
  unsetenv("BULWARK_S3_MAX_ATTEMPTS");
  setenv("BULWARK_S3_STALL_SECONDS", "2", 1);
  EXPECT_EQ(s3::ParseUrl("s3://127.0.0.1:9000/b/p").stall_seconds, 2);
  setenv("BULWARK_S3_STALL_SECONDS", "2s", 1);
  EXPECT_EQ(CodeOf([] { s3::ParseUrl("s3://127.0.0.1:9000/b/p"); }), ErrorCode::kInvalidArgument);
  unsetenv("BULWARK_S3_STALL_SECONDS");
  unsetenv("BULWARK_S3_SCHEME");
  unsetenv("BULWARK_S3_REGION");
}

// bulwark.yaml < environment < flags, field by field.
TEST(StorageOpen, S3SettingsLayers) {
  for (const char* v : {"BULWARK_S3_ENDPOINT", "BULWARK_S3_PATH_STYLE", "BULWARK_S3_SCHEME", "BULWARK_S3_TLS_VERIFY",
                        "BULWARK_S3_MAX_ATTEMPTS", "AWS_PROFILE"})
    unsetenv(v);
  setenv("BULWARK_S3_REGION", "env-region", 1);
  s3::S3Settings config;
  config.endpoint = "http://config:9000";
  config.region = "config-region";
  config.tls_verify = false;
  config.max_attempts = 5;
  auto o = s3::ParseUrl("s3:bkt/p", config);
  EXPECT_EQ(o.endpoint, "http://config:9000");
  EXPECT_TRUE(o.path_style) << "an endpoint implies path-style";
  EXPECT_EQ(o.region, "env-region") << "the environment overrides the file";
  EXPECT_FALSE(o.verify_tls);
  EXPECT_EQ(o.max_attempts, 5);
  setenv("BULWARK_S3_MAX_ATTEMPTS", "7", 1);
  s3::S3Settings flags;
  flags.region = "flag-region";
  flags.path_style = false;
  flags.tls_verify = true;
  o = s3::ParseUrl("s3:bkt/p", config, flags);
  EXPECT_EQ(o.endpoint, "http://config:9000");
  EXPECT_EQ(o.region, "flag-region");
  EXPECT_FALSE(o.path_style);
  EXPECT_TRUE(o.verify_tls);
  EXPECT_EQ(o.max_attempts, 7);
  flags.max_attempts = 2;
  EXPECT_EQ(s3::ParseUrl("s3:bkt/p", config, flags).max_attempts, 2);
  flags.endpoint = "minio:9000";
  EXPECT_EQ(CodeOf([&] { s3::ParseUrl("s3:bkt/p", config, flags); }), ErrorCode::kInvalidArgument);
  unsetenv("BULWARK_S3_MAX_ATTEMPTS");
  unsetenv("BULWARK_S3_REGION");
}

// ---------------------------------------------------------------- local only

// Every file under `root`, relative.
std::vector<std::string> AllFiles(const std::string& root) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (!e.is_directory()) out.push_back(fs::relative(e.path(), root).string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(LocalBackend, LayoutAndNoTempFilesLeft) {
  TempDir dir;
  std::string root = dir.path() + "/repo";
  auto b = NewLocalBackend(root + "///");
  EXPECT_EQ(b->Location(), root);  // trailing slashes dropped
  EXPECT_TRUE(b->capabilities().local);
  b->Create();
  for (const char* d : {"keys", "data", "index", "snapshots", "locks", "data/00", "data/ff"})
    EXPECT_TRUE(fs::is_directory(root + "/" + d)) << d;
  b->Put("config", B("c"));
  b->Put("data/3f/3fa9", B("pack"));
  b->Put("data/3f/3fa9", B("pack v2"));  // overwrite
  b->Put("keys/k", B("key"));
  b->Put("new/deeply/nested/obj", B("n"));  // parents are created
  EXPECT_EQ(AllFiles(root), (std::vector<std::string>{"config", "data/3f/3fa9", "keys/k", "new/deeply/nested/obj"}));
  std::ifstream f(root + "/data/3f/3fa9");
  std::string content((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "pack v2");
  // Objects are private to the owner.
  struct stat st;
  ASSERT_EQ(::stat((root + "/keys/k").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 077, 0u);
  // Names that could escape the root are refused.
  EXPECT_EQ(CodeOf([&] { b->Put("../escape", B("x")); }), ErrorCode::kInternal);
  EXPECT_EQ(CodeOf([&] { b->Get("/etc/passwd"); }), ErrorCode::kInternal);
  EXPECT_FALSE(fs::exists(dir.path() + "/escape"));
}

TEST(LocalBackend, ListIgnoresInterruptedTempFiles) {
  TempDir dir;
  auto b = NewLocalBackend(dir.path());
  b->Create();
  b->Put("index/real", B("r"));
  // What a crash between create and rename leaves behind.
  std::ofstream(dir.path() + "/index/.tmp-deadbeefdeadbeef") << "partial";
  EXPECT_EQ(b->List("index/").size(), 1u);
  EXPECT_EQ(b->List("index/")[0].name, "index/real");
}

TEST(LocalBackend, PutIntoReadOnlyDirectoryIsPermission) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions";
  TempDir dir;
  auto b = NewLocalBackend(dir.path());
  b->Create();
  ASSERT_EQ(::chmod((dir.path() + "/keys").c_str(), 0500), 0);
  EXPECT_EQ(CodeOf([&] { b->Put("keys/k", B("x")); }), ErrorCode::kPermission);
  ::chmod((dir.path() + "/keys").c_str(), 0700);
}

TEST(LocalBackend, FullDiskIsNoSpaceAndLeavesNothing) {
  TempDir dir;
  std::string mnt = dir.path() + "/small";
  fs::create_directory(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=1m") != 0)
    GTEST_SKIP() << "cannot mount a 1 MiB tmpfs here (needs root): " << std::strerror(errno);
  struct Unmount {
    std::string p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{mnt};

  auto b = NewLocalBackend(mnt);
  b->Create();
  b->Put("keys/small", B("fits"));
  Bytes big = crypto::RandomBytes(2 << 20);
  try {
    b->Put("data/ab/big", big);
    FAIL() << "a 2 MiB object fit on a 1 MiB file system";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNoSpace) << e.what();
    EXPECT_NE(std::string(e.what()).find("data/ab/big"), std::string::npos) << e.what();
  }
  // No partial object under its name, no temp file, the space is given back.
  EXPECT_FALSE(b->Stat("data/ab/big").has_value());
  EXPECT_EQ(AllFiles(mnt), std::vector<std::string>{"keys/small"});
  EXPECT_NO_THROW(b->Put("data/ab/fits", Bytes(200 << 10, 1)));
  EXPECT_EQ(b->Get("keys/small"), B("fits"));
}

}  // namespace
}  // namespace bulwark::storage
