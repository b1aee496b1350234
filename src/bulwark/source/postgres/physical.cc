// Physical base backups: pg_basebackup's tar stream stored as a tree
// (physical.h explains the choices), and the backup_label / backup_manifest
// decoders.
#include "bulwark/source/postgres/physical.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "bulwark/base/error.h"
#include "bulwark/base/log.h"
#include "bulwark/base/subprocess.h"
#include "bulwark/crypto/crypto.h"
#include "bulwark/source/postgres/backup.h"
#include "bulwark/source/postgres/libpq.h"

namespace bulwark::source::postgres {

namespace {

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool AllDigits(std::string_view s) { return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos; }

Error LabelError(const std::string& why) { return Error(ErrorCode::kCorrupt, "backup_label: " + why); }
Error ManifestError(const std::string& why) { return Error(ErrorCode::kCorrupt, "backup_manifest: " + why); }

Lsn LsnOrThrow(std::string_view s, const char* what, Error (*err)(const std::string&)) {
  auto lsn = ParseLsn(s);
  if (!lsn) throw err(std::string(what) + " '" + std::string(s) + "' is not a WAL location (X/Y)");
  return *lsn;
}

}  // namespace

std::vector<std::string_view> Lines(std::string_view text) {
  std::vector<std::string_view> lines;
  for (size_t i = 0; i < text.size();) {
    size_t j = std::min(text.find('\n', i), text.size());
    lines.push_back(text.substr(i, j - i));
    i = j + 1;
  }
  return lines;
}

BackupLabel ParseBackupLabel(std::string_view text) {
  BackupLabel l;
  bool have_start = false, have_checkpoint = false, have_timeline = false;
  for (std::string_view line : Lines(text)) {
    size_t colon = line.find(": ");
    if (colon == std::string_view::npos) continue;
    std::string_view key = line.substr(0, colon), value = TrimSpaces(line.substr(colon + 2));
    if (key == "START WAL LOCATION") {
      // "0/10000028 (file 000000010000000000000010)"
      size_t sp = value.find(' ');
      l.start_lsn = LsnOrThrow(value.substr(0, sp), "START WAL LOCATION", LabelError);
      std::string_view rest = sp == std::string_view::npos ? "" : TrimSpaces(value.substr(sp));
      auto file = rest.size() == 31 && rest.substr(0, 6) == "(file " && rest.back() == ')'
                      ? ParseWalFileName(rest.substr(6, 24))
                      : std::nullopt;
      if (!file || file->kind != WalFileKind::kSegment)
        throw LabelError("START WAL LOCATION '" + std::string(value) + "' does not name its WAL file");
      l.start_wal_segment = std::string(rest.substr(6, 24));
      have_start = true;
    } else if (key == "CHECKPOINT LOCATION") {
      l.checkpoint_lsn = LsnOrThrow(value, "CHECKPOINT LOCATION", LabelError);
      have_checkpoint = true;
    } else if (key == "START TIMELINE") {
      if (value.size() > 10 || !AllDigits(value))
        throw LabelError("START TIMELINE '" + std::string(value) + "' is not a number");
      uint64_t tl = std::stoull(std::string(value));
      if (tl == 0 || tl > 0xffffffffu) throw LabelError("START TIMELINE " + std::string(value) + " is out of range");
      l.start_timeline = static_cast<uint32_t>(tl);
      have_timeline = true;
    } else if (key == "BACKUP METHOD") {
      l.method = value;
    } else if (key == "BACKUP FROM") {
      l.backup_from = value;
    } else if (key == "START TIME") {
      l.start_time = value;
    } else if (key == "LABEL") {
      l.label = value;
    }
  }
  if (!have_start) throw LabelError("no START WAL LOCATION line");
  if (!have_checkpoint) throw LabelError("no CHECKPOINT LOCATION line");
  if (!have_timeline) throw LabelError("no START TIMELINE line (a server older than PostgreSQL 11?)");
  return l;
}

const WalRange& BackupManifest::Last() const {
  const WalRange* last = &wal_ranges.front();
  for (const auto& r : wal_ranges)
    if (r.end > last->end) last = &r;
  return *last;
}

BackupManifest ParseBackupManifest(std::string_view text) {
  using nlohmann::json;
  // The checksum covers everything up to and including the second-to-last
  // newline: the last line is the checksum's own.
  size_t newlines = 0, cut = std::string_view::npos;
  for (size_t i = text.size(); i-- > 0;) {
    if (text[i] == '\n' && ++newlines == 2) {
      cut = i;
      break;
    }
  }
  if (cut == std::string_view::npos) throw ManifestError("fewer than two lines");
  json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw ManifestError("not valid JSON");
  BackupManifest m;
  try {
    auto version = j.find("PostgreSQL-Backup-Manifest-Version");
    if (version == j.end() || !version->is_number_integer())
      throw ManifestError("no PostgreSQL-Backup-Manifest-Version");
    m.version = version->get<int>();
    if (m.version != 1 && m.version != 2)
      throw ManifestError("version " + std::to_string(m.version) + " is not supported (1 or 2)");
    if (auto sid = j.find("System-Identifier"); sid != j.end() && sid->is_number_unsigned())
      m.system_identifier = sid->get<uint64_t>();
    auto checksum = j.find("Manifest-Checksum");
    if (checksum == j.end() || !checksum->is_string()) throw ManifestError("no Manifest-Checksum");
    m.checksum = checksum->get<std::string>();
    std::string actual = crypto::Sha256(AsBytes(text.substr(0, cut + 1))).Hex();
    if (actual != m.checksum)
      throw ManifestError("checksum mismatch: the manifest says " + m.checksum + ", its content hashes to " + actual);
    if (auto files = j.find("Files"); files != j.end() && files->is_array()) {
      for (const auto& f : *files) {
        m.files++;
        if (auto size = f.find("Size"); size != f.end() && size->is_number_unsigned()) m.bytes += size->get<uint64_t>();
      }
    }
    auto ranges = j.find("WAL-Ranges");
    if (ranges == j.end() || !ranges->is_array() || ranges->empty()) throw ManifestError("no WAL-Ranges");
    for (const auto& r : *ranges) {
      if (!r.is_object()) throw ManifestError("a WAL-Ranges entry is not an object");
      WalRange w;
      auto tl = r.find("Timeline");
      auto start = r.find("Start-LSN");
      auto end = r.find("End-LSN");
      if (tl == r.end() || !tl->is_number_unsigned() || tl->get<uint64_t>() == 0 || tl->get<uint64_t>() > 0xffffffffu ||
          start == r.end() || !start->is_string() || end == r.end() || !end->is_string())
        throw ManifestError("a WAL-Ranges entry lacks Timeline, Start-LSN or End-LSN");
      w.timeline = static_cast<uint32_t>(tl->get<uint64_t>());
      w.start = LsnOrThrow(start->get<std::string>(), "Start-LSN", ManifestError);
      w.end = LsnOrThrow(end->get<std::string>(), "End-LSN", ManifestError);
      if (w.end < w.start) throw ManifestError("a WAL range ends before it starts");
      m.wal_ranges.push_back(w);
    }
  } catch (const json::exception& e) {
    throw ManifestError(e.what());
  }
  return m;
}

// ---------------------------------------------------------------------------
// backup_manifest writer

namespace {

bool PlainPath(std::string_view path) {
  for (unsigned char c : path)
    if (c < 0x20 || c >= 0x7f) return false;
  return true;
}

}  // namespace

std::string WriteBackupManifest(const std::vector<ManifestFile>& files, const std::vector<WalRange>& wal_ranges) {
  using nlohmann::json;
  std::string out = "{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [";
  bool first = true;
  for (const ManifestFile& f : files) {
    out += first ? "\n" : ",\n";
    first = false;
    if (PlainPath(f.path)) {
      out += "{ \"Path\": " + json(f.path).dump();
    } else {
      out += "{ \"Encoded-Path\": \"" + ToHex(AsBytes(f.path)) + "\"";
    }
    out += ", \"Size\": " + std::to_string(f.size) + ", \"Last-Modified\": \"" + repo::FormatTimeShort(f.mtime_ns) +
           " GMT\" }";
  }
  out += "\n],\n\"WAL-Ranges\": [\n";
  first = true;
  for (const WalRange& r : wal_ranges) {
    if (!first) out += ",\n";
    first = false;
    out += "{ \"Timeline\": " + std::to_string(r.timeline) + ", \"Start-LSN\": \"" + FormatLsn(r.start) +
           "\", \"End-LSN\": \"" + FormatLsn(r.end) + "\" }";
  }
  out += "\n],\n";
  out += "\"Manifest-Checksum\": \"" + crypto::Sha256(AsBytes(out)).Hex() + "\"}\n";
  return out;
}

// ---------------------------------------------------------------------------
// BackupPhysical

namespace {

// The server's clock_timestamp() in ns since the epoch, rounded down
// (`up` false) or up to the microsecond PostgreSQL keeps.
int64_t ServerClockNs(Connection& c, bool up) {
  std::string us = c.Value(std::string("SELECT ") + (up ? "ceil" : "floor") +
                           "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint");
  return std::stoll(us) * 1000;
}

struct ServerInfo {
  int version_num = 0;
  std::string version, system_identifier, archive_mode;
  int64_t clock_ns = 0;
};

ServerInfo QueryServer(const config::SourceConfig& source, Connection& c) {
  ServerInfo s;
  s.version_num = c.server_version();
  if (c.server_major() < 13)
    throw Error(ErrorCode::kUnsupported,
                "source '" + source.name + "': PostgreSQL " + std::to_string(c.server_major()) +
                    " writes no backup manifest; physical backups need PostgreSQL 13 or later");
  s.version = c.Value("SHOW server_version");
  s.system_identifier = c.Value("SELECT system_identifier::text FROM pg_control_system()");
  s.archive_mode = c.Value("SHOW archive_mode");
  if (s.archive_mode == "off")
    log::Warn("source '" + source.name +
              "': archive_mode is off on the server: a base backup cannot be restored "
              "without the WAL written during it (set archive_command to bulwark wal-push)");
  s.clock_ns = ServerClockNs(c, false);
  return s;
}

// The facts of a physical base backup (physical.h) from its backup_label and
// manifest.
nlohmann::json PhysicalFacts(const ServerInfo& server, const BackupLabel& l, const BackupManifest& m, int64_t stop_ns) {
  const WalRange& last = m.Last();
  return {
      {"mode", "physical"},
      {"system_identifier", server.system_identifier},
      {"timeline", l.start_timeline},
      {"stop_timeline", last.timeline},
      {"start_lsn", FormatLsn(l.start_lsn)},
      {"stop_lsn", FormatLsn(last.end)},
      {"checkpoint_lsn", FormatLsn(l.checkpoint_lsn)},
      {"start_wal_segment", l.start_wal_segment},
      {"label", l.label},
      {"backup_from", l.backup_from},
      {"label_start_time", l.start_time},
      {"start_time", repo::FormatTime(server.clock_ns)},
      {"stop_time", repo::FormatTime(stop_ns)},
      {"server_version", server.version},
      {"server_version_num", server.version_num},
      {"manifest_checksum", m.checksum},
      {"manifest_files", m.files},
      {"data_bytes", m.bytes},
  };
}

// A relation file name in a database directory: "<relfilenode>[_<fork>][.<segment>]"
// (PostgreSQL's parse_filename_for_nontemp_relation). Sets the relfilenode
// and whether the fork is "init".
bool ParseRelationFile(std::string_view name, std::string_view* relfilenode, bool* init_fork) {
  size_t dot = name.find('.');
  if (dot != std::string_view::npos) {
    if (!AllDigits(name.substr(dot + 1))) return false;
    name = name.substr(0, dot);
  }
  size_t us = name.find('_');
  std::string_view fork = us == std::string_view::npos ? "" : name.substr(us + 1);
  if (!fork.empty() && fork != "fsm" && fork != "vm" && fork != "init") return false;
  *relfilenode = name.substr(0, us);
  *init_fork = fork == "init";
  return AllDigits(*relfilenode);
}

// A temporary relation's file: "t<backend>_<relfilenode>[_<fork>][.<segment>]"
// (PostgreSQL's looks_like_temp_rel_name).
bool TempRelationFile(std::string_view name) {
  if (name.size() < 2 || name[0] != 't') return false;
  size_t us = name.find('_');
  if (us == std::string_view::npos || !AllDigits(name.substr(1, us - 1))) return false;
  std::string_view rel;
  bool init;
  return ParseRelationFile(name.substr(us + 1), &rel, &init);
}

}  // namespace

ops::EntryAction SelectDataDirectoryEntry(const std::string& rel, bool is_dir,
                                          const std::vector<std::string>& siblings) {
  using ops::EntryAction;
  size_t slash = rel.rfind('/');
  std::string_view name = slash == std::string::npos ? std::string_view(rel) : std::string_view(rel).substr(slash + 1);
  const bool top = slash == std::string::npos;
  // Directories whose contents are never backed up (basebackup.c's
  // excludeDirContents; pg_wal keeps its archive_status directory).
  static const char* const kEmptyDirs[] = {"pg_stat_tmp", "pg_replslot",  "pg_dynshmem", "pg_notify",
                                           "pg_serial",   "pg_snapshots", "pg_subtrans"};
  if (top && is_dir)
    for (const char* d : kEmptyDirs)
      if (name == d) return EntryAction::kEmptyDir;
  if (rel.rfind("pg_wal/", 0) == 0)
    return rel == "pg_wal/archive_status" && is_dir ? EntryAction::kEmptyDir : EntryAction::kSkip;
  // Temporary files and directories, anywhere (PG_TEMP_FILE_PREFIX).
  if (name.rfind("pgsql_tmp", 0) == 0) return EntryAction::kSkip;
  if (is_dir) return EntryAction::kInclude;
  // Files never backed up (excludeFiles): the server's run-time files, and a
  // backup_label or tablespace_map left behind (the backup's own are added
  // at the end).
  static const char* const kFiles[] = {"postgresql.auto.conf.tmp", "current_logfiles.tmp", "postmaster.pid",
                                       "postmaster.opts",          "backup_label",         "tablespace_map",
                                       "backup_manifest"};
  for (const char* f : kFiles)
    if (name == f) return EntryAction::kSkip;
  if (name.rfind("pg_internal.init", 0) == 0) return EntryAction::kSkip;
  // In database directories: temporary relations, and of unlogged relations
  // all but the init fork (recovery resets them from it).
  bool in_database = rel.rfind("base/", 0) == 0 || rel.rfind("pg_tblspc/", 0) == 0;
  if (in_database) {
    if (TempRelationFile(name)) return EntryAction::kSkip;
    std::string_view relfilenode;
    bool init;
    if (ParseRelationFile(name, &relfilenode, &init) && !init &&
        std::binary_search(siblings.begin(), siblings.end(), std::string(relfilenode) + "_init"))
      return EntryAction::kSkip;
  }
  return EntryAction::kInclude;
}

namespace {

// The stream method: pg_basebackup's tar (physical.h).
ops::BackupResult BackupStream(repo::Repository& repo, const config::SourceConfig& source, const ServerInfo& server,
                               const ops::BackupOptions& options) {
  const std::string where = "source '" + source.name + "'";
  std::string program = ProgramPath(source.pg_bin_dir, server.version_num / 10000, "pg_basebackup");
  std::string label = "bulwark " + source.name + " " + repo::FormatTime(server.clock_ns);
  // -w: never prompt for a password (there is no one to answer); passwords
  // come from PGPASSFILE / PGPASSWORD in our environment. The conninfo has
  // none (config enforces it), so argv shows no secret.
  std::vector<std::string> argv{program,
                                "-d",
                                source.conninfo,
                                "-D",
                                "-",
                                "-F",
                                "tar",
                                "-X",
                                "none",
                                "-c",
                                "fast",
                                "-w",
                                "--manifest-checksums=CRC32C",
                                "-l",
                                label};
  SpawnOptions so;
  so.pipe_stdout = true;
  Subprocess child(argv, so);
  // A larger pipe buffer lets pg_basebackup run ahead while a chunk is cut
  // (best effort: the default is 64 KiB; /proc/sys/fs/pipe-max-size caps it).
  ::fcntl(child.stdout_fd(), F_SETPIPE_SZ, 1 << 20);
  // pg_basebackup's failure, if it failed: the first cause of a broken tar.
  auto child_failure = [&](int status) -> std::optional<Error> {
    if (Subprocess::Succeeded(status)) return std::nullopt;
    std::string tail = child.StderrTail();
    return Error(ErrorCode::kSourceFailed, where + ": " + program + " " + Subprocess::Describe(status) +
                                               (tail.empty() ? "" : ": " + tail) + "; no snapshot was stored");
  };
  std::string label_text, manifest_text;
  bool manifest_last = false;
  ops::TarHooks hooks;
  hooks.want_content = [&](const std::string& path) {
    manifest_last = path == "backup_manifest";
    return path == "backup_label" || path == "backup_manifest";
  };
  hooks.on_content = [&](const std::string& path, std::string content) {
    (path == "backup_label" ? label_text : manifest_text) = std::move(content);
  };
  hooks.finish = [&](nlohmann::json* facts) {
    if (auto failure = child_failure(child.Wait())) throw *failure;
    auto bad = [&](const std::string& why) {
      return Error(ErrorCode::kSourceFailed,
                   where + ": " + program + " exited with status 0, but " + why + "; no snapshot was stored");
    };
    if (label_text.empty()) throw bad("its tar has no backup_label");
    if (!manifest_last) throw bad("its tar does not end with backup_manifest (truncated?)");
    BackupLabel l;
    BackupManifest m;
    try {
      l = ParseBackupLabel(label_text);
      m = ParseBackupManifest(manifest_text);
    } catch (const Error& e) {
      throw bad(e.what());
    }
    auto c = WithContext(where, [&] { return Connection::Open(source.conninfo, "bulwark"); });
    (*facts)["postgres"] = PhysicalFacts(server, l, m, ServerClockNs(*c, true));
    (*facts)["postgres"]["method"] = "stream";
    (*facts)["postgres"]["pg_basebackup"] = program;
  };
  try {
    return ops::BackupTar(repo, child.stdout_fd(), source.name, kSnapshotKind, options, hooks);
  } catch (const Error& e) {
    // Repository errors: the child is stopped (SIGTERM) and reaped with it.
    if (e.code() != ErrorCode::kSourceFailed) throw;
    // A broken stream is most likely pg_basebackup failing: say why it did.
    // Our end of the pipe goes first, so that a pg_basebackup still writing
    // cannot block the wait (it gets SIGPIPE: then the stream error stands).
    int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull >= 0) {
      ::dup3(devnull, child.stdout_fd(), O_CLOEXEC);
      ::close(devnull);
    }
    int status = child.Wait();
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGPIPE) throw;
    if (auto failure = child_failure(status)) throw *failure;
    throw;
  }
}

