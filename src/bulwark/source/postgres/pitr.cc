// Point-in-time recovery (pitr.h): target parsing, recovery settings, base
// backup selection, and the restore of a data directory (new or delta).
#include "bulwark/source/postgres/pitr.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "bulwark/base/civil_time.h"
#include "bulwark/base/error.h"
#include "bulwark/base/subprocess.h"
#include "bulwark/base/sys.h"
#include "bulwark/ops/fsmeta.h"
#include "bulwark/source/postgres/backup.h"

namespace bulwark::source::postgres {

namespace fs = std::filesystem;
using repo::Node;
using repo::NodeType;

namespace {

Error Invalid(const std::string& m) { return Error(ErrorCode::kInvalidArgument, m); }

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Reads exactly `n` digits at *pos.
bool Digits(std::string_view s, size_t* pos, size_t n, int64_t* out) {
  if (*pos + n > s.size() || !AllDigits(s.substr(*pos, n))) return false;
  *out = std::stoll(std::string(s.substr(*pos, n)));
  *pos += n;
  return true;
}

bool Expect(std::string_view s, size_t* pos, char c) {
  if (*pos >= s.size() || s[*pos] != c) return false;
  ++*pos;
  return true;
}

}  // namespace

int64_t ParseTargetTime(std::string_view s) {
  auto bad = [&](const std::string& why) {
    return Invalid("--target-time '" + std::string(s) + "': " + why +
                   " (want e.g. 2026-11-21T19:33:28.5Z or '2026-11-21 19:33:28.5+00')");
  };
  size_t pos = 0;
  int64_t year, month, day, hour, minute, second;
  if (!Digits(s, &pos, 4, &year) || !Expect(s, &pos, '-') || !Digits(s, &pos, 2, &month) || !Expect(s, &pos, '-') ||
      !Digits(s, &pos, 2, &day))
    throw bad("not a date YYYY-MM-DD");
  if (pos >= s.size() || (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' ')) throw bad("no time of day");
  ++pos;
  if (!Digits(s, &pos, 2, &hour) || !Expect(s, &pos, ':') || !Digits(s, &pos, 2, &minute) || !Expect(s, &pos, ':') ||
      !Digits(s, &pos, 2, &second))
    throw bad("not a time HH:MM:SS");
  int64_t micros = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    size_t digits = 0;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
      if (++digits > 6) throw bad("more than 6 fractional digits (PostgreSQL keeps microseconds)");
      micros = micros * 10 + (s[pos++] - '0');
    }
    if (digits == 0) throw bad("no digits after '.'");
    for (size_t i = digits; i < 6; ++i) micros *= 10;
  }
  if (pos < s.size() && s[pos] == ' ') ++pos;
  std::string_view zone = s.substr(pos);
  int64_t offset = 0;
  if (zone == "Z" || zone == "z" || zone == "UTC" || zone == "GMT") {
    offset = 0;
  } else if (!zone.empty() && (zone[0] == '+' || zone[0] == '-')) {
    size_t zp = 1;
    int64_t oh = 0, om = 0;
    if (!Digits(zone, &zp, 2, &oh)) throw bad("bad zone offset '" + std::string(zone) + "'");
    if (zp < zone.size()) {
      if (zone[zp] == ':') ++zp;
      if (!Digits(zone, &zp, 2, &om) || zp != zone.size()) throw bad("bad zone offset '" + std::string(zone) + "'");
    }
    if (oh > 15 || om > 59) throw bad("zone offset out of range");
    offset = (oh * 3600 + om * 60) * (zone[0] == '+' ? 1 : -1);
  } else if (zone.empty()) {
    throw bad("no time zone (PostgreSQL would read it in the server's TimeZone; add Z for UTC)");
  } else {
    throw bad("unknown zone '" + std::string(zone) + "' (use Z, UTC or an offset such as +02:00)");
  }
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) throw bad("field out of range");
  int64_t days = DaysFromCivil(year, month, day);
  if (DaysFromCivil(year, month + 1, 1) <= days) throw bad("no such day");
  int64_t secs = days * 86400 + hour * 3600 + minute * 60 + second - offset;
  if (secs < -9223372036LL || secs > 9223372035LL) throw bad("out of the supported range (1678..2261)");
  return secs * 1000000000 + micros * 1000;
}

