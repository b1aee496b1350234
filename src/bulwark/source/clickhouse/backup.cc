#include "bulwark/source/clickhouse/backup.h"

#include <algorithm>
#include <cstdlib>
#include <set>

#include "bulwark/base/error.h"
#include "bulwark/base/log.h"
#include "bulwark/base/sys.h"
#include "bulwark/source/clickhouse/parts.h"

namespace bulwark::source::clickhouse {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string ReadSecretFile(const std::string& path) {
  std::string s = sys::ReadFile(path);
  if (!s.empty() && s.back() == '\n') s.pop_back();
  if (!s.empty() && s.back() == '\r') s.pop_back();
  return s;
}

uint64_t ToU64(const std::string& s) { return std::strtoull(s.c_str(), nullptr, 10); }

}  // namespace

Endpoint EndpointOf(const config::SourceConfig& source) {
  Endpoint e;
  e.url = source.ch_url;
  e.verify_tls = source.ch_tls_verify;
  e.user = !source.ch_user.empty() ? source.ch_user : Env("BULWARK_CLICKHOUSE_USER");
  if (!source.ch_password_file.empty())
    e.password = WithContext("password_file of source '" + source.name + "'",
                             [&] { return ReadSecretFile(source.ch_password_file); });
  else if (!Env("BULWARK_CLICKHOUSE_PASSWORD_FILE").empty())
    e.password = WithContext("BULWARK_CLICKHOUSE_PASSWORD_FILE",
                             [&] { return ReadSecretFile(Env("BULWARK_CLICKHOUSE_PASSWORD_FILE")); });
  else
    e.password = Env("BULWARK_CLICKHOUSE_PASSWORD");
  return e;
}

Selection SelectionOf(const config::SourceConfig& source) {
  return {source.ch_databases, source.ch_tables, source.ch_exclude_tables};
}

bool HasOwnData(const std::string& engine) {
  static const std::set<std::string> kOthers = {"Log", "TinyLog", "StripeLog", "Memory"};
  const std::string mt = "MergeTree";
  return kOthers.count(engine) > 0 ||
         (engine.size() >= mt.size() && engine.compare(engine.size() - mt.size(), mt.size(), mt) == 0);
}

Catalog ReadCatalog(Client& client, const Selection& selection) {
  Catalog cat;
  cat.version = client.Version();
  for (const auto& row : client.Rows("SELECT name, engine FROM system.databases ORDER BY name")) {
    if (row.size() < 2 || !selection.Database(row[0])) continue;
    cat.databases[row[0]] = {row[1], client.Value("SHOW CREATE DATABASE " + QuoteName(row[0]))};
  }
  // Active parts of every MergeTree table: rows, bytes, parts per partition.
  std::map<std::string, std::vector<std::vector<std::string>>> parts_of;  // "db.t" -> rows
  for (auto& row : client.Rows(
           "SELECT database, table, partition_id, count(), sum(rows), sum(bytes_on_disk) FROM system.parts "
           "WHERE active GROUP BY database, table, partition_id ORDER BY database, table, partition_id"))
    if (row.size() >= 6) parts_of[row[0] + "." + row[1]].push_back(row);

  std::map<std::string, TableInfo> all;
  for (const auto& row : client.Rows("SELECT database, name, engine, is_temporary FROM system.tables "
                                     "ORDER BY database, name")) {
    if (row.size() < 4 || row[3] == "1" || !cat.databases.count(row[0])) continue;
    TableInfo t;
    t.database = row[0];
    t.name = row[1];
    t.engine = row[2];
    const bool inner = t.name.rfind(".inner.", 0) == 0;
    if (inner) {
      // The storage of materialized view `<name without .inner.>`: selected with it.
      t.inner_of = t.database + "." + t.name.substr(7);
      if (!selection.Table(t.database, t.name.substr(7))) continue;
    } else if (!selection.Table(t.database, t.name)) {
      continue;
    }
    t.kind = !HasOwnData(t.engine) ? "schema" : inner ? "inner" : "data";
    t.merge_tree = t.engine.find("MergeTree") != std::string::npos;
    all[t.key()] = std::move(t);
  }
  for (auto& [key, t] : all) {
    t.create = client.Value("SHOW CREATE TABLE " + QuoteName(t.database) + "." + QuoteName(t.name));
    if (t.kind != "schema") {
      for (const auto& c : client.Rows("DESCRIBE TABLE " + QuoteName(t.database) + "." + QuoteName(t.name))) {
        if (c.size() < 2) continue;
        const std::string kind = c.size() > 2 ? c[2] : "";
        if (kind == "MATERIALIZED" || kind == "ALIAS") continue;  // not in SELECT *
        t.columns.emplace_back(c[0], c[1]);
      }
    }
    if (t.merge_tree) {
      uint64_t rows = 0, bytes = 0, parts = 0;
      for (const auto& p : parts_of[key]) {
        parts += ToU64(p[3]);
        rows += ToU64(p[4]);
        bytes += ToU64(p[5]);
        t.partition_rows[p[2]] = ToU64(p[4]);
      }
      t.rows = rows;
      t.bytes = bytes;
      t.parts = parts;
    }
    cat.tables.push_back(std::move(t));
  }
  return cat;
}

