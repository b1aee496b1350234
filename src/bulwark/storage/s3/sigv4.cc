#include "bulwark/storage/s3/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdio>

#include "bulwark/base/bytes.h"
#include "bulwark/base/civil_time.h"
#include "bulwark/base/error.h"
#include "bulwark/crypto/crypto.h"

namespace bulwark::storage::s3 {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
// 9999-12-31T23:59:59Z: the last instant with a four-digit year.
constexpr int64_t kMaxUnixTime = 253402300799;

[[noreturn]] void Invalid(const std::string& what) {
  throw Error(ErrorCode::kInvalidArgument, "signing an S3 request: " + what);
}

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

// RFC 9110 token characters (header names).
bool IsTokenChar(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// Trims blanks and collapses inner runs of blanks to one space.
std::string CanonicalValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  bool pending_space = false;
  for (char c : v) {
    if (IsBlank(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
            data.size(), out, &len))
    throw Error(ErrorCode::kInternal, "HMAC-SHA-256 failed");
  return std::string(reinterpret_cast<const char*>(out), len);
}

// RFC 3986 5.2.4 remove_dot_segments, plus dropping empty segments ("//"),
// as the generic SigV4 test suite expects. A trailing '/' (or a trailing "."
// or ".." segment, which names a directory) is kept unless nothing remains.
std::string NormalizePath(std::string_view path) {
  std::vector<std::string_view> segments;
  bool trailing_slash = false;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    std::string_view seg = path.substr(pos, end - pos);
    const bool last = end == path.size();
    if (seg == "..") {
      if (!segments.empty()) segments.pop_back();
    } else if (!seg.empty() && seg != ".") {
      segments.push_back(seg);
    }
    if (last) trailing_slash = seg.empty() || seg == "." || seg == "..";
    pos = end + 1;
  }
  std::string out;
  for (std::string_view s : segments) out.append("/").append(s);
  if (out.empty() || trailing_slash) out.push_back('/');
  return out;
}

void CheckHeader(const std::string& name, const std::string& value) {
  if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) { return IsTokenChar(c); }))
    Invalid("header name '" + name + "' is not an HTTP token");
  if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos)
    Invalid("header '" + name + "' has a CR, LF or NUL in its value");
}

}  // namespace