std::string FormatTargetTime(int64_t time_ns) {
  int64_t secs = time_ns / 1000000000, rem = time_ns % 1000000000;
  if (rem < 0) {
    rem += 1000000000;
    --secs;
  }
  CivilTime c = TimeZone().ToCivil(secs);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04lld-%02d-%02d %02d:%02d:%02d", static_cast<long long>(c.year), c.month, c.day,
                c.hour, c.minute, c.second);
  std::string out = buf;
  if (rem / 1000 != 0) {
    std::snprintf(buf, sizeof buf, ".%06lld", static_cast<long long>(rem / 1000));
    out += buf;
  }
  return out + "+00";
}

RecoveryTarget ParseRecoveryTarget(const TargetFlags& f) {
  int given = !f.time.empty() + !f.lsn.empty() + !f.xid.empty() + !f.name.empty() + !f.target.empty();
  if (given > 1)
    throw Invalid("give at most one recovery target (--target-time, --target-lsn, --target-xid, --target-name, --target)");
  RecoveryTarget t;
  if (!f.time.empty()) {
    t.kind = RecoveryTarget::Kind::kTime;
    t.time_ns = ParseTargetTime(f.time);
    t.value = FormatTargetTime(t.time_ns);
  } else if (!f.lsn.empty()) {
    auto lsn = ParseLsn(f.lsn);
    if (!lsn) throw Invalid("--target-lsn '" + f.lsn + "' is not a WAL location (X/Y, hex, e.g. 0/17000438)");
    t.kind = RecoveryTarget::Kind::kLsn;
    t.lsn = *lsn;
    t.value = FormatLsn(*lsn);
  } else if (!f.xid.empty()) {
    if (!AllDigits(f.xid) || f.xid.size() > 19 || std::stoull(f.xid) == 0)
      throw Invalid("--target-xid '" + f.xid + "' is not a transaction id (a positive decimal number)");
    t.kind = RecoveryTarget::Kind::kXid;
    t.value = std::to_string(std::stoull(f.xid));
  } else if (!f.name.empty()) {
    if (f.name.size() > 63) throw Invalid("--target-name is longer than 63 bytes (PostgreSQL's limit for restore points)");
    t.kind = RecoveryTarget::Kind::kName;
    t.value = f.name;
  } else if (!f.target.empty()) {
    if (f.target != "immediate") throw Invalid("--target '" + f.target + "': the only value is 'immediate'");
    t.kind = RecoveryTarget::Kind::kImmediate;
    t.value = "immediate";
  }
  return t;
}

void ValidateRecoveryOptions(const RecoveryOptions& o) {
  if (o.action != "promote" && o.action != "pause" && o.action != "shutdown")
    throw Invalid("--target-action '" + o.action + "': use promote, pause or shutdown");
  if (o.timeline != "latest" && o.timeline != "current" &&
      !(AllDigits(o.timeline) && o.timeline.size() <= 10 && std::stoull(o.timeline) >= 1 &&
        std::stoull(o.timeline) <= 0xffffffffULL))
    throw Invalid("--target-timeline '" + o.timeline + "': use latest, current or a timeline number");
  using K = RecoveryTarget::Kind;
  if (o.inclusive && o.target.kind != K::kTime && o.target.kind != K::kLsn && o.target.kind != K::kXid)
    throw Invalid("--target-exclusive applies to --target-time, --target-lsn and --target-xid only");
  if (o.restore_command.empty()) throw Invalid("no restore_command");
}

std::vector<std::pair<std::string, std::string>> RecoverySettings(const RecoveryOptions& o) {
  ValidateRecoveryOptions(o);
  std::vector<std::pair<std::string, std::string>> s{{"restore_command", o.restore_command}};
  switch (o.target.kind) {
    case RecoveryTarget::Kind::kNone: break;
    case RecoveryTarget::Kind::kTime: s.emplace_back("recovery_target_time", o.target.value); break;
    case RecoveryTarget::Kind::kLsn: s.emplace_back("recovery_target_lsn", o.target.value); break;
    case RecoveryTarget::Kind::kXid: s.emplace_back("recovery_target_xid", o.target.value); break;
    case RecoveryTarget::Kind::kName: s.emplace_back("recovery_target_name", o.target.value); break;
    case RecoveryTarget::Kind::kImmediate: s.emplace_back("recovery_target", "immediate"); break;
  }
  if (o.inclusive) s.emplace_back("recovery_target_inclusive", *o.inclusive ? "on" : "off");
  s.emplace_back("recovery_target_timeline", o.timeline);
  s.emplace_back("recovery_target_action", o.action);
  return s;
}

