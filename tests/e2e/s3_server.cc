#include "s3_server.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "harness.h"

namespace bulwark::testing {
namespace {

namespace fs = std::filesystem;

std::string Script() { return std::string(BULWARK_SOURCE_DIR) + "/scripts/s3-server"; }

// "k=v" lines (DIR/credentials, add-key's output) as a map.
std::map<std::string, std::string> KeyValues(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = Trim(line.substr(eq + 1));
  }
  return out;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

void Digest(const EVP_MD* md, const std::string& data, unsigned* len, unsigned char* out) {
  if (!EVP_Digest(data.data(), data.size(), out, len, md, nullptr)) throw std::runtime_error("EVP_Digest");
}

}  // namespace

std::string HostPort(const std::string& endpoint) { return endpoint.substr(endpoint.find("://") + 3); }

std::vector<std::string> S3Env(const Scratch& s, const S3Server& srv, const S3Key& key) {
  std::vector<std::string> env = s.Env();
  bool own = key.access_key.empty();
  env.push_back("AWS_ACCESS_KEY_ID=" + (own ? srv.access_key() : key.access_key));
  env.push_back("AWS_SECRET_ACCESS_KEY=" + (own ? srv.secret_key() : key.secret_key));
  env.push_back("AWS_REGION=" + srv.region());
  env.push_back("BULWARK_S3_SCHEME=http");
  env.push_back("AWS_SHARED_CREDENTIALS_FILE=" + s.Path("no-such-credentials"));
  env.push_back("AWS_CONFIG_FILE=" + s.Path("no-such-config"));
  return env;
}

std::string UriEncode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string Sha256Hex(const std::string& data) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  Digest(EVP_sha256(), data, &len, d);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[d[i] >> 4];
    out += hex[d[i] & 15];
  }
  return out;
}

std::string Md5Base64(const std::string& data) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  Digest(EVP_md5(), data, &len, d);
  unsigned char b64[64];
  int n = EVP_EncodeBlock(b64, d, static_cast<int>(len));
  return std::string(reinterpret_cast<char*>(b64), n);
}

std::string S3Response::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

std::vector<std::string> S3Response::Xml(const std::string& tag) const {
  std::vector<std::string> out;
  const std::string open = "<" + tag + ">", close = "</" + tag + ">";
  size_t pos = 0;
  while ((pos = body.find(open, pos)) != std::string::npos) {
    size_t start = pos + open.size();
    size_t end = body.find(close, start);
    if (end == std::string::npos) break;
    out.push_back(body.substr(start, end - start));
    pos = end + close.size();
  }
  return out;
}

std::string S3Response::Describe() const {
  std::string s = "HTTP " + std::to_string(status) + "\n";
  for (const auto& [k, v] : headers) s += k + ": " + v + "\n";
  return s + "\n" + (body.size() > 4096 ? body.substr(0, 4096) + "..." : body);
}

std::unique_ptr<S3Server> S3Server::Start(std::string* why, bool object_lock) {
  char tmpl[] = "/tmp/bulwark-s3.XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
  // The server outlives the script that starts it. Adopt it when that script exits (rather than
  // leave it to PID 1, which in some sandboxes never reaps), so the destructor can reap it.
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  std::unique_ptr<S3Server> s(new S3Server);
  s->dir_ = tmpl;
  std::vector<std::string> env{"S3_SERVER_PARENT_PID=" + std::to_string(getpid())};
  // Run() drops BULWARK_* from the environment: pass the tools directory on.
  if (const char* tools = std::getenv("BULWARK_TOOLS_DIR")) env.push_back(std::string("BULWARK_TOOLS_DIR=") + tools);
  std::vector<std::string> argv{Script(), "start", s->dir_};
  if (object_lock) argv.insert(argv.begin() + 2, "--object-lock");
  RunResult r = Run(argv, env);
  if (r.exit_code == 3) {
    *why =
        "the S3 test server could not be installed (scripts/s3-server install needs node, npm and the npm "
        "registry): " +
        Trim(r.err);
    if (InCi()) ADD_FAILURE() << *why << " [CI is set: failing instead of skipping]";
    return nullptr;
  }
  if (r.exit_code != 0) {
    *why = "scripts/s3-server start failed (exit " + std::to_string(r.exit_code) + "): " + r.err + "\nlog:\n" +
           ReadFileOr(s->dir_ + "/server.log", "(none)");
    ADD_FAILURE() << *why;
    return nullptr;
  }
  s->started_ = true;
  s->pid_ = std::atoi(ReadFileOr(s->dir_ + "/pid", "0").c_str());
  s->endpoint_ = Trim(ReadFileOr(s->dir_ + "/endpoint", ""));
  auto creds = KeyValues(ReadFileOr(s->dir_ + "/credentials", ""));
  s->access_key_ = creds["access_key"];
  s->secret_key_ = creds["secret_key"];
  s->region_ = creds["region"];
  if (s->endpoint_ != Trim(r.out) || s->access_key_.empty() || s->secret_key_.empty() || s->region_.empty()) {
    *why = "scripts/s3-server start left an incomplete " + s->dir_ + " (stdout: " + r.out + ")";
    ADD_FAILURE() << *why;
    return nullptr;  // the destructor stops what did start
  }
  return s;
}

