// AWS Signature Version 4 (header-based, "AWS4-HMAC-SHA256") for the S3
// backend. Sources: AWS Signature Version 4 in the IAM User Guide ("Create a
// signed AWS API request"), the S3 API Reference "Signature Calculations for
// the Authorization Header: Transferring Payload in a Single Chunk", and
// AWS's published SigV4 test suite (tests/unit/sigv4_test.cc reproduces both).
//
//   CanonicalRequest = Method \n CanonicalURI \n CanonicalQuery \n
//                      CanonicalHeaders \n SignedHeaders \n PayloadHash
//   StringToSign     = "AWS4-HMAC-SHA256" \n AmzDate \n Scope \n hex(SHA256(CanonicalRequest))
//   Scope            = YYYYMMDD/region/service/aws4_request
//   SigningKey       = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, YYYYMMDD), region), service), "aws4_request")
//   Signature        = hex(HMAC(SigningKey, StringToSign))
//
// Path handling differs between S3 and the other services (the
// `double_encode_path` flag):
//   - S3: the canonical URI is the path URI-encoded once ('/' kept), exactly
//     the bytes sent on the wire, and NOT normalized: "a//b", "a/./b" and
//     "a/../b" are different object keys.
//   - Other services: the path is normalized first (empty, "." and ".."
//     segments removed as in RFC 3986 5.2.4; a trailing '/' kept), then
//     URI-encoded twice: the encoding of the already-encoded wire path
//     ("/documents and settings/" -> "/documents%2520and%2520settings/").
//     Note: the generic test suite writes its requests with raw bytes on the
//     request line ("GET /example space/"), i.e. its wire path is unencoded,
//     so its expected canonical URIs are encoded once; with a raw path as
//     input here, its paths that need encoding (get-utf8, get-space) are
//     reproduced with double_encode_path=false, its normalization cases with
//     true.
//
// Thread-safety: all functions are pure and safe to call concurrently.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bulwark/storage/s3/credentials.h"

namespace bulwark::storage::s3 {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// The payload hash to sign when the body is not hashed (TLS protects it).
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
// hex SHA-256 of the empty body.
inline constexpr std::string_view kEmptyPayloadSha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct SignableRequest {
  std::string method;  // "GET", "PUT", ...
  std::string host;    // Host header value, e.g. "127.0.0.1:9000" or "bucket.s3.amazonaws.com"
  std::string path;    // absolute path, NOT yet URI-encoded, e.g. "/bucket/data/ab/ab12"; "" means "/"
  std::vector<std::pair<std::string, std::string>> query;  // raw (unencoded) names and values
  // Extra headers to sign (e.g. content-md5, x-amz-object-lock-*), any case,
  // any order; a name given twice is signed as one header with the values
  // joined by ',' in the given order. Must not contain host, x-amz-date,
  // x-amz-content-sha256, x-amz-security-token or authorization: SignV4 sets
  // those.
  HeaderList headers;
  std::string payload_sha256_hex;  // hex SHA-256 of the body, or kUnsignedPayload
  // See the file comment. Unset: SignV4 uses false for service "s3" and true
  // for any other; CanonicalRequest (which has no service) uses false.
  std::optional<bool> double_encode_path;
};

// What SignV4Detailed computed; the intermediate strings are what S3 returns
// in a SignatureDoesNotMatch error (<CanonicalRequest>, <StringToSign>), so
// the backend can log ours beside them.
struct SigV4Result {
  // Headers to send: authorization, x-amz-date, x-amz-content-sha256 (service
  // "s3" only: S3 requires it, other services do not use it), x-amz-security-
  // token (when the credentials have a session token), host. Names lower-case.
  HeaderList headers;
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;  // 64 lower-case hex digits
};

// Signs `req` at `unix_time` (seconds since the epoch, UTC; years 1970..9999)
// for `region` and `service` ("s3"). Returns the headers the caller must add
// to the HTTP request, besides req.headers. Throws Error(kInvalidArgument) on
// an empty method, host, region, service, access key, secret or payload hash,
// a non-empty path not starting with '/', a header name that is not an HTTP
// token or is one SignV4 sets itself, a header value (or host, or session
// token) with a CR, LF or NUL, or a time out of range. Messages never contain
// the secret or the session token.
HeaderList SignV4(const SignableRequest& req, const Credentials& c, const std::string& region,
                  const std::string& service, int64_t unix_time);
SigV4Result SignV4Detailed(const SignableRequest& req, const Credentials& c, const std::string& region,
                           const std::string& service, int64_t unix_time);

// RFC 3986 percent-encoding as SigV4 wants it: the unreserved characters
// A-Z a-z 0-9 - . _ ~ are kept, '/' is kept when !encode_slash, every other
// byte becomes %XX (upper-case hex). UTF-8 is encoded byte by byte.
std::string UriEncode(std::string_view s, bool encode_slash);

// Canonical headers: names lower-cased, values trimmed with inner runs of
// blanks collapsed to one space, repeated names joined with ',' in order,
// sorted by name.
HeaderList CanonicalHeaders(const HeaderList& headers);

// The canonical request of `req` signing `signed_headers_in_order` (the full
// set, including host and the x-amz-* headers; normalized with
// CanonicalHeaders here, so any case and order is accepted).
std::string CanonicalRequest(const SignableRequest& req, const HeaderList& signed_headers_in_order);

// The canonical URI alone (see the file comment for `double_encode_path`).
std::string CanonicalUri(std::string_view path, bool double_encode_path);
// The canonical query string: each name and value UriEncode'd (with '/'),
// "name=value" (a missing value is "name="), sorted by encoded name then
// value, joined with '&'.
std::string CanonicalQueryString(const std::vector<std::pair<std::string, std::string>>& query);

// The request target to send: the path URI-encoded once ('/' kept; not
// normalized) and, when there is a query, '?' and the canonical query string.
// "/bucket/a b" + {prefix: "x/"} -> "/bucket/a%20b?prefix=x%2F".
std::string EncodedPathAndQuery(const SignableRequest& req);

// "AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex SHA-256 of canonical_request>".
std::string StringToSign(std::string_view amz_date, std::string_view scope, std::string_view canonical_request);
// The 32-byte signing key for one day, region and service (`date` YYYYMMDD).
std::string SigningKey(std::string_view secret_access_key, std::string_view date, std::string_view region,
                       std::string_view service);
// "YYYYMMDDTHHMMSSZ" of `unix_time` (UTC).
std::string AmzDate(int64_t unix_time);

}  // namespace bulwark::storage::s3
