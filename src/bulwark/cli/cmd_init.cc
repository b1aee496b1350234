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
    bool copy_chunker_params = false;
    std::string object_lock;
    int64_t lock_days = 0;
    FromRepoFlags from;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("init", "create a new repository");
  auto* cmin = cmd->add_option("--chunk-min", o->min, "default minimum chunk size")->capture_default_str();
  auto* cavg = cmd->add_option("--chunk-avg", o->avg, "default average chunk size (power of two)")->capture_default_str();
  auto* cmax = cmd->add_option("--chunk-max", o->max, "default maximum chunk size")->capture_default_str();
  cmd->add_flag("--copy-chunker-params", o->copy_chunker_params,
                "take the chunker seed, chunk sizes and blob-id key of --from-repo, so data copied between the two "
                "deduplicates (see docs/FORMAT.md)")
      ->excludes(cmin)
      ->excludes(cavg)
      ->excludes(cmax);
  AddFromRepoFlags(cmd, &o->from);
  cmd->add_option("--compression", o->compression, "zstd level 1-19, 0 = off")->capture_default_str();
  cmd->add_option("--object-lock", o->object_lock,
                  "S3 Object Lock mode for every object written: governance or compliance (bucket must have Object Lock "
                  "enabled)");
  cmd->add_option("--lock-days", o->lock_days, "Object Lock retention in days (with --object-lock)");
  cmd->add_option("--kdf-ops", o->kdf_ops, "Argon2id iterations")->capture_default_str()->group("");
  cmd->add_option("--kdf-memory", o->kdf_mem, "Argon2id memory")->capture_default_str()->group("");
  cmd->callback([o] {
    std::string url = RepoUrl();
    auto backend = OpenBackend(url);
    if (backend->Stat("config")) throw Error(ErrorCode::kAlreadyExists, "a repository already exists at " + url);
    repo::InitOptions opts;
    opts.chunker.min_size = static_cast<uint32_t>(ParseSize(o->min));
    opts.chunker.avg_size = static_cast<uint32_t>(ParseSize(o->avg));
    opts.chunker.max_size = static_cast<uint32_t>(ParseSize(o->max));
    opts.compression = o->compression;
    opts.kdf.ops = o->kdf_ops;
    opts.kdf.mem = ParseSize(o->kdf_mem);
    if (!o->object_lock.empty() && o->lock_days <= 0)
      throw Error(ErrorCode::kInvalidArgument, "--object-lock needs --lock-days N (N >= 1)");
    if (o->object_lock.empty() && o->lock_days > 0)
      throw Error(ErrorCode::kInvalidArgument, "--lock-days needs --object-lock governance|compliance");
    opts.object_lock_mode = o->object_lock;
    opts.object_lock_days = o->lock_days;
    std::unique_ptr<repo::Repository> from;
    if (o->copy_chunker_params) {
      if (o->from.Url().empty())
        throw Error(ErrorCode::kInvalidArgument, "--copy-chunker-params needs the repository to take them from: --from-repo or BULWARK_FROM_REPOSITORY");
      from = OpenFromRepository(o->from, false);
      opts.copy_chunker_from = from->config();
      opts.id_key = from->master_key().id;
    } else if (!o->from.repo.empty()) {
      throw Error(ErrorCode::kInvalidArgument, "--from-repo is only used by init together with --copy-chunker-params");
    }
    std::string password = ReadPassword(true, "new repository password: ");
    repo::Repository::Init(*backend, password, opts);
    auto r = repo::Repository::Open(std::move(backend), password);
    AuditAttach(r.get(), url);
    if (G().json) {
      nlohmann::json j = {{"message_type", "initialized"}, {"repository", url}, {"id", r->config().id.Hex()}};
      if (from) j["chunker_params_from"] = from->config().id.Hex();
      PrintJson(j);
    } else {
      Say("created repository " + r->config().id.Short() + " at " + url);
      if (from)
        Say("with the chunker parameters and blob-id key of repository " + from->config().id.Short() + " at " +
            from->backend().Location() + ": copies between the two deduplicate");
      Say("keep the password safe: the data cannot be recovered without it");
    }
  });
}

}  // namespace bulwark::cli