S3Server::~S3Server() {
  if (started_) {
    RunResult r = Run({Script(), "stop", dir_});
    if (r.exit_code != 0) ADD_FAILURE() << "scripts/s3-server stop " << dir_ << ": " << r.err;
    // Stopped means no longer running as the server: it may still be exiting. Wait for it and
    // reap it if it is our child (adopted: we are a subreaper); otherwise ECHILD at once.
    // (WNOHANG here raced with the exit under load: the server was still there.)
    if (pid_ > 0 && r.exit_code == 0) {
      while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
  }
  if (!std::getenv("BULWARK_KEEP_TEST_DIRS")) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

S3Key S3Server::AddKey(const std::string& role) const {
  RunResult r = Run({Script(), "add-key", dir_, role});
  auto kv = KeyValues(r.out);
  S3Key key{kv["access_key"], kv["secret_key"], kv["role"]};
  if (r.exit_code != 0 || key.access_key.empty() || key.secret_key.empty()) {
    ADD_FAILURE() << "scripts/s3-server add-key " << dir_ << " " << role << " failed (exit " << r.exit_code
                  << "): " << r.err;
    return {};
  }
  return key;
}

std::string S3Server::Log() const { return ReadFileOr(dir_ + "/server.log", ""); }

S3Response S3Server::Curl(std::vector<std::string> args, const std::string& body) const {
  static std::atomic<unsigned long> counter{0};
  const std::string base = dir_ + "/req-" + std::to_string(getpid()) + "-" + std::to_string(++counter);
  const std::string body_file = base + ".body", out_file = base + ".out", head_file = base + ".head";
  // (No "-H Expect:" to skip curl's 100-continue: curl 7.88 signs removed headers too.)
  std::vector<std::string> argv{"curl",   "-sS", "--max-time", "300", "-o",
                                out_file, "-D",  head_file,    "-w",  "%{http_code}"};
  bool has_body = false;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "@BODY") {
      WriteFile(body_file, body);
      args[i] = "@" + body_file;
      has_body = true;
    }
  }
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = Run(argv);
  S3Response resp;
  try {
    resp.status = std::stoi(Trim(r.out));
  } catch (...) {
    resp.status = 0;
  }
  const bool head_only = std::find(args.begin(), args.end(), "-I") != args.end();
  resp.body = head_only ? "" : ReadFileOr(out_file, "");
  if (resp.status == 0) resp.body = "curl: " + r.err;
  // The last header block (curl writes one per response, e.g. after a 100).
  std::istringstream head(ReadFileOr(head_file, ""));
  for (std::string line; std::getline(head, line);) {
    line = Trim(line);
    if (line.rfind("HTTP/", 0) == 0) {
      resp.headers.clear();
      continue;
    }
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    resp.headers[Lower(line.substr(0, colon))] = Trim(line.substr(colon + 1));
  }
  std::error_code ec;
  fs::remove(out_file, ec);
  fs::remove(head_file, ec);
  if (has_body) fs::remove(body_file, ec);
  return resp;
}

S3Response S3Server::RequestAs(const std::string& access_key, const std::string& secret_key, const std::string& method,
                               const std::string& path_and_query, const std::vector<std::string>& headers,
                               const std::string& body) const {
  std::vector<std::string> args{"--aws-sigv4", "aws:amz:" + region_ + ":s3", "--user", access_key + ":" + secret_key};
  bool has_sha = false, has_type = false;
  for (const auto& h : headers) {
    std::string name = Lower(h.substr(0, h.find(':')));
    has_sha |= name == "x-amz-content-sha256";
    has_type |= name == "content-type";
    args.push_back("-H");
    args.push_back(h);
  }
  if (!has_sha) {
    args.push_back("-H");
    args.push_back("x-amz-content-sha256: " + Sha256Hex(body));
  }
  if (method == "HEAD") {
    args.push_back("-I");  // (curl then writes the headers to -o too: Curl drops them)
  } else {
    args.push_back("-X");
    args.push_back(method);
  }
  if (method == "PUT" || method == "POST") {
    // Always send a body (Content-Length: 0 when empty), not as curl's default form type.
    // (Not "-H Content-Type:" to drop the header: curl 7.88 would sign the removed header.)
    args.push_back("--data-binary");
    args.push_back("@BODY");
    if (!has_type) {
      args.push_back("-H");
      args.push_back("Content-Type: application/octet-stream");
    }
  }
  args.push_back(endpoint_ + path_and_query);
  return Curl(args, body);
}

S3Response S3Server::Request(const std::string& method, const std::string& path_and_query,
                             const std::vector<std::string>& headers, const std::string& body) const {
  return RequestAs(access_key_, secret_key_, method, path_and_query, headers, body);
}

S3Response S3Server::Unsigned(const std::string& method, const std::string& path_and_query) const {
  return Curl({"-X", method, endpoint_ + path_and_query}, "");
}

S3Response S3Server::CreateBucket(const std::string& name, bool object_lock) const {
  std::vector<std::string> headers;
  if (object_lock) headers.push_back("x-amz-bucket-object-lock-enabled: true");
  return Request("PUT", std::string("/").append(UriEncode(name)), headers);
}

}  // namespace bulwark::testing
