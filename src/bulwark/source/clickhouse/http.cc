#include "bulwark/source/clickhouse/http.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <exception>
#include <mutex>

#include "bulwark/base/error.h"
#include "bulwark/base/log.h"

namespace bulwark::source::clickhouse {
namespace {

constexpr size_t kMaxErrorBody = 64 * 1024;       // bytes of an error body kept for the message
constexpr size_t kMaxPending = 4u << 20;          // a stream's buffer before the transfer pauses
constexpr size_t kMaxQueryResult = 256u << 20;    // Query()'s whole-body limit

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool HasControl(const std::string& s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

// ClickHouse 18.16 ends its messages with ", e.what() = DB::Exception" and a newline.
std::string CleanServerMessage(std::string body) {
  if (body.size() > kMaxErrorBody) body.resize(kMaxErrorBody);
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r' || body.back() == ' ')) body.pop_back();
  const std::string tail = ", e.what() = DB::Exception";
  if (body.size() >= tail.size() && body.compare(body.size() - tail.size(), tail.size(), tail) == 0)
    body.resize(body.size() - tail.size());
  return body;
}

// The error for a finished request: `status` 0 = the transfer failed (`rc`).
Error RequestError(const std::string& url, const std::string& sql, long status, CURLcode rc, const char* curl_detail,
                   const std::string& body) {
  std::string where = "ClickHouse " + url + ": " + ShortSql(sql) + ": ";
  if (status == 0 || rc != CURLE_OK) {
    std::string detail = curl_detail && *curl_detail ? curl_detail : curl_easy_strerror(rc);
    return Error(ErrorCode::kSourceFailed, where + detail);
  }
  std::string msg = CleanServerMessage(body);
  ErrorCode code = status == 401 || status == 403 ? ErrorCode::kPermission : ErrorCode::kSourceFailed;
  return Error(code, where + "HTTP " + std::to_string(status) + (msg.empty() ? "" : ": " + msg));
}

std::string Escape(CURL* h, const std::string& s) {
  char* e = curl_easy_escape(h, s.data(), static_cast<int>(s.size()));
  if (!e) throw Error(ErrorCode::kInternal, "curl_easy_escape failed");
  std::string out = e;
  curl_free(e);
  return out;
}

std::string BuildUrl(CURL* h, const std::string& base, const Params& params) {
  std::string url = base + "/";
  char sep = '?';
  for (const auto& [k, v] : params) {
    url += sep + Escape(h, k) + "=" + Escape(h, v);
    sep = '&';
  }
  return url;
}

// The headers every request carries: credentials (when a user is set) and no
// "Expect: 100-continue" round trip.
curl_slist* BaseHeaders(const Endpoint& ep) {
  curl_slist* list = curl_slist_append(nullptr, "Expect:");
  if (!ep.user.empty()) {
    list = curl_slist_append(list, ("X-ClickHouse-User: " + ep.user).c_str());
    list = curl_slist_append(list, ("X-ClickHouse-Key: " + ep.password).c_str());
  }
  return list;
}

void CommonOptions(CURL* h, const Endpoint& ep) {
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, static_cast<long>(ep.connect_timeout_seconds));
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, static_cast<long>(ep.stall_seconds));
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, ep.verify_tls ? 1L : 0L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, ep.verify_tls ? 2L : 0L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 256L * 1024);
}

struct HeaderList {
  curl_slist* list = nullptr;
  ~HeaderList() { curl_slist_free_all(list); }
};

// ---------------------------------------------------------------------------
// A streamed response: curl multi, driven by Read.

