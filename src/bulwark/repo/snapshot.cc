#include "bulwark/repo/snapshot.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "bulwark/base/error.h"
#include "bulwark/base/json.h"

namespace bulwark::repo {

using nlohmann::json;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string FormatTime(int64_t time_ns) {
  int64_t sec = time_ns / 1000000000;
  int64_t ns = time_ns % 1000000000;
  if (ns < 0) {
    ns += 1000000000;
    --sec;
  }
  time_t t = static_cast<time_t>(sec);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(ns));
  return buf;
}

std::string FormatTimeShort(int64_t time_ns) {
  std::string t = FormatTime(time_ns).substr(0, 19);
  t[10] = ' ';
  return t;
}

int64_t ParseTime(std::string_view s) {
  auto bad = [&]() -> Error {
    return Error(ErrorCode::kInvalidArgument,
                 "cannot parse time '" + std::string(s) + "' (want RFC 3339, e.g. 2026-11-21T10:00:00Z)");
  };
  int Y, M, D, h = 0, m = 0, sec = 0, consumed = 0;
  std::string str(s);
  if (std::sscanf(str.c_str(), "%4d-%2d-%2d%n", &Y, &M, &D, &consumed) != 3) throw bad();
  size_t pos = static_cast<size_t>(consumed);
  int64_t frac_ns = 0, offset_s = 0;
  if (pos < str.size() && (str[pos] == 'T' || str[pos] == ' ')) {
    int c2 = 0;
    if (std::sscanf(str.c_str() + pos + 1, "%2d:%2d:%2d%n", &h, &m, &sec, &c2) != 3) throw bad();
    pos += 1 + static_cast<size_t>(c2);
    if (pos < str.size() && str[pos] == '.') {
      ++pos;
      int digits = 0;
      while (pos < str.size() && isdigit(static_cast<unsigned char>(str[pos]))) {
        if (digits < 9) frac_ns = frac_ns * 10 + (str[pos] - '0');
        ++digits;
        ++pos;
      }
      if (digits == 0) throw bad();
      for (int i = digits; i < 9; ++i) frac_ns *= 10;
    }
    if (pos < str.size()) {
      if (str[pos] == 'Z' || str[pos] == 'z') ++pos;
      else if (str[pos] == '+' || str[pos] == '-') {
        int oh, om;
        if (std::sscanf(str.c_str() + pos + 1, "%2d:%2d", &oh, &om) != 2) throw bad();
        offset_s = (oh * 3600 + om * 60) * (str[pos] == '+' ? 1 : -1);
        pos += 6;
      }
    }
  }
  if (pos != str.size() || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60) throw bad();
  struct tm tm = {};
  tm.tm_year = Y - 1900;
  tm.tm_mon = M - 1;
  tm.tm_mday = D;
  tm.tm_hour = h;
  tm.tm_min = m;
  tm.tm_sec = sec;
  int64_t t = timegm(&tm) - offset_s;
  // int64 nanoseconds span 1677-09-21 .. 2262-04-11.
  if (t < -9223372036LL || t > 9223372035LL)
    throw Error(ErrorCode::kInvalidArgument, "time '" + std::string(s) + "' is outside the supported range (1678..2261)");
  return t * 1000000000 + frac_ns;
}

json Snapshot::ToJson(bool with_id) const {
  json j;
  if (with_id) {
    j["id"] = id.Hex();
    j["short_id"] = id.Short();
  }
  j["version"] = 1;
  j["time"] = FormatTime(time_ns);
  j["time_ns"] = time_ns;
  j["host"] = host;
  j["username"] = username;
  j["uid"] = uid;
  j["gid"] = gid;
  j["source"] = source;
  j["kind"] = kind;
  j["paths"] = paths;
  j["tags"] = tags;
  j["excludes"] = excludes;
  if (parent) j["parent"] = parent->Hex();
  j["tree"] = tree.Hex();
  j["partial"] = partial;
  j["summary"] = {{"files_new", summary.files_new},
                  {"files_changed", summary.files_changed},
                  {"files_unmodified", summary.files_unmodified},
                  {"dirs", summary.dirs},
                  {"other_entries", summary.other_entries},
                  {"bytes_processed", summary.bytes_processed},
                  {"bytes_added", summary.bytes_added},
                  {"bytes_stored", summary.bytes_stored},
                  {"blobs_added", summary.blobs_added},
                  {"errors", summary.errors},
                  {"duration_seconds", summary.duration_seconds}};
  j["facts"] = facts;
  j["program_version"] = program_version;
  if (expires_ns) j["expires"] = FormatTime(*expires_ns);
  if (original) j["original"] = original->Hex();
  if (copied_from) j["copied_from"] = {{"repository", copied_from->repository.Hex()}, {"snapshot", copied_from->snapshot.Hex()}};
  return j;
}