// The data directory of the server behind `c`, when it can be read here and
// is that server's (global/pg_control starts with its system identifier);
// otherwise why not.
struct LocalDataDir {
  std::string path;
  std::string why_not;  // empty when usable
};

LocalDataDir FindLocalDataDir(Connection& c, const ServerInfo& server) {
  LocalDataDir d;
  try {
    d.path = c.Value("SHOW data_directory");
  } catch (const Error& e) {
    d.why_not = std::string("the server does not show its data_directory (") + e.what() +
                "; the role needs pg_read_all_settings or superuser)";
    return d;
  }
  std::string control = d.path + "/global/pg_control";
  int fd = ::open(control.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    d.why_not = "its data directory " + d.path + " cannot be read here (" + std::strerror(errno) +
                "): is bulwark running on the database host, as root or the postgres user?";
    return d;
  }
  uint64_t id = 0;
  ssize_t n = ::read(fd, &id, sizeof id);  // ControlFileData.system_identifier, in the host's byte order
  ::close(fd);
  if (n != sizeof id || std::to_string(id) != server.system_identifier) {
    d.why_not = control + " here belongs to another cluster than the server's (system identifier " +
                (n == sizeof id ? std::to_string(id) : std::string("unreadable")) + ", the server's " +
                server.system_identifier + ")";
    return d;
  }
  if (c.Value("SELECT count(*) FROM pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global')") != "0") {
    d.why_not = "the cluster has tablespaces outside its data directory, which the files method does not back up yet";
    return d;
  }
  return d;
}

