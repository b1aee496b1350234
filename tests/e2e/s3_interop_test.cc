// Interoperability: a repository bulwark wrote to S3 is plain S3 objects
// that a real, independent client lists and fetches: boto3 (AWS's Python
// SDK, Debian's python3-boto3, installed by `scripts/install-deps --test`)
// sees exactly the objects bulwark's own backend sees, with the same sizes
// and bytes, and ETags that are the MD5 of the content (single-part PUTs
// with Content-MD5).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bulwark/crypto/crypto.h"
#include "bulwark/storage/s3/s3.h"
#include "harness.h"
#include "s3_server.h"

namespace bulwark::testing {
namespace {

namespace fs = std::filesystem;

// Lists bucket/prefix with ListObjectsV2 pages of 7 keys (so pagination is
// exercised) and fetches every object; prints {"key": [size, etag, md5, sha256]}.
constexpr const char* kClient = R"PY(
import hashlib, json, os, sys
import boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name=os.environ["AWS_REGION"],
                  config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
bucket, prefix = sys.argv[1], sys.argv[2]
out = {}
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": 7}):
    for o in page.get("Contents", []):
        body = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
        out[o["Key"]] = [len(body), o["ETag"].strip('"'), hashlib.md5(body).hexdigest(), hashlib.sha256(body).hexdigest()]
print(json.dumps(out))
)PY";

bool HaveBoto3() { return std::system("python3 -c 'import boto3' >/dev/null 2>&1") == 0; }

TEST(S3Interop, Boto3ListsAndFetchesWhatBulwarkWrote) {
  if (!HaveBoto3()) {
    if (std::getenv("CI")) FAIL() << "python3-boto3 is missing (scripts/install-deps --test installs it)";
    GTEST_SKIP() << "python3-boto3 is not installed (scripts/install-deps --test)";
  }
  std::string why;
  auto srv = S3Server::Start(&why);
  if (!srv) GTEST_SKIP() << why;
  ASSERT_EQ(srv->CreateBucket("interop").status, 200);
  Scratch s;
  std::vector<std::string> env = S3Env(s, *srv);
  std::string url = "s3://" + HostPort(srv->endpoint()) + "/interop/team/repo";
  auto bw = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {BulwarkBin(), "--repo", url});
    return bulwark::testing::Run(args, env);
  };
  ASSERT_EQ(bw({"init", "--kdf-ops", "1", "--kdf-memory", "8MiB"}).exit_code, 0);
  fs::create_directories(s.Path("src/sub"));
  WriteFile(s.Path("src/a.bin"), RandomBytes(5 << 20, 3));
  WriteFile(s.Path("src/sub/b.txt"), "interop\n");
  for (int i = 0; i < 12; ++i) WriteFile(s.Path("src/sub/f" + std::to_string(i)), RandomBytes(4096, 100 + i));
  RunResult b = bw({"backup", s.Path("src")});
  ASSERT_EQ(b.exit_code, 0) << b.err;

  WriteFile(s.Path("client.py"), kClient);
  std::vector<std::string> client_env = env;
  client_env.push_back("ENDPOINT=" + srv->endpoint());
  RunResult c = bulwark::testing::Run({"python3", s.Path("client.py"), "interop", "team/repo/"}, client_env);
  ASSERT_EQ(c.exit_code, 0) << c.err;
  auto seen = nlohmann::json::parse(c.out, nullptr, false);
  ASSERT_TRUE(seen.is_object()) << c.out;

  storage::s3::S3Options o;
  o.endpoint = srv->endpoint();
  o.region = srv->region();
  o.bucket = "interop";
  o.prefix = "team/repo";
  auto be = storage::s3::NewS3Backend(o, {srv->access_key(), srv->secret_key(), "", "test"});
  auto ours = be->List("");
  ASSERT_GT(ours.size(), 4u) << "config, key, pack(s), index, snapshot";
  EXPECT_EQ(seen.size(), ours.size()) << c.out;
  for (const auto& obj : ours) {
    std::string key = "team/repo/" + obj.name;
    ASSERT_TRUE(seen.contains(key)) << key << " not listed by boto3";
    const auto& v = seen[key];
    EXPECT_EQ(v[0].get<uint64_t>(), obj.size) << key;
    EXPECT_EQ(v[3].get<std::string>(), crypto::Sha256(be->Get(obj.name)).Hex()) << key << ": boto3 fetched other bytes";
    EXPECT_EQ(v[1].get<std::string>(), v[2].get<std::string>()) << key << ": ETag is the content's MD5";
  }
  // And the repository is still whole for bulwark.
  RunResult chk = bw({"check", "--read-data"});
  EXPECT_EQ(chk.exit_code, 0) << chk.out << chk.err;
}

}  // namespace
}  // namespace bulwark::testing
