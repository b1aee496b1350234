// Physical base backups: pg_basebackup's tar stream stored as a tree
// (physical.h explains the choices), and the backup_label / backup_manifest
// decoders.
#include "bulwark/source/postgres/physical.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <nlohmann/json.hpp>

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
      if (value.empty() || value.size() > 10 || value.find_first_not_of("0123456789") != std::string_view::npos)
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
    if (version == j.end() || !version->is_number_integer()) throw ManifestError("no PostgreSQL-Backup-Manifest-Version");
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
  std::string version, system_identifier;
  int64_t clock_ns = 0;
};

ServerInfo QueryServer(const config::SourceConfig& source) {
  auto c = Connection::Open(source.conninfo, "bulwark");
  ServerInfo s;
  s.version_num = c->server_version();
  if (c->server_major() < 13)
    throw Error(ErrorCode::kUnsupported, "source '" + source.name + "': PostgreSQL " + std::to_string(c->server_major()) +
                                             " writes no backup manifest; physical backups need PostgreSQL 13 or later");
  s.version = c->Value("SHOW server_version");
  s.system_identifier = c->Value("SELECT system_identifier::text FROM pg_control_system()");
  if (c->Value("SHOW archive_mode") == "off")
    log::Warn("source '" + source.name + "': archive_mode is off on the server: a base backup cannot be restored "
              "without the WAL written during it (set archive_command to bulwark wal-push)");
  s.clock_ns = ServerClockNs(*c, false);
  return s;
}

}  // namespace

ops::BackupResult BackupPhysical(repo::Repository& repo, const config::SourceConfig& source,
                                 const ops::BackupOptions& options) {
  const std::string where = "source '" + source.name + "'";
  ServerInfo server = WithContext(where, [&] { return QueryServer(source); });
  std::string program = ProgramPath(source.pg_bin_dir, server.version_num / 10000, "pg_basebackup");
  std::string label = "bulwark " + source.name + " " + repo::FormatTime(server.clock_ns);
  // -w: never prompt for a password (there is no one to answer); passwords
  // come from PGPASSFILE / PGPASSWORD in our environment. The conninfo has
  // none (config enforces it), so argv shows no secret.
  std::vector<std::string> argv{program, "-d", source.conninfo, "-D", "-", "-F", "tar", "-X", "none", "-c", "fast",
                                "-w", "--manifest-checksums=CRC32C", "-l", label};
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
      return Error(ErrorCode::kSourceFailed, where + ": " + program + " exited with status 0, but " + why +
                                                 "; no snapshot was stored");
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
    int64_t stop_ns = ServerClockNs(*c, true);
    const WalRange& last = m.Last();
    (*facts)["postgres"] = {
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
        {"pg_basebackup", program},
    };
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

}  // namespace bulwark::source::postgres
