// bulwark key list|add|remove|passwd: manage key slots (passwords, and
// machine keys: `key add --machine-key-file FILE`).
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

#include "bulwark/base/error.h"
#include "bulwark/base/log.h"
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

// Adds a machine key slot and writes its secret to `path`, a new file
// (O_EXCL: never overwrites; mode 0600, owned by the caller). The file is
// created before the slot so that an existing file fails before anything is
// written to the repository; a slot whose file could not be written is
// removed again (nobody could use it).
Id AddMachineKey(repo::Repository& repo, const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    if (errno == EEXIST)
      throw Error(ErrorCode::kAlreadyExists, path + " exists already: a machine key file is never overwritten "
                                                    "(remove it first if it is no longer used)");
    throw ErrnoError("creating the machine key file", path);
  }
  std::optional<repo::MachineKey> key;
  try {
    key = repo.AddMachineKey();
    std::string text = key->Encode();
    for (size_t done = 0; done < text.size();) {
      ssize_t n = ::write(fd, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw ErrnoError("writing", path);
      done += static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0) throw ErrnoError("syncing", path);
    if (::close(fd) != 0) {
      fd = -1;
      throw ErrnoError("closing", path);
    }
    fd = -1;
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(path.c_str());
    if (key) {
      try {
        repo.RemoveKey(key->slot);
      } catch (const Error& e) {
        log::Warn("could not remove the unused key slot " + key->slot.Short() + ": " + e.what());
      }
    }
    throw;
  }
  return key->slot;
}
}  // namespace

void AddKey(CLI::App& app) {
  auto* key = app.add_subcommand("key", "manage passwords (key slots)");
  key->require_subcommand(1);
  struct Opts {
    std::string new_password_file, id, machine_key_file;
    uint64_t kdf_ops = 3;
    std::string kdf_mem = "64MiB";
  };
  auto o = std::make_shared<Opts>();

  key->add_subcommand("list", "list key slots")->callback([] {
    auto repo = OpenRepository(false);
    auto keys = repo->ListKeys();
    if (G().json) {
      nlohmann::json arr = nlohmann::json::array();
      for (auto& k : keys) {
        nlohmann::json j = {{"id", k.id.Hex()}, {"kind", repo::KeyKindName(k.kind)}, {"current", k.current},
                            {"host", k.host}, {"username", k.username}, {"created", repo::FormatTime(k.created_ns)}};
        if (k.kind == repo::KeyKind::kPassword) {
          j["kdf_ops"] = k.kdf.ops;
          j["kdf_memory"] = k.kdf.mem;
        }
        arr.push_back(j);
      }
      PrintJson(arr);
      return;
    }
    std::printf(" %-8s  %-8s  %-12s  %-12s  %s\n", "ID", "Kind", "User", "Host", "Created (UTC)");
    for (auto& k : keys)
      std::printf("%s%-8s  %-8s  %-12s  %-12s  %s\n", k.current ? "*" : " ", k.id.Short().c_str(),
                  std::string(repo::KeyKindName(k.kind)).c_str(), k.username.c_str(), k.host.c_str(),
                  repo::FormatTime(k.created_ns).substr(0, 19).c_str());
  });

  auto* add = key->add_subcommand("add", "add a password, or a machine key file");
  add->add_option("--new-password-file", o->new_password_file, "file with the new password (or BULWARK_NEW_PASSWORD_FILE)");
  add->add_option("--machine-key-file", o->machine_key_file,
                  "instead of a password, add a machine key and write it to this new file (mode 0600; never "
                  "overwritten): for --key-file, e.g. PostgreSQL's archive_command (docs/POSTGRES.md)");
  add->add_option("--kdf-ops", o->kdf_ops)->group("");
  add->add_option("--kdf-memory", o->kdf_mem)->group("");
  add->callback([o] {
    if (!o->machine_key_file.empty() && !o->new_password_file.empty())
      throw Error(ErrorCode::kInvalidArgument, "--machine-key-file and --new-password-file exclude each other");
    auto repo = OpenRepository(false);
    if (!o->machine_key_file.empty()) {
      Id id = AddMachineKey(*repo, o->machine_key_file);
      if (G().json) PrintJson({{"message_type", "key_added"}, {"id", id.Hex()}, {"kind", "machine"}, {"file", o->machine_key_file}});
      else Say("added machine key " + id.Short() + ", written to " + o->machine_key_file +
               " (whoever can read it can read and write the repository; revoke with 'bulwark key remove " +
               id.Short() + "')");
      return;
    }
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
    if (repo->key_kind() == repo::KeyKind::kMachine)
      throw Error(ErrorCode::kInvalidArgument, "key passwd changes a password: open the repository with one, not with "
                                               "a machine key file (use 'key add' and 'key remove' for those)");
    RequireDelete(repo.get(), "key passwd", {repo::ObjectType::kKey});
    Id old_id = repo->key_id();
    Id id = repo->AddKey(NewPassword(o->new_password_file), Kdf(o->kdf_ops, o->kdf_mem));
    repo->backend().Remove(repo::Repository::ObjectName(repo::ObjectType::kKey, old_id));
    if (G().json) PrintJson({{"message_type", "password_changed"}, {"id", id.Hex()}, {"removed", old_id.Hex()}});
    else Say("password changed: key " + old_id.Short() + " replaced by " + id.Short());
  });
}

}  // namespace bulwark::cli