StreamedTable StreamTable(Client& client, ops::TreeBackup& tree, const TableInfo& table, const std::string& path) {
  const std::string name = QuoteName(table.database) + "." + QuoteName(table.name);
  StreamedTable st;
  st.validated = true;
  for (const auto& [col, type] : table.columns)
    if (!ParseNativeType(type)) st.validated = false;
  if (table.columns.empty()) st.validated = false;
  std::optional<NativeValidator> v;
  if (st.validated) {
    v.emplace(table.columns);
  } else {
    // Counted before the read: exact only while nobody writes.
    st.rows = table.rows ? *table.rows : ToU64(client.Value("SELECT count() FROM " + name));
    log::Info("table " + table.key() + ": a column type without a known Native layout; the server buffers the "
              "result before sending it");
  }
  const std::string sql = "SELECT * FROM " + name + " FORMAT Native";
  // One reading thread: the parts come in their order, each cut into the same blocks as last time, so an
  // unchanged part gives the same bytes and deduplicates (with several threads the blocks interleave
  // differently at every run, and nothing does).
  auto stream = client.Stream(sql, {{"max_threads", "1"}}, /*buffer_on_server=*/!st.validated);
  st.bytes = tree.AddStream(
      path,
      [&](uint8_t* buf, size_t n) -> size_t {
        size_t k = stream->Read(buf, n);
        if (v) {
          WithContext("ClickHouse " + client.url() + ": " + sql, [&] {
            if (k == 0)
              v->Finish();
            else
              v->Feed(buf, k);
          });
        }
        return k;
      },
      &st.sha256);
  if (v) st.rows = v->rows();
  return st;
}

ops::BackupResult Backup(repo::Repository& repo, const config::SourceConfig& source, const ops::BackupOptions& options,
                         const std::vector<std::string>& tables_only) {
  return WithContext("source '" + source.name + "'", [&] {
    Client client(EndpointOf(source));
    Catalog cat = ReadCatalog(client, SelectionOf(source));
    if (!tables_only.empty()) {
      std::set<std::string> want(tables_only.begin(), tables_only.end());
      std::set<std::string> dbs;
      cat.tables.erase(std::remove_if(cat.tables.begin(), cat.tables.end(),
                                      [&](const TableInfo& t) {
                                        return !want.count(t.key()) && !(t.kind == "inner" && want.count(t.inner_of));
                                      }),
                       cat.tables.end());
      for (const auto& t : cat.tables) dbs.insert(t.database);
      for (auto it = cat.databases.begin(); it != cat.databases.end();)
        it = dbs.count(it->first) ? std::next(it) : cat.databases.erase(it);
    }
    const bool parts_mode = source.ch_mode == config::ChMode::kParts;
    ops::BackupOptions o = options;
    o.source = source.name;
    if (parts_mode && !o.parent && !o.force) {
      // The parent whose parts may be reused: the newest parts backup of this source and host (a
      // native one, or a restore's safety backup, has no parts to compare with).
      const std::string host = o.host.empty() ? sys::Hostname() : o.host;
      for (const auto& s : repo.LoadSnapshots([](const Error& e) { log::Warn(e.what()); }))
        if (s.kind == kSnapshotKind && s.source == source.name && s.host == host && s.facts.is_object() &&
            s.facts.contains("clickhouse") && s.facts["clickhouse"].value("mode", "") == "parts")
          o.parent = s.id.Hex();
    }
    ops::TreeBackup tree(repo, o, kSnapshotKind);

    nlohmann::json f;
    f["mode"] = parts_mode ? "parts" : "native";
    f["url"] = client.url();
    f["server_version"] = cat.version.text;
    f["time"] = client.Value("SELECT toString(now())");
    nlohmann::json dbs = nlohmann::json::object();
    for (const auto& [db, info] : cat.databases) {
      const std::string dir = EscapeForFileName(db);
      tree.AddFile(dir + "/database.sql", info.second);
      dbs[db] = {{"engine", info.first}, {"dir", dir}};
    }
    f["databases"] = dbs;

    std::optional<PartsBackup> parts;
    if (parts_mode && std::any_of(cat.tables.begin(), cat.tables.end(),
                                  [](const TableInfo& t) { return t.merge_tree && t.kind != "schema"; }))
      parts.emplace(client, source.name, source.ch_data_path);

    nlohmann::json tables = nlohmann::json::object();
    for (const TableInfo& t : cat.tables) {
      const std::string dir = EscapeForFileName(t.database) + "/" + EscapeForFileName(t.name);
      tree.AddFile(dir + "/table.sql", t.create);
      nlohmann::json tf = {{"database", t.database}, {"table", t.name}, {"engine", t.engine},
                           {"kind", t.kind},         {"dir", dir}};
      if (!t.inner_of.empty()) tf["inner_of"] = t.inner_of;
      if (t.merge_tree) {
        tf["bytes"] = t.bytes.value_or(0);
        tf["parts"] = t.parts.value_or(0);
        tf["partitions"] = t.partition_rows.size();
        tf["partition_rows"] = t.partition_rows;
      }
      if (t.kind != "schema") {
        if (parts && t.merge_tree) {
          FrozenTable fr = parts->Freeze(t);
          PartsStored ps = parts->Store(tree, fr, dir + "/parts");
          tf["rows"] = ps.rows;
          tf["parts"] = ps.parts.size();
          tf["partition_rows"] = ps.partition_rows;
          tf["partitions"] = ps.partition_rows.size();
          tf["parts_list"] = ps.parts;
          tf["parts_reused"] = ps.reused;
          tf["data_bytes"] = ps.bytes;
        } else {
          StreamedTable st = StreamTable(client, tree, t, dir + "/data.native");
          tf["rows"] = st.rows;
          tf["data_file"] = dir + "/data.native";
          tf["data_bytes"] = st.bytes;
          tf["data_sha256"] = st.sha256;
          tf["validated"] = st.validated;
        }
      }
      tables[t.key()] = tf;
    }
    f["tables"] = tables;
    if (parts) {
      f["data_path"] = parts->data_path();
      f["shadow_cleaned"] = parts->cleaned();
      parts->Finish();
    }
    return tree.Commit({{"clickhouse", f}});
  });
}

}  // namespace bulwark::source::clickhouse
