#include "bulwark/source/clickhouse/parts.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "bulwark/base/error.h"
#include "bulwark/base/log.h"
#include "bulwark/base/sys.h"
#include "bulwark/source/clickhouse/backup.h"
#include "bulwark/source/clickhouse/schema.h"

namespace bulwark::source::clickhouse {
namespace {

namespace fs = std::filesystem;

std::string Slash(std::string p) {
  if (p.empty() || p.back() != '/') p += '/';
  return p;
}

uint64_t ReadIncrement(const std::string& shadow) {
  std::string s;
  try {
    s = sys::ReadFile(shadow + "increment.txt");
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kNotFound) return 0;
    throw;
  }
  return std::strtoull(s.c_str(), nullptr, 10);
}

// Regular files below `dir` that are not below `dir`/`keep`.
bool OnlyHolds(const std::string& dir, const std::string& keep) {
  std::error_code ec;
  const std::string prefix = Slash(dir) + keep;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_directory(ec)) continue;
    if (it->path().string().rfind(prefix, 0) != 0) return false;
  }
  return !ec;
}

void RemoveAll(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) throw Error(ErrorCode::kIo, "removing " + path + ": " + ec.message());
}

struct Intent {
  uint64_t before = 0;
  std::string table;  // "db.t"
  std::string rel;    // the table's data path relative to <path>, "data/db/t/"
};

std::vector<std::string> SortedEntries(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename().string());
  if (ec && ec != std::errc::no_such_file_or_directory)
    throw Error(ErrorCode::kIo, "listing " + dir + ": " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::string PartitionOfPart(const std::string& part) { return part.substr(0, part.find('_')); }

std::string ServerDataPath(Client& client, const std::string& configured) {
  std::string path = configured;
  if (path.empty()) {
    const std::string sys_path = client.Value("SELECT data_path FROM system.databases WHERE name = 'system'");
    const std::string suffix = "data/system/";
    if (sys_path.size() <= suffix.size() || sys_path.compare(sys_path.size() - suffix.size(), suffix.size(), suffix) != 0)
      throw Error(ErrorCode::kSourceFailed, "ClickHouse " + client.url() + ": cannot tell the server's data path from '" +
                                                sys_path + "'; set data_path: in the source");
    path = sys_path.substr(0, sys_path.size() - suffix.size());
  }
  path = Slash(path);
  struct stat st;
  if (::stat((path + "metadata").c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw Error(ErrorCode::kSourceFailed,
                "the ClickHouse data directory " + path + " of " + client.url() +
                    " is not here (no metadata/): mode parts needs bulwark on the server's host, with access to its "
                    "data directory (or data_path: naming it); mode native works from anywhere");
  return path;
}

std::vector<std::string> CleanShadow(const std::string& data_path, const std::string& source) {
  std::vector<std::string> removed;
  const std::string shadow = Slash(data_path) + "shadow/";
  const std::string staging = shadow + "bulwark." + source;
  const std::string intent_path = staging + ".intent";
  struct stat st;
  if (::lstat(staging.c_str(), &st) == 0) {
    RemoveAll(staging);
    removed.push_back(staging);
  }
  std::string text;
  try {
    text = sys::ReadFile(intent_path);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kNotFound) throw;
    return removed;
  }
  Intent in;
  try {
    auto j = nlohmann::json::parse(text);
    in.before = j.at("before").get<uint64_t>();
    in.table = j.at("table").get<std::string>();
    in.rel = j.at("rel").get<std::string>();
  } catch (const std::exception&) {
    log::Warn(intent_path + " is not readable; removing it (a shadow/N it names is left)");
    ::unlink(intent_path.c_str());
    return removed;
  }
  const uint64_t now = ReadIncrement(shadow);
  for (uint64_t k = in.before + 1; k <= now && k <= in.before + 100000; ++k) {
    const std::string d = shadow + std::to_string(k);
    if (::lstat(d.c_str(), &st) != 0) continue;
    if (!OnlyHolds(d, in.rel)) {
      log::Warn(d + " holds more than the parts of " + in.table + " that an interrupted backup froze: left alone");
      continue;
    }
    RemoveAll(d);
    removed.push_back(d);
  }
  ::unlink(intent_path.c_str());
  return removed;
}

PartsBackup::PartsBackup(Client& client, const std::string& source, const std::string& data_path)
    : client_(client), source_(source) {
  data_path_ = ServerDataPath(client, data_path);
  const std::string shadow = data_path_ + "shadow";
  struct stat st;
  if (::stat(shadow.c_str(), &st) != 0) {
    // The server makes shadow/ at its first FREEZE; made here, it must be the server's.
    struct stat root;
    if (::stat(data_path_.c_str(), &root) != 0) throw ErrnoError("stat", data_path_);
    if (::mkdir(shadow.c_str(), 0750) != 0 && errno != EEXIST) throw ErrnoError("mkdir", shadow);
    if (::chown(shadow.c_str(), root.st_uid, root.st_gid) != 0 && geteuid() == 0) throw ErrnoError("chown", shadow);
  }
  const std::string lock = shadow + "/bulwark." + source_ + ".lock";
  lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) throw ErrnoError("open", lock);
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    ::close(lock_fd_);
    lock_fd_ = -1;
    if (e == EWOULDBLOCK)
      throw Error(ErrorCode::kLocked, "another parts backup of source '" + source_ + "' is running on this host (" +
                                          lock + ")");
    throw ErrnoError("flock", lock, e);
  }
  staging_ = shadow + "/bulwark." + source_;
  intent_ = staging_ + ".intent";
  cleaned_ = CleanShadow(data_path_, source_);
  for (const auto& p : cleaned_) log::Info("removed " + p + ", left by an interrupted backup");
  if (::mkdir(staging_.c_str(), 0700) != 0) throw ErrnoError("mkdir", staging_);
}