class CurlStream : public ResponseStream {
 public:
  CurlStream(Endpoint ep, std::string url, std::string sql) : ep_(std::move(ep)), sql_(std::move(sql)) {
    easy_ = curl_easy_init();
    multi_ = curl_multi_init();
    if (!easy_ || !multi_) throw Error(ErrorCode::kInternal, "curl init failed");
    CommonOptions(easy_, ep_);
    headers_.list = BaseHeaders(ep_);
    curl_easy_setopt(easy_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy_, CURLOPT_HTTPHEADER, headers_.list);
    curl_easy_setopt(easy_, CURLOPT_POSTFIELDS, sql_.data());
    curl_easy_setopt(easy_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(sql_.size()));
    curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, OnWrite);
    curl_easy_setopt(easy_, CURLOPT_WRITEDATA, this);
    curl_easy_setopt(easy_, CURLOPT_ERRORBUFFER, errbuf_);
    curl_multi_add_handle(multi_, easy_);
  }
  ~CurlStream() override {
    if (multi_ && easy_) curl_multi_remove_handle(multi_, easy_);
    if (easy_) curl_easy_cleanup(easy_);
    if (multi_) curl_multi_cleanup(multi_);
  }

  size_t Read(uint8_t* buf, size_t n) override {
    while (pos_ == pending_.size()) {
      if (done_) {
        Finish();
        return 0;
      }
      if (paused_) {
        // Everything delivered was read: resume (curl may call OnWrite from here).
        paused_ = false;
        pending_.clear();
        pos_ = 0;
        curl_easy_pause(easy_, CURLPAUSE_CONT);
        continue;
      }
      Pump();
    }
    size_t k = std::min(n, pending_.size() - pos_);
    std::memcpy(buf, pending_.data() + pos_, k);
    pos_ += k;
    bytes_ += k;
    return k;
  }

  uint64_t bytes() const override { return bytes_; }

 private:
  static size_t OnWrite(char* p, size_t size, size_t n, void* ud) {
    auto* s = static_cast<CurlStream*>(ud);
    const size_t len = size * n;
    if (s->status_ == 0) curl_easy_getinfo(s->easy_, CURLINFO_RESPONSE_CODE, &s->status_);
    if (s->status_ != 200) {
      if (s->error_body_.size() < kMaxErrorBody) s->error_body_.append(p, std::min(len, kMaxErrorBody));
      return len;
    }
    if (s->pending_.size() - s->pos_ >= kMaxPending) {
      s->paused_ = true;
      return CURL_WRITEFUNC_PAUSE;  // curl keeps these bytes and offers them again after the resume
    }
    if (s->pos_ > 0) {
      s->pending_.erase(0, s->pos_);
      s->pos_ = 0;
    }
    s->pending_.append(p, len);
    return len;
  }

  // One round of the transfer: perform, then wait for the socket.
  void Pump() {
    int running = 0;
    CURLMcode mc = curl_multi_perform(multi_, &running);
    if (mc != CURLM_OK) throw Error(ErrorCode::kSourceFailed, "ClickHouse " + ep_.url + ": " + curl_multi_strerror(mc));
    int left = 0;
    while (CURLMsg* m = curl_multi_info_read(multi_, &left)) {
      if (m->msg == CURLMSG_DONE) {
        done_ = true;
        result_ = m->data.result;
      }
    }
    if (done_ || pos_ < pending_.size() || paused_) return;
    mc = curl_multi_poll(multi_, nullptr, 0, 1000, nullptr);
    if (mc != CURLM_OK) throw Error(ErrorCode::kSourceFailed, "ClickHouse " + ep_.url + ": " + curl_multi_strerror(mc));
  }

  void Finish() {
    if (status_ == 0) curl_easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &status_);
    if (result_ != CURLE_OK || status_ != 200)
      throw RequestError(ep_.url, sql_, result_ != CURLE_OK ? 0 : status_, result_, errbuf_, error_body_);
  }

  const Endpoint ep_;
  std::string sql_;
  CURL* easy_ = nullptr;
  CURLM* multi_ = nullptr;
  HeaderList headers_;
  char errbuf_[CURL_ERROR_SIZE] = {};
  std::string pending_;
  size_t pos_ = 0;
  uint64_t bytes_ = 0;
  bool paused_ = false, done_ = false;
  CURLcode result_ = CURLE_OK;
  long status_ = 0;
  std::string error_body_;
};

// Whole-body requests (Query) and uploads (Insert) on the Client's handle.
struct Collect {
  CURL* h;
  long status = 0;
  std::string body;
  size_t limit;
  bool over = false;
};

size_t CollectWrite(char* p, size_t size, size_t n, void* ud) {
  auto* c = static_cast<Collect*>(ud);
  const size_t len = size * n;
  if (c->status == 0) curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &c->status);
  size_t cap = c->status == 200 ? c->limit : kMaxErrorBody;
  if (c->body.size() + len > cap) {
    if (c->status == 200) {
      c->over = true;
      return 0;  // fails the transfer (CURLE_WRITE_ERROR)
    }
    c->body.append(p, cap > c->body.size() ? cap - c->body.size() : 0);
    return len;
  }
  c->body.append(p, len);
  return len;
}

struct Upload {
  const std::function<size_t(uint8_t*, size_t)>* read;
  std::exception_ptr error;
  uint64_t sent = 0;
};

size_t UploadRead(char* p, size_t size, size_t n, void* ud) {
  auto* u = static_cast<Upload*>(ud);
  try {
    size_t k = (*u->read)(reinterpret_cast<uint8_t*>(p), size * n);
    u->sent += k;
    return k;
  } catch (...) {
    u->error = std::current_exception();
    return CURL_READFUNC_ABORT;
  }
}

}  // namespace