Snapshot Snapshot::FromJson(const json& j, std::string_view what) {
  try {
    Snapshot s;
    if (JsonInt(j, "version", what) != 1)
      throw Error(ErrorCode::kUnsupported, std::string(what) + ": unknown snapshot version");
    s.time_ns = JsonInt(j, "time_ns", what);
    s.host = j.at("host").get<std::string>();
    s.username = j.value("username", "");
    s.uid = static_cast<uint32_t>(JsonInt(j, "uid", what, false, 0, 0, UINT32_MAX));
    s.gid = static_cast<uint32_t>(JsonInt(j, "gid", what, false, 0, 0, UINT32_MAX));
    s.source = j.value("source", "");
    s.kind = j.value("kind", "fs");
    s.paths = j.value("paths", std::vector<std::string>{});
    s.tags = j.value("tags", std::vector<std::string>{});
    s.excludes = j.value("excludes", std::vector<std::string>{});
    if (j.contains("parent")) s.parent = Id::FromHexOrThrow(j["parent"].get<std::string>());
    s.tree = Id::FromHexOrThrow(j.at("tree").get<std::string>());
    s.partial = j.value("partial", false);
    if (j.contains("summary")) {
      const auto& m = j["summary"];
      s.summary.files_new = static_cast<uint64_t>(JsonInt(m, "files_new", what, false, 0, 0));
      s.summary.files_changed = static_cast<uint64_t>(JsonInt(m, "files_changed", what, false, 0, 0));
      s.summary.files_unmodified = static_cast<uint64_t>(JsonInt(m, "files_unmodified", what, false, 0, 0));
      s.summary.dirs = static_cast<uint64_t>(JsonInt(m, "dirs", what, false, 0, 0));
      s.summary.other_entries = static_cast<uint64_t>(JsonInt(m, "other_entries", what, false, 0, 0));
      s.summary.bytes_processed = static_cast<uint64_t>(JsonInt(m, "bytes_processed", what, false, 0, 0));
      s.summary.bytes_added = static_cast<uint64_t>(JsonInt(m, "bytes_added", what, false, 0, 0));
      s.summary.bytes_stored = static_cast<uint64_t>(JsonInt(m, "bytes_stored", what, false, 0, 0));
      s.summary.blobs_added = static_cast<uint64_t>(JsonInt(m, "blobs_added", what, false, 0, 0));
      s.summary.errors = static_cast<uint64_t>(JsonInt(m, "errors", what, false, 0, 0));
      s.summary.duration_seconds = m.contains("duration_seconds") && m["duration_seconds"].is_number() ? m["duration_seconds"].get<double>() : 0.0;
    }
    s.facts = j.value("facts", json::object());
    s.program_version = j.value("program_version", "");
    if (j.contains("expires")) s.expires_ns = ParseTime(j["expires"].get<std::string>());
    if (j.contains("original")) s.original = Id::FromHexOrThrow(j["original"].get<std::string>());
    if (j.contains("copied_from")) {
      const auto& c = j["copied_from"];
      if (!c.is_object()) throw Error(ErrorCode::kCorrupt, std::string(what) + ": field 'copied_from' is not an object");
      s.copied_from = CopiedFrom{Id::FromHexOrThrow(JsonString(c, "repository", what)),
                                 Id::FromHexOrThrow(JsonString(c, "snapshot", what))};
    }
    return s;
  } catch (const json::exception& e) {
    throw Error(ErrorCode::kCorrupt, std::string(what) + ": malformed snapshot: " + e.what());
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kInvalidArgument) throw Error(ErrorCode::kCorrupt, std::string(what) + ": " + e.what());
    throw;
  }
}

bool Snapshot::pinned() const { return std::find(tags.begin(), tags.end(), kPinTag) != tags.end(); }

Bytes Snapshot::Encode() const {
  std::string s = ToJson(false).dump(-1, ' ', false, json::error_handler_t::replace);
  return Bytes(s.begin(), s.end());
}

Snapshot Snapshot::Decode(ByteSpan data, std::string_view what) {
  json j = json::parse(data.begin(), data.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw Error(ErrorCode::kCorrupt, std::string(what) + ": not valid JSON");
  return FromJson(j, what);
}

}  // namespace bulwark::repo