// Waits until the WAL segment `segment` of the cluster in `data_dir` is
// archived: PostgreSQL's own test (XLogArchiveIsBusy) on its files: its
// archive_status/.done exists, or neither its .ready nor the segment does
// (archived and recycled). pg_backup_stop(wait_for_archive => true) does the
// same but sleeps a whole second between looks; here they start at 2 ms.
// Waits as long as PostgreSQL would (forever), warning every minute.
void WaitForArchived(const std::string& data_dir, const std::string& segment, const std::string& where) {
  auto exists = [](const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0;
  };
  const std::string status = data_dir + "/pg_wal/archive_status/" + segment;
  auto archived = [&] {
    if (exists(status + ".done")) return true;
    if (exists(status + ".ready")) return false;
    return !exists(data_dir + "/pg_wal/" + segment);
  };
  auto t0 = std::chrono::steady_clock::now(), warned = t0;
  auto pause = std::chrono::milliseconds(2);
  while (!archived()) {
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(100));
    auto now = std::chrono::steady_clock::now();
    if (now - warned >= std::chrono::minutes(1)) {
      warned = now;
      log::Warn(where + ": still waiting for WAL segment " + segment + " to be archived (" +
                std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now - t0).count()) +
                " s): is archive_command failing? (pg_stat_archiver, the server log)");
    }
  }
}