std::string NormalizeUrl(const std::string& in) {
  auto bad = [&](const std::string& why) {
    return Error(ErrorCode::kInvalidArgument, "ClickHouse URL '" + in + "': " + why);
  };
  if (in.empty()) throw bad("empty");
  if (HasControl(in) || in.find(' ') != std::string::npos) throw bad("contains spaces or control characters");
  std::string scheme = "http", rest = in;
  if (auto p = in.find("://"); p != std::string::npos) {
    scheme = in.substr(0, p);
    std::transform(scheme.begin(), scheme.end(), scheme.begin(), ::tolower);
    rest = in.substr(p + 3);
  }
  if (scheme != "http" && scheme != "https") throw bad("the scheme must be http or https");
  if (rest.find_first_of("?#") != std::string::npos) throw bad("no query or fragment allowed");
  std::string host = rest, path;
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    host = rest.substr(0, slash);
    path = rest.substr(slash);
  }
  if (host.find('@') != std::string::npos)
    throw bad("no user or password in the URL (user: in the configuration, the password from a file or the "
              "environment)");
  if (host.empty()) throw bad("no host");
  if (!path.empty() && path != "/") throw bad("no path allowed (ClickHouse's HTTP interface is at /)");
  return scheme + "://" + host;
}

ServerVersion ServerVersion::Parse(const std::string& s) {
  ServerVersion v;
  v.text = s;
  while (!v.text.empty() && (v.text.back() == '\n' || v.text.back() == ' ')) v.text.pop_back();
  int* parts[] = {&v.major, &v.minor, &v.patch};
  size_t i = 0;
  int k = 0;
  for (; k < 3; ++k) {
    size_t start = i;
    long n = 0;
    while (i < v.text.size() && std::isdigit(static_cast<unsigned char>(v.text[i])) && i - start < 6)
      n = n * 10 + (v.text[i++] - '0');
    if (i == start) break;
    *parts[k] = static_cast<int>(n);
    if (i >= v.text.size() || v.text[i] != '.') {
      ++k;
      break;
    }
    ++i;
  }
  if (k < 2) throw Error(ErrorCode::kSourceFailed, "unrecognised ClickHouse version '" + v.text + "'");
  return v;
}

Client::Client(Endpoint endpoint) : ep_(std::move(endpoint)) {
  GlobalInit();
  ep_.url = NormalizeUrl(ep_.url);
  if (HasControl(ep_.user) || HasControl(ep_.password))
    throw Error(ErrorCode::kInvalidArgument, "ClickHouse user and password must not contain control characters");
  if (ep_.user.empty() && !ep_.password.empty())
    throw Error(ErrorCode::kInvalidArgument, "a ClickHouse password is given but no user");
  easy_ = curl_easy_init();
  if (!easy_) throw Error(ErrorCode::kInternal, "curl_easy_init failed");
}

Client::~Client() {
  if (easy_) curl_easy_cleanup(static_cast<CURL*>(easy_));
}

std::string Client::Perform(const std::string& sql, const Params& params_in, size_t limit) {
  CURL* h = static_cast<CURL*>(easy_);
  curl_easy_reset(h);  // keeps the connection cache
  CommonOptions(h, ep_);
  Params params = params_in;
  params.emplace_back("wait_end_of_query", "1");
  HeaderList headers;
  headers.list = BaseHeaders(ep_);
  std::string url = BuildUrl(h, ep_.url, params);
  char errbuf[CURL_ERROR_SIZE] = {};
  Collect c{h, 0, {}, limit};
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.list);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, sql.data());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(sql.size()));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, CollectWrite);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &c);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  CURLcode rc = curl_easy_perform(h);
  if (c.over)
    throw Error(ErrorCode::kSourceFailed, "ClickHouse " + ep_.url + ": " + ShortSql(sql) + ": result larger than " +
                                              std::to_string(limit >> 20) + " MiB");
  if (rc == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &c.status);
  if (rc != CURLE_OK || c.status != 200) throw RequestError(ep_.url, sql, rc != CURLE_OK ? 0 : c.status, rc, errbuf, c.body);
  return std::move(c.body);
}

std::string Client::Query(const std::string& sql, const Params& params) {
  return Perform(sql, params, kMaxQueryResult);
}

std::vector<std::vector<std::string>> Client::Rows(const std::string& sql, const Params& params) {
  return WithContext("ClickHouse " + ep_.url + ": " + ShortSql(sql),
                     [&] { return ParseTsv(Query(sql + " FORMAT TabSeparated", params)); });
}

std::string Client::Value(const std::string& sql, const Params& params) {
  auto rows = Rows(sql, params);
  if (rows.empty() || rows[0].empty())
    throw Error(ErrorCode::kSourceFailed, "ClickHouse " + ep_.url + ": " + ShortSql(sql) + ": no result");
  return rows[0][0];
}

