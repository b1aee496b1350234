#include "bulwark/storage/s3/s3.h"

#include <curl/curl.h>
#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include <pugixml.hpp>

#include "bulwark/base/error.h"
#include "bulwark/base/log.h"
#include "bulwark/crypto/crypto.h"
#include "bulwark/storage/s3/sigv4.h"

namespace bulwark::storage::s3 {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

bool EnvBool(const char* name, bool dflt) {
  std::string v = Env(name);
  if (v.empty()) return dflt;
  if (v == "1" || v == "true" || v == "yes") return true;
  if (v == "0" || v == "false" || v == "no") return false;
  throw Error(ErrorCode::kInvalidArgument, std::string(name) + " must be true or false, got '" + v + "'");
}

int EnvInt(const char* name, long lo, long hi, int dflt) {
  std::string v = Env(name);
  if (v.empty()) return dflt;
  char* end = nullptr;
  long n = std::strtol(v.c_str(), &end, 10);
  if (*end != '\0' || n < lo || n > hi)
    throw Error(ErrorCode::kInvalidArgument,
                std::string(name) + " must be " + std::to_string(lo) + ".." + std::to_string(hi) + ", got '" + v + "'");
  return static_cast<int>(n);
}

std::string Base64(const uint8_t* p, size_t n) {
  std::string out(4 * ((n + 2) / 3), '\0');
  int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), p, static_cast<int>(n));
  out.resize(static_cast<size_t>(len));
  return out;
}

std::string Md5Base64(ByteSpan data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_md5(), nullptr) != 1)
    throw Error(ErrorCode::kInternal, "MD5 failed");
  return Base64(md, len);
}

std::string Iso8601(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// "2026-11-21T10:00:00.000Z" (ListObjectsV2) -> ns.
int64_t ParseIsoTime(const std::string& s) {
  std::tm tm{};
  const char* rest = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!rest) return 0;
  int64_t ns = 0;
  if (*rest == '.') {
    ++rest;
    int64_t scale = 100000000;
    while (*rest >= '0' && *rest <= '9') {
      ns += (*rest - '0') * scale;
      scale /= 10;
      ++rest;
    }
  }
  return int64_t(timegm(&tm)) * 1000000000 + ns;
}

// "Sat, 21 Nov 2026 10:00:00 GMT" (Last-Modified) -> ns.
int64_t ParseHttpTime(const std::string& s) {
  std::tm tm{};
  if (!strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S", &tm)) return 0;
  return int64_t(timegm(&tm)) * 1000000000;
}

struct Response {
  long status = 0;
  std::string body;  // error and XML bodies; object bytes go to `out`
  std::map<std::string, std::string> headers;  // lower-case names
  size_t out_len = 0;
};

struct CurlHandle {
  CURL* h = nullptr;
  CurlHandle() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    h = curl_easy_init();
  }
  ~CurlHandle() {
    if (h) curl_easy_cleanup(h);
  }
};

CURL* ThreadHandle() {
  thread_local CurlHandle handle;
  if (!handle.h) throw Error(ErrorCode::kInternal, "curl_easy_init failed");
  curl_easy_reset(handle.h);  // keeps the connection cache
  return handle.h;
}

struct WriteTarget {
  Response* resp;
  Bytes* out;  // object bytes (2xx GET), or nullptr
  size_t limit;
  bool to_out;
};

size_t OnWrite(char* p, size_t size, size_t n, void* ud) {
  auto* t = static_cast<WriteTarget*>(ud);
  size_t len = size * n;
  if (t->to_out && t->resp->status / 100 == 2) {
    if (t->resp->out_len + len > t->limit) return 0;  // more than asked: fail the transfer
    if (t->out->size() < t->resp->out_len + len) t->out->resize(t->resp->out_len + len);
    std::memcpy(t->out->data() + t->resp->out_len, p, len);
    t->resp->out_len += len;
  } else if (t->resp->body.size() < (1u << 20)) {
    t->resp->body.append(p, len);
  }
  return len;
}

