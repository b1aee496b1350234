// Smoke test of the S3 test server (tests/e2e/s3_server.h): what the S3
// backend's tests rely on works through SigV4-signed curl requests, and what
// the server cannot do is refused rather than faked. docs/S3-TEST-SERVER.md
// records the result as a feature matrix.
#include "s3_server.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <ctime>
#include <iostream>

#include "harness.h"

namespace bulwark::testing {
namespace {

constexpr size_t kMiB = 1024 * 1024;

class S3ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    s3_ = S3Server::Start(&why);
    if (!s3_) GTEST_SKIP() << why;
  }
  void TearDown() override {
    if (HasFailure() && s3_) std::cerr << "server log (" << s3_->dir() << "/server.log):\n" << s3_->Log();
  }
  // The error code of an S3 error response ("" if none).
  static std::string Code(const S3Response& r) {
    auto c = r.Xml("Code");
    return c.empty() ? "" : c[0];
  }
  S3Response Put(const std::string& bucket, const std::string& key, const std::string& data,
                 std::vector<std::string> headers = {}) {
    headers.push_back("Content-MD5: " + Md5Base64(data));
    return s3_->Request("PUT", "/" + bucket + "/" + UriEncode(key), headers, data);
  }
  std::unique_ptr<S3Server> s3_;
};

TEST_F(S3ServerTest, AnswersOnlyCorrectlySignedRequests) {
  EXPECT_NE(s3_->endpoint().rfind("http://127.0.0.1:", 0), std::string::npos) << s3_->endpoint();
  S3Response ok = s3_->Request("GET", "/");
  ASSERT_EQ(ok.status, 200) << ok.Describe();
  EXPECT_NE(ok.body.find("<ListAllMyBucketsResult"), std::string::npos) << ok.body;

  S3Response anon = s3_->Unsigned("GET", "/");
  EXPECT_EQ(anon.status, 403) << anon.Describe();
  EXPECT_EQ(Code(anon), "AccessDenied");

  S3Response wrong_secret = s3_->RequestAs(s3_->access_key(), s3_->secret_key() + "x", "GET", "/");
  EXPECT_EQ(wrong_secret.status, 403) << wrong_secret.Describe();
  EXPECT_EQ(Code(wrong_secret), "SignatureDoesNotMatch");
  // Like S3, the refusal shows the canonical request the server computed.
  ASSERT_EQ(wrong_secret.Xml("CanonicalRequest").size(), 1u) << wrong_secret.body;

  S3Response wrong_key = s3_->RequestAs("AKIAIOSFODNN7EXAMPLE", s3_->secret_key(), "GET", "/");
  EXPECT_EQ(wrong_key.status, 403) << wrong_key.Describe();
  EXPECT_EQ(Code(wrong_key), "InvalidAccessKeyId");

  ASSERT_EQ(s3_->CreateBucket("sig").status, 200);
  // The payload hash is part of the signature and is checked against the body.
  S3Response bad_hash = s3_->Request("PUT", "/sig/k", {"x-amz-content-sha256: " + Sha256Hex("other")}, "data");
  EXPECT_EQ(bad_hash.status, 400) << bad_hash.Describe();
  EXPECT_EQ(Code(bad_hash), "XAmzContentSHA256Mismatch");
  S3Response unsigned_payload = s3_->Request("PUT", "/sig/k", {"x-amz-content-sha256: UNSIGNED-PAYLOAD"}, "data");
  EXPECT_EQ(unsigned_payload.status, 200) << unsigned_payload.Describe();
  S3Response bad_md5 = s3_->Request("PUT", "/sig/k", {"Content-MD5: " + Md5Base64("other")}, "data");
  EXPECT_EQ(bad_md5.status, 400) << bad_md5.Describe();
  EXPECT_EQ(Code(bad_md5), "BadDigest");
}

