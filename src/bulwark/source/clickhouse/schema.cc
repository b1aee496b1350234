#include "bulwark/source/clickhouse/schema.h"

#include <fnmatch.h>

#include <cctype>

#include "bulwark/source/clickhouse/http.h"

namespace bulwark::source::clickhouse {
namespace {

bool IdentStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IdentChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

bool PlainIdentifier(const std::string& s) {
  if (s.empty() || !IdentStart(s[0])) return false;
  for (char c : s)
    if (!IdentChar(c)) return false;
  return true;
}

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// The end of a quoted token starting at `i` (the quote), and its unescaped
// text; npos when unterminated.
size_t QuotedEnd(const std::string& s, size_t i, std::string* text) {
  const char q = s[i];
  text->clear();
  for (size_t j = i + 1; j < s.size(); ++j) {
    if (s[j] == '\\' && j + 1 < s.size()) {
      *text += s[++j];
    } else if (s[j] == q) {
      if (j + 1 < s.size() && s[j + 1] == q) {  // a doubled quote
        *text += q;
        ++j;
      } else {
        return j + 1;
      }
    } else {
      *text += s[j];
    }
  }
  return std::string::npos;
}

size_t SkipSpace(const std::string& s, size_t i) {
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return i;
}

}  // namespace

std::string EscapeForFileName(std::string_view name) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (char c : name) {
    if (IdentChar(c)) {
      out += c;
    } else {
      const unsigned char u = static_cast<unsigned char>(c);
      out += '%';
      out += hex[u >> 4];
      out += hex[u & 15];
    }
  }
  return out;
}

bool MatchesAny(const std::vector<std::string>& patterns, const std::string& text) {
  for (const auto& p : patterns)
    if (fnmatch(p.c_str(), text.c_str(), 0) == 0) return true;
  return false;
}

bool Selection::Database(const std::string& db) const {
  const bool system = db == "system" || db == "INFORMATION_SCHEMA" || db == "information_schema";
  if (system) {
    for (const auto& p : databases)
      if (p == db) return true;
    return false;
  }
  return databases.empty() || MatchesAny(databases, db);
}

bool Selection::Table(const std::string& db, const std::string& table) const {
  if (!Database(db)) return false;
  const std::string name = db + "." + table;
  if (!tables.empty() && !MatchesAny(tables, name)) return false;
  return !MatchesAny(exclude_tables, name);
}

std::string RewriteDatabase(const std::string& create, const std::string& from, const std::string& to) {
  return RewriteDatabases(create, {{from, to}});
}

std::string RewriteDatabases(const std::string& create, const std::map<std::string, std::string>& map) {
  auto quoted_of = [&](const std::string& from) {
    const std::string& to = map.at(from);
    return PlainIdentifier(to) ? to : QuoteName(to);
  };
  std::string out;
  out.reserve(create.size() + 16);
  // CREATE DATABASE [IF NOT EXISTS] name: the name itself.
  size_t i = 0;
  {
    size_t k = SkipSpace(create, 0);
    std::string words;
    for (int w = 0; w < 5 && k < create.size(); ++w) {
      size_t e = k;
      while (e < create.size() && IdentChar(create[e])) ++e;
      if (e == k) break;
      std::string word = Upper(std::string_view(create).substr(k, e - k));
      if (w == 0 && word != "CREATE" && word != "ATTACH") break;
      if (w == 1 && word != "DATABASE") break;
      if (w >= 2 && word != "IF" && word != "NOT" && word != "EXISTS") break;
      k = SkipSpace(create, e);
      if (w >= 1 && (word == "DATABASE" || word == "EXISTS")) {
        // The name follows.
        size_t name_end = k;
        std::string text;
        if (k < create.size() && (create[k] == '`' || create[k] == '"')) {
          name_end = QuotedEnd(create, k, &text);
        } else {
          while (name_end < create.size() && IdentChar(create[name_end])) ++name_end;
          text = create.substr(k, name_end - k);
        }
        if (name_end != std::string::npos && map.count(text) && map.at(text) != text) {
          out = create.substr(0, k) + quoted_of(text);
          i = name_end;
        }
      }
    }
  }
  char prev = 0;  // the last non-space character copied
  while (i < create.size()) {
    const char c = create[i];
    if (c == '\'') {
      std::string text;
      size_t e = QuotedEnd(create, i, &text);
      if (e == std::string::npos) e = create.size();
      out.append(create, i, e - i);
      i = e;
      prev = '\'';
      continue;
    }
    size_t end = std::string::npos;
    std::string text;
    if (c == '`' || c == '"') {
      end = QuotedEnd(create, i, &text);
      if (end == std::string::npos) end = create.size();
    } else if (IdentStart(c) && (i == 0 || !IdentChar(create[i - 1]))) {
      end = i;
      while (end < create.size() && IdentChar(create[end])) ++end;
      text = create.substr(i, end - i);
    }
    if (end == std::string::npos) {
      out += c;
      if (!std::isspace(static_cast<unsigned char>(c))) prev = c;
      ++i;
      continue;
    }
    const size_t next = SkipSpace(create, end);
    if (map.count(text) && map.at(text) != text && prev != '.' && next < create.size() && create[next] == '.') {
      out += quoted_of(text);
    } else {
      out.append(create, i, end - i);
    }
    prev = create[end - 1];
    i = end;
  }
  return out;
}

std::string IfNotExists(const std::string& create) {
  size_t k = SkipSpace(create, 0);
  size_t e = k;
  while (e < create.size() && IdentChar(create[e])) ++e;
  const std::string first = Upper(std::string_view(create).substr(k, e - k));
  if (first != "CREATE" && first != "ATTACH") return create;
  // Up to the object keyword: DATABASE, TABLE, VIEW, DICTIONARY (after MATERIALIZED, LIVE, ...).
  size_t pos = e;
  for (int w = 0; w < 3; ++w) {
    size_t s = SkipSpace(create, pos);
    size_t t = s;
    while (t < create.size() && IdentChar(create[t])) ++t;
    if (t == s) return create;
    const std::string word = Upper(std::string_view(create).substr(s, t - s));
    pos = t;
    if (word == "DATABASE" || word == "TABLE" || word == "VIEW" || word == "DICTIONARY") {
      size_t after = SkipSpace(create, pos);
      if (Upper(std::string_view(create).substr(after, 2)) == "IF") return create;
      return "CREATE" + create.substr(e, pos - e) + " IF NOT EXISTS" + create.substr(pos);
    }
  }
  return create;
}

}  // namespace bulwark::source::clickhouse