std::string QuoteConfValue(std::string_view v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'') out += "''";
    else if (c == '\\') out += "\\\\";
    else out += c;
  }
  return out + "'";
}

std::string WithRecoverySettings(std::string_view conf, const std::vector<std::pair<std::string, std::string>>& settings,
                                 const std::string& header) {
  std::set<std::string> keys{"restore_command"};
  for (const auto& kv : settings) keys.insert(kv.first);
  std::string out;
  for (std::string_view line : Lines(conf)) {
    size_t k = line.find_first_not_of(" \t");
    size_t e = k == std::string_view::npos ? k : line.find_first_of(" \t=", k);
    std::string key = k == std::string_view::npos ? "" : std::string(line.substr(k, e == std::string_view::npos ? e : e - k));
    std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
    bool replaced = !key.empty() && key[0] != '#' && (keys.count(key) || key.rfind("recovery_target", 0) == 0);
    out += replaced ? "# [bulwark: replaced] " + std::string(line) : std::string(line);
    out += '\n';
  }
  out += "# " + header + "\n";
  for (const auto& [k, v] : settings) out += k + " = " + QuoteConfValue(v) + "\n";
  return out;
}

std::string ShellQuote(std::string_view s) {
  auto plain = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("/._+-:@=,%", c); };
  if (!s.empty() && std::all_of(s.begin(), s.end(), plain)) return std::string(s);
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string WalFetchRestoreCommand(const WalFetchCommand& c) {
  std::string cmd = ShellQuote(c.bulwark_bin) + " --repo " + ShellQuote(c.repo_url);
  if (!c.config_path.empty()) cmd += " --config " + ShellQuote(c.config_path);
  if (!c.key_file.empty()) cmd += " --key-file " + ShellQuote(c.key_file);
  else if (!c.password_file.empty()) cmd += " --password-file " + ShellQuote(c.password_file);
  return cmd + " wal-fetch --source " + ShellQuote(c.source) + " %f %p";
}

bool IsPhysicalSnapshot(const repo::Snapshot& s) {
  if (s.kind != kSnapshotKind) return false;
  auto pg = s.facts.find("postgres");
  return pg != s.facts.end() && pg->is_object() && pg->value("mode", "") == "physical";
}

