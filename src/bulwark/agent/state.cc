#include "bulwark/agent/state.h"

#include <nlohmann/json.hpp>

#include "bulwark/base/bytes.h"
#include "bulwark/base/error.h"
#include "bulwark/base/json.h"
#include "bulwark/base/sys.h"

namespace bulwark::agent {
namespace {

constexpr const char* kFormat = "bulwark-scheduler-state";
constexpr JobResult kResults[] = {JobResult::kNone, JobResult::kSuccess, JobResult::kFailure, JobResult::kAbandoned};

bool JsonBool(const nlohmann::json& j, const char* key, const std::string& what) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return false;
  if (!it->is_boolean()) throw Error(ErrorCode::kCorrupt, what + ": field '" + key + "' is not true or false");
  return it->get<bool>();
}

}  // namespace

std::string_view JobResultName(JobResult r) {
  switch (r) {
    case JobResult::kNone:
      return "none";
    case JobResult::kSuccess:
      return "success";
    case JobResult::kFailure:
      return "failure";
    case JobResult::kAbandoned:
      return "abandoned";
  }
  return "none";
}

StateStore::StateStore(std::string dir, std::string_view file_name)
    : path_(std::move(dir) + "/" + std::string(file_name)) {}

std::string StateStore::Encode(const State& state) {
  nlohmann::json sources = nlohmann::json::object();
  for (const auto& [name, s] : state.sources) {
    sources[name] = {{"last_slot", s.last_slot},          {"last_start", s.last_start}, {"last_end", s.last_end},
                     {"result", JobResultName(s.result)}, {"error", s.error},           {"running", s.running},
                     {"suspended", s.suspended}};
  }
  const nlohmann::json j = {{"format", kFormat}, {"version", kVersion}, {"sources", sources}};
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

State StateStore::Decode(std::string_view text, const std::string& what) {
  const std::string way_out = " (move " + what +
                              " aside to start afresh: the agent then forgets the last runs, and every source "
                              "waits for its next scheduled time)";
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    if (!j.is_object()) throw Error(ErrorCode::kCorrupt, what + ": not a JSON object");
    if (JsonString(j, "format", what) != kFormat)
      throw Error(ErrorCode::kCorrupt, what + ": not a scheduler state file (format is not '" + kFormat + "')");
    const int64_t version = JsonInt(j, "version", what);
    if (version > kVersion || version < 1)
      throw Error(ErrorCode::kUnsupported, what + ": state version " + std::to_string(version) +
                                               " is not supported (this bulwark writes version " +
                                               std::to_string(kVersion) + ")");
    const auto it = j.find("sources");
    if (it == j.end() || !it->is_object()) throw Error(ErrorCode::kCorrupt, what + ": 'sources' is not an object");
    State state;
    for (const auto& [name, e] : it->items()) {
      const std::string where = what + ": source '" + name + "'";
      if (!e.is_object()) throw Error(ErrorCode::kCorrupt, where + ": not an object");
      SourceState s;
      s.last_slot = JsonInt(e, "last_slot", where, false, 0, 0);
      s.last_start = JsonInt(e, "last_start", where, false, 0, 0);
      s.last_end = JsonInt(e, "last_end", where, false, 0, 0);
      const std::string result = JsonString(e, "result", where, false);
      bool known = result.empty();
      for (JobResult r : kResults)
        if (result == JobResultName(r)) {
          s.result = r;
          known = true;
        }
      if (!known) throw Error(ErrorCode::kCorrupt, where + ": unknown result '" + result.substr(0, 40) + "'");
      s.error = JsonString(e, "error", where, false);
      s.running = JsonBool(e, "running", where);
      s.suspended = JsonBool(e, "suspended", where);
      state.sources.emplace(name, std::move(s));
    }
    return state;
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::kCorrupt, what + ": invalid JSON: " + e.what() + way_out);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kCorrupt) throw;
    throw Error(ErrorCode::kCorrupt, std::string(e.what()) + way_out);
  }
}

State StateStore::Load() const {
  std::string text;
  try {
    text = sys::ReadFile(path_);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kNotFound) return State();
    throw e.WithContext("reading the scheduler state");
  }
  State state = Decode(text, path_);
  for (auto& [name, s] : state.sources) {
    if (!s.running) continue;
    s.running = false;
    s.last_end = 0;
    s.result = JobResult::kAbandoned;
    s.error = "the agent stopped while the job ran";
  }
  return state;
}

void StateStore::Save(const State& state) const {
  WithContext("writing the scheduler state", [&] { sys::WriteFileAtomic(path_, AsBytes(Encode(state))); });
}

}  // namespace bulwark::agent
