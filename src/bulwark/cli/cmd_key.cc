// bulwark key list|add|remove|passwd: manage password key slots.
#include <cstdio>

#include "bulwark/base/error.h"
#include "bulwark/cli/common.h"
#include "bulwark/repo/lock.h"

namespace bulwark::cli {

namespace {
std::string NewPassword(const std::string& file) {
  if (!file.empty()) return ReadPasswordFrom(file);
  if (const char* f = std::getenv("BULWARK_NEW_PASSWORD_FILE"); f && *f) return ReadPasswordFrom(f);
  return PromptPassword("new password: ", true);
}
crypto::KdfParams Kdf(uint64_t ops, const std::string& mem) {
  crypto::KdfParams k;
  k.ops = ops;
  k.mem = ParseSize(mem);
  return k;
}
}  // namespace

void AddKey(CLI::App& app) {
  auto* key = app.add_subcommand("key", "manage passwords (key slots)");
  key->require_subcommand(1);
  struct Opts {
    std::string new_password_file, id;
    uint64_t kdf_ops = 3;
    std::string kdf_mem = "64MiB";
  };
  auto o = std::make_shared<Opts>();

  key->add_subcommand("list", "list key slots")->callback([] {
    auto repo = OpenRepository(false);
    auto keys = repo->ListKeys();
    if (G().json) {
      nlohmann::json arr = nlohmann::json::array();
      for (auto& k : keys)
        arr.push_back({{"id", k.id.Hex()}, {"current", k.current}, {"host", k.host}, {"username", k.username},
                       {"created", repo::FormatTime(k.created_ns)}, {"kdf_ops", k.kdf.ops}, {"kdf_memory", k.kdf.mem}});
      PrintJson(arr);
      return;
    }
    std::printf(" %-8s  %-12s  %-12s  %s\n", "ID", "User", "Host", "Created (UTC)");
    for (auto& k : keys)
      std::printf("%s%-8s  %-12s  %-12s  %s\n", k.current ? "*" : " ", k.id.Short().c_str(), k.username.c_str(),
                  k.host.c_str(), repo::FormatTime(k.created_ns).substr(0, 19).c_str());
  });

  auto* add = key->add_subcommand("add", "add a password");
  add->add_option("--new-password-file", o->new_password_file, "file with the new password (or BULWARK_NEW_PASSWORD_FILE)");
  add->add_option("--kdf-ops", o->kdf_ops)->group("");
  add->add_option("--kdf-memory", o->kdf_mem)->group("");
  add->callback([o] {
    auto repo = OpenRepository(false);
    Id id = repo->AddKey(NewPassword(o->new_password_file), Kdf(o->kdf_ops, o->kdf_mem));
    if (G().json) PrintJson({{"message_type", "key_added"}, {"id", id.Hex()}});
    else Say("added key " + id.Short());
  });

  auto dry = std::make_shared<bool>(false);
  auto* rm = key->add_subcommand("remove", "remove a password (not the one in use)");
  rm->add_option("id", o->id, "key id or unique prefix")->required();
  rm->add_flag("-n,--dry-run", *dry, "only say which key would be removed");
  rm->callback([o, dry] {
    auto repo = OpenRepository(false);
    auto lock = *dry ? LockForReading(repo.get()) : LockExclusive(repo.get(), "key remove", {repo::ObjectType::kKey});
    Id id = repo::ResolvePrefix(repo->backend().List("keys/"), o->id, "key");
    if (*dry) {
      if (id == repo->key_id()) throw Error(ErrorCode::kInvalidArgument, "key " + id.Short() + " is the one in use and cannot be removed");
      if (G().json) PrintJson({{"message_type", "dry_run"}, {"would_remove", id.Hex()}});
      else Say("would remove key " + id.Short());
      return;
    }
    repo->RemoveKey(id);
    if (G().json) PrintJson({{"message_type", "key_removed"}, {"id", id.Hex()}});
    else Say("removed key " + id.Short());
  });

  auto* pw = key->add_subcommand("passwd", "change the password in use (adds the new key, then removes the old)");
  pw->add_option("--new-password-file", o->new_password_file, "file with the new password");
  pw->add_option("--kdf-ops", o->kdf_ops)->group("");
  pw->add_option("--kdf-memory", o->kdf_mem)->group("");
  pw->callback([o] {
    auto repo = OpenRepository(false);
    RequireDelete(repo.get(), "key passwd", {repo::ObjectType::kKey});
    Id old_id = repo->key_id();
    Id id = repo->AddKey(NewPassword(o->new_password_file), Kdf(o->kdf_ops, o->kdf_mem));
    repo->backend().Remove(repo::Repository::ObjectName(repo::ObjectType::kKey, old_id));
    if (G().json) PrintJson({{"message_type", "password_changed"}, {"id", id.Hex()}, {"removed", old_id.Hex()}});
    else Say("password changed: key " + old_id.Short() + " replaced by " + id.Short());
  });
}

}  // namespace bulwark::cli