namespace {

std::string Fact(const repo::Snapshot& s, const char* key) {
  const auto& pg = s.facts.at("postgres");
  auto it = pg.find(key);
  return it != pg.end() && it->is_string() ? it->get<std::string>() : "";
}

int64_t FactNumber(const repo::Snapshot& s, const char* key) {
  const auto& pg = s.facts.at("postgres");
  auto it = pg.find(key);
  return it != pg.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

}  // namespace

std::optional<size_t> ChooseBaseBackup(const std::vector<repo::Snapshot>& snapshots, const std::string& source,
                                       const RecoveryOptions& recovery, std::string* why) {
  std::set<std::string> sources;
  std::vector<size_t> candidates;
  for (size_t i = 0; i < snapshots.size(); ++i) {
    if (!IsPhysicalSnapshot(snapshots[i]) || (!source.empty() && snapshots[i].source != source)) continue;
    candidates.push_back(i);
    sources.insert(snapshots[i].source);
  }
  std::string of = source.empty() ? "" : " of source '" + source + "'";
  if (candidates.empty()) {
    *why = "no physical base backup" + of + " in the repository";
    return std::nullopt;
  }
  if (sources.size() > 1) {
    std::string names;
    for (const auto& s : sources) names += (names.empty() ? "" : ", ") + s;
    *why = "the repository holds physical base backups of several sources (" + names + "): give --source";
    return std::nullopt;
  }
  std::optional<uint64_t> max_timeline;
  if (AllDigits(recovery.timeline)) max_timeline = std::stoull(recovery.timeline);
  std::optional<size_t> best;
  std::string earliest;  // for the message
  for (size_t i : candidates) {
    const repo::Snapshot& s = snapshots[i];
    if (max_timeline && static_cast<uint64_t>(FactNumber(s, "timeline")) > *max_timeline) continue;
    if (recovery.target.kind == RecoveryTarget::Kind::kTime) {
      std::string stop = Fact(s, "stop_time");
      int64_t stop_ns;
      try {
        stop_ns = repo::ParseTime(stop);
      } catch (const Error&) {
        continue;  // no usable stop time: cannot tell
      }
      if (earliest.empty() || stop < earliest) earliest = stop;
      if (stop_ns > recovery.target.time_ns) continue;
    } else if (recovery.target.kind == RecoveryTarget::Kind::kLsn) {
      auto stop = ParseLsn(Fact(s, "stop_lsn"));
      if (!stop) continue;
      if (earliest.empty() || *stop < *ParseLsn(earliest)) earliest = FormatLsn(*stop);
      if (*stop > recovery.target.lsn) continue;
    }
    if (!best || s.time_ns > snapshots[*best].time_ns ||
        (s.time_ns == snapshots[*best].time_ns && s.id.Hex() > snapshots[*best].id.Hex()))
      best = i;
  }
  if (!best) {
    *why = "no physical base backup" + of + " can reach " + recovery.target.value;
    if (recovery.target.kind == RecoveryTarget::Kind::kTime || recovery.target.kind == RecoveryTarget::Kind::kLsn)
      *why += " (the earliest ends at " + (earliest.empty() ? std::string("an unknown point") : earliest) + ")";
    if (max_timeline) *why += " on timeline " + recovery.timeline + " or before";
  }
  return best;
}

// ---------------------------------------------------------------------------
// RestoreBaseBackup

namespace {

std::string AbsoluteDir(const std::string& p) {
  if (p.empty()) throw Invalid("no --target-dir");
  std::string abs = fs::absolute(fs::path(p)).lexically_normal().string();
  while (abs.size() > 1 && abs.back() == '/') abs.pop_back();
  return abs;
}

// Is `dir` absent or empty (lost+found does not count, as in ops::Restore)?
bool EmptyOrAbsent(const std::string& dir) {
  struct stat st;
  if (::lstat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) return true;
    throw ErrnoError("stat", dir);
  }
  if (!S_ISDIR(st.st_mode)) throw Error(ErrorCode::kAlreadyExists, "restore target " + dir + " exists and is not a directory");
  DIR* d = ::opendir(dir.c_str());
  if (!d) throw ErrnoError("opening restore target", dir);
  bool empty = true;
  while (dirent* e = ::readdir(d)) {
    if (!std::strcmp(e->d_name, ".") || !std::strcmp(e->d_name, "..") || !std::strcmp(e->d_name, "lost+found")) continue;
    empty = false;
  }
  ::closedir(d);
  return empty;
}

// pgBackRest's guards for a delta restore: a data directory, not in use.
void CheckDeltaTarget(const std::string& dir) {
  if (::access((dir + "/PG_VERSION").c_str(), F_OK) != 0)
    throw Error(ErrorCode::kInvalidArgument, "--delta: " + dir +
                                                 " has no PG_VERSION: it does not look like a PostgreSQL data directory "
                                                 "(refusing to replace its contents)");
  std::string pidfile;
  try {
    pidfile = sys::ReadFile(dir + "/postmaster.pid");
  } catch (const Error&) {
    return;  // none: the server is stopped
  }
  int64_t pid = std::atoll(pidfile.c_str());
  if (pid > 0 && sys::ProcessAlive(pid))
    throw Error(ErrorCode::kLocked, "--delta: PostgreSQL is running on " + dir + " (postmaster.pid names process " +
                                        std::to_string(pid) + "): stop it first");
}

struct Totals {
  uint64_t files = 0, dirs = 0, bytes = 0;
};

void CountTree(repo::Repository& repo, const Id& tree, Totals* t) {
  for (const Node& n : repo.LoadTree(tree).nodes) {
    if (n.type == NodeType::kDir) {
      t->dirs++;
      CountTree(repo, n.subtree, t);
    } else if (n.type == NodeType::kFile) {
      t->files++;
      t->bytes += n.size;
    }
  }
}

// Runs `fn(i)` for i in [0, n) on `threads` threads; the first Error thrown
// stops the others and is rethrown.
template <typename Fn>
void ParallelFor(size_t n, int threads, Fn&& fn) {
  std::atomic<size_t> next{0};
  std::optional<Error> fatal;
  std::mutex mu;
  auto run = [&] {
    try {
      for (size_t i; (i = next++) < n;) fn(i);
    } catch (const Error& e) {
      std::lock_guard<std::mutex> lock(mu);
      if (!fatal) fatal = e;
      next = n;
    }
  };
  std::vector<std::thread> pool;
  for (int i = 1; i < threads && static_cast<size_t>(i) < n; ++i) pool.emplace_back(run);
  run();
  for (auto& t : pool) t.join();
  if (fatal) throw *fatal;
}

// Delta restore into an existing directory (PitrOptions::delta).
class DeltaRestore {
 public:
  DeltaRestore(repo::Repository& repo, const PitrOptions& o, PitrResult* r) : repo_(repo), opts_(o), result_(r) {}

