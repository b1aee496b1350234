// S3 connection settings that a repository URL does not carry, as given in
// one place (a repository's `s3:` block in bulwark.yaml, or the global
// --s3-* flags). Unset fields leave the value to the next source. Order,
// lowest first: the URL's defaults, bulwark.yaml, the environment
// (BULWARK_S3_*, AWS_PROFILE), the flags (s3::ParseUrl; docs/S3.md).
// Plain data, no secrets (credentials never come from here).
#pragma once

#include <optional>
#include <string>

namespace bulwark::storage::s3 {

struct S3Settings {
  std::optional<std::string> endpoint;  // "https://minio.example:9000"; implies path-style unless path_style is set
  std::optional<std::string> region;    // signing region, e.g. "eu-central-1", "auto" (GCS)
  std::optional<std::string> profile;   // AWS profile for credentials and region
  std::optional<bool> path_style;       // "https://host/bucket/key" (true) or "https://bucket.host/key"
  std::optional<bool> tls_verify;       // verify the server's certificate
  std::optional<int> max_attempts;      // attempts per request, 1..100
  bool operator==(const S3Settings&) const = default;
};

}  // namespace bulwark::storage::s3