// The files method: the data directory read in place between
// pg_backup_start and pg_backup_stop, in one session (physical.h).
ops::BackupResult BackupFiles(repo::Repository& repo, const config::SourceConfig& source, const ServerInfo& server,
                              Connection& c, const std::string& data_dir, const ops::BackupOptions& options) {
  const std::string where = "source '" + source.name + "'";
  const bool v15 = server.version_num >= 150000;
  std::string label = "bulwark " + source.name + " " + repo::FormatTime(server.clock_ns);
  // A long backup must not be cut by the role's timeouts.
  c.Query("SET statement_timeout = 0");
  if (server.version_num >= 140000) c.Query("SET idle_session_timeout = 0");
  // Non-exclusive: the backup ends when this session does (an error or a
  // kill here leaves nothing behind on the server). Fast checkpoint.
  const uint64_t segment_size = std::stoull(c.Value("SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'"));
  c.Value(v15 ? "SELECT pg_backup_start($1, true)::text" : "SELECT pg_start_backup($1, true, false)::text", {label});
  std::mutex mu;
  std::vector<ManifestFile> files;
  ops::DirectoryHooks hooks;
  hooks.ignore_vanished = true;
  hooks.select = SelectDataDirectoryEntry;
  hooks.on_file = [&](const std::string& rel, uint64_t size, int64_t mtime_ns) {
    std::lock_guard<std::mutex> lock(mu);
    files.push_back({rel, size, mtime_ns});
  };
  hooks.finish = [&](nlohmann::json* facts, std::vector<std::pair<std::string, std::string>>* extra) {
    // wait_for_archive false: WaitForArchived below waits, faster.
    std::vector<Row> stop = c.Query(v15 ? "SELECT lsn::text, labelfile, spcmapfile FROM pg_backup_stop(false)"
                                        : "SELECT lsn::text, labelfile, spcmapfile FROM pg_stop_backup(false, false)");
    if (stop.size() != 1 || stop[0].size() != 3 || !stop[0][0] || !stop[0][1])
      throw Error(ErrorCode::kSourceFailed, where + ": pg_backup_stop returned no backup label");
    const std::string label_text = *stop[0][1];
    const std::string spcmap = stop[0][2].value_or("");
    BackupLabel l;
    try {
      l = ParseBackupLabel(label_text);
    } catch (const Error& e) {
      throw Error(ErrorCode::kSourceFailed, where + ": pg_backup_stop: " + e.what());
    }
    auto stop_lsn = ParseLsn(*stop[0][0]);
    if (!stop_lsn) throw Error(ErrorCode::kSourceFailed, where + ": pg_backup_stop returned LSN '" + *stop[0][0] + "'");
    std::string tli = c.Value("SELECT timeline_id::text FROM pg_control_checkpoint()");
    if (tli != std::to_string(l.start_timeline))
      throw Error(ErrorCode::kSourceFailed,
                  where + ": the server changed from timeline " + std::to_string(l.start_timeline) + " to " + tli +
                      " during the backup (a promotion?); no snapshot was stored: back up again");
    // The last segment the backup needs (pg_backup_stop's XLByteToPrevSeg):
    // archived by this server unless archiving is off, or this is a standby
    // that leaves archiving to its primary (archive_mode on, not always).
    if (server.archive_mode == "always" || (server.archive_mode == "on" && l.backup_from != "standby"))
      WaitForArchived(data_dir, SegmentFileName(l.start_timeline, SegmentOf(*stop_lsn - 1, segment_size), segment_size),
                      where);
    int64_t now = repo::NowNs();
    files.push_back({"backup_label", label_text.size(), now});
    extra->emplace_back("backup_label", label_text);
    if (!spcmap.empty()) {
      files.push_back({"tablespace_map", spcmap.size(), now});
      extra->emplace_back("tablespace_map", spcmap);
    }
    std::sort(files.begin(), files.end(), [](const ManifestFile& a, const ManifestFile& b) { return a.path < b.path; });
    std::string manifest = WriteBackupManifest(files, {{l.start_timeline, l.start_lsn, *stop_lsn}});
    BackupManifest m = ParseBackupManifest(manifest);
    extra->emplace_back("backup_manifest", std::move(manifest));
    (*facts)["postgres"] = PhysicalFacts(server, l, m, ServerClockNs(c, true));
    (*facts)["postgres"]["method"] = "files";
    (*facts)["postgres"]["data_directory"] = data_dir;
  };
  return ops::BackupDirectory(repo, data_dir, source.name, kSnapshotKind, options, hooks);
}

}  // namespace

ops::BackupResult BackupPhysical(repo::Repository& repo, const config::SourceConfig& source,
                                 const ops::BackupOptions& options) {
  const std::string where = "source '" + source.name + "'";
  auto c = WithContext(where, [&] { return Connection::Open(source.conninfo, "bulwark"); });
  ServerInfo server = WithContext(where, [&] { return QueryServer(source, *c); });
  if (source.pg_method != config::PgBackupMethod::kStream) {
    LocalDataDir dir = WithContext(where, [&] { return FindLocalDataDir(*c, server); });
    if (dir.why_not.empty()) return BackupFiles(repo, source, server, *c, dir.path, options);
    if (source.pg_method == config::PgBackupMethod::kFiles)
      throw Error(ErrorCode::kUnsupported, where + ": method files: " + dir.why_not);
    log::Info(where + ": base backup through pg_basebackup: " + dir.why_not);
  }
  c.reset();
  return BackupStream(repo, source, server, options);
}

}  // namespace bulwark::source::postgres
