// bulwark init: create a repository.
#include "bulwark/base/error.h"
#include "bulwark/base/log.h"
#include "bulwark/cli/common.h"
#include "bulwark/storage/backend.h"

namespace bulwark::cli {

void AddInit(CLI::App& app) {
  struct Opts {
    std::string min = "512KiB", avg = "1MiB", max = "8MiB";
    int compression = 3;
    uint64_t kdf_ops = 3;
    std::string kdf_mem = "64MiB";
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("init", "create a new repository");
  cmd->add_option("--chunk-min", o->min, "default minimum chunk size")->capture_default_str();
  cmd->add_option("--chunk-avg", o->avg, "default average chunk size (power of two)")->capture_default_str();
  cmd->add_option("--chunk-max", o->max, "default maximum chunk size")->capture_default_str();
  cmd->add_option("--compression", o->compression, "zstd level 1-19, 0 = off")->capture_default_str();
  cmd->add_option("--kdf-ops", o->kdf_ops, "Argon2id iterations")->capture_default_str()->group("");
  cmd->add_option("--kdf-memory", o->kdf_mem, "Argon2id memory")->capture_default_str()->group("");
  cmd->callback([o] {
    std::string url = RepoUrl();
    auto backend = storage::Open(url);
    if (backend->Stat("config")) throw Error(ErrorCode::kAlreadyExists, "a repository already exists at " + url);
    repo::InitOptions opts;
    opts.chunker.min_size = static_cast<uint32_t>(ParseSize(o->min));
    opts.chunker.avg_size = static_cast<uint32_t>(ParseSize(o->avg));
    opts.chunker.max_size = static_cast<uint32_t>(ParseSize(o->max));
    opts.compression = o->compression;
    opts.kdf.ops = o->kdf_ops;
    opts.kdf.mem = ParseSize(o->kdf_mem);
    std::string password = ReadPassword(true, "new repository password: ");
    repo::Repository::Init(*backend, password, opts);
    auto r = repo::Repository::Open(std::move(backend), password);
    if (G().json) {
      PrintJson({{"message_type", "initialized"}, {"repository", url}, {"id", r->config().id.Hex()}});
    } else {
      Say("created repository " + r->config().id.Short() + " at " + url);
      Say("keep the password safe: the data cannot be recovered without it");
    }
  });
}

}  // namespace bulwark::cli
