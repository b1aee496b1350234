#include "bulwark/repo/drill_record.h"

#include <algorithm>

#include "bulwark/base/json.h"
#include "bulwark/repo/repository.h"
#include "bulwark/repo/snapshot.h"

namespace bulwark::repo {

using nlohmann::json;

namespace {

constexpr int kVersion = 1;

double JsonSeconds(const json& j, const char* key, std::string_view what) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return 0;
  if (!it->is_number()) throw Error(ErrorCode::kCorrupt, std::string(what) + ": field '" + key + "' is not a number");
  const double v = it->get<double>();
  if (!(v >= 0)) throw Error(ErrorCode::kCorrupt, std::string(what) + ": field '" + key + "' is negative");
  return v;
}

bool JsonBool(const json& j, const char* key, std::string_view what) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return false;
  if (!it->is_boolean()) throw Error(ErrorCode::kCorrupt, std::string(what) + ": field '" + key + "' is not a boolean");
  return it->get<bool>();
}

}  // namespace

json DrillRecord::ToJson(bool with_id) const {
  json j;
  if (with_id) {
    j["id"] = id.Hex();
    j["short_id"] = id.Short();
  }
  j["version"] = kVersion;
  j["time"] = FormatTime(time_ns);
  j["time_ns"] = time_ns;
  j["host"] = host;
  j["username"] = username;
  j["source"] = source;
  j["source_kind"] = source_kind;
  j["target_kind"] = target_kind;
  j["target"] = target;
  j["kept"] = kept;
  j["snapshot"] = snapshot.Hex();
  j["snapshot_time"] = FormatTime(snapshot_time_ns);
  j["snapshot_time_ns"] = snapshot_time_ns;
  json cs = json::array();
  for (const auto& c : checks)
    cs.push_back({{"name", c.name}, {"expected", c.expected}, {"actual", c.actual}, {"passed", c.passed}});
  j["checks"] = std::move(cs);
  j["timings"] = {
      {"restore_seconds", restore_seconds}, {"validate_seconds", validate_seconds}, {"total_seconds", total_seconds}};
  j["rto_budget_seconds"] = rto_budget_seconds;
  j["passed"] = passed;
  j["error"] = error;
  j["program_version"] = program_version;
  return j;
}

DrillRecord DrillRecord::FromJson(const json& j, std::string_view what) {
  try {
    if (!j.is_object()) throw Error(ErrorCode::kCorrupt, std::string(what) + ": not a JSON object");
    if (JsonInt(j, "version", what) != kVersion)
      throw Error(ErrorCode::kUnsupported, std::string(what) + ": unknown drill record version");
    DrillRecord r;
    r.time_ns = JsonInt(j, "time_ns", what);
    r.host = JsonString(j, "host", what, false);
    r.username = JsonString(j, "username", what, false);
    r.source = JsonString(j, "source", what);
    r.source_kind = JsonString(j, "source_kind", what, false);
    r.target_kind = JsonString(j, "target_kind", what, false);
    r.target = JsonString(j, "target", what, false);
    r.kept = JsonBool(j, "kept", what);
    r.snapshot = Id::FromHexOrThrow(JsonString(j, "snapshot", what));
    r.snapshot_time_ns = JsonInt(j, "snapshot_time_ns", what, false);
    if (j.contains("checks")) {
      const json& cs = j["checks"];
      if (!cs.is_array()) throw Error(ErrorCode::kCorrupt, std::string(what) + ": field 'checks' is not a list");
      for (const json& c : cs) {
        if (!c.is_object()) throw Error(ErrorCode::kCorrupt, std::string(what) + ": a check is not an object");
        r.checks.push_back({JsonString(c, "name", what), JsonString(c, "expected", what, false),
                            JsonString(c, "actual", what, false), JsonBool(c, "passed", what)});
      }
    }
    if (j.contains("timings")) {
      const json& t = j["timings"];
      if (!t.is_object()) throw Error(ErrorCode::kCorrupt, std::string(what) + ": field 'timings' is not an object");
      r.restore_seconds = JsonSeconds(t, "restore_seconds", what);
      r.validate_seconds = JsonSeconds(t, "validate_seconds", what);
      r.total_seconds = JsonSeconds(t, "total_seconds", what);
    }
    r.rto_budget_seconds = JsonInt(j, "rto_budget_seconds", what, false, 0, 0);
    r.passed = JsonBool(j, "passed", what);
    r.error = JsonString(j, "error", what, false);
    r.program_version = JsonString(j, "program_version", what, false);
    return r;
  } catch (const json::exception& e) {
    throw Error(ErrorCode::kCorrupt, std::string(what) + ": malformed drill record: " + e.what());
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kInvalidArgument) throw Error(ErrorCode::kCorrupt, std::string(what) + ": " + e.what());
    throw;
  }
}

Bytes DrillRecord::Encode() const {
  std::string s = ToJson(false).dump(-1, ' ', false, json::error_handler_t::replace);
  return Bytes(s.begin(), s.end());
}

DrillRecord DrillRecord::Decode(ByteSpan data, std::string_view what) {
  json j = json::parse(data.begin(), data.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw Error(ErrorCode::kCorrupt, std::string(what) + ": not valid JSON");
  return FromJson(j, what);
}

Id SaveDrillRecord(Repository& repo, DrillRecord& record) {
  record.id = repo.SaveUnpacked(ObjectType::kDrill, record.Encode());
  return record.id;
}

std::vector<DrillRecord> LoadDrillRecords(Repository& repo, const std::function<void(const Error&)>& on_error) {
  std::vector<DrillRecord> out;
  for (const Id& id : repo.ObjectIds(ObjectType::kDrill)) {
    try {
      DrillRecord r = DrillRecord::Decode(repo.LoadUnpacked(ObjectType::kDrill, id), "drill record " + id.Short());
      r.id = id;
      out.push_back(std::move(r));
    } catch (const Error& e) {
      if (!on_error) throw;
      on_error(e);
    }
  }
  std::sort(out.begin(), out.end(), [](const DrillRecord& a, const DrillRecord& b) {
    return a.time_ns != b.time_ns ? a.time_ns < b.time_ns : a.id < b.id;
  });
  return out;
}

}  // namespace bulwark::repo
