#include "bulwark/cli/common.h"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <iostream>

#include "bulwark/base/error.h"
#include "bulwark/base/log.h"
#include "bulwark/base/sys.h"
#include "bulwark/config/config.h"
#include "bulwark/repo/cache.h"
#include "bulwark/storage/backend.h"

namespace bulwark::cli {

Globals& G() {
  static Globals g;
  return g;
}

int& ExitCode() {
  static int code = 0;
  return code;
}

bool StdoutIsTty() { return isatty(1); }
bool StderrIsTty() { return isatty(2); }

void PrintJson(const nlohmann::json& j) {
  std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  std::cout.flush();
}

void Say(const std::string& line) {
  if (G().quiet || G().json) return;
  std::cout << line << "\n";
}

std::string ReadPasswordFrom(const std::string& file) {
  std::string s = sys::ReadFile(file);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  if (s.empty()) throw Error(ErrorCode::kInvalidArgument, "password file " + file + " is empty");
  return s;
}

std::string PromptPassword(const std::string& prompt, bool confirm) {
  int fd = ::open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (fd < 0)
    throw Error(ErrorCode::kInvalidArgument,
                "no password given: use --password-file, BULWARK_PASSWORD_FILE or BULWARK_PASSWORD (no terminal to prompt on)");
  auto read_one = [&](const std::string& p) {
    (void)!::write(fd, p.data(), p.size());
    struct termios old, noecho;
    bool tty = tcgetattr(fd, &old) == 0;
    if (tty) {
      noecho = old;
      noecho.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      tcsetattr(fd, TCSAFLUSH, &noecho);
    }
    std::string s;
    char c;
    while (::read(fd, &c, 1) == 1 && c != '\n') s.push_back(c);
    if (tty) tcsetattr(fd, TCSAFLUSH, &old);
    (void)!::write(fd, "\n", 1);
    return s;
  };
  std::string a = read_one(prompt);
  if (confirm) {
    std::string b = read_one("enter the password again: ");
    if (a != b) {
      ::close(fd);
      throw Error(ErrorCode::kInvalidArgument, "the passwords do not match");
    }
  }
  ::close(fd);
  if (a.empty()) throw Error(ErrorCode::kInvalidArgument, "empty password");
  return a;
}

static std::string EnvOr(const char* name, const std::string& fallback = "") {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

static const config::Config* LoadedConfig() {
  static std::optional<config::Config> cfg;
  static bool tried = false;
  if (!tried) {
    tried = true;
    std::string path = G().config_path.empty() ? EnvOr("BULWARK_CONFIG") : G().config_path;
    if (!path.empty()) cfg = config::LoadFile(path);
  }
  return cfg ? &*cfg : nullptr;
}

const config::Config* Config() { return LoadedConfig(); }

std::optional<std::string> PasswordFromFlagOrEnv(const std::string& file, const char* file_env,
                                                 const char* password_env) {
  if (!file.empty()) return ReadPasswordFrom(file);
  std::string f = EnvOr(file_env);
  if (!f.empty()) return ReadPasswordFrom(f);
  std::string p = EnvOr(password_env);
  if (!p.empty()) return p;
  return std::nullopt;
}

std::string ReadPassword(bool confirm, const std::string& prompt) {
  if (auto p = PasswordFromFlagOrEnv(G().password_file, "BULWARK_PASSWORD_FILE", "BULWARK_PASSWORD")) return *p;
  if (const config::Config* c = LoadedConfig()) {
    std::string name = c->default_repository;
    if (auto* r = c->Repository(name); r && !r->password_file.empty()) return ReadPasswordFrom(r->password_file);
  }
  return PromptPassword(prompt, confirm);
}

std::string RepoUrl(const std::string& source) {
  if (!G().repo.empty()) return G().repo;
  std::string env = EnvOr("BULWARK_REPOSITORY");
  if (!env.empty()) return env;
  if (const config::Config* c = LoadedConfig()) {
    std::string name = c->default_repository;
    if (name.empty() && c->repositories.size() == 1) name = c->repositories.begin()->first;  // the only one
    if (!source.empty()) {
      const auto& s = c->Source(source);
      if (!s.repository.empty()) name = s.repository;
    }
    if (auto* r = c->Repository(name)) {
      if (G().password_file.empty() && !r->password_file.empty() && EnvOr("BULWARK_PASSWORD_FILE").empty() &&
          EnvOr("BULWARK_PASSWORD").empty())
        G().password_file = r->password_file;
      return r->url;
    }
    if (!name.empty()) throw Error(ErrorCode::kInvalidArgument, c->path + ": no repository named '" + name + "'");
  }
  throw Error(ErrorCode::kInvalidArgument,
              "no repository given: use --repo, BULWARK_REPOSITORY, or a config file with a default_repository (or "
              "exactly one repository)");
}

void AddS3Flags(CLI::App& app) {
  Globals& g = G();
  app.add_option("--s3-endpoint", g.s3_endpoint, "S3 endpoint, e.g. https://minio.example:9000 (or BULWARK_S3_ENDPOINT)");
  app.add_option("--s3-region", g.s3_region, "S3 signing region (or BULWARK_S3_REGION, AWS_REGION)");
  app.add_option("--s3-profile", g.s3_profile, "AWS profile for S3 credentials and region (or AWS_PROFILE)");
  app.add_option("--s3-path-style", g.s3_path_style, "true: https://host/bucket/key; false: https://bucket.host/key");
  app.add_option("--s3-tls-verify", g.s3_tls_verify, "false: do not verify the S3 server's certificate (test setups)");
  app.add_option("--s3-max-attempts", g.s3_max_attempts, "attempts per S3 request, 1..100 (default 8)");
}

namespace {

std::optional<bool> FlagBool(const std::string& v, const char* flag) {
  if (v.empty()) return std::nullopt;
  if (v == "true" || v == "yes" || v == "1") return true;
  if (v == "false" || v == "no" || v == "0") return false;
  throw Error(ErrorCode::kInvalidArgument, std::string(flag) + " must be true or false, got '" + v + "'");
}

storage::s3::S3Settings S3FlagSettings() {
  const Globals& g = G();
  storage::s3::S3Settings s;
  if (!g.s3_endpoint.empty()) s.endpoint = g.s3_endpoint;
  if (!g.s3_region.empty()) s.region = g.s3_region;
  if (!g.s3_profile.empty()) s.profile = g.s3_profile;
  s.path_style = FlagBool(g.s3_path_style, "--s3-path-style");
  s.tls_verify = FlagBool(g.s3_tls_verify, "--s3-tls-verify");
  if (!g.s3_max_attempts.empty()) {
    int n = 0;
    auto [ptr, ec] = std::from_chars(g.s3_max_attempts.data(), g.s3_max_attempts.data() + g.s3_max_attempts.size(), n);
    if (ec != std::errc() || ptr != g.s3_max_attempts.data() + g.s3_max_attempts.size() || n < 1 || n > 100)
      throw Error(ErrorCode::kInvalidArgument, "--s3-max-attempts must be 1..100, got '" + g.s3_max_attempts + "'");
    s.max_attempts = n;
  }
  return s;
}

}  // namespace

std::unique_ptr<storage::Backend> OpenBackend(const std::string& url) {
  storage::s3::S3Settings configured;
  if (const config::Config* c = LoadedConfig())
    for (const auto& [name, r] : c->repositories)
      if (r.url == url) configured = r.s3;
  return storage::Open(url, configured, S3FlagSettings());
}

std::unique_ptr<repo::Repository> OpenRepositoryAt(const std::string& url, const std::string& password, bool load_index) {
  auto backend = OpenBackend(url);
  auto repo = repo::Repository::Open(std::move(backend), password);
  if (load_index) repo->LoadIndex();
  return repo;
}

// Fails before asking for a password when there is no repository at `url`.
static void RequireRepository(const std::string& url) {
  if (!OpenBackend(url)->Stat("config"))
    throw Error(ErrorCode::kNoRepository, "no repository at " + url + " (run 'bulwark init' to create one)");
}

static std::string KeyFilePath() { return G().key_file.empty() ? EnvOr("BULWARK_KEY_FILE") : G().key_file; }

std::optional<repo::MachineKey> MachineKeyFromFlags() {
  std::string path = KeyFilePath();
  if (path.empty()) return std::nullopt;
  std::string text = WithContext("reading the machine key file (--key-file, BULWARK_KEY_FILE)",
                                  [&] { return sys::ReadFile(path); });
  return repo::MachineKey::Decode(text, "machine key file " + path);
}

std::unique_ptr<repo::Repository> OpenRepository(bool load_index, const std::string& source) {
  std::string url = RepoUrl(source);
  if (auto key = MachineKeyFromFlags()) {
    // Two reads (key slot, config), no listing, no KDF: cheap enough per WAL segment.
    auto repo = repo::Repository::OpenWithMachineKey(OpenBackend(url), *key, "machine key file " + KeyFilePath());
    AuditAttach(repo.get(), url);
    if (load_index) repo->LoadIndex();
    return repo;
  }
  RequireRepository(url);
  auto repo = OpenRepositoryAt(url, ReadPassword(false), false);
  AuditAttach(repo.get(), url);
  if (load_index) repo->LoadIndex();
  return repo;
}

std::string ConfiguredSource(const std::string& source) {
  const config::Config* c = LoadedConfig();
  return c && c->sources.count(source) ? source : "";
}

std::unique_ptr<repo::Repository> OpenConfiguredRepository(const config::RepositoryConfig& r, bool load_index) {
  RequireRepository(r.url);
  std::string password;
  if (!r.password_file.empty()) password = ReadPasswordFrom(r.password_file);
  else if (auto p = PasswordFromFlagOrEnv(G().password_file, "BULWARK_PASSWORD_FILE", "BULWARK_PASSWORD")) password = *p;
  else password = PromptPassword("password of repository '" + r.name + "' (" + r.url + "): ", false);
  auto repo = OpenRepositoryAt(r.url, password, false);
  AuditAttach(repo.get(), r.url);
  if (load_index) repo->LoadIndex();
  return repo;
}

std::string FromRepoFlags::Url() const { return repo.empty() ? EnvOr("BULWARK_FROM_REPOSITORY") : repo; }

void AddFromRepoFlags(CLI::App* cmd, FromRepoFlags* f) {
  cmd->add_option("--from-repo", f->repo, "the other (source) repository (or BULWARK_FROM_REPOSITORY)");
  cmd->add_option("--from-password-file", f->password_file,
                  "file holding the source repository's password (or BULWARK_FROM_PASSWORD_FILE, BULWARK_FROM_PASSWORD)");
}

std::unique_ptr<repo::Repository> OpenFromRepository(const FromRepoFlags& f, bool load_index) {
  std::string url = f.Url();
  if (url.empty()) throw Error(ErrorCode::kInvalidArgument, "no source repository given: use --from-repo or BULWARK_FROM_REPOSITORY");
  RequireRepository(url);
  auto password = PasswordFromFlagOrEnv(f.password_file, "BULWARK_FROM_PASSWORD_FILE", "BULWARK_FROM_PASSWORD");
  if (!password) password = PromptPassword("source repository password (" + url + "): ", false);
  return WithContext("source repository " + url, [&] { return OpenRepositoryAt(url, *password, load_index); });
}

std::string RepositoryCacheDir(const Id& repo_id) {
  if (G().no_cache) return "";
  std::string base = repo::CacheBaseDir(std::getenv("BULWARK_CACHE_DIR"), std::getenv("XDG_CACHE_HOME"), std::getenv("HOME"));
  return base.empty() ? "" : base + "/" + repo_id.Hex();
}

int64_t LockWaitSeconds() { return config::ParseDuration(G().lock_wait); }

static void RefuseNoLock(const std::string& command) {
  if (G().no_lock)
    throw Error(ErrorCode::kInvalidArgument,
                "--no-lock is only for commands that read (restore, dump, check, dry runs); " + command +
                    " changes the repository and always locks it");
}

std::unique_ptr<repo::Lock> LockForReading(repo::Repository* repo) {
  if (G().no_lock) return nullptr;
  try {
    return repo::Lock::Acquire(repo, false, LockWaitSeconds());
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kPermission) throw;
    log::Warn("cannot write a lock object, read-only credentials? (" + std::string(e.what()) +
              "): proceeding without a repository lock; a concurrent prune could remove data being read (--no-lock "
              "skips the lock and this warning)");
    return nullptr;
  }
}

std::unique_ptr<repo::Lock> LockForWriting(repo::Repository* repo, const std::string& command) {
  RefuseNoLock(command);
  return repo::Lock::Acquire(repo, false, LockWaitSeconds());
}

void RequireDelete(repo::Repository* repo, const std::string& command, const std::vector<repo::ObjectType>& deletes) {
  try {
    repo->ProbeDelete(deletes);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kPermission) throw;
    throw e.WithContext(command + " needs delete permission on the repository");
  }
}

std::unique_ptr<repo::Lock> LockExclusive(repo::Repository* repo, const std::string& command,
                                          const std::vector<repo::ObjectType>& deletes) {
  RefuseNoLock(command);
  std::vector<repo::ObjectType> types = deletes;
  types.push_back(repo::ObjectType::kLock);
  RequireDelete(repo, command, types);
  return repo::Lock::Acquire(repo, true, LockWaitSeconds());
}

void AddFilterFlags(CLI::App* cmd, SnapshotFilterFlags* f) {
  cmd->add_option("--source", f->source, "only snapshots of this configured source");
  cmd->add_option("--host", f->host, "only snapshots from this host");
  cmd->add_option("--tag", f->tags, "only snapshots with this tag (repeatable)")->allow_extra_args(false);
  cmd->add_option("--path", f->paths, "only snapshots that include this path (repeatable)")->allow_extra_args(false);
}

}  // namespace bulwark::cli
