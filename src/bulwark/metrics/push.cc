#include "bulwark/metrics/push.h"

#include <httplib.h>

#include "bulwark/base/error.h"

namespace bulwark::metrics {
namespace {

bool Plain(const std::string& v) {
  if (v.empty()) return false;
  for (char c : v)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) return false;
  return true;
}

std::string Base64Url(const std::string& in) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += k[(n >> s) & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t n = uint8_t(in[i]) << 16;
    out += k[(n >> 18) & 63];
    out += k[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += k[(n >> 18) & 63];
    out += k[(n >> 12) & 63];
    out += k[(n >> 6) & 63];
    out += "=";
  }
  return out;
}

}  // namespace

std::string PushPath(const std::string& prefix, const std::string& label, const std::string& value) {
  std::string p = prefix;
  while (!p.empty() && p.back() == '/') p.pop_back();
  p += "/metrics/job/bulwark/" + label;
  if (Plain(value))
    p += "/" + value;
  else
    p += "@base64/" + (value.empty() ? std::string("=") : Base64Url(value));
  return p;
}

void Push(const std::string& url, const std::string& label, const std::string& value,
          const std::vector<Family>& families, PushMode mode) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos ||
      (url.compare(0, scheme_end, "http") != 0 && url.compare(0, scheme_end, "https") != 0))
    throw Error(ErrorCode::kInvalidArgument, "pushgateway URL '" + url + "' must start with http:// or https://");
  const size_t path_start = url.find('/', scheme_end + 3);
  const std::string base = url.substr(0, path_start);
  const std::string prefix = path_start == std::string::npos ? "" : url.substr(path_start);
  httplib::Client cli(base);
  cli.set_connection_timeout(10, 0);
  cli.set_read_timeout(10, 0);
  cli.set_write_timeout(10, 0);
  const std::string path = PushPath(prefix, label, value);
  const std::string body = Render(families);
  auto res = mode == PushMode::kReplaceGroup ? cli.Put(path, body, kContentType) : cli.Post(path, body, kContentType);
  if (!res) throw Error(ErrorCode::kIo, "pushgateway " + base + path + ": " + httplib::to_string(res.error()));
  if (res->status < 200 || res->status > 299)
    throw Error(ErrorCode::kIo,
                "pushgateway " + base + path + ": HTTP " + std::to_string(res->status) + ": " + res->body);
}

}  // namespace bulwark::metrics