PartsBackup::~PartsBackup() {
  try {
    Finish();
  } catch (const Error& e) {
    log::Warn(e.what());
  }
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

void PartsBackup::Finish() {
  if (!staging_.empty()) RemoveAll(staging_);
  if (!intent_.empty()) ::unlink(intent_.c_str());
}

FrozenTable PartsBackup::Freeze(const TableInfo& t) {
  const std::string name = QuoteName(t.database) + "." + QuoteName(t.name);
  const std::string table_path = Slash(client_.Value("SELECT data_path FROM system.tables WHERE database = " +
                                                     QuoteString(t.database) + " AND name = " + QuoteString(t.name)));
  if (table_path.rfind(data_path_, 0) != 0)
    throw Error(ErrorCode::kSourceFailed, "table " + t.key() + ": its data path " + table_path + " is not below " +
                                              data_path_);
  const std::string rel = table_path.substr(data_path_.size());
  const std::string shadow = data_path_ + "shadow/";
  FrozenTable fr;
  fr.key = t.key();
  fr.dir = staging_ + "/" + EscapeForFileName(t.database) + "/" + EscapeForFileName(t.name);
  std::error_code mkdir_ec;
  fs::create_directories(fr.dir, mkdir_ec);
  if (mkdir_ec) throw Error(ErrorCode::kIo, "creating " + fr.dir + ": " + mkdir_ec.message());

  const uint64_t before = ReadIncrement(shadow);
  const std::string intent = nlohmann::json{{"before", before}, {"table", t.key()}, {"rel", rel}}.dump();
  sys::WriteFileAtomic(intent_, AsBytes(intent));
  try {
    client_.Query("ALTER TABLE " + name + " FREEZE");
    fr.freezes = 1;
  } catch (const Error& e) {
    // Servers before whole-table FREEZE: one statement per partition.
    if (std::string(e.what()).find("Syntax error") == std::string::npos) throw;
    for (const auto& [partition, rows] : t.partition_rows) {
      client_.Query("ALTER TABLE " + name + " FREEZE PARTITION ID " + QuoteString(partition));
      fr.freezes++;
    }
  }
  const uint64_t after = ReadIncrement(shadow);
  if (after < before + static_cast<uint64_t>(fr.freezes))
    throw Error(ErrorCode::kSourceFailed, "table " + t.key() + ": " + shadow + "increment.txt went from " +
                                              std::to_string(before) + " to " + std::to_string(after) + " over " +
                                              std::to_string(fr.freezes) + " FREEZE statements");
  for (uint64_t k = before + 1; k <= after; ++k) {
    const std::string d = shadow + std::to_string(k);
    const std::string src = d + "/" + rel;
    for (const std::string& part : SortedEntries(src)) {
      if (::rename((src + part).c_str(), (fr.dir + "/" + part).c_str()) != 0) throw ErrnoError("rename", src + part);
    }
    struct stat st;
    if (::lstat(d.c_str(), &st) != 0) continue;
    if (OnlyHolds(d, rel))
      RemoveAll(d);
    else
      log::Warn(d + " holds more than " + t.key() + "'s parts (another FREEZE at the same time?): left alone");
  }
  ::unlink(intent_.c_str());
  fr.parts = SortedEntries(fr.dir);
  return fr;
}

PartsStored PartsBackup::Store(ops::TreeBackup& tree, const FrozenTable& fr, const std::string& path) {
  PartsStored ps;
  for (const std::string& part : fr.parts) {
    const std::string local = fr.dir + "/" + part;
    // The part's files and sizes (a flat directory; a part with subdirectories is always read).
    std::map<std::string, uint64_t> files;
    bool flat = true;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(local, ec)) {
      std::error_code fec;
      if (e.is_directory(fec)) flat = false;
      else files[e.path().filename().string()] = e.file_size(fec);
    }
    if (ec) throw Error(ErrorCode::kIo, "listing " + local + ": " + ec.message());
    uint64_t rows = 0;
    if (files.count("count.txt")) rows = std::strtoull(sys::ReadFile(local + "/count.txt").c_str(), nullptr, 10);
    bool reused = false;
    if (flat && files.count("checksums.txt")) {
      if (auto p = tree.ParentNode(path + "/" + part); p && p->type == repo::NodeType::kDir) {
        repo::Tree pt = tree.LoadTree(p->subtree);
        bool same = pt.nodes.size() == files.size();
        const repo::Node* sums = nullptr;
        for (const repo::Node& n : pt.nodes) {
          auto it = files.find(n.name);
          if (n.type != repo::NodeType::kFile || it == files.end() || it->second != n.size) same = false;
          if (n.name == "checksums.txt") sums = &n;
        }
        if (same && sums && tree.ContentIds(sys::ReadFile(local + "/checksums.txt")) == sums->content)
          reused = tree.AddUnchanged(path + "/" + part, *p);
      }
    }
    if (!reused) tree.AddLocal(path + "/" + part, local);
    else ps.reused++;
    for (const auto& [f, size] : files) ps.bytes += size;
    ps.rows += rows;
    ps.partition_rows[PartitionOfPart(part)] += rows;
    ps.parts.push_back(part);
    RemoveAll(local);  // the hard links go as soon as the part is stored
  }
  return ps;
}

}  // namespace bulwark::source::clickhouse