TEST_F(S3ServerTest, PutGetRangeHeadDelete) {
  ASSERT_EQ(s3_->CreateBucket("objects").status, 200);
  const std::string data = RandomBytes(kMiB + 17, 1);
  const std::string key = "dir/a key+with=odd~chars";
  S3Response put = Put("objects", key, data);
  ASSERT_EQ(put.status, 200) << put.Describe();
  const std::string path = "/objects/" + UriEncode(key);

  S3Response get = s3_->Request("GET", path);
  ASSERT_EQ(get.status, 200) << get.Describe();
  EXPECT_TRUE(get.body == data) << "GET returned " << get.body.size() << " bytes";
  EXPECT_EQ(get.Header("etag"), put.Header("etag"));

  S3Response range = s3_->Request("GET", path, {"Range: bytes=1000-1999"});
  ASSERT_EQ(range.status, 206) << range.Describe();
  EXPECT_TRUE(range.body == data.substr(1000, 1000));
  EXPECT_EQ(range.Header("content-range"), "bytes 1000-1999/" + std::to_string(data.size()));
  S3Response tail = s3_->Request("GET", path, {"Range: bytes=-10"});
  ASSERT_EQ(tail.status, 206) << tail.Describe();
  EXPECT_TRUE(tail.body == data.substr(data.size() - 10));

  S3Response head = s3_->Request("HEAD", path);
  ASSERT_EQ(head.status, 200) << head.Describe();
  EXPECT_EQ(head.Header("content-length"), std::to_string(data.size()));
  EXPECT_EQ(head.Header("etag"), put.Header("etag"));
  EXPECT_TRUE(head.body.empty());

  S3Response del = s3_->Request("DELETE", path);
  EXPECT_EQ(del.status, 204) << del.Describe();
  S3Response gone = s3_->Request("GET", path);
  EXPECT_EQ(gone.status, 404) << gone.Describe();
  EXPECT_EQ(Code(gone), "NoSuchKey");
  EXPECT_EQ(s3_->Request("HEAD", path).status, 404);
  S3Response no_bucket = s3_->Request("GET", "/no-such-bucket/k");
  EXPECT_EQ(no_bucket.status, 404) << no_bucket.Describe();
  EXPECT_EQ(Code(no_bucket), "NoSuchBucket");
}

TEST_F(S3ServerTest, ListObjectsV2PagesWithContinuationTokens) {
  ASSERT_EQ(s3_->CreateBucket("list").status, 200);
  const std::vector<std::string> keys{"data/00", "data/01", "data/02", "index/00", "keys/k 1"};
  for (const auto& k : keys) ASSERT_EQ(Put("list", k, "v" + k).status, 200);

  std::vector<std::string> seen;
  std::string token;
  for (int page = 0; page < 10; ++page) {
    std::string q = "/list?";
    if (!token.empty()) q += "continuation-token=" + UriEncode(token) + "&";
    q += "list-type=2&max-keys=1";
    S3Response r = s3_->Request("GET", q);
    ASSERT_EQ(r.status, 200) << r.Describe();
    auto page_keys = r.Xml("Key");
    ASSERT_EQ(page_keys.size(), 1u) << r.body;
    seen.push_back(page_keys[0]);
    auto truncated = r.Xml("IsTruncated");
    ASSERT_EQ(truncated.size(), 1u) << r.body;
    if (truncated[0] == "false") break;
    auto next = r.Xml("NextContinuationToken");
    ASSERT_EQ(next.size(), 1u) << r.body;
    token = next[0];
  }
  EXPECT_EQ(seen, keys);

  S3Response prefixed = s3_->Request("GET", "/list?list-type=2&prefix=data%2F");
  ASSERT_EQ(prefixed.status, 200) << prefixed.Describe();
  EXPECT_EQ(prefixed.Xml("Key"), (std::vector<std::string>{"data/00", "data/01", "data/02"}));
}

// Starts a multipart upload of /multipart/KEY and uploads `parts` (numbered
// from 1); returns the upload id (URI-encoded) and each part's ETag.
struct Upload {
  std::string id;
  std::vector<std::string> etags;
};

// Starts a multipart upload of `parts` to multipart/`key`, signed with `as`
// (the server's own key when empty).
Upload StartUpload(const S3Server& s3, const std::string& key, const std::vector<std::string>& parts,
                   const S3Key& as = {}) {
  auto request = [&](const std::string& method, const std::string& path, const std::vector<std::string>& headers = {},
                     const std::string& body = "") {
    return as.access_key.empty() ? s3.Request(method, path, headers, body)
                                 : s3.RequestAs(as.access_key, as.secret_key, method, path, headers, body);
  };
  Upload u;
  S3Response init = request("POST", "/multipart/" + key + "?uploads=");
  EXPECT_EQ(init.status, 200) << init.Describe();
  auto ids = init.Xml("UploadId");
  if (ids.size() != 1) {
    ADD_FAILURE() << init.body;
    return u;
  }
  u.id = UriEncode(ids[0]);
  for (size_t i = 0; i < parts.size(); ++i) {
    S3Response up =
        request("PUT", "/multipart/" + key + "?partNumber=" + std::to_string(i + 1) + "&uploadId=" + u.id,
                {"Content-MD5: " + Md5Base64(parts[i])}, parts[i]);
    EXPECT_EQ(up.status, 200) << up.Describe();
    EXPECT_FALSE(up.Header("etag").empty()) << up.Describe();
    u.etags.push_back(up.Header("etag"));
  }
  return u;
}