std::unique_ptr<ResponseStream> Client::Stream(const std::string& sql, const Params& params_in, bool buffer_on_server) {
  Params params = params_in;
  if (buffer_on_server) params.emplace_back("wait_end_of_query", "1");
  std::string url = BuildUrl(static_cast<CURL*>(easy_), ep_.url, params);
  return std::make_unique<CurlStream>(ep_, std::move(url), sql);
}

uint64_t Client::Insert(const std::string& sql, const std::function<size_t(uint8_t*, size_t)>& read,
                        const Params& params_in) {
  CURL* h = static_cast<CURL*>(easy_);
  curl_easy_reset(h);
  CommonOptions(h, ep_);
  Params params = params_in;
  params.emplace(params.begin(), "query", sql);
  HeaderList headers;
  headers.list = BaseHeaders(ep_);
  headers.list = curl_slist_append(headers.list, "Content-Type: application/octet-stream");
  std::string url = BuildUrl(h, ep_.url, params);
  char errbuf[CURL_ERROR_SIZE] = {};
  Collect c{h, 0, {}, kMaxErrorBody};
  Upload u{&read, nullptr, 0};
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.list);
  curl_easy_setopt(h, CURLOPT_POST, 1L);
  curl_easy_setopt(h, CURLOPT_READFUNCTION, UploadRead);
  curl_easy_setopt(h, CURLOPT_READDATA, &u);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, CollectWrite);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &c);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  CURLcode rc = curl_easy_perform(h);
  if (u.error) std::rethrow_exception(u.error);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  // The server may answer an error (and close) before it has read the whole body: its answer
  // is the news, not the broken upload.
  if (status != 0 && status != 200) throw RequestError(ep_.url, sql, status, CURLE_OK, errbuf, c.body);
  if (rc != CURLE_OK) throw RequestError(ep_.url, sql, 0, rc, errbuf, c.body);
  return u.sent;
}

const ServerVersion& Client::Version() {
  if (!version_) version_ = ServerVersion::Parse(Value("SELECT version()"));
  return *version_;
}

bool Client::HasSetting(const std::string& name) {
  if (!settings_) {
    settings_.emplace();
    for (const auto& row : Rows("SELECT name, value FROM system.settings"))
      if (row.size() >= 2) (*settings_)[row[0]] = row[1];
  }
  return settings_->count(name) > 0;
}

std::vector<std::vector<std::string>> ParseTsv(const std::string& body) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool any = false;  // something of the current line was seen
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c == '\t') {
      row.push_back(std::move(field));
      field.clear();
      any = true;
    } else if (c == '\n') {
      row.push_back(std::move(field));
      field.clear();
      rows.push_back(std::move(row));
      row.clear();
      any = false;
    } else if (c == '\\') {
      if (i + 1 >= body.size()) throw Error(ErrorCode::kCorrupt, "TabSeparated: a backslash at the end");
      char e = body[++i];
      any = true;
      switch (e) {
        case 't': field += '\t'; break;
        case 'n': field += '\n'; break;
        case 'r': field += '\r'; break;
        case '0': field += '\0'; break;
        case 'b': field += '\b'; break;
        case 'f': field += '\f'; break;
        case 'a': field += '\a'; break;
        case 'v': field += '\v'; break;
        case 'N': break;  // NULL: an empty field
        case 'x': {
          auto hex = [](char h) -> int {
            if (h >= '0' && h <= '9') return h - '0';
            if (h >= 'a' && h <= 'f') return h - 'a' + 10;
            if (h >= 'A' && h <= 'F') return h - 'A' + 10;
            return -1;
          };
          if (i + 2 < body.size() && hex(body[i + 1]) >= 0 && hex(body[i + 2]) >= 0) {
            field += static_cast<char>(hex(body[i + 1]) * 16 + hex(body[i + 2]));
            i += 2;
          } else {
            field += 'x';
          }
          break;
        }
        default: field += e; break;  // \\ \' \" and anything else: the character itself
      }
    } else {
      field += c;
      any = true;
    }
  }
  if (any || !row.empty()) {
    row.push_back(std::move(field));
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string ShortSql(const std::string& sql) {
  std::string s;
  for (char c : sql) {
    if (s.size() >= 300) return s + "...";
    s += c == '\n' || c == '\r' || c == '\t' ? ' ' : c;
  }
  return s;
}

std::string QuoteName(const std::string& name) {
  std::string out = "`";
  for (char c : name) {
    if (c == '`' || c == '\\') out += '\\';
    out += c;
  }
  return out + "`";
}

std::string QuoteString(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

}  // namespace bulwark::source::clickhouse