std::string UriEncode(std::string_view s, bool encode_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() + s.size() / 2);
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (IsUnreserved(c) || (c == '/' && !encode_slash)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

HeaderList CanonicalHeaders(const HeaderList& headers) {
  HeaderList out;  // in first-seen order; stable-sorted below
  for (const auto& [name, value] : headers) {
    std::string lname = Lower(name);
    std::string cvalue = CanonicalValue(value);
    auto it = std::find_if(out.begin(), out.end(), [&](const auto& h) { return h.first == lname; });
    if (it == out.end()) {
      out.emplace_back(std::move(lname), std::move(cvalue));
    } else {
      it->second.append(",").append(cvalue);
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

std::string CanonicalUri(std::string_view path, bool double_encode_path) {
  if (path.empty()) return "/";
  if (!double_encode_path) return UriEncode(path, false);
  return UriEncode(UriEncode(NormalizePath(path), false), false);
}

std::string CanonicalQueryString(const std::vector<std::pair<std::string, std::string>>& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(query.size());
  for (const auto& [name, value] : query) encoded.emplace_back(UriEncode(name, true), UriEncode(value, true));
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty()) out.push_back('&');
    out.append(name).append("=").append(value);
  }
  return out;
}

std::string EncodedPathAndQuery(const SignableRequest& req) {
  std::string out = req.path.empty() ? "/" : UriEncode(req.path, false);
  if (!req.query.empty()) out.append("?").append(CanonicalQueryString(req.query));
  return out;
}

std::string CanonicalRequest(const SignableRequest& req, const HeaderList& signed_headers_in_order) {
  const HeaderList headers = CanonicalHeaders(signed_headers_in_order);
  std::string out;
  out.append(req.method).append("\n");
  out.append(CanonicalUri(req.path, req.double_encode_path.value_or(false))).append("\n");
  out.append(CanonicalQueryString(req.query)).append("\n");
  for (const auto& [name, value] : headers) out.append(name).append(":").append(value).append("\n");
  out.append("\n");
  for (size_t i = 0; i < headers.size(); ++i) out.append(i ? ";" : "").append(headers[i].first);
  out.append("\n");
  out.append(req.payload_sha256_hex);
  return out;
}

std::string StringToSign(std::string_view amz_date, std::string_view scope, std::string_view canonical_request) {
  std::string out(kAlgorithm);
  out.append("\n").append(amz_date).append("\n").append(scope).append("\n");
  out.append(crypto::Sha256(AsBytes(canonical_request)).Hex());
  return out;
}

std::string SigningKey(std::string_view secret_access_key, std::string_view date, std::string_view region,
                       std::string_view service) {
  std::string k = HmacSha256("AWS4" + std::string(secret_access_key), date);
  k = HmacSha256(k, region);
  k = HmacSha256(k, service);
  return HmacSha256(k, "aws4_request");
}

std::string AmzDate(int64_t unix_time) {
  if (unix_time < 0 || unix_time > kMaxUnixTime)
    Invalid("time " + std::to_string(unix_time) + " is outside 1970..9999");
  const CivilTime t = TimeZone().ToCivil(unix_time);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d%02d%02dT%02d%02d%02dZ", static_cast<int>(t.year), t.month, t.day, t.hour,
                t.minute, t.second);
  return buf;
}

SigV4Result SignV4Detailed(const SignableRequest& req, const Credentials& c, const std::string& region,
                           const std::string& service, int64_t unix_time) {
  // The method, the scope's parts and the access key id go into the
  // Authorization header and the '/'-separated scope: HTTP tokens, no '/'.
  auto is_scope_token = [](const std::string& s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char ch) { return IsTokenChar(ch) && ch != '/'; });
  };
  if (!is_scope_token(req.method)) Invalid("method '" + req.method + "' is not an HTTP token");
  if (req.host.empty()) Invalid("empty host");
  if (!req.path.empty() && req.path.front() != '/') Invalid("path '" + req.path + "' is not absolute");
  if (!is_scope_token(region)) Invalid("region '" + region + "' is empty or has characters a scope cannot hold");
  if (!is_scope_token(service)) Invalid("service '" + service + "' is empty or has characters a scope cannot hold");
  if (c.secret_access_key.empty())
    Invalid("credentials without a secret access key (from " + (c.source.empty() ? "?" : c.source) + ")");
  if (!is_scope_token(c.access_key_id))
    Invalid("access key id is empty or has characters an Authorization header cannot hold (from " +
            (c.source.empty() ? "?" : c.source) + ")");
  if (req.payload_sha256_hex.empty()) Invalid("empty payload hash (use UNSIGNED-PAYLOAD for an unhashed body)");
  CheckHeader("x-amz-content-sha256", req.payload_sha256_hex);
  for (const auto& [name, value] : req.headers) {
    CheckHeader(name, value);
    const std::string lname = Lower(name);
    if (lname == "host" || lname == "x-amz-date" || lname == "x-amz-content-sha256" ||
        lname == "x-amz-security-token" || lname == "authorization")
      Invalid("header '" + name + "' is set by the signer, not the caller");
  }
  CheckHeader("host", req.host);
  CheckHeader("x-amz-security-token", c.session_token);

  const std::string amz_date = AmzDate(unix_time);
  const std::string date = amz_date.substr(0, 8);
  const std::string scope = date + "/" + region + "/" + service + "/aws4_request";

  HeaderList own;
  own.emplace_back("host", req.host);
  own.emplace_back("x-amz-date", amz_date);
  if (service == "s3") own.emplace_back("x-amz-content-sha256", req.payload_sha256_hex);
  if (!c.session_token.empty()) own.emplace_back("x-amz-security-token", c.session_token);

  HeaderList to_sign = req.headers;
  to_sign.insert(to_sign.end(), own.begin(), own.end());
  const HeaderList canonical = CanonicalHeaders(to_sign);
  std::string signed_names;
  for (const auto& h : canonical) signed_names.append(signed_names.empty() ? "" : ";").append(h.first);

  SignableRequest resolved = req;
  resolved.double_encode_path = req.double_encode_path.value_or(service != "s3");

  SigV4Result r;
  r.canonical_request = CanonicalRequest(resolved, canonical);
  r.string_to_sign = StringToSign(amz_date, scope, r.canonical_request);
  r.signature = ToHex(AsBytes(HmacSha256(SigningKey(c.secret_access_key, date, region, service), r.string_to_sign)));
  r.headers.emplace_back("authorization", std::string(kAlgorithm) + " Credential=" + c.access_key_id + "/" + scope +
                                              ", SignedHeaders=" + signed_names + ", Signature=" + r.signature);
  for (auto& h : own)
    if (h.first != "host") r.headers.push_back(std::move(h));
  r.headers.emplace_back("host", req.host);
  return r;
}

HeaderList SignV4(const SignableRequest& req, const Credentials& c, const std::string& region,
                  const std::string& service, int64_t unix_time) {
  return SignV4Detailed(req, c, region, service, unix_time).headers;
}

}  // namespace bulwark::storage::s3