  void Run(const Id& tree, const std::string& dir) {
    Walk(tree, dir);
    int threads = opts_.threads > 0 ? opts_.threads : static_cast<int>(std::max(2u, std::thread::hardware_concurrency()));
    ParallelFor(check_.size(), threads, [&](size_t i) {
      bool same = SameContent(*check_[i].second, check_[i].first);
      std::lock_guard<std::mutex> lock(mu_);
      if (same) {
        result_->unchanged++;
        meta_.push_back(check_[i]);
      } else {
        write_.push_back(check_[i]);
      }
    });
    ParallelFor(write_.size(), threads, [&](size_t i) { Write(write_[i].first, *write_[i].second); });
    for (const auto& [path, node] : meta_) Apply(path, *node);
    for (const auto& [path, node] : dirs_) Apply(path, *node);  // children before parents
  }

 private:
  using Item = std::pair<std::string, const Node*>;

  // Removes an entry; `extra`: one the backup does not have (counted as removed), else one
  // about to be replaced.
  void Remove(const std::string& path, bool extra = false) {
    std::error_code ec;
    fs::remove_all(path, ec);
    if (ec) throw Error(ErrorCode::kIo, "--delta: removing " + path + ": " + ec.message());
    if (extra) result_->removed++;
  }

  void Walk(const Id& tree_id, const std::string& dir) {
    trees_.push_back(std::make_unique<repo::Tree>(repo_.LoadTree(tree_id)));
    const repo::Tree& tree = *trees_.back();
    std::set<std::string> wanted;
    for (const Node& n : tree.nodes) wanted.insert(n.name);
    if (DIR* d = ::opendir(dir.c_str())) {
      std::vector<std::string> extra;
      while (dirent* e = ::readdir(d)) {
        if (!std::strcmp(e->d_name, ".") || !std::strcmp(e->d_name, "..")) continue;
        if (!wanted.count(e->d_name)) extra.emplace_back(e->d_name);
      }
      ::closedir(d);
      for (const auto& name : extra) Remove(dir + "/" + name, true);
    } else {
      throw ErrnoError("listing", dir);
    }
    for (const Node& n : tree.nodes) {
      std::string path = dir + "/" + n.name;
      struct stat st;
      bool exists = ::lstat(path.c_str(), &st) == 0;
      switch (n.type) {
        case NodeType::kDir:
          if (exists && !S_ISDIR(st.st_mode)) {
            Remove(path);
            exists = false;
          }
          if (!exists && ::mkdir(path.c_str(), 0700) != 0) throw ErrnoError("mkdir", path);
          result_->dirs++;
          Walk(n.subtree, path);
          dirs_.emplace_back(path, &n);
          break;
        case NodeType::kFile:
          result_->files++;
          result_->bytes += n.size;
          if (exists && S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) == n.size) {
            check_.emplace_back(path, &n);
          } else {
            if (exists) Remove(path);
            write_.emplace_back(path, &n);
          }
          break;
        case NodeType::kSymlink: {
          std::string target;
          if (exists && S_ISLNK(st.st_mode)) {
            std::error_code ec;
            target = fs::read_symlink(path, ec).string();
          }
          if (!exists || !S_ISLNK(st.st_mode) || target != n.link_target) {
            if (exists) Remove(path);
            if (::symlink(n.link_target.c_str(), path.c_str()) != 0) throw ErrnoError("symlink", path);
            result_->written++;
          }
          meta_.emplace_back(path, &n);
          break;
        }
        case NodeType::kFifo:
          if (!exists || !S_ISFIFO(st.st_mode)) {
            if (exists) Remove(path);
            if (::mkfifo(path.c_str(), 0600) != 0) throw ErrnoError("mkfifo", path);
          }
          meta_.emplace_back(path, &n);
          break;
        case NodeType::kCharDev:
        case NodeType::kBlockDev: {
          mode_t type = n.type == NodeType::kCharDev ? S_IFCHR : S_IFBLK;
          if (!exists || (st.st_mode & S_IFMT) != type || st.st_rdev != n.rdev) {
            if (exists) Remove(path);
            if (::mknod(path.c_str(), type | 0600, n.rdev) != 0) throw ErrnoError("mknod", path);
          }
          meta_.emplace_back(path, &n);
          break;
        }
        case NodeType::kSocket:
          break;
      }
    }
  }

