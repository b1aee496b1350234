// bulwark config check: validate a configuration file.
#include <cstdio>

#include "bulwark/base/error.h"
#include "bulwark/cli/common.h"
#include "bulwark/config/config.h"
#include "bulwark/config/cron.h"
#include "bulwark/repo/snapshot.h"

namespace bulwark::cli {

void AddConfig(CLI::App& app) {
  auto* cfg = app.add_subcommand("config", "work with the configuration file");
  cfg->require_subcommand(1);
  auto file = std::make_shared<std::string>();
  auto* check = cfg->add_subcommand("check", "validate a configuration file and show its sources and next runs");
  check->add_option("file", *file, "the file (default: --config / BULWARK_CONFIG)");
  check->callback([file] {
    std::string path = !file->empty() ? *file : !G().config_path.empty() ? G().config_path
                                                : std::getenv("BULWARK_CONFIG") ? std::getenv("BULWARK_CONFIG") : "";
    if (path.empty()) throw Error(ErrorCode::kInvalidArgument, "no configuration file given");
    config::Config c = config::LoadFile(path);
    int64_t now = repo::NowNs() / 1000000000;
    nlohmann::json sources = nlohmann::json::array();
    for (const auto& [name, s] : c.sources) {
      nlohmann::json j = {{"name", name}, {"kind", s.kind == config::SourceKind::kFs ? "fs" : "command"}};
      if (!s.schedule.empty()) {
        int64_t next = config::CronSchedule::Parse(s.schedule).Next(now);
        j["schedule"] = s.schedule;
        j["next_run"] = repo::FormatTime(next * 1000000000);
      }
      sources.push_back(j);
    }
    if (G().json) {
      PrintJson({{"file", path}, {"valid", true}, {"sources", sources}});
      return;
    }
    Say(path + ": valid, " + std::to_string(c.repositories.size()) + " repositories, " + std::to_string(c.sources.size()) + " sources");
    for (auto& s : sources)
      Say("  " + s["name"].get<std::string>() + " (" + s["kind"].get<std::string>() + ")" +
          (s.contains("next_run") ? ", next run " + s["next_run"].get<std::string>() : ""));
  });
}

}  // namespace bulwark::cli
