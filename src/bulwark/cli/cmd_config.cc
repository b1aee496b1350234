// bulwark config check: validate a configuration file and show, per source,
// its schedule, time zone, suspension, next run times and hooks.
#include <cstdio>
#include <cstdlib>

#include "bulwark/base/error.h"
#include "bulwark/cli/common.h"
#include "bulwark/config/config.h"
#include "bulwark/config/cron.h"
#include "bulwark/repo/snapshot.h"

namespace bulwark::cli {
namespace {

struct CheckOpts {
  std::string file;
  std::string after;  // RFC 3339; "" = now
  int count = 3;
};

// "30s", "10m", "1h30m", "0" (ParseDuration's units, largest first).
std::string ShowDuration(int64_t s) {
  if (s == 0) return "0";
  std::string out;
  const std::pair<int64_t, char> units[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
  for (const auto& [size, unit] : units)
    if (s >= size) {
      out += std::to_string(s / size) + unit;
      s %= size;
    }
  return out;
}

std::string ShowArgv(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& a : argv) {
    if (!out.empty()) out += ' ';
    out += a.empty() || a.find_first_of(" \t'\"") != std::string::npos ? "'" + a + "'" : a;
  }
  return out;
}

nlohmann::json HooksJson(const std::vector<config::Hook>& hooks) {
  nlohmann::json out = nlohmann::json::array();
  for (const config::Hook& h : hooks)
    out.push_back({{"command", h.command},
                   {"timeout_seconds", h.timeout_seconds},
                   {"on_error", config::OnErrorName(h.on_error)}});
  return out;
}

nlohmann::json SourceJson(const config::SourceConfig& s, int64_t after, int count) {
  const TimeZone zone = s.Zone();
  nlohmann::json j = {{"name", s.name},
                      {"kind", config::SourceKindName(s.kind)},
                      {"repository", s.repository},
                      {"schedule", s.schedule.empty() ? nlohmann::json() : nlohmann::json(s.schedule)},
                      {"timezone", zone.name()},
                      {"suspend", s.suspend},
                      {"hooks", {{"pre", HooksJson(s.hooks.pre)}, {"post", HooksJson(s.hooks.post)}}}};
  nlohmann::json runs = nlohmann::json::array();
  if (const auto schedule = s.ParsedSchedule(); schedule && !s.suspend) {
    int64_t t = after;
    for (int i = 0; i < count; ++i) {
      try {
        t = schedule->Next(t);
      } catch (const Error&) {
        break;  // no fire time before the year 10000
      }
      runs.push_back({{"utc", TimeZone().FormatRfc3339(t)}, {"local", zone.FormatRfc3339(t)}, {"unix", t}});
    }
    if (!runs.empty()) j["next_run"] = runs[0]["utc"];
  }
  j["next_runs"] = runs;
  return j;
}

void SayHooks(const char* phase, const nlohmann::json& hooks) {
  for (const auto& h : hooks)
    Say(std::string("    ") + phase + " hook: " + ShowArgv(h["command"].get<std::vector<std::string>>()) +
        " (timeout " + ShowDuration(h["timeout_seconds"].get<int64_t>()) + ", on error " +
        h["on_error"].get<std::string>() + ")");
}

void RunCheck(const CheckOpts& o) {
  const char* env = std::getenv("BULWARK_CONFIG");
  const std::string path = !o.file.empty() ? o.file : !G().config_path.empty() ? G().config_path : env ? env : "";
  if (path.empty())
    throw Error(ErrorCode::kInvalidArgument, "no configuration file given (pass FILE, --config or BULWARK_CONFIG)");
  if (o.count < 1 || o.count > 100) throw Error(ErrorCode::kInvalidArgument, "--count must be between 1 and 100");
  const config::Config c = config::LoadFile(path);
  const int64_t after = o.after.empty() ? repo::NowNs() / 1000000000
                                        : WithContext("--after", [&] { return repo::ParseTime(o.after) / 1000000000; });
  nlohmann::json sources = nlohmann::json::array();
  for (const auto& [name, s] : c.sources) sources.push_back(SourceJson(s, after, o.count));
  if (G().json) {
    PrintJson({{"file", path}, {"valid", true}, {"after", TimeZone().FormatRfc3339(after)}, {"sources", sources}});
    return;
  }
  Say(path + ": valid, " + std::to_string(c.repositories.size()) + " repositories, " +
      std::to_string(c.sources.size()) + " sources");
  for (const auto& s : sources) {
    Say("  " + s["name"].get<std::string>() + " (" + s["kind"].get<std::string>() + ", repository " +
        s["repository"].get<std::string>() + ")");
    const std::string zone = s["timezone"].get<std::string>();
    if (s["schedule"].is_null()) {
      Say("    schedule: none (on demand only)");
    } else {
      Say("    schedule: " + s["schedule"].get<std::string>() + " (time zone " + zone + ")" +
          (s["suspend"].get<bool>() ? ", suspended: no scheduled runs" : ""));
      for (const auto& r : s["next_runs"]) {
        const std::string local = r["local"].get<std::string>();
        Say("    next run: " + r["utc"].get<std::string>() + (zone == "UTC" ? "" : "  (" + local + " " + zone + ")"));
      }
    }
    SayHooks("pre", s["hooks"]["pre"]);
    SayHooks("post", s["hooks"]["post"]);
  }
}

}  // namespace

void AddConfig(CLI::App& app) {
  auto* cfg = app.add_subcommand("config", "work with the configuration file");
  cfg->require_subcommand(1);
  auto o = std::make_shared<CheckOpts>();
  auto* check = cfg->add_subcommand(
      "check", "validate a configuration file and show each source's schedule, time zone, next runs and hooks");
  check->add_option("file", o->file, "the file (default: --config / BULWARK_CONFIG)");
  check->add_option("--after", o->after, "show the runs after this time (RFC 3339; default: now)");
  check->add_option("--count", o->count, "how many next runs to show per source (1..100, default 3)");
  check->callback([o] { RunCheck(*o); });
}

}  // namespace bulwark::cli