  bool SameContent(const Node& n, const std::string& path) {
    return ops::FileMatchesNode(repo_, n, path, opts_.progress ? &opts_.progress->bytes : nullptr);
  }

  void Write(const std::string& path, const Node& n) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) throw ErrnoError("--delta: removing", path);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) throw ErrnoError("creating", path);
    try {
      ops::DumpFile(repo_, n, fd);
    } catch (const Error& e) {
      ::close(fd);
      if (e.code() == ErrorCode::kNoSpace || e.code() == ErrorCode::kIo) throw;
      std::lock_guard<std::mutex> lock(mu_);
      result_->errors.push_back(path + ": " + e.what());
      return;
    }
    ::close(fd);
    if (opts_.progress) opts_.progress->bytes += n.size;
    std::lock_guard<std::mutex> lock(mu_);
    result_->written++;
    meta_.emplace_back(path, &n);
  }

  void Apply(const std::string& path, const Node& n) {
    auto w = ops::ApplyMetadata(path, n);
    result_->warnings.insert(result_->warnings.end(), w.begin(), w.end());
  }

  repo::Repository& repo_;
  const PitrOptions& opts_;
  PitrResult* result_;
  std::vector<std::unique_ptr<repo::Tree>> trees_;  // the nodes below point into them
  std::vector<Item> check_, write_, meta_, dirs_;
  std::mutex mu_;
};

// Writes `content` to `path` atomically (temp file, rename), owned by
// uid/gid when running as root, mode 0600.
void WriteOwnedFile(const std::string& path, const std::string& content, uint32_t uid, uint32_t gid) {
  std::string tmp = path + ".bulwark-tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) throw ErrnoError("creating", tmp);
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      throw ErrnoError("writing", tmp, e);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) throw ErrnoError("writing", tmp);
  if (geteuid() == 0 && ::chown(tmp.c_str(), uid, gid) != 0) throw ErrnoError("chown", tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) throw ErrnoError("renaming into place", path);
}

// Warns when the server's user (uid/gid) cannot reach `dir` through its
// parents (mode bits only; supplementary groups not considered).
void CheckParents(const std::string& dir, uint32_t uid, uint32_t gid, std::vector<std::string>* warnings) {
  if (uid == 0) return;
  for (fs::path p = fs::path(dir).parent_path(); !p.empty(); p = p.parent_path()) {
    struct stat st;
    if (::stat(p.c_str(), &st) != 0) break;
    bool ok = (st.st_mode & S_IXOTH) || (st.st_uid == uid && (st.st_mode & S_IXUSR)) ||
              (st.st_gid == gid && (st.st_mode & S_IXGRP));
    if (!ok) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
      warnings->push_back("the server's user (uid " + std::to_string(uid) + ") may not be able to reach " + dir + ": " +
                          p.string() + " has mode " + mode + " and another owner");
      break;
    }
    if (p == p.root_path()) break;
  }
}

}  // namespace