size_t OnHeader(char* p, size_t size, size_t n, void* ud) {
  auto* resp = static_cast<Response*>(ud);
  std::string line(p, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    resp->headers.clear();
    auto sp = line.find(' ');
    if (sp != std::string::npos) resp->status = std::strtol(line.c_str() + sp + 1, nullptr, 10);
    return size * n;
  }
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string k = line.substr(0, colon), v = line.substr(colon + 1);
    std::transform(k.begin(), k.end(), k.begin(), ::tolower);
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.erase(v.begin());
    while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) v.pop_back();
    resp->headers[k] = v;
  }
  return size * n;
}

struct S3Error {
  std::string code, message;
};

S3Error ParseError(const std::string& body) {
  S3Error e;
  pugi::xml_document doc;
  if (doc.load_buffer(body.data(), body.size())) {
    auto err = doc.child("Error");
    e.code = err.child_value("Code");
    e.message = err.child_value("Message");
  }
  return e;
}

bool Retryable(long status, const std::string& code) {
  if (status == 500 || status == 502 || status == 503 || status == 504 || status == 429) return true;
  return code == "SlowDown" || code == "RequestTimeout" || code == "InternalError" || code == "ServiceUnavailable";
}

class S3Backend : public Backend {
 public:
  S3Backend(S3Options o, Credentials c) : o_(std::move(o)), creds_(std::move(c)) {
    std::string ep = o_.endpoint;
    if (ep.empty()) ep = "https://s3." + o_.region + ".amazonaws.com";
    auto scheme_end = ep.find("://");
    if (scheme_end == std::string::npos) throw Error(ErrorCode::kInvalidArgument, "S3 endpoint '" + ep + "' needs http:// or https://");
    scheme_ = ep.substr(0, scheme_end);
    host_ = ep.substr(scheme_end + 3);
    while (!host_.empty() && host_.back() == '/') host_.pop_back();
    location_ = "s3:" + o_.bucket + (o_.prefix.empty() ? "" : "/" + o_.prefix);
  }

  std::string Location() const override { return location_; }
  Capabilities capabilities() const override { return {true, 8, false}; }

  void Put(const std::string& name, ByteSpan data) override {
    if (data.size() > kMultipartThreshold) return PutMultipart(name, data);
    Headers h = {{"content-md5", Md5Base64(data)}, {"content-type", "application/octet-stream"}};
    AddLockHeaders(name, &h);
    Request("PUT", Key(name), {}, h, data, nullptr, 0, &stats_.put);
    stats_.bytes_up += data.size();
  }

  Bytes Get(const std::string& name) override {
    // One GET, no HEAD first: a missing object is a 404 (kNotFound).
    Bytes out;
    Response r = Request("GET", Key(name), {}, {}, {}, &out, SIZE_MAX, &stats_.get);
    out.resize(r.out_len);
    stats_.bytes_down += r.out_len;
    return out;
  }

  Bytes GetRange(const std::string& name, uint64_t offset, uint64_t length) override {
    Bytes out;
    GetRangeInto(name, offset, length, &out);
    out.resize(length);
    return out;
  }

