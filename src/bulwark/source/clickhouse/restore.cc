#include "bulwark/source/clickhouse/restore.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <set>

#include "bulwark/base/error.h"
#include "bulwark/base/log.h"
#include "bulwark/base/sys.h"
#include "bulwark/ops/restore.h"
#include "bulwark/source/clickhouse/backup.h"
#include "bulwark/source/clickhouse/parts.h"
#include "bulwark/source/clickhouse/schema.h"

namespace bulwark::source::clickhouse {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string Join(const std::vector<std::string>& v, const std::string& sep = ", ") {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

const json& FactsOf(const repo::Snapshot& s) {
  if (s.kind != kSnapshotKind || !s.facts.is_object() || !s.facts.contains("clickhouse") ||
      !s.facts["clickhouse"].is_object() || !s.facts["clickhouse"].contains("tables"))
    throw Error(ErrorCode::kInvalidArgument,
                "snapshot " + s.id.Short() + " is not a ClickHouse backup (kind '" + s.kind + "')");
  return s.facts["clickhouse"];
}

std::string Str(const json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}
uint64_t U64(const json& j, const char* key) {
  return j.contains(key) && j[key].is_number_unsigned() ? j[key].get<uint64_t>() : 0;
}

bool IsView(const std::string& engine) {
  return engine == "View" || engine == "MaterializedView" || engine == "LiveView" || engine == "WindowView";
}

// Engines whose merges remove rows: a restored table may count fewer rows
// than were stored once a merge ran.
bool MergingEngine(const std::string& engine) {
  for (const char* e : {"Summing", "Replacing", "Collapsing", "Aggregating", "Graphite"})
    if (engine.find(e) != std::string::npos) return true;
  return false;
}

// A file of the snapshot, read blob by blob (every blob verified by LoadBlob).
class BlobReader {
 public:
  BlobReader(repo::Repository& repo, repo::Node node) : repo_(repo), node_(std::move(node)) {}
  size_t Read(uint8_t* buf, size_t n) {
    while (pos_ == cur_.size()) {
      if (next_ == node_.content.size()) return 0;
      cur_ = repo_.LoadBlob(node_.content[next_++]);
      pos_ = 0;
    }
    size_t k = std::min(n, cur_.size() - pos_);
    std::memcpy(buf, cur_.data() + pos_, k);
    pos_ += k;
    total_ += k;
    return k;
  }
  uint64_t total() const { return total_; }

 private:
  repo::Repository& repo_;
  repo::Node node_;
  Bytes cur_;
  size_t pos_ = 0, next_ = 0;
  uint64_t total_ = 0;
};

struct Plan {
  std::string key, db, table, tdb;  // snapshot names; target database
  const json* f = nullptr;          // the table's facts
  std::string engine, kind, create;
  bool exists = false;
  TableRestore r;
  std::vector<std::string> parts;  // parts snapshots: the parts to attach
  std::string target() const { return QuoteName(tdb) + "." + QuoteName(table); }
};

// Writes the stored part directory `node` as `dir` (new), owned by uid/gid.
uint64_t WritePart(repo::Repository& repo, const repo::Node& node, const std::string& dir, uid_t uid, gid_t gid) {
  if (::mkdir(dir.c_str(), 0750) != 0) throw ErrnoError("mkdir", dir);
  if (::chown(dir.c_str(), uid, gid) != 0 && geteuid() == 0) throw ErrnoError("chown", dir);
  uint64_t bytes = 0;
  for (const repo::Node& n : repo.LoadTree(node.subtree).nodes) {
    const std::string path = dir + "/" + n.name;
    if (n.type == repo::NodeType::kDir) {
      bytes += WritePart(repo, n, path, uid, gid);
      continue;
    }
    if (n.type != repo::NodeType::kFile) continue;
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (fd < 0) throw ErrnoError("create", path);
    sys::Fd guard(fd);
    bytes += WithContext(path, [&] { return ops::DumpFile(repo, n, fd); });
    if (::fchown(fd, uid, gid) != 0 && geteuid() == 0) throw ErrnoError("chown", path);
    if (::fsync(fd) != 0) throw ErrnoError("fsync", path);
  }
  return bytes;
}

}  // namespace

std::pair<std::string, std::string> ParseDatabaseMapping(const std::string& s) {
  auto colon = s.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size() || s.find(':', colon + 1) != std::string::npos)
    throw Error(ErrorCode::kInvalidArgument, "--database-map wants OLD:NEW, got '" + s + "'");
  return {s.substr(0, colon), s.substr(colon + 1)};
}