std::string CompleteXml(const std::vector<std::pair<int, std::string>>& parts) {
  std::string xml = "<CompleteMultipartUpload>";
  for (const auto& [n, etag] : parts)
    xml += "<Part><PartNumber>" + std::to_string(n) + "</PartNumber><ETag>" + etag + "</ETag></Part>";
  return xml + "</CompleteMultipartUpload>";
}

TEST_F(S3ServerTest, MultipartUpload) {
  ASSERT_EQ(s3_->CreateBucket("multipart").status, 200);
  const std::string part1 = RandomBytes(5 * kMiB, 2), part2 = RandomBytes(5 * kMiB + 123, 3);
  Upload u = StartUpload(*s3_, "big", {part1, part2});
  ASSERT_EQ(u.etags.size(), 2u);
  S3Response done = s3_->Request("POST", "/multipart/big?uploadId=" + u.id, {"Content-Type: application/xml"},
                                 CompleteXml({{1, u.etags[0]}, {2, u.etags[1]}}));
  ASSERT_EQ(done.status, 200) << done.Describe();
  EXPECT_EQ(done.Xml("Key"), std::vector<std::string>{"big"}) << done.body;

  S3Response get = s3_->Request("GET", "/multipart/big");
  ASSERT_EQ(get.status, 200) << get.Describe();
  EXPECT_EQ(get.body.size(), part1.size() + part2.size());
  EXPECT_TRUE(get.body == part1 + part2);
  S3Response range = s3_->Request("GET", "/multipart/big", {"Range: bytes=5242870-5242889"});
  ASSERT_EQ(range.status, 206) << range.Describe();
  EXPECT_TRUE(range.body == (part1 + part2).substr(5242870, 20));
}

TEST_F(S3ServerTest, MultipartUploadChecksPartsAndAborts) {
  ASSERT_EQ(s3_->CreateBucket("multipart").status, 200);
  const std::string small = RandomBytes(kMiB, 4), big = RandomBytes(5 * kMiB, 5);
  Upload u = StartUpload(*s3_, "k", {small, big});
  ASSERT_EQ(u.etags.size(), 2u);
  auto complete = [&](const std::vector<std::pair<int, std::string>>& parts) {
    return s3_->Request("POST", "/multipart/k?uploadId=" + u.id, {"Content-Type: application/xml"}, CompleteXml(parts));
  };
  S3Response too_small = complete({{1, u.etags[0]}, {2, u.etags[1]}});
  EXPECT_EQ(too_small.status, 400) << too_small.Describe();
  EXPECT_EQ(Code(too_small), "EntityTooSmall");
  S3Response wrong_etag = complete({{1, u.etags[1]}, {2, u.etags[1]}});
  EXPECT_EQ(wrong_etag.status, 400) << wrong_etag.Describe();
  EXPECT_EQ(Code(wrong_etag), "InvalidPart");
  S3Response order = complete({{2, u.etags[1]}, {1, u.etags[0]}});
  EXPECT_EQ(order.status, 400) << order.Describe();
  EXPECT_EQ(Code(order), "InvalidPartOrder");
  // A small last part is fine.
  S3Response ok = complete({{2, u.etags[1]}});
  EXPECT_EQ(ok.status, 200) << ok.Describe();
  // A completed upload is gone.
  S3Response again = complete({{2, u.etags[1]}});
  EXPECT_EQ(again.status, 404) << again.Describe();
  EXPECT_EQ(Code(again), "NoSuchUpload");

  Upload aborted = StartUpload(*s3_, "aborted", {big});
  ASSERT_EQ(aborted.etags.size(), 1u);
  S3Response abort = s3_->Request("DELETE", "/multipart/aborted?uploadId=" + aborted.id);
  EXPECT_EQ(abort.status, 204) << abort.Describe();
  S3Response after = s3_->Request("POST", "/multipart/aborted?uploadId=" + aborted.id,
                                  {"Content-Type: application/xml"}, CompleteXml({{1, aborted.etags[0]}}));
  EXPECT_EQ(after.status, 404) << after.Describe();
  EXPECT_EQ(Code(after), "NoSuchUpload");
  EXPECT_EQ(s3_->Request("HEAD", "/multipart/aborted").status, 404);
}

