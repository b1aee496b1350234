// A real S3-compatible server for end-to-end tests: `scripts/s3-server start`
// in a temporary directory (s3rver behind a SigV4-verifying front; see
// docs/S3-TEST-SERVER.md), stopped by PID when the S3Server is destroyed. Each
// S3Server has its own port, data directory and freshly made access key.
//
//   std::string why;
//   auto s3 = S3Server::Start(&why);
//   if (!s3) GTEST_SKIP() << why;   // not installable here (a failure in CI)
//   ASSERT_EQ(s3->CreateBucket("b").status, 200);
//
// Requests go through curl --aws-sigv4 (Request below). curl 7.88 signs the
// path and query exactly as written, so write them the way SigV4 canonicalizes
// them: query parameters sorted by name, each with "=" ("?uploads="), names,
// values and path segments encoded with UriEncode.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace bulwark::testing {

class Scratch;

struct S3Response {
  int status = 0;                              // HTTP status; 0 if curl got no response
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string Header(const std::string& lower_name) const;  // "" if absent
  // The text of every <tag>...</tag> in body, in order.
  std::vector<std::string> Xml(const std::string& tag) const;
  std::string Describe() const;  // status, headers and body, for failure messages
};

class S3Server {
 public:
  // Installs (if needed) and starts a server. On failure returns null and
  // sets *why; a server that cannot be installed (no npm registry) is a
  // skip, except where CI is set in the environment: there it is also a
  // test failure (ADD_FAILURE), as is every other start failure.
  // With `object_lock`, the server is Ceph's radosgw (versioning and Object
  // Lock; ~13 s to start) instead of s3rver (~0.4 s).
  static std::unique_ptr<S3Server> Start(std::string* why, bool object_lock = false);
  ~S3Server();
  S3Server(const S3Server&) = delete;
  S3Server& operator=(const S3Server&) = delete;

  const std::string& endpoint() const { return endpoint_; }  // http://127.0.0.1:PORT
  const std::string& access_key() const { return access_key_; }
  const std::string& secret_key() const { return secret_key_; }
  const std::string& region() const { return region_; }  // us-east-1
  const std::string& dir() const { return dir_; }        // the server's temp dir
  std::string Log() const;                               // DIR/server.log

  // One request signed with SigV4 by curl: `path_and_query` is "/bucket",
  // "/bucket/key?partNumber=1&uploadId=..." (canonical form, see above);
  // `headers` are "Name: value"; x-amz-content-sha256 is set to the body's
  // SHA-256 unless given.
  S3Response Request(const std::string& method, const std::string& path_and_query,
                     const std::vector<std::string>& headers = {}, const std::string& body = "") const;
  // Like Request, signed with the given keys instead of the server's.
  S3Response RequestAs(const std::string& access_key, const std::string& secret_key, const std::string& method,
                       const std::string& path_and_query, const std::vector<std::string>& headers = {},
                       const std::string& body = "") const;
  // An unsigned request (plain curl).
  S3Response Unsigned(const std::string& method, const std::string& path_and_query) const;

  // PUT /name, with x-amz-bucket-object-lock-enabled: true if `object_lock`.
  // A server without Object Lock answers 501 NotImplemented to the latter.
  S3Response CreateBucket(const std::string& name, bool object_lock = false) const;

 private:
  S3Server() = default;
  S3Response Curl(std::vector<std::string> args, const std::string& body) const;

  std::string dir_, endpoint_, access_key_, secret_key_, region_;
  int pid_ = 0;
  bool started_ = false;
};

// "http://127.0.0.1:PORT" -> "127.0.0.1:PORT" (for s3://HOST:PORT/BUCKET/PREFIX URLs).
std::string HostPort(const std::string& endpoint);
// The environment for bulwark against `srv` (plain HTTP): the scratch's
// password and cache, the server's keys (`secret` instead of its secret if
// given) and region, and no AWS credentials or config files of the user.
std::vector<std::string> S3Env(const Scratch& s, const S3Server& srv, const std::string& secret = "");

// SigV4's URI encoding: everything but A-Z a-z 0-9 - _ . ~ as %XX.
std::string UriEncode(const std::string& s);
std::string Sha256Hex(const std::string& data);
std::string Md5Base64(const std::string& data);  // for Content-MD5

}  // namespace bulwark::testing