  ByteSpan GetRangeInto(const std::string& name, uint64_t offset, uint64_t length, Bytes* buf) override {
    if (length == 0) return ByteSpan();
    Headers h = {{"range", "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + length - 1)}};
    Response r = Request("GET", Key(name), {}, h, {}, buf, length, &stats_.get);
    if (r.out_len != length)
      throw Error(ErrorCode::kCorrupt, Where(name) + ": short read: " + std::to_string(r.out_len) + " of " +
                                           std::to_string(length) + " bytes at offset " + std::to_string(offset));
    stats_.bytes_down += length;
    return ByteSpan(buf->data(), length);
  }

  std::optional<ObjectInfo> Stat(const std::string& name) override {
    Response r = Request("HEAD", Key(name), {}, {}, {}, nullptr, 0, &stats_.head, /*not_found_ok=*/true);
    if (r.status == 404) return std::nullopt;
    ObjectInfo info{name, std::strtoull(r.headers["content-length"].c_str(), nullptr, 10),
                    ParseHttpTime(r.headers["last-modified"])};
    if (auto it = r.headers.find("x-amz-object-lock-retain-until-date"); it != r.headers.end())
      info.retain_until_ns = ParseIsoTime(it->second);
    return info;
  }

  std::vector<ObjectInfo> List(const std::string& prefix) override {
    std::vector<ObjectInfo> out;
    std::string base = o_.prefix.empty() ? "" : o_.prefix + "/";
    std::string token;
    for (;;) {
      Headers q = {{"list-type", "2"}, {"prefix", base + prefix}, {"max-keys", "1000"}};
      if (!token.empty()) q.push_back({"continuation-token", token});
      Response r = Request("GET", "", q, {}, {}, nullptr, 0, &stats_.list);
      pugi::xml_document doc;
      if (!doc.load_buffer(r.body.data(), r.body.size()))
        throw Error(ErrorCode::kIo, location_ + ": ListObjectsV2 returned malformed XML");
      auto root = doc.child("ListBucketResult");
      for (auto c : root.children("Contents")) {
        std::string key = c.child_value("Key");
        if (key.rfind(base, 0) != 0) continue;
        std::string n = key.substr(base.size());
        if (n.empty() || n.find("/.tmp-") != std::string::npos) continue;
        out.push_back({n, std::strtoull(c.child_value("Size"), nullptr, 10), ParseIsoTime(c.child_value("LastModified"))});
      }
      if (std::string(root.child_value("IsTruncated")) != "true") break;
      token = root.child_value("NextContinuationToken");
      if (token.empty()) throw Error(ErrorCode::kIo, location_ + ": truncated listing without a continuation token");
    }
    return out;
  }

  void Remove(const std::string& name) override {
    Request("DELETE", Key(name), {}, {}, {}, nullptr, 0, &stats_.del, /*not_found_ok=*/true);
  }

  void SetObjectLock(const std::string& mode, int64_t retain_seconds) override {
    std::string m = mode;
    std::transform(m.begin(), m.end(), m.begin(), ::toupper);
    if (m != "GOVERNANCE" && m != "COMPLIANCE")
      throw Error(ErrorCode::kInvalidArgument, "object lock mode must be governance or compliance, got '" + mode + "'");
    lock_mode_ = m;
    lock_until_ = static_cast<int64_t>(std::time(nullptr)) + retain_seconds;
  }

  void ExtendRetention(const std::string& name, int64_t retain_until_ns) override {
    if (lock_mode_.empty()) Backend::ExtendRetention(name, retain_until_ns);
    std::string xml = "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>" + lock_mode_ +
                      "</Mode><RetainUntilDate>" + Iso8601(retain_until_ns / 1000000000 + 1) +
                      "</RetainUntilDate></Retention>";
    ByteSpan body = AsBytes(xml);
    Request("PUT", Key(name), {{"retention", ""}}, {{"content-md5", Md5Base64(body)}, {"content-type", "application/xml"}},
            body, nullptr, 0, &stats_.put);
  }

  void Create() override {
    Response r = Request("HEAD", "", {}, {}, {}, nullptr, 0, &stats_.head, /*not_found_ok=*/true);
    if (r.status == 404)
      throw Error(ErrorCode::kNotFound, "bucket '" + o_.bucket + "' does not exist at " + scheme_ + "://" + host_ +
                                            " (create it first, with Object Lock enabled if you want WORM)");
    if (Stat("config")) throw Error(ErrorCode::kAlreadyExists, "a repository already exists at " + location_);
  }

 private:
  RequestStats& stats_ = ProcessStats();
  // Object Lock (SetObjectLock): "GOVERNANCE" | "COMPLIANCE" | "", and the
  // retain-until date (Unix seconds) every locked PUT of this backend carries.
  std::string lock_mode_;
  int64_t lock_until_ = 0;
  std::string Key(const std::string& name) const { return o_.prefix.empty() ? name : o_.prefix + "/" + name; }
  std::string Where(const std::string& name) const { return location_ + "/" + name; }

  // The Object Lock headers of a PUT of `name` (none for exempt objects).
  void AddLockHeaders(const std::string& name, Headers* h) const {
    if (lock_mode_.empty() || IsObjectLockExempt(name)) return;
    h->push_back({"x-amz-object-lock-mode", lock_mode_});
    h->push_back({"x-amz-object-lock-retain-until-date", Iso8601(lock_until_)});
  }

  void PutMultipart(const std::string& name, ByteSpan data) {
    std::string key = Key(name);
    Headers h = {{"content-type", "application/octet-stream"}};
    AddLockHeaders(name, &h);
    Response init = Request("POST", key, {{"uploads", ""}}, h, {}, nullptr, 0, &stats_.post);
    pugi::xml_document doc;
    doc.load_buffer(init.body.data(), init.body.size());
    std::string upload_id = doc.child("InitiateMultipartUploadResult").child_value("UploadId");
    if (upload_id.empty()) throw Error(ErrorCode::kIo, Where(name) + ": CreateMultipartUpload returned no UploadId");
    try {
      std::string complete = "<CompleteMultipartUpload>";
      int part = 1;
      for (uint64_t off = 0; off < data.size(); off += kPartSize, ++part) {
        ByteSpan chunk = data.subspan(off, std::min<uint64_t>(kPartSize, data.size() - off));
        Response r = Request("PUT", key, {{"partNumber", std::to_string(part)}, {"uploadId", upload_id}},
                             {{"content-md5", Md5Base64(chunk)}}, chunk, nullptr, 0, &stats_.put);
        complete += "<Part><PartNumber>" + std::to_string(part) + "</PartNumber><ETag>" + r.headers["etag"] +
                    "</ETag></Part>";
        stats_.bytes_up += chunk.size();
      }
      complete += "</CompleteMultipartUpload>";
      Response done;
      try {
        done = Request("POST", key, {{"uploadId", upload_id}}, {{"content-type", "application/xml"}},
                       AsBytes(complete), nullptr, 0, &stats_.post);
      } catch (const Error& e) {
        // A retry whose first attempt completed the upload but lost the answer finds the
        // upload gone (404 NoSuchUpload). Names are content-addressed (docs/FORMAT.md): an
        // object of this name and size is ours.
        if (e.code() != ErrorCode::kNotFound) throw;
        auto st = Stat(name);
        if (!st || st->size != data.size()) throw;
        log::Debug(Where(name) + ": CompleteMultipartUpload answered NoSuchUpload, but the object is there");
        return;
      }
      // CompleteMultipartUpload may report an error in a 200 response.
      if (done.body.find("<Error>") != std::string::npos) {
        S3Error e = ParseError(done.body);
        throw Error(ErrorCode::kIo, Where(name) + ": CompleteMultipartUpload failed: " + e.code + " " + e.message);
      }
    } catch (...) {
      try {
        Request("DELETE", key, {{"uploadId", upload_id}}, {}, {}, nullptr, 0, &stats_.del, true);
      } catch (const Error& e) {
        log::Warn(std::string("aborting multipart upload: ") + e.what());
      }
      throw;
    }
  }

  // One request with retries. `out`/`limit`: where a 2xx body goes (GET).
  Response Request(const std::string& method, const std::string& key, const Headers& query, const Headers& headers,
                   ByteSpan body, Bytes* out, size_t limit, std::atomic<uint64_t>* counter,
                   bool not_found_ok = false) {
    thread_local std::mt19937_64 rng(std::random_device{}());
    SignableRequest req;
    req.method = method;
    if (o_.path_style) {
      req.host = host_;
      req.path = "/" + o_.bucket + (key.empty() ? "" : "/" + key);
    } else {
      req.host = o_.bucket + "." + host_;
      req.path = "/" + key;
    }
    req.query = query;
    req.headers = headers;
    req.payload_sha256_hex = crypto::Sha256(body).Hex();
    // "PUT s3:bucket/prefix/data/ab/ab12...", "GET s3:bucket/prefix" (bucket-level requests).
    std::string what = method + " " + (key.empty() ? location_ : "s3:" + o_.bucket + "/" + key);
    for (int attempt = 1;; ++attempt) {
      (*counter)++;
      Response resp;
      CURLcode rc = Perform(req, body, out, limit, &resp);
      std::string err_detail;
      bool retry = false;
      if (rc != CURLE_OK) {
        err_detail = std::string(curl_easy_strerror(rc)) + " (" + scheme_ + "://" + req.host + ")";
        retry = rc != CURLE_WRITE_ERROR && rc != CURLE_SSL_CACERT && rc != CURLE_PEER_FAILED_VERIFICATION &&
                rc != CURLE_URL_MALFORMAT && rc != CURLE_UNSUPPORTED_PROTOCOL;
        if (rc == CURLE_WRITE_ERROR)
          throw Error(ErrorCode::kCorrupt, what + ": the server sent more bytes than requested");
      } else if (resp.status / 100 == 2 || (not_found_ok && resp.status == 404)) {
        return resp;
      } else {
        S3Error e = ParseError(resp.body);
        err_detail = "HTTP " + std::to_string(resp.status) + (e.code.empty() ? "" : " " + e.code) +
                     (e.message.empty() ? "" : ": " + e.message);
        // A HEAD answer has no body, so no S3 error code to tell why.
        if (resp.status == 403 && e.code.empty())
          err_detail += " Forbidden (check the access key, the secret, the clock and the key's permissions)";
        retry = Retryable(resp.status, e.code);
        if (!retry) {
          // 416: a range past the end, the object is shorter than the index says.
          ErrorCode c = resp.status == 404   ? ErrorCode::kNotFound
                        : resp.status == 403 ? ErrorCode::kPermission
                        : resp.status == 416 ? ErrorCode::kCorrupt
                                             : ErrorCode::kIo;
          throw Error(c, what + ": " + err_detail);
        }
      }
      if (!retry || attempt >= o_.max_attempts)
        throw Error(ErrorCode::kIo, what + ": " + err_detail +
                                        (attempt > 1 ? " (after " + std::to_string(attempt) + " attempts)" : ""));
      stats_.retries++;
      int64_t cap = std::min<int64_t>(10000, 100LL << std::min(attempt, 10));
      auto delay = std::chrono::milliseconds(rng() % (cap + 1));
      log::Debug(what + ": " + err_detail + "; retrying in " + std::to_string(delay.count()) + " ms");
      std::this_thread::sleep_for(delay);
    }
  }

  CURLcode Perform(const SignableRequest& req, ByteSpan body, Bytes* out, size_t limit, Response* resp) {
    CURL* h = ThreadHandle();
    std::string url = scheme_ + "://" + req.host + EncodedPathAndQuery(req);
    Headers signed_headers = SignV4(req, creds_, o_.region, "s3", static_cast<int64_t>(std::time(nullptr)));
    curl_slist* list = nullptr;
    auto add = [&](const std::string& k, const std::string& v) { list = curl_slist_append(list, (k + ": " + v).c_str()); };
    for (const auto& [k, v] : req.headers) add(k, v);
    for (const auto& [k, v] : signed_headers)
      if (k != "host") add(k, v);
    list = curl_slist_append(list, "Expect:");
    if (req.method == "PUT" || req.method == "POST") {
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.empty() ? "" : reinterpret_cast<const char*>(body.data()));
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
      if (req.method == "PUT") curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
      bool has_type = false;
      for (const auto& [k, v] : req.headers) has_type |= k == "content-type";
      if (!has_type) list = curl_slist_append(list, "Content-Type:");
    } else if (req.method == "HEAD") {
      curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (req.method != "GET") {
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    }
    WriteTarget target{resp, out, limit, out != nullptr};
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, OnWrite);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &target);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, resp);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, static_cast<long>(o_.stall_seconds));
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, o_.verify_tls ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, o_.verify_tls ? 2L : 0L);
    CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    curl_slist_free_all(list);
    return rc;
  }

  S3Options o_;
  Credentials creds_;
  std::string scheme_, host_, location_;
};

}  // namespace