std::vector<std::string> SelectSnapshotTables(const repo::Snapshot& snapshot, const std::vector<std::string>& patterns) {
  const json& tables = FactsOf(snapshot)["tables"];
  std::vector<std::string> all, out;
  for (const auto& [key, t] : tables.items())
    if (Str(t, "kind") != "inner") all.push_back(key);
  for (const auto& p : patterns) {
    bool any = false;
    for (const auto& k : all) any |= MatchesAny({p}, k);
    if (!any)
      throw Error(ErrorCode::kNotFound, "no table of snapshot " + snapshot.id.Short() + " matches '" + p +
                                            "' (tables: " + (all.empty() ? "none" : Join(all)) + ")");
  }
  std::set<std::string> chosen;
  for (const auto& [key, t] : tables.items()) {
    const std::string owner = Str(t, "kind") == "inner" ? Str(t, "inner_of") : key;
    if (patterns.empty() || MatchesAny(patterns, owner)) chosen.insert(key);
  }
  return {chosen.begin(), chosen.end()};
}

RestoreResult Restore(repo::Repository& repo, const repo::Snapshot& snapshot, const RestoreOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  const json& facts = FactsOf(snapshot);
  const std::string sid = snapshot.id.Short();
  const bool parts_snapshot = Str(facts, "mode") == "parts";
  auto step = [&](const std::string& s) {
    if (opt.on_step) opt.on_step(s);
  };
  auto target_db = [&](const std::string& db) {
    auto it = opt.database_map.find(db);
    return it == opt.database_map.end() ? db : it->second;
  };
  static const json kNone = json::object();
  const json& databases = facts.contains("databases") && facts["databases"].is_object() ? facts["databases"] : kNone;
  for (const auto& [from, to] : opt.database_map)
    if (!databases.contains(from))
      throw Error(ErrorCode::kNotFound, "--database-map " + from + ":" + to + ": snapshot " + sid +
                                            " has no database '" + from + "'");

  Client client(opt.target);
  RestoreResult result;
  // --- plan ---
  std::vector<Plan> plans;
  std::set<std::string> partitions_found;
  for (const std::string& key : SelectSnapshotTables(snapshot, opt.tables)) {
    Plan p;
    p.key = key;
    p.f = &facts["tables"][key];
    p.db = Str(*p.f, "database");
    p.table = Str(*p.f, "table");
    p.tdb = target_db(p.db);
    p.engine = Str(*p.f, "engine");
    p.kind = Str(*p.f, "kind");
    p.r.from = key;
    p.r.to = p.tdb + "." + p.table;
    p.r.kind = p.kind;
    if (p.kind != "schema") p.r.method = p.f->contains("parts_list") ? "parts" : "native";
    if (!opt.partitions.empty()) {
      // Only MergeTree tables holding one of the partitions take part.
      if (p.kind == "schema" || !p.f->contains("partition_rows")) continue;
      for (const auto& part : opt.partitions)
        if ((*p.f)["partition_rows"].contains(part)) p.r.partitions.push_back(part);
      if (p.r.partitions.empty()) continue;
      partitions_found.insert(p.r.partitions.begin(), p.r.partitions.end());
    }
    plans.push_back(std::move(p));
  }
  for (const auto& part : opt.partitions)
    if (!partitions_found.count(part))
      throw Error(ErrorCode::kNotFound, "partition '" + part + "' is in none of the selected tables of snapshot " + sid);
  if (plans.empty()) throw Error(ErrorCode::kNotFound, "snapshot " + sid + " has nothing to restore that was selected");

  std::set<std::string> target_dbs;
  for (const Plan& p : plans) target_dbs.insert(p.tdb);
  std::set<std::string> existing_dbs;
  for (const auto& row : client.Rows("SELECT name FROM system.databases"))
    if (!row.empty()) existing_dbs.insert(row[0]);
  std::set<std::string> existing;  // "db\ttable" on the target
  for (const auto& row : client.Rows("SELECT database, name FROM system.tables"))
    if (row.size() >= 2) existing.insert(row[0] + "\t" + row[1]);
  std::vector<std::string> conflicts;
  for (Plan& p : plans) {
    // An inner table comes and goes with its materialized view.
    p.exists = existing.count(p.tdb + "\t" + p.table) > 0;
    if (!opt.partitions.empty()) {
      p.r.action = "partitions";
      if (!p.exists) continue;
      std::vector<std::string> quoted;
      for (const auto& part : p.r.partitions) quoted.push_back(QuoteString(part));
      const uint64_t rows = std::strtoull(
          client
              .Value("SELECT count() FROM " + p.target() + " WHERE _partition_id IN (" + Join(quoted) + ")")
              .c_str(),
          nullptr, 10);
      if (rows > 0) {
        if (opt.drop_existing)
          result.replaced.push_back(p.r.to);
        else
          conflicts.push_back(p.r.to + " (partitions " + Join(p.r.partitions) + ": " + std::to_string(rows) + " rows)");
      }
      continue;
    }
    p.r.action = p.exists ? "replace" : "create";
    if (p.exists && p.kind != "inner") {
      if (opt.drop_existing)
        result.replaced.push_back(p.r.to);
      else
        conflicts.push_back(p.r.to);
    }
  }
  if (!conflicts.empty())
    throw Error(ErrorCode::kAlreadyExists, "on " + client.url() + ", these exist already: " + Join(conflicts) +
                                               "; restore under another database (--database-map OLD:NEW), or give "
                                               "--drop-existing to replace them");
  for (const auto& db : target_dbs)
    if (!existing_dbs.count(db)) result.databases_created.push_back(db);

  std::string data_path;
  if (parts_snapshot && std::any_of(plans.begin(), plans.end(), [](const Plan& p) { return p.r.method == "parts"; }))
    data_path = ServerDataPath(client, opt.data_path);
  for (Plan& p : plans) {
    if (p.r.method != "parts") continue;
    for (const auto& part : (*p.f)["parts_list"]) {
      const std::string name = part.get<std::string>();
      if (opt.partitions.empty() ||
          std::find(p.r.partitions.begin(), p.r.partitions.end(), PartitionOfPart(name)) != p.r.partitions.end())
        p.parts.push_back(name);
    }
  }
  for (Plan& p : plans) {
    p.r.expected_rows = U64(*p.f, "rows");
    if (!opt.partitions.empty()) {
      p.r.expected_rows = 0;
      for (const auto& part : p.r.partitions) p.r.expected_rows += (*p.f)["partition_rows"].value(part, uint64_t{0});
    }
  }
  if (opt.dry_run) {
    for (Plan& p : plans) result.tables.push_back(p.r);
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return result;
  }
  if (opt.before_replace && !result.replaced.empty()) opt.before_replace(result.replaced);

  // --- execute ---
  Params ddl;
  if (client.HasSetting("allow_experimental_low_cardinality_type"))
    ddl.emplace_back("allow_experimental_low_cardinality_type", "1");
  std::map<std::string, std::string> db_map = opt.database_map;
  auto create_sql = [&](const std::string& create) {
    return db_map.empty() ? create : RewriteDatabases(create, db_map);
  };
  auto with_db = [&](const std::string& db) {
    Params p = ddl;
    p.emplace_back("database", db);
    return p;
  };
  std::vector<std::string> created;  // for the error message
  try {
    for (const auto& db : result.databases_created) {
      std::string src_db;
      for (const auto& [name, info] : databases.items())
        if (target_db(name) == db) src_db = name;
      const repo::Node n = ops::FindNode(repo, snapshot, "/" + EscapeForFileName(src_db) + "/database.sql");
      std::string create;
      {
        BlobReader r(repo, n);
        uint8_t buf[4096];
        for (size_t k; (k = r.Read(buf, sizeof buf)) > 0;) create.append(reinterpret_cast<char*>(buf), k);
      }
      step("creating database " + db);
      client.Query(IfNotExists(RewriteDatabases(create, {{src_db, db}})), ddl);
      created.push_back("database " + db);
    }
    auto read_schema = [&](const Plan& p) {
      const repo::Node n = ops::FindNode(repo, snapshot, "/" + Str(*p.f, "dir") + "/table.sql");
      std::string s;
      BlobReader r(repo, n);
      uint8_t buf[4096];
      for (size_t k; (k = r.Read(buf, sizeof buf)) > 0;) s.append(reinterpret_cast<char*>(buf), k);
      return s;
    };
    for (Plan& p : plans) p.create = read_schema(p);

    // Drops: views first (they depend on tables), whole tables only.
    if (opt.partitions.empty() && opt.drop_existing) {
      for (int pass = 0; pass < 2; ++pass)
        for (const Plan& p : plans)
          if (p.exists && p.kind != "inner" && IsView(p.engine) == (pass == 0)) {
            step("dropping " + p.r.to);
            client.Query("DROP TABLE IF EXISTS " + p.target());
          }
    }

    auto fill = [&](Plan& p) {
      if (p.r.method == "native") {
        if (!p.f->contains("data_file") || U64(*p.f, "data_bytes") == 0) return;
        const repo::Node n = ops::FindNode(repo, snapshot, "/" + Str(*p.f, "data_file"));
        std::string into = p.target();
        const std::string scratch = QuoteName(p.tdb) + "." + QuoteName(".bulwark_restore_" + p.table);
        if (!p.r.partitions.empty()) {
          client.Query("DROP TABLE IF EXISTS " + scratch, ddl);
          client.Query("CREATE TABLE " + scratch + " AS " + p.target(), ddl);
          into = scratch;
        }
        struct DropScratch {
          Client& c;
          std::string name;
          bool armed;
          ~DropScratch() {
            if (!armed) return;
            try {
              c.Query("DROP TABLE IF EXISTS " + name);
            } catch (const Error& e) {
              log::Warn(e.what());
            }
          }
        } drop{client, scratch, !p.r.partitions.empty()};
        step("inserting " + std::to_string(U64(*p.f, "rows")) + " rows into " + (p.r.partitions.empty() ? p.r.to : into));
        BlobReader r(repo, n);
        p.r.bytes = client.Insert("INSERT INTO " + into + " FORMAT Native",
                                  [&](uint8_t* buf, size_t len) { return r.Read(buf, len); });
        if (!p.r.partitions.empty()) {
          std::vector<std::string> quoted;
          for (const auto& part : p.r.partitions) quoted.push_back(QuoteString(part));
          // What the stream holds of these partitions is what must arrive.
          p.r.expected_rows = std::strtoull(
              client.Value("SELECT count() FROM " + scratch + " WHERE _partition_id IN (" + Join(quoted) + ")").c_str(),
              nullptr, 10);
          for (const auto& part : p.r.partitions) {
            step("replacing partition " + part + " of " + p.r.to);
            client.Query("ALTER TABLE " + p.target() + " REPLACE PARTITION ID " + QuoteString(part) + " FROM " +
                         scratch);
          }
        }
      } else if (p.r.method == "parts") {
        const std::string table_path = client.Value("SELECT data_path FROM system.tables WHERE database = " +
                                                    QuoteString(p.tdb) + " AND name = " + QuoteString(p.table));
        std::string detached = table_path;
        if (detached.empty() || detached.back() != '/') detached += '/';
        detached += "detached";
        struct stat st;
        if (::stat(table_path.c_str(), &st) != 0)
          throw ErrnoError("the table's data directory (restoring parts needs bulwark on the server's host)",
                           table_path);
        if (::mkdir(detached.c_str(), 0750) != 0 && errno != EEXIST) throw ErrnoError("mkdir", detached);
        if (::chown(detached.c_str(), st.st_uid, st.st_gid) != 0 && geteuid() == 0) throw ErrnoError("chown", detached);
        if (!p.r.partitions.empty() && opt.drop_existing && p.exists)
          for (const auto& part : p.r.partitions) {
            step("dropping partition " + part + " of " + p.r.to);
            client.Query("ALTER TABLE " + p.target() + " DROP PARTITION ID " + QuoteString(part));
          }
        step("attaching " + std::to_string(p.parts.size()) + " parts to " + p.r.to);
        for (const std::string& part : p.parts) {
          if (!repo::IsSafeName(part)) throw Error(ErrorCode::kCorrupt, "snapshot " + sid + ": part name '" + part + "'");
          const repo::Node n = ops::FindNode(repo, snapshot, "/" + Str(*p.f, "dir") + "/parts/" + part);
          const std::string tmp = detached + "/bulwark_tmp_" + part;
          std::error_code ec;
          fs::remove_all(tmp, ec);
          p.r.bytes += WritePart(repo, n, tmp, st.st_uid, st.st_gid);
          if (::rename(tmp.c_str(), (detached + "/" + part).c_str()) != 0)
            throw ErrnoError("rename", detached + "/" + part);
          client.Query("ALTER TABLE " + p.target() + " ATTACH PART " + QuoteString(part));
          p.r.parts++;
        }
      }
      result.bytes += p.r.bytes;
    };

    auto create_table = [&](Plan& p) {
      if (!opt.partitions.empty() && p.exists) return;
      step("creating " + p.r.to + " (" + p.engine + ")");
      client.Query(create_sql(p.create), with_db(p.tdb));
      created.push_back(p.r.to);
    };
    // Tables with data: created and filled.
    for (Plan& p : plans)
      if (p.kind == "data") {
        create_table(p);
        fill(p);
      }
    // Other tables, then views (after the data: a materialized view must not see it again).
    for (int pass = 0; pass < 2; ++pass)
      for (Plan& p : plans)
        if (p.kind == "schema" && IsView(p.engine) == (pass == 1)) create_table(p);
    // The storage of materialized views, made by their views.
    for (Plan& p : plans)
      if (p.kind == "inner") {
        if (!opt.partitions.empty() && !p.exists)
          throw Error(ErrorCode::kNotFound, p.r.to + " does not exist: restore its materialized view " +
                                                Str(*p.f, "inner_of") + " first");
        fill(p);
      }

    // --- verify ---
    std::vector<std::string> bad;
    for (Plan& p : plans) {
      if (p.kind == "schema" || !opt.verify) continue;
      std::string where;
      if (!p.r.partitions.empty()) {
        std::vector<std::string> quoted;
        for (const auto& part : p.r.partitions) quoted.push_back(QuoteString(part));
        where = " WHERE _partition_id IN (" + Join(quoted) + ")";
      }
      const uint64_t n = std::strtoull(client.Value("SELECT count() FROM " + p.target() + where).c_str(), nullptr, 10);
      p.r.restored_rows = n;
      p.r.verified = n == p.r.expected_rows || (MergingEngine(p.engine) && n <= p.r.expected_rows);
      if (!p.r.verified)
        bad.push_back(p.r.to + ": " + std::to_string(n) + " rows, backup: " + std::to_string(p.r.expected_rows));
    }
    for (Plan& p : plans) result.tables.push_back(p.r);
    if (!bad.empty())
      throw Error(ErrorCode::kCorrupt, "restored tables do not match snapshot " + sid + ": " + Join(bad, "; "));
  } catch (const Error& e) {
    if (created.empty()) throw;
    throw Error(e.code(), std::string(e.what()) + " (created and left in place for inspection: " + Join(created) + ")");
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

}  // namespace bulwark::source::clickhouse
