// S3-compatible object storage backend (AWS S3, MinIO, GCS's XML API with
// HMAC keys). Objects live under `s3://bucket/prefix/<object name>`.
//
// Protocol: the S3 REST API over HTTP(S) with libcurl; requests are signed
// with AWS Signature Version 4 (sigv4.h); XML bodies are parsed with pugixml.
//   Put     PutObject (Content-MD5 always; Object Lock headers when
//           configured); objects larger than kMultipartThreshold go through
//           multipart upload (parts of kPartSize bytes). S3 makes a PUT visible
//           all at once: no partial object is ever listed. A retried
//           CompleteMultipartUpload whose first answer was lost (NoSuchUpload)
//           succeeds when the object is there with the right size.
//   Get*    GetObject, with a Range header for ranged reads.
//   Stat    HeadObject.
//   List    ListObjectsV2, paginated (continuation tokens, 1000 keys a page).
//   Remove  DeleteObject (a missing object is not an error).
//   ExtendRetention  PutObjectRetention (Content-MD5, as S3 requires).
// References: Amazon S3 API Reference (2006-03-01): PutObject, GetObject,
// HeadObject, ListObjectsV2, DeleteObject, CreateMultipartUpload, UploadPart,
// CompleteMultipartUpload, AbortMultipartUpload, PutObjectRetention; "Using
// S3 Object Lock".
//
// Retries: connection failures, timeouts, stalls (no byte for `stall_seconds`,
// default 60 s), truncated bodies (fewer bytes than Content-Length), HTTP
// 500/502/503/504, 429 and S3's SlowDown/RequestTimeout/InternalError are
// retried up to `max_attempts` times with exponential backoff and full jitter
// (100 ms base, 10 s cap). Other errors fail at once: 403 -> kPermission,
// 404 -> kNotFound, others kIo; messages name the bucket, key, HTTP status and
// S3 error code, never credentials.
//
// Thread-safety: every method may be called from many threads at once (each
// thread reuses its own libcurl handle and connections).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "bulwark/storage/backend.h"
#include "bulwark/storage/s3/credentials.h"
#include "bulwark/storage/s3/settings.h"

namespace bulwark::storage::s3 {

struct S3Options {
  std::string endpoint;  // "http://127.0.0.1:9000", "https://storage.googleapis.com"; empty = AWS for `region`
  std::string region;    // empty = ResolveRegion(profile)
  std::string bucket;
  std::string prefix;    // without leading/trailing '/', may be empty
  bool path_style = true;  // "https://host/bucket/key" (MinIO, GCS) vs "https://bucket.host/key" (AWS default)
  bool verify_tls = true;
  std::string profile;     // AWS profile for credentials/region; empty = AWS_PROFILE or "default"
  int max_attempts = 8;
  // A transfer slower than 1 byte/s for this long (waiting for the response
  // included) is abandoned and retried: seconds, 1..3600. curl averages the
  // speed over the last 5 s, so a stall after some bytes is noticed up to
  // ~5 s later.
  int stall_seconds = 60;
};

// Request counts and bytes, by operation (the cost signal in --json output).
struct RequestStats {
  std::atomic<uint64_t> put{0}, get{0}, head{0}, list{0}, del{0}, post{0};
  std::atomic<uint64_t> bytes_up{0}, bytes_down{0}, retries{0};
};

// Parses "s3:BUCKET[/PREFIX]" (AWS, virtual-hosted addressing, region from
// the environment/profile) and "s3://HOST[:PORT]/BUCKET[/PREFIX]" (an
// explicit endpoint, path-style, https), then applies, each overriding the
// one before: `config` (bulwark.yaml), the environment (BULWARK_S3_ENDPOINT,
// BULWARK_S3_REGION, BULWARK_S3_PATH_STYLE=true|false,
// BULWARK_S3_SCHEME=http|https, BULWARK_S3_TLS_VERIFY=true|false,
// BULWARK_S3_MAX_ATTEMPTS=1..100, BULWARK_S3_STALL_SECONDS=1..3600, AWS_PROFILE),
// and `flags` (docs/S3.md). An endpoint implies path-style unless path_style
// is given at the same or a later level. Throws kInvalidArgument naming the
// URL or the bad value.
S3Options ParseUrl(const std::string& url, const S3Settings& config = {}, const S3Settings& flags = {});

constexpr uint64_t kMultipartThreshold = 64ull << 20;  // bytes
constexpr uint64_t kPartSize = 16ull << 20;            // bytes

// Opens the backend; credentials are loaded now (LoadCredentials). Does no
// network I/O until the first call.
std::unique_ptr<Backend> NewS3Backend(const S3Options& options, Credentials credentials);
// Requests made by every S3 backend of this process (the CLI prints them
// with --json). Thread-safe (atomic counters).
RequestStats& ProcessStats();

}  // namespace bulwark::storage::s3