S3Options ParseUrl(const std::string& url, const S3Settings& config, const S3Settings& flags) {
  S3Options o;
  std::string rest;
  auto bad = [&](const std::string& why) {
    return Error(ErrorCode::kInvalidArgument, "repository URL '" + url + "': " + why +
                                                  " (expected s3:BUCKET/PREFIX or s3://HOST[:PORT]/BUCKET/PREFIX)");
  };
  if (url.rfind("s3://", 0) == 0) {
    rest = url.substr(5);
    auto slash = rest.find('/');
    if (slash == std::string::npos || slash == 0) throw bad("no bucket after the host");
    o.endpoint = (Env("BULWARK_S3_SCHEME").empty() ? "https" : Env("BULWARK_S3_SCHEME")) + "://" + rest.substr(0, slash);
    rest = rest.substr(slash + 1);
  } else if (url.rfind("s3:", 0) == 0) {
    rest = url.substr(3);
    o.path_style = false;  // AWS: virtual-hosted style
  } else {
    throw bad("not an S3 URL");
  }
  auto slash = rest.find('/');
  o.bucket = rest.substr(0, slash);
  if (slash != std::string::npos) o.prefix = rest.substr(slash + 1);
  while (!o.prefix.empty() && o.prefix.back() == '/') o.prefix.pop_back();
  if (o.bucket.empty()) throw bad("empty bucket name");
  if (o.prefix.find("//") != std::string::npos || (!o.prefix.empty() && o.prefix.front() == '/'))
    throw bad("empty path segment in the prefix");
  // Layers, lowest first: bulwark.yaml, the environment, the flags.
  S3Settings env;
  if (!Env("BULWARK_S3_ENDPOINT").empty()) env.endpoint = Env("BULWARK_S3_ENDPOINT");
  if (!Env("BULWARK_S3_REGION").empty()) env.region = Env("BULWARK_S3_REGION");
  if (!Env("AWS_PROFILE").empty()) env.profile = Env("AWS_PROFILE");
  if (!Env("BULWARK_S3_PATH_STYLE").empty()) env.path_style = EnvBool("BULWARK_S3_PATH_STYLE", true);
  if (!Env("BULWARK_S3_TLS_VERIFY").empty()) env.tls_verify = EnvBool("BULWARK_S3_TLS_VERIFY", true);
  if (!Env("BULWARK_S3_MAX_ATTEMPTS").empty()) env.max_attempts = EnvInt("BULWARK_S3_MAX_ATTEMPTS", 1, 100, 0);
  o.stall_seconds = EnvInt("BULWARK_S3_STALL_SECONDS", 1, 3600, o.stall_seconds);
  std::string region;
  const S3Settings& env_layer = env;
  for (const S3Settings* layer : {&config, &env_layer, &flags}) {
    if (layer->endpoint) {
      if (layer->endpoint->find("://") == std::string::npos)
        throw Error(ErrorCode::kInvalidArgument, "S3 endpoint '" + *layer->endpoint + "' needs http:// or https://");
      o.endpoint = *layer->endpoint;
      o.path_style = true;
    }
    if (layer->path_style) o.path_style = *layer->path_style;
    if (layer->tls_verify) o.verify_tls = *layer->tls_verify;
    if (layer->profile) o.profile = *layer->profile;
    if (layer->region) region = *layer->region;
    if (layer->max_attempts) {
      if (*layer->max_attempts < 1 || *layer->max_attempts > 100)
        throw Error(ErrorCode::kInvalidArgument, "S3 max attempts must be 1..100");
      o.max_attempts = *layer->max_attempts;
    }
  }
  o.region = region.empty() ? ResolveRegion(o.profile) : region;
  return o;
}

std::unique_ptr<Backend> NewS3Backend(const S3Options& options, Credentials credentials) {
  if (options.max_attempts < 1 || options.stall_seconds < 1)
    throw Error(ErrorCode::kInvalidArgument, "S3 max_attempts and stall_seconds must be at least 1");
  return std::make_unique<S3Backend>(options, std::move(credentials));
}

RequestStats& ProcessStats() {
  static RequestStats stats;
  return stats;
}

}  // namespace bulwark::storage::s3