// Keys made by add-key get what their role allows, as IAM would: read-only
// reads and lists; append-only also writes, multipart included, and deletes
// nothing (not even an abort); IAM actions may be limited to resources. A
// refusal is 403 AccessDenied naming the action, checked before the key is
// looked at.
TEST_F(S3ServerTest, KeysWithRolesAreRefusedWhatTheyMayNotDo) {
  ASSERT_EQ(s3_->CreateBucket("multipart").status, 200);
  ASSERT_EQ(Put("multipart", "existing", "data").status, 200);
  S3Key ro = s3_->AddKey("read-only"), ao = s3_->AddKey("append-only");
  S3Key locks = s3_->AddKey("s3:GetObject,s3:DeleteObject@multipart/locks/*");
  ASSERT_FALSE(ro.access_key.empty() || ao.access_key.empty() || locks.access_key.empty());
  EXPECT_EQ(ro.role, "read-only");
  auto as = [&](const S3Key& k, const std::string& method, const std::string& path, const std::string& body = "") {
    return s3_->RequestAs(k.access_key, k.secret_key, method, path, {}, body);
  };
  auto denied = [&](const S3Response& r, const std::string& action) {
    EXPECT_EQ(r.status, 403) << action << ": " << r.Describe();
    EXPECT_EQ(Code(r), "AccessDenied") << r.body;
    EXPECT_NE(r.body.find("not authorized to perform: " + action), std::string::npos) << r.body;
  };

  EXPECT_EQ(as(ro, "GET", "/multipart/existing").body, "data");
  EXPECT_EQ(as(ro, "HEAD", "/multipart/existing").status, 200);
  EXPECT_EQ(as(ro, "GET", "/multipart?list-type=2").status, 200);
  denied(as(ro, "PUT", "/multipart/new", "x"), "s3:PutObject");
  denied(as(ro, "POST", "/multipart/new?uploads="), "s3:PutObject");
  denied(as(ro, "DELETE", "/multipart/existing"), "s3:DeleteObject");
  denied(as(ro, "DELETE", "/multipart/missing"), "s3:DeleteObject");
  EXPECT_EQ(as(ro, "HEAD", "/multipart/new").status, 404);

  EXPECT_EQ(as(ao, "PUT", "/multipart/new", "x").status, 200);
  EXPECT_EQ(as(ao, "PUT", "/multipart/new", "overwritten").status, 200) << "PutObject overwrites, as on S3";
  const std::string part1 = RandomBytes(5 * kMiB, 6);
  Upload u = StartUpload(*s3_, "big", {part1, "tail"}, ao);
  ASSERT_EQ(u.etags.size(), 2u);
  S3Response done = s3_->RequestAs(ao.access_key, ao.secret_key, "POST", "/multipart/big?uploadId=" + u.id,
                                   {"Content-Type: application/xml"}, CompleteXml({{1, u.etags[0]}, {2, u.etags[1]}}));
  EXPECT_EQ(done.status, 200) << done.Describe();
  EXPECT_TRUE(as(ao, "GET", "/multipart/big").body == part1 + "tail");
  denied(as(ao, "DELETE", "/multipart/new"), "s3:DeleteObject");
  Upload v = StartUpload(*s3_, "aborted", {"x"}, ao);
  denied(as(ao, "DELETE", "/multipart/aborted?uploadId=" + v.id), "s3:AbortMultipartUpload");
  denied(as(ao, "POST", "/multipart?delete=", "<Delete><Object><Key>new</Key></Object></Delete>"), "s3:DeleteObject");
  denied(as(ao, "PUT", "/another-bucket"), "s3:CreateBucket");

  EXPECT_EQ(as(locks, "DELETE", "/multipart/locks/a").status, 204);
  denied(as(locks, "DELETE", "/multipart/data/a"), "s3:DeleteObject");
  denied(as(locks, "GET", "/multipart?list-type=2"), "s3:ListBucket");

  EXPECT_EQ(s3_->Request("GET", "/multipart/existing").body, "data");
  EXPECT_EQ(s3_->Request("GET", "/multipart/new").body, "overwritten");
  EXPECT_EQ(s3_->Request("DELETE", "/multipart/new").status, 204) << "the main key may do everything";
  RunResult bad = bulwark::testing::Run({std::string(BULWARK_SOURCE_DIR) + "/scripts/s3-server", "add-key", s3_->dir(), "admin"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("role must be"), std::string::npos) << bad.err;
}

// Object Lock: s3rver refuses it outright (never a bucket that only looks
// locked); radosgw (--object-lock) keeps a GOVERNANCE-locked version from
// deletion and reads its retention back.
TEST_F(S3ServerTest, S3rverRefusesObjectLock) {
  S3Response bucket = s3_->CreateBucket("locked", /*object_lock=*/true);
  EXPECT_EQ(bucket.status, 501) << bucket.Describe();
  EXPECT_EQ(Code(bucket), "NotImplemented");
  ASSERT_EQ(s3_->CreateBucket("plain").status, 200);
  S3Response put = Put("plain", "k", "data", {"x-amz-object-lock-mode: GOVERNANCE"});
  EXPECT_EQ(put.status, 501) << put.Describe();
  EXPECT_EQ(s3_->Request("GET", "/plain/k?retention=").status, 501);
  EXPECT_EQ(s3_->Request("GET", "/plain?versioning=").status, 501);
}

TEST(S3ServerObjectLockTest, GovernanceLockedVersionCannotBeDeleted) {
  std::string why;
  auto s3 = S3Server::Start(&why, /*object_lock=*/true);
  if (!s3) GTEST_SKIP() << why;
  S3Response bucket = s3->CreateBucket("locked", /*object_lock=*/true);
  ASSERT_EQ(bucket.status, 200) << bucket.Describe();
  S3Response versioning = s3->Request("GET", "/locked?versioning=");
  ASSERT_EQ(versioning.status, 200) << versioning.Describe();
  EXPECT_EQ(versioning.Xml("Status"), std::vector<std::string>{"Enabled"}) << versioning.body;

  std::time_t until = std::time(nullptr) + 24 * 3600;
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&until));
  const std::string data = "locked data";
  S3Response put = s3->Request("PUT", "/locked/pack",
                               {"Content-MD5: " + Md5Base64(data), "x-amz-object-lock-mode: GOVERNANCE",
                                std::string("x-amz-object-lock-retain-until-date: ") + date},
                               data);
  ASSERT_EQ(put.status, 200) << put.Describe();
  const std::string version = put.Header("x-amz-version-id");
  ASSERT_FALSE(version.empty()) << put.Describe();

  S3Response retention = s3->Request("GET", "/locked/pack?retention=&versionId=" + UriEncode(version));
  ASSERT_EQ(retention.status, 200) << retention.Describe();
  EXPECT_EQ(retention.Xml("Mode"), std::vector<std::string>{"GOVERNANCE"}) << retention.body;

  S3Response del = s3->Request("DELETE", "/locked/pack?versionId=" + UriEncode(version));
  EXPECT_EQ(del.status, 403) << del.Describe();
  EXPECT_EQ(s3->Request("GET", "/locked/pack?versionId=" + UriEncode(version)).body, data);
  // A plain DELETE only adds a delete marker; the locked version stays.
  EXPECT_EQ(s3->Request("DELETE", "/locked/pack").status, 204);
  EXPECT_EQ(s3->Request("GET", "/locked/pack?versionId=" + UriEncode(version)).body, data);
  // GOVERNANCE yields to x-amz-bypass-governance-retention.
  S3Response bypass = s3->Request("DELETE", "/locked/pack?versionId=" + UriEncode(version),
                                  {"x-amz-bypass-governance-retention: true"});
  EXPECT_EQ(bypass.status, 204) << bypass.Describe();
  // And SigV4 is checked here too.
  EXPECT_EQ(s3->RequestAs(s3->access_key(), s3->secret_key() + "x", "GET", "/").status, 403);
}

// Each server is its own: a second one gets another port and other keys, and
// the first one's keys are refused there.
TEST_F(S3ServerTest, ServersAreIndependent) {
  std::string why;
  auto other = S3Server::Start(&why);
  ASSERT_TRUE(other) << why;
  EXPECT_NE(other->endpoint(), s3_->endpoint());
  EXPECT_NE(other->access_key(), s3_->access_key());
  EXPECT_EQ(other->RequestAs(s3_->access_key(), s3_->secret_key(), "GET", "/").status, 403);
  const pid_t pid = std::stoi(ReadFileOrDie(other->dir() + "/pid"));
  const std::string endpoint = other->endpoint();
  ASSERT_EQ(kill(pid, 0), 0);
  other.reset();  // stops it, waits for it to exit and reaps it
  EXPECT_NE(kill(pid, 0), 0) << "server " << pid << " still there";
  EXPECT_EQ(testing::Run({"curl", "-sS", "--max-time", "5", endpoint}).exit_code, 7) << "connection not refused";
  EXPECT_EQ(s3_->Request("GET", "/").status, 200);
}

}  // namespace
}  // namespace bulwark::testing
