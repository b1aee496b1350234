#include "bulwark/source/postgres/logical.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <set>

#include "bulwark/base/error.h"
#include "bulwark/base/log.h"
#include "bulwark/base/subprocess.h"
#include "bulwark/ops/restore.h"
#include "bulwark/repo/tree.h"
#include "bulwark/source/postgres/backup.h"

namespace bulwark::source::postgres {

namespace {

constexpr const char* kGlobalsFile = "globals.sql";

// One statement counting every user table; count(*) runs inside
// query_to_xml so a single round trip covers all tables.
constexpr const char* kRowCountsSql = R"(
SELECT n.nspname || '.' || c.relname,
       (xpath('/row/c/text()',
              query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
ORDER BY 1)";

std::string Join(const std::vector<std::string>& v, const std::string& sep) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

// The fact tables that `requested` ("t" or "schema.t") names.
std::vector<std::string> ResolveTables(const std::map<std::string, int64_t>& facts,
                                       const std::vector<std::string>& requested, const std::string& snapshot) {
  std::vector<std::string> out;
  std::vector<std::string> all;
  for (const auto& [k, v] : facts) all.push_back(k);
  for (const auto& t : requested) {
    std::vector<std::string> hits;
    for (const auto& k : all) {
      size_t dot = k.find('.');
      if (k == t || (t.find('.') == std::string::npos && dot != std::string::npos && k.substr(dot + 1) == t))
        hits.push_back(k);
    }
    if (hits.empty())
      throw Error(ErrorCode::kNotFound, "table '" + t + "' is not in snapshot " + snapshot +
                                            (all.empty() ? " (it has no tables)" : " (tables: " + Join(all, ", ") + ")"));
    if (hits.size() > 1)
      throw Error(ErrorCode::kInvalidArgument,
                  "table '" + t + "' is ambiguous in snapshot " + snapshot + ": " + Join(hits, ", ") + "; give schema.table");
    out.push_back(hits[0]);
  }
  return out;
}

// Unlinks and closes a temporary file on scope exit.
struct TempFile {
  std::string path;
  int fd = -1;
  ~TempFile() {
    if (fd >= 0) ::close(fd);
    if (!path.empty()) ::unlink(path.c_str());
  }
};

}  // namespace

std::map<std::string, int64_t> TableRowCounts(Connection& conn) {
  std::map<std::string, int64_t> out;
  for (const auto& row : conn.Query(kRowCountsSql))
    if (row.size() == 2 && row[0] && row[1]) out[*row[0]] = std::stoll(*row[1]);
  return out;
}

ops::BackupResult BackupLogical(repo::Repository& repo, const config::SourceConfig& source,
                                const ops::BackupOptions& options) {
  return WithContext("source '" + source.name + "'", [&] {
    auto conn = Connection::Open(source.conninfo);
    const int major = conn->server_major();
    const std::string pg_dump = ProgramPath(source.pg_bin_dir, major, "pg_dump");
    const std::string pg_dumpall = source.pg_globals ? ProgramPath(source.pg_bin_dir, major, "pg_dumpall") : "";

    nlohmann::json pf;
    pf["mode"] = "logical";
    pf["database"] = conn->database();
    pf["server_version"] = conn->Value("SHOW server_version");
    pf["server_version_num"] = conn->server_version();
    pf["database_size_bytes"] = std::stoll(conn->Value("SELECT pg_database_size(current_database())"));
    try {  // outside the transaction: a permission error must not abort it
      pf["system_identifier"] = conn->Value("SELECT system_identifier::text FROM pg_control_system()");
    } catch (const Error& e) {
      log::Debug(std::string("system identifier not readable: ") + e.what());
    }

    // The dump's snapshot: facts read here describe exactly what pg_dump sees.
    conn->Query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
    const std::string snapshot_id = conn->Value("SELECT pg_export_snapshot()");
    pf["snapshot"] = snapshot_id;
    nlohmann::json tables = nlohmann::json::object();
    for (const auto& [t, rows] : TableRowCounts(*conn)) tables[t] = rows;
    pf["tables"] = tables;
    if (!source.schema_version_query.empty())
      pf["schema_version"] =
          WithContext("schema_version_query", [&] { return conn->Value(source.schema_version_query); });

    std::string db = conn->database();
    std::string dump_file = repo::IsSafeName(db + ".dump") && db + ".dump" != kGlobalsFile ? db + ".dump" : "database.dump";
    pf["dump_file"] = dump_file;
    pf["dump_format"] = "custom";
    std::vector<ops::CommandStream> streams;
    if (source.pg_globals) {
      pf["globals_file"] = kGlobalsFile;
      streams.push_back({kGlobalsFile, {pg_dumpall, "--globals-only", "-d", source.conninfo}, true});
    }
    streams.push_back(
        {dump_file, {pg_dump, "-Fc", "-Z0", "--snapshot=" + snapshot_id, "-d", source.conninfo}, true});

    ops::BackupOptions o = options;
    o.source = source.name;
    o.facts["postgres"] = pf;
    return ops::BackupCommands(repo, streams, kSnapshotKind, o, [&](nlohmann::json*) { conn->Query("COMMIT"); });
  });
}

std::map<std::string, int64_t> FactTableCounts(const repo::Snapshot& snapshot) {
  std::map<std::string, int64_t> out;
  const nlohmann::json& facts = snapshot.facts;
  if (!facts.is_object() || !facts.contains("postgres") || !facts["postgres"].is_object()) return out;
  const nlohmann::json& pf = facts["postgres"];
  if (!pf.contains("tables") || !pf["tables"].is_object()) return out;
  for (const auto& [k, v] : pf["tables"].items()) {
    if (!v.is_number_integer())
      throw Error(ErrorCode::kCorrupt,
                  "snapshot " + snapshot.id.Short() + ": row count of '" + k + "' is not an integer");
    out[k] = v.get<int64_t>();
  }
  return out;
}

std::string TableCountCheck::Describe() const {
  if (!restored_rows) return table + ": missing (backup: " + std::to_string(backup_rows) + " rows)";
  return table + ": " + std::to_string(*restored_rows) + " rows, backup: " + std::to_string(backup_rows);
}

std::vector<TableCountCheck> CompareTableCounts(const std::map<std::string, int64_t>& backup,
                                                const std::map<std::string, int64_t>& restored,
                                                const std::vector<std::string>& tables) {
  std::vector<std::string> names = tables;
  if (names.empty())
    for (const auto& [t, n] : backup) names.push_back(t);
  std::vector<TableCountCheck> out;
  for (const auto& t : names) {
    TableCountCheck c;
    c.table = t;
    if (auto b = backup.find(t); b != backup.end()) c.backup_rows = b->second;
    if (auto it = restored.find(t); it != restored.end()) c.restored_rows = it->second;
    out.push_back(std::move(c));
  }
  return out;
}

RestoreDumpResult RestoreDump(repo::Repository& repo, const repo::Snapshot& snapshot, const RestoreDumpOptions& opt) {
  auto t0 = std::chrono::steady_clock::now();
  const std::string sid = snapshot.id.Short();
  const nlohmann::json* pf = snapshot.facts.contains("postgres") ? &snapshot.facts["postgres"] : nullptr;
  if (snapshot.kind != kSnapshotKind || !pf || pf->value("mode", "") != "logical")
    throw Error(ErrorCode::kInvalidArgument, "snapshot " + sid + " is not a logical PostgreSQL backup (kind '" +
                                                 snapshot.kind + "')");
  if (opt.dbname.empty()) throw Error(ErrorCode::kInvalidArgument, "no database name given (--dbname)");
  if (opt.jobs < 1) throw Error(ErrorCode::kInvalidArgument, "--jobs must be at least 1");
  const std::map<std::string, int64_t> fact_tables = FactTableCounts(snapshot);
  const std::vector<std::string> tables = ResolveTables(fact_tables, opt.tables, sid);
  const repo::Node dump = ops::FindNode(repo, snapshot, "/" + pf->value("dump_file", std::string()));
  auto step = [&](const std::string& s) {
    if (opt.on_step) opt.on_step(s);
  };

  RestoreDumpResult r;
  r.database = opt.dbname;
  auto conn = Connection::Open(opt.target_conninfo);
  const bool exists = !conn->Query("SELECT 1 FROM pg_database WHERE datname = $1", {opt.dbname}).empty();
  if (exists && !opt.clean)
    throw Error(ErrorCode::kAlreadyExists, "database '" + opt.dbname + "' already exists on " + conn->where() +
                                               "; restore into a new database, or give --clean to replace the objects "
                                               "in it");
  r.created = !exists;
  const int major = conn->server_major();
  const std::string target_db = WithDatabase(opt.target_conninfo, opt.dbname);

  std::vector<std::string>& argv = r.pg_restore_argv;
  argv = {ProgramPath(opt.pg_bin_dir, major, "pg_restore"), "--exit-on-error", "-d", target_db};
  if (opt.clean) argv.insert(argv.end(), {"--clean", "--if-exists"});
  if (opt.no_owner) argv.push_back("--no-owner");
  std::set<std::string> schemas;
  for (const auto& t : tables) {
    size_t dot = t.find('.');
    schemas.insert(t.substr(0, dot));
    argv.push_back("--table=" + t.substr(dot + 1));
  }
  if (!tables.empty())
    for (const auto& s : schemas) argv.push_back("--schema=" + s);
  TempFile temp;
  if (opt.jobs > 1) {
    argv.push_back("--jobs=" + std::to_string(opt.jobs));
    std::string dir = opt.temp_dir;
    if (dir.empty()) dir = std::getenv("TMPDIR") && *std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp";
    temp.path = dir + "/bulwark-restore-XXXXXX";
    argv.push_back(temp.path);  // the name is fixed below, before it runs
  }
  if (opt.dry_run) {
    step(std::string(r.created ? "would create" : "would restore into existing") + " database '" + opt.dbname +
         "' on " + conn->where());
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (opt.jobs > 1) argv.back() = "<temporary copy of " + dump.name + ">";
    temp.path.clear();
    return r;
  }

  if (r.created) {
    step("creating database '" + opt.dbname + "' on " + conn->where());
    conn->Query("CREATE DATABASE " + conn->QuoteIdent(opt.dbname) + " TEMPLATE template0");
  }
  auto created_note = [&](const Error& e) {
    return r.created ? e.WithContext("database '" + opt.dbname + "' was created and is left for inspection") : e;
  };
  try {
    if (opt.globals && pf->contains("globals_file")) {
      step("applying roles and tablespaces (globals.sql); errors for ones that exist are expected");
      const repo::Node g = ops::FindNode(repo, snapshot, "/" + (*pf)["globals_file"].get<std::string>());
      SpawnOptions so;
      so.pipe_stdin = true;
      so.forward_stderr = true;
      Subprocess psql({ProgramPath(opt.pg_bin_dir, major, "psql"), "-X", "-q", "-d", target_db, "-f", "-"}, so);
      ops::DumpFile(repo, g, psql.stdin_fd());
      psql.WaitOrThrow();
    }
    if (opt.jobs > 1) {
      temp.fd = ::mkstemp(temp.path.data());
      if (temp.fd < 0) {
        int e = errno;
        std::string p = temp.path;
        temp.path.clear();
        throw ErrnoError("creating a temporary copy of the dump (pg_restore -j needs a file; --temp-dir)", p, e);
      }
      ::fchmod(temp.fd, 0600);
      argv.back() = temp.path;
      step("writing the dump to " + temp.path + " for a parallel restore");
      r.dump_bytes = ops::DumpFile(repo, dump, temp.fd);
      step("pg_restore -j " + std::to_string(opt.jobs) + " into '" + opt.dbname + "'");
      Subprocess pr(argv, {});
      pr.WaitOrThrow();
    } else {
      step("pg_restore into '" + opt.dbname + "' (streaming)");
      SpawnOptions so;
      so.pipe_stdin = true;
      Subprocess pr(argv, so);
      try {
        r.dump_bytes = ops::DumpFile(repo, dump, pr.stdin_fd());
      } catch (const Error&) {
        // pg_restore stopping early breaks the pipe: its error is the news.
        if (!Subprocess::Succeeded(pr.Wait())) pr.WaitOrThrow();
        throw;
      }
      pr.WaitOrThrow();
    }

    auto restored = Connection::Open(target_db);
    if (opt.analyze) {
      step("ANALYZE");
      restored->Query("ANALYZE");
    }
    if (opt.verify) {
      step("comparing row counts with the backup's facts");
      std::vector<std::string> bad;
      for (const auto& c : CompareTableCounts(fact_tables, TableRowCounts(*restored), tables)) {
        if (c.ok())
          r.verified[c.table] = *c.restored_rows;
        else
          bad.push_back(c.Describe());
      }
      if (!bad.empty())
        throw Error(ErrorCode::kCorrupt, "restored database '" + opt.dbname + "' does not match snapshot " + sid +
                                             ": " + Join(bad, "; "));
    }
  } catch (const Error& e) {
    throw created_note(e);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace bulwark::source::postgres
