#include "bulwark/source/postgres/libpq.h"

#include <cstring>

#include "bulwark/base/error.h"

namespace bulwark::source::postgres {

namespace {

struct Options {
  PQconninfoOption* opts = nullptr;
  ~Options() {
    if (opts) PQconninfoFree(opts);
  }
};

// Parses `conninfo`; on failure returns false and sets *why.
bool Parse(std::string_view conninfo, Options* o, std::string* why) {
  char* err = nullptr;
  o->opts = PQconninfoParse(std::string(conninfo).c_str(), &err);
  if (o->opts) return true;
  *why = err ? err : "out of memory";
  if (err) PQfreemem(err);
  while (!why->empty() && (why->back() == '\n' || why->back() == ' ')) why->pop_back();
  return false;
}

std::string Trimmed(const char* s) {
  std::string m = s ? s : "";
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}

}  // namespace

std::string ConninfoProblem(std::string_view conninfo) {
  Options o;
  std::string why;
  if (!Parse(conninfo, &o, &why)) return "is not a valid connection string: " + why;
  for (PQconninfoOption* p = o.opts; p->keyword; ++p)
    if (std::strcmp(p->keyword, "password") == 0 && p->val && *p->val)
      return "contains a password; put it in a password file (PGPASSFILE, ~/.pgpass) or the PGPASSWORD "
             "environment variable instead, never in the configuration or on the command line";
  return "";
}

std::optional<std::string> ConninfoValue(std::string_view conninfo, std::string_view keyword) {
  Options o;
  std::string why;
  if (!Parse(conninfo, &o, &why)) throw Error(ErrorCode::kInvalidArgument, "connection string: " + why);
  for (PQconninfoOption* p = o.opts; p->keyword; ++p)
    if (keyword == p->keyword && p->val && *p->val) return std::string(p->val);
  return std::nullopt;
}

std::string WithSettings(std::string_view conninfo, const std::vector<std::pair<std::string, std::string>>& settings) {
  Options o;
  std::string why;
  if (!Parse(conninfo, &o, &why)) throw Error(ErrorCode::kInvalidArgument, "connection string: " + why);
  auto quote = [](std::string_view v) {
    std::string q = "'";
    for (char c : v) {
      if (c == '\'' || c == '\\') q += '\\';
      q += c;
    }
    return q + "'";
  };
  std::string out;
  for (PQconninfoOption* p = o.opts; p->keyword; ++p) {
    if (!p->val || !*p->val) continue;
    bool replaced = false;
    for (const auto& [k, v] : settings) replaced = replaced || k == p->keyword;
    if (!replaced) out += std::string(p->keyword) + "=" + quote(p->val) + " ";
  }
  for (const auto& [k, v] : settings) out += k + "=" + quote(v) + " ";
  if (!out.empty()) out.pop_back();
  return out;
}

std::string WithDatabase(std::string_view conninfo, std::string_view dbname) {
  return WithSettings(conninfo, {{"dbname", std::string(dbname)}});
}

std::unique_ptr<Connection> Connection::Open(const std::string& conninfo, const std::string& application_name) {
  if (std::string why = ConninfoProblem(conninfo); !why.empty())
    throw Error(ErrorCode::kInvalidArgument, "PostgreSQL connection string " + why);
  // fallback_application_name: an application_name in `conninfo` wins.
  const char* keys[] = {"dbname", "fallback_application_name", nullptr};
  const char* vals[] = {conninfo.c_str(), application_name.c_str(), nullptr};
  PGconn* c = PQconnectdbParams(keys, vals, /*expand_dbname=*/1);
  if (!c) throw Error(ErrorCode::kSourceFailed, "cannot connect to PostgreSQL: out of memory");
  std::unique_ptr<Connection> conn(new Connection(c));
  if (PQstatus(c) != CONNECTION_OK) {
    const char* host = PQhost(c);
    const char* port = PQport(c);
    const char* db = PQdb(c);
    throw Error(ErrorCode::kSourceFailed, "cannot connect to PostgreSQL at " + std::string(host ? host : "?") + ":" +
                                              (port ? port : "?") + " database " + (db ? db : "?") + ": " +
                                              Trimmed(PQerrorMessage(c)));
  }
  return conn;
}

Connection::~Connection() { PQfinish(conn_); }

std::vector<Row> Connection::Query(const std::string& sql, const std::vector<std::string>& params) {
  std::vector<const char*> values;
  for (const auto& p : params) values.push_back(p.c_str());
  PGresult* res = PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                               values.empty() ? nullptr : values.data(), nullptr, nullptr, 0);
  struct Free {
    PGresult* r;
    ~Free() { PQclear(r); }
  } free_res{res};
  ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
    throw Error(ErrorCode::kSourceFailed,
                "PostgreSQL " + where() + ": " + Trimmed(res ? PQresultErrorMessage(res) : PQerrorMessage(conn_)));
  std::vector<Row> rows;
  if (st != PGRES_TUPLES_OK) return rows;
  int n = PQntuples(res), m = PQnfields(res);
  rows.reserve(n);
  for (int i = 0; i < n; ++i) {
    Row r;
    r.reserve(m);
    for (int j = 0; j < m; ++j) {
      if (PQgetisnull(res, i, j))
        r.emplace_back(std::nullopt);
      else
        r.emplace_back(std::string(PQgetvalue(res, i, j), PQgetlength(res, i, j)));
    }
    rows.push_back(std::move(r));
  }
  return rows;
}

std::string Connection::Value(const std::string& sql, const std::vector<std::string>& params) {
  auto rows = Query(sql, params);
  if (rows.size() != 1 || rows[0].size() != 1 || !rows[0][0])
    throw Error(ErrorCode::kSourceFailed, "PostgreSQL " + where() + ": expected one value from '" + sql + "', got " +
                                              std::to_string(rows.size()) + " rows");
  return *rows[0][0];
}

int Connection::server_version() const { return PQserverVersion(conn_); }

std::string Connection::database() const {
  const char* d = PQdb(conn_);
  return d ? d : "";
}

std::string Connection::where() const {
  const char* h = PQhost(conn_);
  const char* p = PQport(conn_);
  return std::string(h ? h : "?") + ":" + (p ? p : "?") + "/" + database();
}

std::string Connection::QuoteIdent(std::string_view name) const {
  char* q = PQescapeIdentifier(conn_, name.data(), name.size());
  if (!q) throw Error(ErrorCode::kInvalidArgument, "cannot quote identifier: " + Trimmed(PQerrorMessage(conn_)));
  std::string s(q);
  PQfreemem(q);
  return s;
}

}  // namespace bulwark::source::postgres
