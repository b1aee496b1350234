#include "bulwark/config/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <functional>
#include <limits>
#include <set>
#include <sstream>

#include "bulwark/base/bytes.h"
#include "bulwark/base/error.h"
#include "bulwark/config/cron.h"
#include "bulwark/source/clickhouse/http.h"
#include "bulwark/source/postgres/libpq.h"

namespace bulwark::config {
namespace {

constexpr size_t kMaxFileSize = 16 << 20;
constexpr int kMaxRetentionCount = 1'000'000;
constexpr uint64_t kMinChunk = 64;
constexpr uint64_t kMaxChunk = 64 << 20;

// ---------------------------------------------------------------------------
// Suggestions.

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Optimal string alignment distance (Levenshtein plus adjacent transposition).
size_t EditDistance(std::string_view a, std::string_view b) {
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[n][m];
}

// Returns " (did you mean 'x'?)" for the closest candidate, or "".
template <typename Range>
std::string Suggest(std::string_view word, const Range& candidates) {
  if (word.size() > 64) return "";
  const std::string lower = Lower(word);
  const size_t limit = word.size() <= 3 ? 1 : 2;
  size_t best = limit + 1;
  std::string best_name;
  for (const auto& c : candidates) {
    const std::string_view cand(c);
    if (cand == word || cand.size() > 64) continue;
    const size_t dist = EditDistance(lower, Lower(cand));
    if (dist < best) {
      best = dist;
      best_name = std::string(cand);
    }
  }
  return best_name.empty() ? "" : " (did you mean '" + best_name + "'?)";
}

template <typename Map>
std::string JoinKeys(const Map& m) {
  std::string out;
  for (const auto& [k, v] : m) {
    if (!out.empty()) out += ", ";
    out += k;
  }
  return out;
}

// Printable form of user text in messages (bounded, control bytes escaped).
std::string Quote(std::string_view s) {
  std::string out = "'";
  const size_t limit = 80;
  for (size_t i = 0; i < s.size() && i < limit; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      static const char* kHex = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > limit) out += "...";
  return out + "'";
}

bool ValidName(std::string_view s) {
  if (s.empty() || s.size() > 64 || !std::isalnum(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') return false;
  return true;
}

// ---------------------------------------------------------------------------
// Source kinds. A kind's keys are valid only for that kind; kCommonKeys for
// every kind.

struct KindInfo {
  SourceKind kind;
  std::string_view name;
  std::vector<std::string_view> keys;
};

const std::vector<KindInfo>& Kinds() {
  static const std::vector<KindInfo> kKinds = {
      {SourceKind::kClickHouse,
       "clickhouse",
       {"url", "user", "password_file", "mode", "databases", "tables", "exclude_tables", "data_path", "tls_verify"}},
      {SourceKind::kCommand, "command", {"command", "stdin_name", "timeout"}},
      {SourceKind::kFs, "fs", {"paths", "exclude", "exclude_file", "one_file_system"}},
      {SourceKind::kPostgres,
       "postgres",
       {"conninfo", "mode", "method", "pg_bin_dir", "globals", "schema_version_query"}},
  };
  return kKinds;
}

const std::vector<std::string_view> kCommonSourceKeys = {"kind",     "tags",     "host",    "repository", "chunker",
                                                         "schedule", "timezone", "suspend", "hooks",      "retention",
                                                         "ttl",      "copy_to",  "prune",   "drill"};

// ---------------------------------------------------------------------------
// YAML walking with positioned errors.

class Parser;

// One key/value pair of a mapping.
struct Entry {
  YAML::Node key;
  YAML::Node value;
  std::string name;  // the key text
  std::string what;  // "'url' in repository 'local'", for messages

  // Where to point for a problem with the value: a null value's own mark is
  // the position of the next token, so use the key's.
  YAML::Mark ValueMark() const { return value.IsNull() ? key.Mark() : value.Mark(); }
};

class Parser {
 public:
  explicit Parser(const std::string& file) : file_(file) {}

  [[noreturn]] void Fail(const YAML::Mark& mark, const std::string& msg) const {
    int line = 1, column = 1;
    if (!mark.is_null() && mark.line >= 0 && mark.column >= 0) {
      line = mark.line + 1;
      column = mark.column + 1;
    }
    throw Error(ErrorCode::kInvalidArgument,
                file_ + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + msg);
  }

  std::string String(const Entry& e) const {
    if (e.value.IsNull()) Fail(e.key.Mark(), e.what + " has no value");
    if (!e.value.IsScalar()) Fail(e.value.Mark(), e.what + " must be a string");
    return Checked(e.value, e.what);
  }

  std::string NonEmptyString(const Entry& e) const {
    std::string s = String(e);
    if (s.empty()) Fail(e.ValueMark(), e.what + " must not be empty");
    return s;
  }

  std::string AbsolutePath(const Entry& e) const {
    std::string s = NonEmptyString(e);
    if (s[0] != '/') Fail(e.ValueMark(), e.what + " must be an absolute path, got " + Quote(s));
    return s;
  }

  bool Bool(const Entry& e) const {
    const std::string s = Lower(String(e));
    if (s == "true" || s == "yes" || s == "on") return true;
    if (s == "false" || s == "no" || s == "off") return false;
    Fail(e.ValueMark(), e.what + " must be true or false, got " + Quote(e.value.Scalar()));
  }

  int64_t Int(const Entry& e, int64_t min, int64_t max) const {
    const std::string s = String(e);
    int64_t v = 0;
    const char* begin = s.data();
    const char* end = s.data() + s.size();
    auto [ptr, ec] = std::from_chars(begin, end, v);
    if (s.empty() || ec == std::errc::invalid_argument || ptr != end)
      Fail(e.ValueMark(), e.what + " must be an integer, got " + Quote(s));
    if (ec == std::errc::result_out_of_range || v < min || v > max)
      Fail(e.ValueMark(),
           e.what + " must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " + Quote(s));
    return v;
  }

  // The value parsed by `parse` (a bulwark parser throwing Error), its error
  // re-thrown at the value's position.
  template <typename Fn>
  auto Parsed(const Entry& e, Fn&& parse) const -> decltype(parse(std::string())) {
    const std::string s = String(e);
    try {
      return parse(s);
    } catch (const Error& err) {
      Fail(e.ValueMark(), e.what + ": " + err.what());
    }
  }

  int64_t Duration(const Entry& e) const {
    return Parsed(e, [](const std::string& s) { return ParseDuration(s); });
  }

  // A retention count: 0..1000000, or -1 / unlimited.
  int Count(const Entry& e) const {
    return Parsed(e, [](const std::string& s) { return ParseRetentionCount(s); });
  }

  // A calendar duration (y, m = months, w, d, h).
  CalendarDuration Calendar(const Entry& e) const {
    return Parsed(e, [](const std::string& s) { return CalendarDuration::Parse(s); });
  }

  // A command's argv: a non-empty list of strings whose first (the program)
  // is not empty; other arguments may be empty.
  std::vector<std::string> Argv(const Entry& e) const {
    std::vector<std::string> argv = StringList(e, /*allow_empty_elements=*/true);
    if (argv.empty()) Fail(e.value.Mark(), e.what + " must not be empty");
    if (argv[0].empty()) Fail(e.value.Mark(), e.what + ": the program name must not be empty");
    return argv;
  }

  // A list of strings. Returns the elements and (via `marks`) their positions.
  std::vector<std::string> StringList(const Entry& e, bool allow_empty_elements,
                                      std::vector<YAML::Mark>* marks = nullptr) const {
    if (e.value.IsNull()) Fail(e.key.Mark(), e.what + " has no value");
    if (!e.value.IsSequence()) Fail(e.value.Mark(), e.what + " must be a list of strings, e.g. [\"a\", \"b\"]");
    std::vector<std::string> out;
    for (const YAML::Node& item : e.value) {
      if (!item.IsScalar()) Fail(item.Mark(), e.what + ": every element must be a string");
      std::string s = Checked(item, e.what);
      if (s.empty() && !allow_empty_elements) Fail(item.Mark(), e.what + ": elements must not be empty");
      out.push_back(std::move(s));
      if (marks) marks->push_back(item.Mark());
    }
    return out;
  }

 private:
  std::string Checked(const YAML::Node& n, const std::string& what) const {
    const std::string& s = n.Scalar();
    if (s.find('\0') != std::string::npos) Fail(n.Mark(), what + " must not contain a NUL byte");
    return s;
  }

  const std::string& file_;
};

// The keys of one mapping, checked for shape and duplicates.
class Fields {
 public:
  // `where` is the context used in messages ("in source 'docs'"); `mark` is
  // where "missing key" errors point.
  Fields(const Parser& p, const YAML::Node& map, const YAML::Mark& mark, std::string where)
      : p_(p), mark_(mark), where_(std::move(where)) {
    if (!map.IsMap()) p.Fail(mark, "expected a mapping (key: value) " + where_);
    std::set<std::string> seen;
    // Note: yaml-cpp's iterator operator-> returns a short-lived proxy, so
    // copy the pair out of the dereferenced value.
    for (const auto& kv : map) {
      const YAML::Node key = kv.first;
      const YAML::Node value = kv.second;
      if (!key.IsScalar()) p.Fail(key.Mark(), "keys must be strings " + where_);
      const std::string name = key.Scalar();
      if (!seen.insert(name).second) p.Fail(key.Mark(), "duplicate key " + Quote(name) + " " + where_);
      entries_.push_back({key, value, name, Quote(name) + " " + where_});
    }
  }

  // Fails at the first key not in `allowed`. `hint` may return a specific
  // message for a key (or "" to use the default "unknown key" message).
  void CheckKeys(const std::vector<std::string_view>& allowed,
                 const std::function<std::string(const std::string&)>& hint = nullptr) const {
    for (const Entry& e : entries_) {
      if (std::find(allowed.begin(), allowed.end(), e.name) != allowed.end()) continue;
      std::string msg = hint ? hint(e.name) : "";
      if (msg.empty()) msg = "unknown key " + Quote(e.name) + " " + where_ + Suggest(e.name, allowed);
      p_.Fail(e.key.Mark(), msg);
    }
  }

  const Entry* Find(std::string_view name) const {
    for (const Entry& e : entries_)
      if (e.name == name) return &e;
    return nullptr;
  }

  const Entry& Require(std::string_view name) const {
    const Entry* e = Find(name);
    if (e == nullptr) p_.Fail(mark_, "missing required key '" + std::string(name) + "' " + where_);
    return *e;
  }

  const std::vector<Entry>& entries() const { return entries_; }

 private:
  const Parser& p_;
  YAML::Mark mark_;
  std::string where_;
  std::vector<Entry> entries_;
};

// A mapping-valued entry; a key with no value is an empty mapping if
// `null_is_empty`.
std::optional<Fields> MapOf(const Parser& p, const Entry& e, const std::string& where, bool null_is_empty) {
  if (e.value.IsNull()) {
    if (null_is_empty) return std::nullopt;
    p.Fail(e.key.Mark(), e.what + " has no value");
  }
  if (!e.value.IsMap()) p.Fail(e.value.Mark(), e.what + " must be a mapping (key: value)");
  return Fields(p, e.value, e.key.Mark(), where);
}

void CheckName(const Parser& p, const Entry& e, std::string_view what) {
  if (!ValidName(e.name))
    p.Fail(e.key.Mark(), "invalid " + std::string(what) + " name " + Quote(e.name) +
                             ": use 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit");
}

// ---------------------------------------------------------------------------

RepositoryConfig ParseRepository(const Parser& p, const Entry& entry) {
  CheckName(p, entry, "repository");
  const std::string where = "in repository '" + entry.name + "'";
  auto f = MapOf(p, entry, where, /*null_is_empty=*/false);
  f->CheckKeys({"url", "password_file", "compression", "s3"});
  RepositoryConfig r;
  r.name = entry.name;
  r.url = p.NonEmptyString(f->Require("url"));
  if (const Entry* e = f->Find("password_file")) r.password_file = p.AbsolutePath(*e);
  if (const Entry* e = f->Find("compression")) {
    const std::string s = p.String(*e);
    if (Lower(s) == "off" || Lower(s) == "false") {
      r.compression_level = 0;
    } else {
      int v = 0;
      auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
      if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || v < 1 || v > 19)
        p.Fail(e->ValueMark(), e->what + " must be a zstd level 1..19 or off, got " + Quote(s));
      r.compression_level = v;
    }
  }
  if (const Entry* e = f->Find("s3")) {
    auto s3 = MapOf(p, *e, "in s3 of repository '" + entry.name + "'", /*null_is_empty=*/true);
    if (s3) {
      s3->CheckKeys({"endpoint", "region", "profile", "path_style", "tls_verify", "max_attempts"});
      if (const Entry* v = s3->Find("endpoint")) {
        std::string ep = p.NonEmptyString(*v);
        if (ep.rfind("http://", 0) != 0 && ep.rfind("https://", 0) != 0)
          p.Fail(v->ValueMark(), v->what + " must start with http:// or https://, got " + Quote(ep));
        r.s3.endpoint = ep;
      }
      if (const Entry* v = s3->Find("region")) r.s3.region = p.NonEmptyString(*v);
      if (const Entry* v = s3->Find("profile")) r.s3.profile = p.NonEmptyString(*v);
      if (const Entry* v = s3->Find("path_style")) r.s3.path_style = p.Bool(*v);
      if (const Entry* v = s3->Find("tls_verify")) r.s3.tls_verify = p.Bool(*v);
      if (const Entry* v = s3->Find("max_attempts")) r.s3.max_attempts = static_cast<int>(p.Int(*v, 1, 100));
    }
  }
  return r;
}

ChunkerSizes ParseChunker(const Parser& p, const Entry& entry, const std::string& source) {
  const std::string where = "in chunker of source '" + source + "'";
  auto f = MapOf(p, entry, where, /*null_is_empty=*/false);
  f->CheckKeys({"min", "avg", "max"});
  ChunkerSizes c;
  uint64_t sizes[3] = {c.min_size, c.avg_size, c.max_size};
  std::string shown[3] = {"512KiB (default)", "1MiB (default)", "8MiB (default)"};
  YAML::Mark marks[3] = {entry.key.Mark(), entry.key.Mark(), entry.key.Mark()};
  const char* names[3] = {"min", "avg", "max"};
  for (int i = 0; i < 3; ++i) {
    const Entry* e = f->Find(names[i]);
    if (e == nullptr) continue;
    const std::string s = p.String(*e);
    try {
      sizes[i] = ParseSize(s);
    } catch (const Error& err) {
      p.Fail(e->ValueMark(), e->what + ": " + err.what());
    }
    shown[i] = s;
    marks[i] = e->ValueMark();
    if (sizes[i] > kMaxChunk) p.Fail(marks[i], e->what + " must be at most 64MiB, got " + Quote(s));
  }
  const std::string ctx = "chunker of source '" + source + "': ";
  if (sizes[0] < kMinChunk) p.Fail(marks[0], ctx + "min must be at least 64 bytes, got " + shown[0]);
  if ((sizes[1] & (sizes[1] - 1)) != 0 || sizes[1] == 0)
    p.Fail(marks[1], ctx + "avg must be a power of two, got " + shown[1]);
  if (sizes[0] >= sizes[1])
    p.Fail(f->Find("min") ? marks[0] : marks[1], ctx + "min " + shown[0] + " must be smaller than avg " + shown[1]);
  if (sizes[1] >= sizes[2])
    p.Fail(f->Find("avg") ? marks[1] : marks[2], ctx + "avg " + shown[1] + " must be smaller than max " + shown[2]);
  c.min_size = static_cast<uint32_t>(sizes[0]);
  c.avg_size = static_cast<uint32_t>(sizes[1]);
  c.max_size = static_cast<uint32_t>(sizes[2]);
  return c;
}

Retention ParseRetention(const Parser& p, const Entry& entry, const std::string& source) {
  const std::string where = "in retention of source '" + source + "'";
  auto f = MapOf(p, entry, where, /*null_is_empty=*/false);
  f->CheckKeys({"keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly", "keep_within",
                "keep_within_hourly", "keep_within_daily", "keep_within_weekly", "keep_within_monthly",
                "keep_within_yearly", "keep_tags", "group_by"});
  Retention r;
  const std::pair<const char*, int*> counts[] = {
      {"keep_last", &r.keep_last},     {"keep_hourly", &r.keep_hourly},   {"keep_daily", &r.keep_daily},
      {"keep_weekly", &r.keep_weekly}, {"keep_monthly", &r.keep_monthly}, {"keep_yearly", &r.keep_yearly},
  };
  for (const auto& [name, field] : counts)
    if (const Entry* e = f->Find(name)) *field = p.Count(*e);
  const std::pair<const char*, CalendarDuration*> durations[] = {
      {"keep_within", &r.keep_within},
      {"keep_within_hourly", &r.keep_within_hourly},
      {"keep_within_daily", &r.keep_within_daily},
      {"keep_within_weekly", &r.keep_within_weekly},
      {"keep_within_monthly", &r.keep_within_monthly},
      {"keep_within_yearly", &r.keep_within_yearly},
  };
  for (const auto& [name, field] : durations)
    if (const Entry* e = f->Find(name)) *field = p.Calendar(*e);
  if (const Entry* e = f->Find("keep_tags")) {
    std::vector<YAML::Mark> marks;
    const std::vector<std::string> sets = p.StringList(*e, /*allow_empty_elements=*/true, &marks);
    for (size_t i = 0; i < sets.size(); ++i) {
      try {
        r.keep_tags.push_back(ParseTagSet(sets[i]));
      } catch (const Error& err) {
        p.Fail(marks[i], e->what + ": " + err.what());
      }
    }
  }
  if (const Entry* e = f->Find("group_by")) {
    std::vector<YAML::Mark> marks;
    const std::vector<std::string> fields = p.StringList(*e, /*allow_empty_elements=*/false, &marks);
    GroupBy g{false, false, false, false};
    for (size_t i = 0; i < fields.size(); ++i) {
      try {
        const GroupBy one = GroupBy::Parse(fields[i]);
        g.host |= one.host;
        g.source |= one.source;
        g.paths |= one.paths;
        g.tags |= one.tags;
      } catch (const Error& err) {
        p.Fail(marks[i], e->what + ": " + err.what());
      }
    }
    r.group_by = g;
  }
  return r;
}

// One list of `hooks:` ("pre" or "post"): a list of {command, timeout,
// on_error} mappings.
std::vector<Hook> ParseHookList(const Parser& p, const Entry& entry, const std::string& source) {
  if (entry.value.IsNull()) p.Fail(entry.key.Mark(), entry.what + " has no value (use [] for none)");
  if (!entry.value.IsSequence())
    p.Fail(entry.value.Mark(), entry.what + " must be a list of hooks, e.g. [{command: [sync]}]");
  std::vector<Hook> out;
  for (const YAML::Node& item : entry.value) {
    const std::string where =
        "in " + entry.name + " hook " + std::to_string(out.size() + 1) + " of source '" + source + "'";
    if (!item.IsMap()) p.Fail(item.Mark(), "expected a mapping (command, timeout, on_error) " + where);
    Fields f(p, item, item.Mark(), where);
    f.CheckKeys({"command", "timeout", "on_error"});
    Hook h;
    h.command = p.Argv(f.Require("command"));
    if (const Entry* e = f.Find("timeout")) h.timeout_seconds = p.Duration(*e);
    if (const Entry* e = f.Find("on_error")) {
      const std::string v = p.NonEmptyString(*e);
      if (v == "fail")
        h.on_error = Hook::OnError::kFail;
      else if (v == "continue")
        h.on_error = Hook::OnError::kContinue;
      else
        p.Fail(e->ValueMark(), e->what + " must be 'fail' or 'continue', got " + Quote(v) +
                                   Suggest(v, std::vector<std::string>{"fail", "continue"}));
    }
    out.push_back(std::move(h));
  }
  return out;
}

Hooks ParseHooks(const Parser& p, const Entry& entry, const std::string& source) {
  auto f = MapOf(p, entry, "in hooks of source '" + source + "'", /*null_is_empty=*/false);
  f->CheckKeys({"pre", "post"});
  Hooks h;
  if (const Entry* e = f->Find("pre")) h.pre = ParseHookList(p, *e, source);
  if (const Entry* e = f->Find("post")) h.post = ParseHookList(p, *e, source);
  return h;
}

// Checks that `name` (at `mark`) names a repository of `c`.
void CheckRepositoryRef(const Parser& p, const Config& c, const std::string& name, const YAML::Mark& mark,
                        const std::string& what) {
  if (c.repositories.count(name)) return;
  std::vector<std::string> names;
  for (const auto& [k, v] : c.repositories) names.push_back(k);
  std::string msg = what + " " + Quote(name) + " is not a defined repository" + Suggest(name, names);
  msg += c.repositories.empty() ? " (no repositories are defined)" : " (defined: " + JoinKeys(c.repositories) + ")";
  p.Fail(mark, msg);
}

// --- drill: (a self-contained block: DrillConfig in config.h) ---

DrillCheckConfig ParseDrillCheck(const Parser& p, const YAML::Node& item, const std::string& where) {
  Fields f(p, item, item.Mark(), where);
  f.CheckKeys({"sql", "expect", "min", "max"});
  DrillCheckConfig c;
  c.sql = p.NonEmptyString(f.Require("sql"));
  const auto number = [&](const char* key, std::optional<int64_t>* out) {
    if (const Entry* e = f.Find(key))
      *out = p.Int(*e, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max());
  };
  number("expect", &c.expect);
  number("min", &c.min);
  number("max", &c.max);
  if (c.expect && (c.min || c.max))
    p.Fail(f.Find(c.min ? "min" : "max")->key.Mark(),
           "a check " + where + " has 'expect' or bounds ('min', 'max'), not both");
  if (!c.expect && !c.min && !c.max) p.Fail(item.Mark(), "a check " + where + " needs 'expect' or 'min'/'max'");
  if (c.min && c.max && *c.min > *c.max)
    p.Fail(f.Find("max")->ValueMark(),
           "a check " + where + " has max " + std::to_string(*c.max) + " below min " + std::to_string(*c.min));
  return c;
}

DrillConfig ParseDrill(const Parser& p, const Entry& entry, const SourceConfig& s) {
  const std::string where = "in drill of source '" + s.name + "'";
  DrillConfig d;
  auto f = MapOf(p, entry, where, /*null_is_empty=*/true);
  if (!f) return d;
  f->CheckKeys({"schedule", "rto", "target", "checks"});
  if (const Entry* e = f->Find("schedule")) {
    d.schedule = p.NonEmptyString(*e);
    p.Parsed(*e, [](const std::string& v) { return CronSchedule::Parse(v); });
  }
  if (const Entry* e = f->Find("rto")) {
    d.rto_seconds = p.Duration(*e);
    if (d.rto_seconds <= 0) p.Fail(e->ValueMark(), e->what + " must be more than 0 (leave it out for no budget)");
  }
  const bool postgres = s.kind == SourceKind::kPostgres;
  const bool logical = postgres && s.pg_mode == PgMode::kLogical;
  if (const Entry* e = f->Find("target")) {
    const std::string twhere = "in drill target of source '" + s.name + "'";
    if (auto t = MapOf(p, *e, twhere, /*null_is_empty=*/true)) {
      std::vector<std::string_view> keys = {"dir"};
      if (postgres)
        keys = logical ? std::vector<std::string_view>{"conninfo", "allow_same_server"}
                       : std::vector<std::string_view>{"pg_bin_dir", "port"};
      t->CheckKeys(keys, [&](const std::string& key) -> std::string {
        for (std::string_view k : {"dir", "conninfo", "allow_same_server", "pg_bin_dir", "port"})
          if (key == k)
            return "key " + Quote(key) + " " + twhere + " is not valid for this source (" +
                   std::string(SourceKindName(s.kind)) + (postgres ? logical ? ", logical" : ", physical" : "") +
                   "); it takes: " + [&] {
                     std::string out;
                     for (auto k2 : keys) out += (out.empty() ? "" : ", ") + std::string(k2);
                     return out;
                   }();
        return "";
      });
      if (const Entry* v = t->Find("dir")) d.dir = p.AbsolutePath(*v);
      if (const Entry* v = t->Find("conninfo")) {
        d.conninfo = p.NonEmptyString(*v);
        if (std::string why = source::postgres::ConninfoProblem(d.conninfo); !why.empty())
          p.Fail(v->ValueMark(), v->what + " " + why);
      }
      if (const Entry* v = t->Find("allow_same_server")) d.allow_same_server = p.Bool(*v);
      if (const Entry* v = t->Find("pg_bin_dir")) d.pg_bin_dir = p.AbsolutePath(*v);
      if (const Entry* v = t->Find("port")) d.port = static_cast<int>(p.Int(*v, 0, 65535));
    }
  }
  if (logical && d.conninfo.empty())
    p.Fail(entry.key.Mark(), "drill of source '" + s.name +
                                 "' needs target: {conninfo: ...}, the scratch server to restore the dump into");
  if (const Entry* e = f->Find("checks")) {
    if (!postgres)
      p.Fail(e->key.Mark(), e->what +
                                ": user checks are SQL, for postgres sources only (fs and command drills "
                                "verify every file against its blob ids)");
    if (!e->value.IsNull()) {
      if (!e->value.IsSequence()) p.Fail(e->value.Mark(), e->what + " must be a list of {sql: ..., expect: N}");
      for (const YAML::Node& item : e->value) d.checks.push_back(ParseDrillCheck(p, item, where));
    }
  }
  return d;
}

// --- end drill ---

SourceConfig ParseSource(const Parser& p, const Config& c, const Entry& entry) {
  CheckName(p, entry, "source");
  const std::string where = "in source '" + entry.name + "'";
  auto f = MapOf(p, entry, where, /*null_is_empty=*/false);

  std::vector<std::string_view> all_keys = kCommonSourceKeys;
  std::vector<std::string> kind_names;
  for (const KindInfo& k : Kinds()) {
    all_keys.insert(all_keys.end(), k.keys.begin(), k.keys.end());
    kind_names.emplace_back(k.name);
  }
  const Entry* kind_entry = f->Find("kind");
  if (kind_entry == nullptr) f->CheckKeys(all_keys);  // report typos such as 'knd' first
  const Entry& ke = f->Require("kind");
  const std::string kind_name = p.NonEmptyString(ke);
  const KindInfo* kind = nullptr;
  for (const KindInfo& k : Kinds())
    if (k.name == kind_name) kind = &k;
  if (kind == nullptr) {
    std::string allowed;
    for (const auto& n : kind_names) allowed += (allowed.empty() ? "" : ", ") + n;
    p.Fail(ke.ValueMark(), "unknown source kind " + Quote(kind_name) + " " + where + Suggest(kind_name, kind_names) +
                               " (allowed kinds: " + allowed + ")");
  }

  std::vector<std::string_view> allowed = kCommonSourceKeys;
  allowed.insert(allowed.end(), kind->keys.begin(), kind->keys.end());
  f->CheckKeys(allowed, [&](const std::string& key) -> std::string {
    for (const KindInfo& k : Kinds())
      if (std::find(k.keys.begin(), k.keys.end(), key) != k.keys.end())
        return "key " + Quote(key) + " " + where + " is not valid for kind '" + std::string(kind->name) +
               "' (it belongs to kind '" + std::string(k.name) + "')";
    return "";
  });

  SourceConfig s;
  s.name = entry.name;
  s.kind = kind->kind;

  switch (s.kind) {
    case SourceKind::kFs: {
      const Entry& pe = f->Require("paths");
      std::vector<YAML::Mark> marks;
      s.paths = p.StringList(pe, /*allow_empty_elements=*/false, &marks);
      if (s.paths.empty()) p.Fail(pe.value.Mark(), pe.what + " must not be empty");
      std::set<std::string> seen;
      for (size_t i = 0; i < s.paths.size(); ++i) {
        if (s.paths[i][0] != '/') p.Fail(marks[i], "path " + Quote(s.paths[i]) + " " + where + " must be absolute");
        if (!seen.insert(s.paths[i]).second) p.Fail(marks[i], "duplicate path " + Quote(s.paths[i]) + " " + where);
      }
      if (const Entry* e = f->Find("exclude")) s.exclude = p.StringList(*e, false);
      if (const Entry* e = f->Find("exclude_file")) s.exclude_file = p.AbsolutePath(*e);
      if (const Entry* e = f->Find("one_file_system")) s.one_file_system = p.Bool(*e);
      break;
    }
    case SourceKind::kCommand: {
      s.command = p.Argv(f->Require("command"));
      s.stdin_name = s.name + ".stream";
      if (const Entry* e = f->Find("stdin_name")) {
        s.stdin_name = p.NonEmptyString(*e);
        if (s.stdin_name.find('/') != std::string::npos || s.stdin_name == "." || s.stdin_name == "..")
          p.Fail(e->ValueMark(), e->what + " must be a plain file name without '/', got " + Quote(s.stdin_name));
      }
      if (const Entry* e = f->Find("timeout")) s.timeout_seconds = p.Duration(*e);
      break;
    }
    case SourceKind::kPostgres: {
      const Entry& ce = f->Require("conninfo");
      s.conninfo = p.NonEmptyString(ce);
      if (std::string why = source::postgres::ConninfoProblem(s.conninfo); !why.empty())
        p.Fail(ce.ValueMark(), ce.what + " " + why);
      if (const Entry* e = f->Find("mode")) {
        const std::string m = p.NonEmptyString(*e);
        if (m == "logical")
          s.pg_mode = PgMode::kLogical;
        else if (m == "physical")
          s.pg_mode = PgMode::kPhysical;
        else
          p.Fail(e->ValueMark(), e->what + " must be 'logical' or 'physical', got " + Quote(m));
      }
      if (const Entry* e = f->Find("method")) {
        const std::string m = p.NonEmptyString(*e);
        if (auto method = ParsePgBackupMethod(m))
          s.pg_method = *method;
        else
          p.Fail(e->ValueMark(), e->what + " must be 'auto', 'files' or 'stream', got " + Quote(m));
      }
      if (const Entry* e = f->Find("pg_bin_dir")) s.pg_bin_dir = p.AbsolutePath(*e);
      if (const Entry* e = f->Find("globals")) s.pg_globals = p.Bool(*e);
      if (const Entry* e = f->Find("schema_version_query")) s.schema_version_query = p.NonEmptyString(*e);
      break;
    }
    case SourceKind::kClickHouse: {
      const Entry& ue = f->Require("url");
      s.ch_url = p.NonEmptyString(ue);
      try {
        s.ch_url = source::clickhouse::NormalizeUrl(s.ch_url);
      } catch (const Error& err) {
        p.Fail(ue.ValueMark(), ue.what + ": " + err.what());
      }
      if (const Entry* e = f->Find("user")) s.ch_user = p.NonEmptyString(*e);
      if (const Entry* e = f->Find("password_file")) s.ch_password_file = p.AbsolutePath(*e);
      if (const Entry* e = f->Find("mode")) {
        const std::string m = p.NonEmptyString(*e);
        if (auto mode = ParseChMode(m))
          s.ch_mode = *mode;
        else
          p.Fail(e->ValueMark(), e->what + " must be 'native' or 'parts', got " + Quote(m));
      }
      for (auto [key, list] : {std::pair<const char*, std::vector<std::string>*>{"databases", &s.ch_databases},
                               {"tables", &s.ch_tables},
                               {"exclude_tables", &s.ch_exclude_tables}}) {
        if (const Entry* e = f->Find(key)) {
          std::vector<YAML::Mark> marks;
          *list = p.StringList(*e, false, &marks);
          if (list->empty()) p.Fail(e->value.Mark(), e->what + " must not be empty (leave it out for all)");
          if (std::string(key) != "databases")
            for (size_t i = 0; i < list->size(); ++i)
              if ((*list)[i].find('.') == std::string::npos)
                p.Fail(marks[i], "pattern " + Quote((*list)[i]) + " " + where +
                                     " must be DATABASE.TABLE (globs allowed, e.g. \"app.*\")");
        }
      }
      if (const Entry* e = f->Find("data_path")) s.ch_data_path = p.AbsolutePath(*e);
      if (const Entry* e = f->Find("tls_verify")) s.ch_tls_verify = p.Bool(*e);
      break;
    }
  }

  if (const Entry* e = f->Find("tags")) {
    std::vector<YAML::Mark> marks;
    s.tags = p.StringList(*e, false, &marks);
    std::set<std::string> seen;
    for (size_t i = 0; i < s.tags.size(); ++i) {
      if (s.tags[i].find(',') != std::string::npos)
        p.Fail(marks[i], "tag " + Quote(s.tags[i]) + " " + where + " must not contain ','");
      if (!seen.insert(s.tags[i]).second) p.Fail(marks[i], "duplicate tag " + Quote(s.tags[i]) + " " + where);
    }
  }
  if (const Entry* e = f->Find("host")) s.host = p.NonEmptyString(*e);

  if (const Entry* e = f->Find("repository")) {
    s.repository = p.NonEmptyString(*e);
    CheckRepositoryRef(p, c, s.repository, e->ValueMark(), e->what);
  } else if (!c.default_repository.empty()) {
    s.repository = c.default_repository;
  } else if (c.repositories.size() == 1) {
    s.repository = c.repositories.begin()->first;
  } else if (c.repositories.empty()) {
    p.Fail(entry.key.Mark(), "source '" + s.name + "' needs a repository, but no repositories are defined");
  } else {
    p.Fail(entry.key.Mark(), "source '" + s.name +
                                 "' does not say which repository to use: set 'repository' in it or a "
                                 "top-level 'default_repository'");
  }

  if (const Entry* e = f->Find("chunker")) s.chunker = ParseChunker(p, *e, s.name);
  TimeZone zone;
  if (const Entry* e = f->Find("timezone")) {
    s.timezone = p.NonEmptyString(*e);
    zone = p.Parsed(*e, [](const std::string& name) { return TimeZone::Load(name); });
  }
  if (const Entry* e = f->Find("schedule")) {
    s.schedule = p.NonEmptyString(*e);
    try {
      CronSchedule::Parse(s.schedule, zone);
    } catch (const Error& err) {
      p.Fail(e->ValueMark(), "invalid schedule " + where + ": " + err.what());
    }
  }
  if (const Entry* e = f->Find("suspend")) s.suspend = p.Bool(*e);
  if (const Entry* e = f->Find("prune")) s.prune = p.Bool(*e);
  if (const Entry* e = f->Find("hooks")) s.hooks = ParseHooks(p, *e, s.name);
  if (const Entry* e = f->Find("retention")) s.retention = ParseRetention(p, *e, s.name);
  if (const Entry* e = f->Find("ttl")) {
    s.ttl = p.Calendar(*e);
    if (s.ttl->zero()) p.Fail(e->ValueMark(), e->what + " must not be zero (leave it out for no expiry)");
  }
  if (const Entry* e = f->Find("copy_to")) {
    std::vector<YAML::Mark> marks;
    s.copy_to = p.StringList(*e, false, &marks);
    std::set<std::string> seen;
    for (size_t i = 0; i < s.copy_to.size(); ++i) {
      CheckRepositoryRef(p, c, s.copy_to[i], marks[i], e->what + ": repository");
      if (s.copy_to[i] == s.repository)
        p.Fail(marks[i], e->what + " names the source's own repository " + Quote(s.repository));
      if (!seen.insert(s.copy_to[i]).second)
        p.Fail(marks[i], e->what + " names repository " + Quote(s.copy_to[i]) + " twice");
    }
  }
  if (const Entry* e = f->Find("drill")) {
    if (s.kind == SourceKind::kClickHouse)
      p.Fail(e->key.Mark(), "restore drills are not available for clickhouse sources yet " + where);
    s.drill = ParseDrill(p, *e, s);
  }
  return s;
}

// Records where the second document of a stream starts.
class DocumentProbe : public YAML::EventHandler {
 public:
  YAML::Mark second_mark;

  void OnDocumentStart(const YAML::Mark& mark) override {
    ++documents_;
    if (documents_ == 2) second_mark = mark;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { Node(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { Node(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t, const std::string&) override { Node(mark); }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    Node(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    Node(mark);
  }
  void OnMapEnd() override {}

 private:
  void Node(const YAML::Mark& mark) {
    if (documents_ == 2 && !seen_second_node_) {
      seen_second_node_ = true;
      if (!mark.is_null()) second_mark = mark;
    }
  }
  int documents_ = 0;
  bool seen_second_node_ = false;
};

Config ParseDocument(const Parser& p, const YAML::Node& root, const std::string& path) {
  if (!root.IsMap()) p.Fail(root.Mark(), "the top level must be a mapping with keys version, repositories, sources");
  Fields top(p, root, root.Mark(), "at top level");
  top.CheckKeys({"version", "default_repository", "repositories", "sources"});

  Config c;
  c.path = path;
  const Entry& ve = top.Require("version");
  const int64_t version = p.Int(ve, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max());
  if (version != 1)
    p.Fail(ve.ValueMark(),
           "unsupported config version " + std::to_string(version) + " (this bulwark understands version 1)");

  if (const Entry* e = top.Find("repositories")) {
    if (auto repos = MapOf(p, *e, "in repositories", /*null_is_empty=*/true)) {
      for (const Entry& re : repos->entries()) c.repositories.emplace(re.name, ParseRepository(p, re));
    }
  }
  if (const Entry* e = top.Find("default_repository")) {
    c.default_repository = p.NonEmptyString(*e);
    CheckRepositoryRef(p, c, c.default_repository, e->ValueMark(), "default_repository");
  }
  if (const Entry* e = top.Find("sources")) {
    if (auto sources = MapOf(p, *e, "in sources", /*null_is_empty=*/true)) {
      for (const Entry& se : sources->entries()) c.sources.emplace(se.name, ParseSource(p, c, se));
    }
  }
  return c;
}

}  // namespace

std::optional<PgBackupMethod> ParsePgBackupMethod(std::string_view s) {
  if (s == "auto") return PgBackupMethod::kAuto;
  if (s == "files") return PgBackupMethod::kFiles;
  if (s == "stream") return PgBackupMethod::kStream;
  return std::nullopt;
}

std::string_view SourceKindName(SourceKind kind) {
  switch (kind) {
    case SourceKind::kFs:
      return "fs";
    case SourceKind::kCommand:
      return "command";
    case SourceKind::kPostgres:
      return "postgres";
    case SourceKind::kClickHouse:
      return "clickhouse";
  }
  return "unknown";
}

std::optional<ChMode> ParseChMode(std::string_view s) {
  if (s == "native") return ChMode::kNative;
  if (s == "parts") return ChMode::kParts;
  return std::nullopt;
}

std::string_view OnErrorName(Hook::OnError on_error) {
  return on_error == Hook::OnError::kContinue ? "continue" : "fail";
}

TimeZone SourceConfig::Zone() const { return timezone.empty() ? TimeZone() : TimeZone::Load(timezone); }

std::optional<CronSchedule> SourceConfig::ParsedSchedule() const {
  if (schedule.empty()) return std::nullopt;
  return CronSchedule::Parse(schedule, Zone());
}

std::optional<CronSchedule> SourceConfig::ParsedDrillSchedule() const {
  if (!drill || drill->schedule.empty()) return std::nullopt;
  return CronSchedule::Parse(drill->schedule, Zone());
}

bool Retention::empty() const {
  return keep_last == 0 && keep_hourly == 0 && keep_daily == 0 && keep_weekly == 0 && keep_monthly == 0 &&
         keep_yearly == 0 && keep_within.zero() && keep_within_hourly.zero() && keep_within_daily.zero() &&
         keep_within_weekly.zero() && keep_within_monthly.zero() && keep_within_yearly.zero() && keep_tags.empty();
}

GroupBy GroupBy::Parse(std::string_view list) {
  GroupBy g{false, false, false, false};
  size_t start = 0;
  while (!list.empty() && start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string_view::npos) end = list.size();
    const std::string_view field = list.substr(start, end - start);
    if (field == "host")
      g.host = true;
    else if (field == "source")
      g.source = true;
    else if (field == "paths")
      g.paths = true;
    else if (field == "tags")
      g.tags = true;
    else
      throw Error(ErrorCode::kInvalidArgument,
                  "unknown group-by field " + Quote(field) +
                      Suggest(field, std::vector<std::string>{"host", "source", "paths", "tags"}) +
                      " (use a comma-separated list of host, source, paths, tags; '' for one group)");
    start = end + 1;
  }
  return g;
}

std::string GroupBy::ToString() const {
  std::string out;
  const std::pair<bool, const char*> fields[] = {{host, "host"}, {source, "source"}, {paths, "paths"}, {tags, "tags"}};
  for (const auto& [on, name] : fields)
    if (on) out.append(out.empty() ? "" : ",").append(name);
  return out;
}

std::vector<std::string> ParseTagSet(std::string_view s) {
  if (s.empty()) return {""};
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string_view::npos) end = s.size();
    if (end == start)
      throw Error(ErrorCode::kInvalidArgument,
                  "tag set " + Quote(s) + " has an empty tag (write 'a,b' for snapshots having both a and b)");
    out.emplace_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

int ParseRetentionCount(std::string_view s) {
  if (s == "unlimited" || s == "-1") return -1;
  int v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || v < 0 || v > kMaxRetentionCount)
    throw Error(ErrorCode::kInvalidArgument, "invalid count " + Quote(s) + ": want 0.." +
                                                 std::to_string(kMaxRetentionCount) +
                                                 ", or -1 / unlimited to keep all");
  return v;
}

const SourceConfig& Config::Source(std::string_view name) const {
  auto it = sources.find(std::string(name));
  if (it != sources.end()) return it->second;
  std::vector<std::string> names;
  for (const auto& [k, v] : sources) names.push_back(k);
  std::string msg = "unknown source " + Quote(name) + Suggest(name, names);
  msg += sources.empty() ? " (no sources are defined in " + path + ")" : " (known sources: " + JoinKeys(sources) + ")";
  throw Error(ErrorCode::kNotFound, msg);
}

const RepositoryConfig* Config::Repository(std::string_view name) const {
  auto it = repositories.find(std::string(name));
  return it == repositories.end() ? nullptr : &it->second;
}

int64_t ParseDuration(std::string_view s) {
  const auto fail = [&](std::string_view why) {
    return Error(ErrorCode::kInvalidArgument, "invalid duration " + Quote(s) + ": " + std::string(why) +
                                                  " (expected e.g. 30s, 15m, 6h, 30d, 1w, 1h30m)");
  };
  if (s == "0") return 0;
  if (s.empty()) throw fail("empty");
  int64_t total = 0;
  size_t i = 0;
  while (i < s.size()) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) throw fail("expected a number");
    int64_t v = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      const int digit = s[i++] - '0';
      if (v > (std::numeric_limits<int64_t>::max() - digit) / 10) throw fail("too large");
      v = v * 10 + digit;
    }
    if (i == s.size()) throw fail("missing unit (s, m, h, d, w)");
    int64_t mul;
    switch (s[i++]) {
      case 's':
        mul = 1;
        break;
      case 'm':
        mul = 60;
        break;
      case 'h':
        mul = 3600;
        break;
      case 'd':
        mul = 86400;
        break;
      case 'w':
        mul = 7 * 86400;
        break;
      default:
        throw fail("unknown unit (use s, m, h, d, w)");
    }
    if (v > std::numeric_limits<int64_t>::max() / mul) throw fail("too large");
    v *= mul;
    if (total > std::numeric_limits<int64_t>::max() - v) throw fail("too large");
    total += v;
  }
  return total;
}

Config Parse(std::string_view yaml, const std::string& path_for_messages) {
  const Parser p(path_for_messages);
  try {
    const std::string text(yaml);
    // Not YAML::LoadAll: in yaml-cpp 0.7 it loops forever (allocating) on a
    // stray ',' at document level (jbeder/yaml-cpp#1040, fixed by #1319).
    // Load reads only the first document; the event pass below then looks
    // for a second one, handling at most two documents.
    const YAML::Node root = YAML::Load(text);
    std::istringstream in(text);
    YAML::Parser parser(in);
    DocumentProbe probe;
    if (parser.HandleNextDocument(probe) && parser.HandleNextDocument(probe))
      p.Fail(probe.second_mark, "unexpected content after the first YAML document (only one document is allowed)");
    if (root.IsNull()) p.Fail(YAML::Mark(), "the configuration is empty (expected at least 'version: 1')");
    return ParseDocument(p, root, path_for_messages);
  } catch (const YAML::Exception& e) {
    p.Fail(e.mark, "YAML syntax error: " + e.msg);
  }
}

Config LoadFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw ErrnoError("cannot open config file", path);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0) throw ErrnoError("cannot stat config file", path);
  if (!S_ISREG(st.st_mode)) throw Error(ErrorCode::kInvalidArgument, "config file " + path + " is not a regular file");
  if (static_cast<uint64_t>(st.st_size) > kMaxFileSize)
    throw Error(ErrorCode::kInvalidArgument, "config file " + path + " is larger than 16 MiB");
  std::string text;
  char buf[65536];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw ErrnoError("cannot read config file", path);
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxFileSize)
      throw Error(ErrorCode::kInvalidArgument, "config file " + path + " is larger than 16 MiB");
  }
  return Parse(text, path);
}

}  // namespace bulwark::config
