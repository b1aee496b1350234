#include "ch_server.h"

#include <curl/curl.h>
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <stdexcept>

namespace bulwark::testing {
namespace {

namespace fs = std::filesystem;

std::string Script() { return std::string(BULWARK_SOURCE_DIR) + "/scripts/ch-server"; }

int ReadInt(const std::string& path) { return std::atoi(Trim(ReadFileOr(path, "0")).c_str()); }

void Reap(int pid) {
  if (pid <= 0) return;
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

size_t Append(char* p, size_t size, size_t n, void* ud) {
  static_cast<std::string*>(ud)->append(p, size * n);
  return size * n;
}

}  // namespace

std::unique_ptr<ChServer> ChServer::Start(std::string* why) {
  char tmpl[] = "/tmp/bulwark-ch.XXXXXX";  // /tmp is traversable by the clickhouse user
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
  // Adopt the server's launcher (runuser) and watcher when the script exits, so that Stop can
  // reap them (as PgServer does).
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  std::unique_ptr<ChServer> s(new ChServer);
  s->dir_ = tmpl;
  RunResult r = Run({Script(), "start", s->dir_}, {"CH_SERVER_PARENT_PID=" + std::to_string(getpid())});
  if (r.exit_code == 3) {
    *why = "the ClickHouse test server could not be installed (scripts/ch-server install needs root, apt-get and "
           "Debian's clickhouse-server): " +
           Trim(r.err);
    if (InCi()) ADD_FAILURE() << *why << " [CI is set: failing instead of skipping]";
    std::error_code ec;
    fs::remove_all(s->dir_, ec);
    s->dir_.clear();
    return nullptr;
  }
  s->started_ = true;
  if (r.exit_code != 0) {
    *why = "scripts/ch-server start failed (exit " + std::to_string(r.exit_code) + "): " + r.err + "\nlog:\n" +
           s->Log();
    ADD_FAILURE() << *why;
    return nullptr;
  }
  s->pid_ = ReadInt(s->dir_ + "/pid");
  s->port_ = ReadInt(s->dir_ + "/http-port");
  s->launcher_pid_ = ReadInt(s->dir_ + "/launcher-pid");
  s->watcher_pid_ = ReadInt(s->dir_ + "/watcher-pid");
  if (s->pid_ <= 0 || s->port_ <= 0 || Trim(r.out) != s->url() + " " + std::to_string(s->pid_)) {
    *why = "scripts/ch-server start left an incomplete " + s->dir_ + " (stdout: " + r.out + ")";
    ADD_FAILURE() << *why;
    return nullptr;
  }
  return s;
}

bool ChServer::Stop() {
  if (!started_ || stopped_) return true;
  RunResult r = Run({Script(), "stop", dir_});
  if (r.exit_code != 0) {
    ADD_FAILURE() << "scripts/ch-server stop " << dir_ << ": " << r.err;
    return false;
  }
  stopped_ = true;
  Reap(launcher_pid_ > 0 ? launcher_pid_ : ReadInt(dir_ + "/launcher-pid"));
  Reap(watcher_pid_ > 0 ? watcher_pid_ : ReadInt(dir_ + "/watcher-pid"));
  return true;
}

ChServer::~ChServer() {
  Stop();
  if (!dir_.empty() && !std::getenv("BULWARK_KEEP_TEST_DIRS")) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

std::string ChServer::password() const { return ReadFileOr(password_file(), ""); }

std::string ChServer::Log() const {
  return ReadFileOr(dir_ + "/server.log", "") + ReadFileOr(dir_ + "/server.err.log", "");
}

namespace {
ChServer::Reply Post(const std::string& url, const std::string& body, const std::vector<std::string>& headers);
}  // namespace

ChServer::Reply ChServer::ExecAsBulwark(const std::string& sql) const {
  return Post(url() + "/", sql, {"X-ClickHouse-User: bulwark", "X-ClickHouse-Key: " + password()});
}

bool ChServer::SetBulwarkProfile(const std::string& xml, const std::string& setting, const std::string& value) {
  const std::string path = dir_ + "/users.xml";
  std::string users = ReadFileOr(path, "");
  const std::string open = "<bulwark><log_queries>0</log_queries>";
  size_t start = users.find(open);
  size_t end = users.find("</bulwark>", start);
  if (start == std::string::npos || end == std::string::npos) return false;
  users = users.substr(0, start + open.size()) + xml + users.substr(end);
  // Written in place (the server reads it by name; its owner and mode stay).
  WriteFile(path, users);
  return WaitFor(
      [&] {
        Reply r = ExecAsBulwark("SELECT value FROM system.settings WHERE name = '" + setting + "'");
        return r.status == 200 && Trim(r.body) == value;
      },
      60, 100);
}

namespace {
ChServer::Reply Post(const std::string& url, const std::string& body, const std::vector<std::string>& extra) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  ChServer::Reply reply;
  CURL* h = curl_easy_init();
  if (!h) return {0, "curl_easy_init failed"};
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_slist* headers = curl_slist_append(nullptr, "Expect:");
  for (const auto& x : extra) headers = curl_slist_append(headers, x.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  CURLcode rc = curl_easy_perform(h);
  if (rc == CURLE_OK)
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &reply.status);
  else
    reply.body = std::string("curl: ") + curl_easy_strerror(rc) + "; " + reply.body;
  curl_slist_free_all(headers);
  curl_easy_cleanup(h);
  return reply;
}
}  // namespace

ChServer::Reply ChServer::Exec(const std::string& sql, const std::string& data, const std::string& params) const {
  std::string url = this->url() + "/?";
  std::string body = sql;
  if (!data.empty()) {
    CURL* h = curl_easy_init();
    char* q = curl_easy_escape(h, sql.c_str(), static_cast<int>(sql.size()));
    url += std::string("query=") + q + "&";
    curl_free(q);
    curl_easy_cleanup(h);
    body = data;
  }
  return Post(url + params, body, {});
}

std::string ChServer::Query(const std::string& sql, const std::string& params) const {
  Reply r = Exec(sql, "", params);
  EXPECT_EQ(r.status, 200) << "ClickHouse query failed: " << sql << "\n" << r.body;
  if (!r.body.empty() && r.body.back() == '\n') r.body.pop_back();
  return r.body;
}

}  // namespace bulwark::testing
