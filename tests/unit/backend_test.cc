// The backend conformance suite (backend_conformance.h) on the in-memory
// and local backends, plus local-only checks (atomic writes leave no temp
// files, full disks, layout on disk) and URL parsing.
#include "bulwark/storage/backend.h"
#include "bulwark/storage/s3/s3.h"

#include <gtest/gtest.h>

#include "backend_conformance.h"
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

Bytes B(std::string_view s) { return ConformanceBytes(s); }

struct MemoryFactory {
  std::string why;
  std::unique_ptr<Backend> Make() { return NewMemoryBackend(); }
};

struct LocalFactory {
  std::string why;
  TempDir dir;
  // A not-yet-existing subdirectory: Create() must make it.
  std::unique_ptr<Backend> Make() { return NewLocalBackend(dir.path() + "/repo"); }
};

INSTANTIATE_TYPED_TEST_SUITE_P(memory, BackendConformance, ::testing::Types<MemoryFactory>);
INSTANTIATE_TYPED_TEST_SUITE_P(local, BackendConformance, ::testing::Types<LocalFactory>);

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