PitrResult RestoreBaseBackup(repo::Repository& repo, const repo::Snapshot& snap, const PitrOptions& opts) {
  if (!IsPhysicalSnapshot(snap))
    throw Invalid("snapshot " + snap.id.Short() + " is not a physical PostgreSQL base backup (kind '" + snap.kind + "')");
  if (snap.paths.size() != 1) throw Error(ErrorCode::kCorrupt, "snapshot " + snap.id.Short() + ": expected one path");
  PitrResult result;
  result.settings = RecoverySettings(opts.recovery);
  result.data_dir = AbsoluteDir(opts.target_dir);
  const std::string& dir = result.data_dir;
  Node root = ops::FindNode(repo, snap, snap.paths[0]);
  if (root.type != NodeType::kDir)
    throw Error(ErrorCode::kCorrupt, "snapshot " + snap.id.Short() + ": " + snap.paths[0] + " is not a directory");
  bool empty = EmptyOrAbsent(dir);
  if (!empty && !opts.delta)
    throw Error(ErrorCode::kAlreadyExists, "restore target " + dir +
                                               " is not empty: restore into a new directory, or pass --delta to update "
                                               "the data directory of a stopped server in place");
  if (!empty) CheckDeltaTarget(dir);
  if (opts.dry_run) {
    Totals t;
    CountTree(repo, root.subtree, &t);
    result.files = t.files;
    result.dirs = t.dirs;
    result.bytes = t.bytes;
    return result;
  }

  if (empty) {
    repo::Snapshot data = snap;
    data.tree = root.subtree;
    ops::RestoreOptions ro;
    ro.target = dir;
    ro.threads = opts.threads;
    ro.progress = opts.progress;
    ops::RestoreResult r = ops::Restore(repo, data, ro);
    result.files = r.files;
    result.dirs = r.dirs;
    result.bytes = r.bytes;
    result.written = r.files;
    result.errors = std::move(r.errors);
    result.warnings = std::move(r.warnings);
  } else {
    DeltaRestore(repo, opts, &result).Run(root.subtree, dir);
  }
  if (!result.errors.empty()) return result;
  // The data directory itself: the backup's owner, mode 0700 (PostgreSQL
  // refuses a group- or world-accessible one).
  if (geteuid() == 0 && ::chown(dir.c_str(), root.uid, root.gid) != 0) throw ErrnoError("chown", dir);
  if (::chmod(dir.c_str(), 0700) != 0) throw ErrnoError("chmod", dir);
  if (geteuid() == 0) CheckParents(dir, root.uid, root.gid, &result.warnings);

  if (opts.verify) {
    int major = static_cast<int>(FactNumber(snap, "server_version_num") / 10000);
    if (major < 13) major = 15;
    std::string program = ProgramPath(opts.pg_bin_dir, major, "pg_verifybackup");
    // -n: the tar holds no WAL (it comes through restore_command).
    SpawnOptions so;
    so.pipe_stdout = true;
    Subprocess v({program, "-n", "-m", dir + "/backup_manifest", dir}, so);
    std::string out;
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(v.stdout_fd(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    int status = v.Wait();
    std::string err = v.StderrTail();
    result.verify_output = out + err;
    while (!result.verify_output.empty() && result.verify_output.back() == '\n') result.verify_output.pop_back();
    if (!Subprocess::Succeeded(status))
      throw Error(ErrorCode::kCorrupt, "pg_verifybackup rejected the restored data directory " + dir + " (" +
                                           Subprocess::Describe(status) + "): " + result.verify_output +
                                           "; no recovery settings were written");
    result.verified = true;
  }

  std::string auto_conf = dir + "/postgresql.auto.conf";
  std::string conf;
  if (::access(auto_conf.c_str(), F_OK) == 0) conf = sys::ReadFile(auto_conf);
  std::string header = "Recovery settings written by bulwark pg restore at " + repo::FormatTime(repo::NowNs()) +
                       " (base backup snapshot " + snap.id.Short() + ")";
  WriteOwnedFile(auto_conf, WithRecoverySettings(conf, result.settings, header), root.uid, root.gid);
  WriteOwnedFile(dir + "/recovery.signal", "", root.uid, root.gid);
  return result;
}

}  // namespace bulwark::source::postgres
