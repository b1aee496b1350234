#include "bulwark/repo/repository.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "bulwark/base/error.h"
#include "bulwark/base/json.h"
#include "bulwark/base/log.h"
#include "bulwark/base/sys.h"

namespace bulwark::repo {

using nlohmann::json;

namespace {
constexpr std::string_view kKeyAad = "bulwark-master-key";

std::string HexOf(ByteSpan b) { return ToHex(b); }
Bytes FromHexField(const json& j, const char* field, std::string_view what) {
  Bytes out;
  if (!j.contains(field) || !j[field].is_string() || !FromHex(j[field].get<std::string>(), &out))
    throw Error(ErrorCode::kCorrupt, std::string(what) + ": field '" + field + "' missing or not hex");
  return out;
}
}  // namespace

Bytes RepoConfig::Encode() const {
  json j = {{"version", 1},
            {"id", id.Hex()},
            {"chunker", {{"seed", HexOf(chunker_seed)}, {"min", chunker.min_size}, {"avg", chunker.avg_size}, {"max", chunker.max_size}}},
            {"compression", compression},
            {"created", FormatTime(created_ns)},
            {"created_ns", created_ns}};
  if (!object_lock_mode.empty()) j["object_lock"] = {{"mode", object_lock_mode}, {"days", object_lock_days}};
  std::string s = j.dump();
  return Bytes(s.begin(), s.end());
}

RepoConfig RepoConfig::Decode(ByteSpan data, std::string_view what) {
  json j = json::parse(data.begin(), data.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw Error(ErrorCode::kCorrupt, std::string(what) + ": not valid JSON");
  try {
    RepoConfig c;
    if (JsonInt(j, "version", what) != 1) throw Error(ErrorCode::kUnsupported, std::string(what) + ": unknown config version");
    c.id = Id::FromHexOrThrow(j.at("id").get<std::string>());
    const json& ch = j.at("chunker");
    c.chunker_seed = FromHexField(ch, "seed", what);
    if (c.chunker_seed.size() != 32) throw Error(ErrorCode::kCorrupt, std::string(what) + ": chunker seed must be 32 bytes");
    c.chunker.min_size = static_cast<uint32_t>(JsonInt(ch, "min", what, true, 0, 0, UINT32_MAX));
    c.chunker.avg_size = static_cast<uint32_t>(JsonInt(ch, "avg", what, true, 0, 0, UINT32_MAX));
    c.chunker.max_size = static_cast<uint32_t>(JsonInt(ch, "max", what, true, 0, 0, UINT32_MAX));
    c.chunker.Validate();
    c.compression = static_cast<int>(JsonInt(j, "compression", what, true, 0, -1000, 1000));
    if (c.compression < 0 || c.compression > 22) throw Error(ErrorCode::kCorrupt, std::string(what) + ": compression level out of range");
    c.created_ns = JsonInt(j, "created_ns", what, false);
    if (j.contains("object_lock")) {
      const json& ol = j.at("object_lock");
      c.object_lock_mode = JsonString(ol, "mode", what);
      c.object_lock_days = JsonInt(ol, "days", what, true, 0, 1, 36500);
      if (c.object_lock_mode != "governance" && c.object_lock_mode != "compliance")
        throw Error(ErrorCode::kCorrupt, std::string(what) + ": unknown object lock mode");
    }
    return c;
  } catch (const json::exception& e) {
    throw Error(ErrorCode::kCorrupt, std::string(what) + ": malformed config: " + e.what());
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kInvalidArgument) throw Error(ErrorCode::kCorrupt, std::string(what) + ": " + e.what());
    throw;
  }
}

std::string_view KeyKindName(KeyKind kind) { return kind == KeyKind::kMachine ? "machine" : "password"; }

namespace {
constexpr std::string_view kMachineKdf = "hmac-sha256";
constexpr std::string_view kMachineLabel = "bulwark-machine-key-v1";

struct ParsedKeyFile {
  crypto::KdfParams kdf;  // Argon2id parameters; for machine slots only the salt
  Bytes sealed;
  KeyInfo info;
};

// Both kinds of key slot: the same JSON, "kdf" says which.
Bytes EncodeKeySlot(std::string_view kdf_name, const crypto::KdfParams& kdf, const crypto::Key32& kek,
                    const crypto::MasterKey& master) {
  crypto::Aead wrap(kek);
  Bytes sealed = wrap.Seal(master.Serialize(), AsBytes(kKeyAad));
  json j = {{"version", 1}, {"kdf", kdf_name}};
  if (kdf_name != kMachineKdf) {
    j["ops"] = kdf.ops;
    j["mem"] = kdf.mem;
  }
  j["salt"] = HexOf(kdf.salt);
  j["host"] = sys::Hostname();
  j["username"] = sys::Username();
  j["created"] = FormatTime(NowNs());
  j["created_ns"] = NowNs();
  j["master_key"] = HexOf(sealed);
  std::string s = j.dump(2);
  Bytes out;
  PutEnvelope(ObjectType::kKey, &out);
  out.insert(out.end(), s.begin(), s.end());
  return out;
}

ParsedKeyFile ParseKeyFile(ByteSpan data, std::string_view what) {
  CheckEnvelope(data, ObjectType::kKey, what);
  ByteSpan body = data.subspan(kEnvelopeSize);
  json j = json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw Error(ErrorCode::kCorrupt, std::string(what) + ": not valid JSON");
  ParsedKeyFile k;
  try {
    std::string kdf = JsonString(j, "kdf", what);
    if (kdf == "argon2id") {
      k.kdf.ops = static_cast<uint64_t>(JsonInt(j, "ops", what, true, 0, 0));
      k.kdf.mem = static_cast<uint64_t>(JsonInt(j, "mem", what, true, 0, 0));
    } else if (kdf == kMachineKdf) {
      k.info.kind = KeyKind::kMachine;
    } else {
      throw Error(ErrorCode::kUnsupported, std::string(what) + ": unknown KDF");
    }
    k.kdf.salt = FromHexField(j, "salt", what);
    k.sealed = FromHexField(j, "master_key", what);
    k.info.host = j.value("host", "");
    k.info.username = j.value("username", "");
    k.info.created_ns = JsonInt(j, "created_ns", what, false);
    if (k.info.kind == KeyKind::kPassword) k.info.kdf = k.kdf;
  } catch (const json::exception& e) {
    throw Error(ErrorCode::kCorrupt, std::string(what) + ": malformed key file: " + e.what());
  }
  return k;
}

// The master key sealed in `k` under `kek`; nullopt if it does not open.
std::optional<crypto::MasterKey> Unwrap(const ParsedKeyFile& k, const crypto::Key32& kek, std::string_view what) {
  crypto::Aead wrap(kek);
  try {
    Bytes master = wrap.Open(k.sealed, AsBytes(kKeyAad), what);
    return crypto::MasterKey::Parse(master);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kCorrupt) return std::nullopt;  // wrong key (or damaged: indistinguishable)
    throw;
  }
}

crypto::Key32 MachineKek(const crypto::Key32& secret, ByteSpan salt) {
  crypto::KeyedHasher mac(secret);
  Id kek = mac.Mac2(AsBytes(kMachineLabel), salt);
  return kek.b;
}
}  // namespace

Bytes EncodeKeyFile(const crypto::MasterKey& master, std::string_view password, const crypto::KdfParams& kdf_in) {
  crypto::KdfParams kdf = kdf_in;
  if (kdf.salt.empty()) kdf.salt = crypto::RandomBytes(16);
  return EncodeKeySlot("argon2id", kdf, crypto::DeriveKey(password, kdf), master);
}

Bytes EncodeMachineKeySlot(const crypto::MasterKey& master, const crypto::Key32& secret) {
  crypto::KdfParams kdf;
  kdf.salt = crypto::RandomBytes(16);
  return EncodeKeySlot(kMachineKdf, kdf, MachineKek(secret, kdf.salt), master);
}

KeyInfo ReadKeyInfo(ByteSpan data, std::string_view what) { return ParseKeyFile(data, what).info; }

std::optional<crypto::MasterKey> OpenKeyFile(ByteSpan data, std::string_view password, std::string_view what,
                                             KeyInfo* info) {
  ParsedKeyFile k = ParseKeyFile(data, what);
  if (info) *info = k.info;
  if (k.info.kind != KeyKind::kPassword) return std::nullopt;  // no password opens a machine slot
  return Unwrap(k, crypto::DeriveKey(password, k.kdf), what);
}

std::optional<crypto::MasterKey> OpenMachineKeySlot(ByteSpan data, const crypto::Key32& secret, std::string_view what,
                                                    KeyInfo* info) {
  ParsedKeyFile k = ParseKeyFile(data, what);
  if (info) *info = k.info;
  if (k.info.kind != KeyKind::kMachine) return std::nullopt;
  if (k.kdf.salt.size() != 16) throw Error(ErrorCode::kCorrupt, std::string(what) + ": salt must be 16 bytes");
  return Unwrap(k, MachineKek(secret, k.kdf.salt), what);
}

namespace {
constexpr std::string_view kMachineKeyKind = "bulwark-machine-key";

Id IdField(const json& j, const char* field, std::string_view what) {
  auto it = j.find(field);
  Bytes b;
  if (it == j.end() || !it->is_string() || it->get<std::string>().size() != 64 || !FromHex(it->get<std::string>(), &b))
    throw Error(ErrorCode::kInvalidArgument,
                std::string(what) + ": field '" + field + "' missing or not 64 hex digits (not a machine key file?)");
  return Id::FromSpan(b);
}
}  // namespace

std::string MachineKey::Encode() const {
  json j = {{"version", 1},
            {"kind", kMachineKeyKind},
            {"repository", repository.Hex()},
            {"key", slot.Hex()},
            {"secret", ToHex(secret)},
            {"created", FormatTime(NowNs())}};
  return j.dump(2) + "\n";
}

MachineKey MachineKey::Decode(std::string_view text, std::string_view what) {
  json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    throw Error(ErrorCode::kInvalidArgument, std::string(what) + ": not a machine key file (not JSON)");
  auto kind = j.find("kind");
  if (kind == j.end() || !kind->is_string() || kind->get<std::string>() != kMachineKeyKind)
    throw Error(ErrorCode::kInvalidArgument,
                std::string(what) + ": not a machine key file (\"kind\" is not \"" + std::string(kMachineKeyKind) + "\")");
  auto v = j.find("version");
  if (v == j.end() || !v->is_number_integer() || v->get<int64_t>() != 1)
    throw Error(ErrorCode::kInvalidArgument, std::string(what) + ": unknown machine key file version");
  MachineKey k;
  k.repository = IdField(j, "repository", what);
  k.slot = IdField(j, "key", what);
  k.secret = IdField(j, "secret", what).b;
  return k;
}

Repository::Repository(std::unique_ptr<storage::Backend> backend, const crypto::MasterKey& master, RepoConfig config,
                       const Id& key_id)
    : backend_(std::move(backend)),
      master_(master),
      aead_(master.enc),
      ids_(master.id),
      gear_(chunk::GearTable::FromSeed(config.chunker_seed)),
      config_(std::move(config)),
      key_id_(key_id) {
  // Local packs are files: ranged reads are cheap and the page cache keeps
  // them. Remote storage charges and waits per request: 64 MiB of tree packs.
  if (!backend_->capabilities().local) tree_cache_ = std::make_unique<TreePackCache>(size_t(64) << 20);
}

void Repository::Init(storage::Backend& backend, std::string_view password, InitOptions options) {
  options.chunker.Validate();
  if (options.compression < 0 || options.compression > 19)
    throw Error(ErrorCode::kInvalidArgument, "compression level must be 0 (off) to 19");
  if (backend.Stat("config")) throw Error(ErrorCode::kAlreadyExists, "a repository already exists at " + backend.Location());
  if (!options.object_lock_mode.empty()) {
    if (options.object_lock_mode != "governance" && options.object_lock_mode != "compliance")
      throw Error(ErrorCode::kInvalidArgument, "--object-lock must be governance or compliance");
    if (options.object_lock_days < 1 || options.object_lock_days > 36500)
      throw Error(ErrorCode::kInvalidArgument, "--lock-days must be 1..36500");
    backend.SetObjectLock(options.object_lock_mode, options.object_lock_days * 86400);  // kUnsupported off S3
  }
  backend.Create();
  crypto::MasterKey master = crypto::MasterKey::Generate();
  if (options.id_key) master.id = *options.id_key;
  RepoConfig cfg;
  cfg.id = crypto::RandomId();
  if (options.copy_chunker_from) {
    cfg.chunker_seed = options.copy_chunker_from->chunker_seed;
    cfg.chunker = options.copy_chunker_from->chunker;
  } else {
    cfg.chunker_seed = crypto::RandomBytes(32);
    cfg.chunker = options.chunker;
  }
  cfg.compression = options.compression;
  cfg.created_ns = NowNs();
  cfg.object_lock_mode = options.object_lock_mode;
  cfg.object_lock_days = options.object_lock_mode.empty() ? 0 : options.object_lock_days;
  Bytes key = EncodeKeyFile(master, password, options.kdf);
  Id key_id = crypto::Sha256(key);
  backend.Put(ObjectName(ObjectType::kKey, key_id), key);
  crypto::Aead aead(master.enc);
  // The config object is written last: its presence marks a complete repository.
  backend.Put("config", SealObject(aead, ObjectType::kConfig, cfg.Encode()));
}

void ApplyObjectLock(storage::Backend& backend, const RepoConfig& config) {
  if (!config.object_lock_mode.empty())
    backend.SetObjectLock(config.object_lock_mode, config.object_lock_days * 86400);
}

std::unique_ptr<Repository> Repository::Open(std::unique_ptr<storage::Backend> backend, std::string_view password) {
  std::string loc = backend->Location();
  auto cfg_info = backend->Stat("config");
  if (!cfg_info)
    throw Error(ErrorCode::kNoRepository, "no repository at " + loc + " (config object missing; run 'bulwark init' to create one)");
  auto keys = backend->List("keys/");
  if (keys.empty()) throw Error(ErrorCode::kCorrupt, "repository " + loc + ": no key files in keys/");
  std::sort(keys.begin(), keys.end(), [](auto& a, auto& b) { return a.name < b.name; });
  std::optional<crypto::MasterKey> master;
  Id key_id;
  std::vector<std::string> damaged;
  size_t machine = 0;  // machine key slots: no password opens them, so they are not tried
  for (const auto& k : keys) {
    try {
      Bytes data = backend->Get(k.name);
      KeyInfo info;
      master = OpenKeyFile(data, password, loc + "/" + k.name, &info);
      if (master) {
        key_id = Id::FromHexOrThrow(k.name.substr(5));
        break;
      }
      if (info.kind == KeyKind::kMachine) ++machine;
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kCorrupt || e.code() == ErrorCode::kUnsupported || e.code() == ErrorCode::kInvalidArgument) {
        log::Warn(std::string("skipping damaged key file: ") + e.what());
        damaged.push_back(k.name);
        continue;
      }
      throw;
    }
  }
  if (!master) {
    if (damaged.size() == keys.size())
      throw Error(ErrorCode::kCorrupt, "repository " + loc + ": every key file is damaged (" + std::to_string(keys.size()) + ")");
    size_t tried = keys.size() - damaged.size() - machine;
    throw Error(ErrorCode::kWrongPassword, "wrong password: no key in " + loc + " opens with it (tried " +
                                               std::to_string(tried) + " password key" + (tried == 1 ? "" : "s") +
                                               ")");
  }
  crypto::Aead aead(master->enc);
  Bytes raw = backend->Get("config");
  RepoConfig cfg = RepoConfig::Decode(OpenObject(aead, ObjectType::kConfig, raw, loc + "/config"), loc + "/config");
  ApplyObjectLock(*backend, cfg);
  return std::unique_ptr<Repository>(new Repository(std::move(backend), *master, std::move(cfg), key_id));
}

std::unique_ptr<Repository> Repository::OpenWithMachineKey(std::unique_ptr<storage::Backend> backend,
                                                           const MachineKey& key, std::string_view what) {
  std::string loc = backend->Location();
  std::string slot_name = ObjectName(ObjectType::kKey, key.slot);
  Bytes slot;
  try {
    slot = backend->Get(slot_name);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kNotFound) throw;
    if (!backend->Stat("config"))  // only on this error path: one more request
      throw Error(ErrorCode::kNoRepository, "no repository at " + loc + " (config object missing)");
    // Without the slot there is no telling a revoked key from another repository's.
    throw Error(ErrorCode::kWrongPassword,
                std::string(what) + ": its key slot " + key.slot.Short() + " is not in " + loc +
                    " (removed with 'bulwark key remove', or the key file is for another repository: repository " +
                    key.repository.Short() + ")");
  }
  if (crypto::Sha256(slot) != key.slot)
    throw Error(ErrorCode::kCorrupt, loc + "/" + slot_name + ": content does not match its name (damaged)");
  KeyInfo info;
  auto master = OpenMachineKeySlot(slot, key.secret, loc + "/" + slot_name, &info);
  if (!master)
    throw Error(ErrorCode::kWrongPassword,
                std::string(what) + ": its secret does not open key slot " + key.slot.Short() + " in " + loc +
                    (info.kind == KeyKind::kMachine ? "" : " (a password key slot)"));
  crypto::Aead aead(master->enc);
  Bytes raw;
  try {
    raw = backend->Get("config");
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kNotFound) throw;
    throw Error(ErrorCode::kNoRepository, "no repository at " + loc + " (config object missing)");
  }
  RepoConfig cfg = RepoConfig::Decode(OpenObject(aead, ObjectType::kConfig, raw, loc + "/config"), loc + "/config");
  if (cfg.id != key.repository)
    throw Error(ErrorCode::kInvalidArgument, std::string(what) + " is for repository " + key.repository.Short() +
                                                 ", but " + loc + " is repository " + cfg.id.Short());
  ApplyObjectLock(*backend, cfg);
  auto repo = std::unique_ptr<Repository>(new Repository(std::move(backend), *master, std::move(cfg), key.slot));
  repo->key_kind_ = KeyKind::kMachine;
  return repo;
}

void Repository::ProbeDelete(const std::vector<ObjectType>& types) {
  for (ObjectType t : types) backend_->Remove(ObjectName(t, crypto::RandomId()));
}

std::string Repository::ObjectName(ObjectType type, const Id& id) {
  std::string hex = id.Hex();
  switch (type) {
    case ObjectType::kPack: return "data/" + hex.substr(0, 2) + "/" + hex;
    case ObjectType::kIndex: return "index/" + hex;
    case ObjectType::kSnapshot: return "snapshots/" + hex;
    case ObjectType::kKey: return "keys/" + hex;
    case ObjectType::kLock: return "locks/" + hex;
    case ObjectType::kMarks: return "marked/" + hex;
    case ObjectType::kDrill:
      return "drills/" + hex;
    case ObjectType::kWal: return "wal/" + hex;  // WAL objects are named by file (repo/wal.h); probes only
    case ObjectType::kAudit: return "audit/" + hex;  // records are "audit/<seq>-<id>" (repo/audit.h); probes only
    case ObjectType::kConfig: return "config";
  }
  return hex;
}

Id Repository::SaveUnpacked(ObjectType type, ByteSpan payload) {
  Bytes obj = SealObject(aead_, type, payload);
  Id id = crypto::Sha256(obj);
  backend_->Put(ObjectName(type, id), obj);
  return id;
}

Bytes Repository::LoadUnpacked(ObjectType type, const Id& id) const {
  std::string name = ObjectName(type, id);
  std::string what = backend_->Location() + "/" + name;
  Bytes obj = backend_->Get(name);
  if (crypto::Sha256(obj) != id)
    throw Error(ErrorCode::kCorrupt, what + ": content does not match its name (damaged or truncated)");
  return OpenObject(aead_, type, obj, what);
}

void Repository::LoadIndex() {
  auto objects = backend_->List("index/");
  std::vector<Id> ids;
  for (const auto& o : objects) {
    auto slash = o.name.rfind('/');
    Bytes b;
    std::string hex = o.name.substr(slash + 1);
    if (hex.size() != 64 || !FromHex(hex, &b)) continue;
    ids.push_back(Id::FromSpan(b));
  }
  std::sort(ids.begin(), ids.end());
  // Objects are decoded in parallel and appended straight into the index's
  // table (no per-object copies kept): peak memory stays near 48 bytes per
  // blob. An object named in another's `supersedes` list (left behind by a
  // prune that stopped before deleting it) must not count; that is rare, so
  // the index is simply loaded a second time without them.
  std::unordered_set<Id, IdHash> superseded;
  auto load = [&](const std::vector<Id>& which) {
    index_.Clear();
    std::atomic<size_t> next{0};
    std::mutex mu;
    std::optional<Error> first_error;
    auto work = [&] {
      for (size_t i; (i = next++) < which.size();) {
        try {
          std::string what = backend_->Location() + "/" + ObjectName(ObjectType::kIndex, which[i]);
          IndexFile f = IndexFile::Decode(LoadUnpacked(ObjectType::kIndex, which[i]), what);
          for (const auto& p : f.packs) index_.AppendPack(p.id, p.blobs);
          std::lock_guard<std::mutex> lock(mu);
          superseded.insert(f.supersedes.begin(), f.supersedes.end());
        } catch (const Error& e) {
          std::lock_guard<std::mutex> lock(mu);
          if (!first_error) first_error = e;
        }
      }
    };
    size_t nthreads = std::min<size_t>(which.size(), std::max(2u, std::thread::hardware_concurrency()));
    std::vector<std::thread> threads;
    for (size_t t = 1; t < nthreads; ++t) threads.emplace_back(work);
    work();
    for (auto& t : threads) t.join();
    if (first_error) throw *first_error;
  };
  load(ids);
  superseded_ids_.clear();
  std::vector<Id> live;
  for (const auto& id : ids) (superseded.count(id) ? superseded_ids_ : live).push_back(id);
  if (!superseded_ids_.empty()) load(live);
  index_.FinishLoad();
  index_ids_ = std::move(live);
}

std::optional<std::vector<PackedBlob>> Repository::ReadPackHeader(const storage::ObjectInfo& o, const Id& pack) const {
  try {
    std::string what = "pack " + pack.Short();
    size_t want = std::min<uint64_t>(o.size, 64 << 10), need = 0;
    std::vector<PackedBlob> blobs;
    Bytes tail = backend_->GetRange(o.name, o.size - want, want);
    if (!ParsePackTail(aead_, tail, o.size, what, &blobs, &need)) {
      tail = backend_->GetRange(o.name, o.size - need, need);
      if (!ParsePackTail(aead_, tail, o.size, what, &blobs, &need)) return std::nullopt;
    }
    return blobs;
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kCorrupt && e.code() != ErrorCode::kNotFound) throw;
    log::Debug(std::string("cannot read the header of ") + e.what());
    return std::nullopt;
  }
}

std::vector<MarksObject> Repository::LoadMarks() const {
  std::vector<MarksObject> out;
  for (const auto& o : backend_->List("marked/")) {
    Bytes b;
    std::string hex = o.name.substr(o.name.rfind('/') + 1);
    if (hex.size() != 64 || !FromHex(hex, &b)) continue;
    MarksObject m;
    m.id = Id::FromSpan(b);
    m.mtime_ns = o.mtime_ns;
    try {
      m.packs = IndexFile::Decode(LoadUnpacked(ObjectType::kMarks, m.id), backend_->Location() + "/" + o.name);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kNotFound) continue;  // deleted meanwhile
      if (e.code() != ErrorCode::kCorrupt) throw;
      // Without it its packs count as unindexed: still deleted only after
      // the grace period, by their own age.
      log::Warn(std::string("ignoring damaged prune marks: ") + e.what());
      continue;
    }
    out.push_back(std::move(m));
  }
  return out;
}

size_t Repository::IndexOrphanPacks() {
  std::vector<std::pair<storage::ObjectInfo, Id>> unindexed;
  for (const auto& o : backend_->List("data/")) {
    std::string hex = o.name.substr(o.name.rfind('/') + 1);
    Bytes b;
    if (hex.size() != 64 || !FromHex(hex, &b)) continue;
    Id pack = Id::FromSpan(b);
    if (!index_.HasPack(pack)) unindexed.emplace_back(o, pack);
  }
  if (unindexed.empty()) return 0;  // the common case: no marks to read
  std::unordered_set<Id, IdHash> marked;  // prune's marked packs are not orphans
  for (const auto& m : LoadMarks())
    for (const auto& p : m.packs.packs) marked.insert(p.id);
  IndexFile f;
  for (const auto& [o, pack] : unindexed)
    if (!marked.count(pack))
      if (auto blobs = ReadPackHeader(o, pack)) f.packs.push_back({pack, std::move(*blobs)});
  if (f.packs.empty()) return 0;
  SaveUnpacked(ObjectType::kIndex, f.Encode());
  for (const auto& p : f.packs) index_.AddPack(p.id, p.blobs);
  index_.Finalize();
  log::Info("indexed " + std::to_string(f.packs.size()) + " pack(s) left unindexed by an interrupted backup");
  return f.packs.size();
}

Bytes Repository::LoadBlob(const Id& id) const {
  auto loc = index_.Find(id);
  if (!loc) throw Error(ErrorCode::kNotFound, "blob " + id.Hex() + " is not in the index (missing data)");
  std::string name = ObjectName(ObjectType::kPack, loc->pack);
  std::string what = "blob " + id.Short() + " in pack " + loc->pack.Short();
  Bytes sealed = WithContext(what, [&] { return backend_->GetRange(name, loc->blob.offset, loc->blob.length); });
  return OpenBlob(aead_, ids_, loc->blob, sealed, what);
}

Tree Repository::LoadTree(const Id& id) const {
  if (!tree_cache_) return Tree::Decode(LoadBlob(id), "tree " + id.Short());
  auto loc = index_.Find(id);
  if (!loc) throw Error(ErrorCode::kNotFound, "blob " + id.Hex() + " is not in the index (missing data)");
  std::string name = ObjectName(ObjectType::kPack, loc->pack);
  std::string what = "blob " + id.Short() + " in pack " + loc->pack.Short();
  Bytes sealed = WithContext(what, [&] {
    return tree_cache_->Read(
        loc->pack, loc->blob.offset, loc->blob.length,
        [&] { return backend_->GetRange(name, loc->blob.offset, loc->blob.length); },
        [&] { return backend_->Get(name); });
  });
  return Tree::Decode(OpenBlob(aead_, ids_, loc->blob, sealed, what), "tree " + id.Short());
}

Id Repository::SaveSnapshot(Snapshot& snapshot) {
  snapshot.id = SaveUnpacked(ObjectType::kSnapshot, snapshot.Encode());
  if (snapshot_listener_) snapshot_listener_(snapshot.id, true);
  return snapshot.id;
}

void Repository::RemoveSnapshot(const Id& id) {
  backend_->Remove(ObjectName(ObjectType::kSnapshot, id));
  if (snapshot_listener_) snapshot_listener_(id, false);
}

Snapshot Repository::LoadSnapshot(const Id& id) const {
  Snapshot s = Snapshot::Decode(LoadUnpacked(ObjectType::kSnapshot, id), "snapshot " + id.Short());
  s.id = id;
  return s;
}

std::vector<Id> Repository::ObjectIds(ObjectType type) const {
  // "snapshots/<hex>" -> "snapshots/"; packs ("data/<2 hex>/<hex>") list all of "data/".
  std::string prefix = type == ObjectType::kPack ? "data/" : ObjectName(type, Id());
  const size_t slash = prefix.find('/');
  if (slash == std::string::npos || type == ObjectType::kWal)
    throw Error(ErrorCode::kInternal, "ObjectIds: " + std::string(ObjectTypeName(type)) + " objects are not named by id");
  prefix.resize(slash + 1);
  std::vector<Id> ids;
  for (const auto& o : backend_->List(prefix)) {
    std::string hex = o.name.substr(o.name.rfind('/') + 1);
    Bytes b;
    if (hex.size() == 64 && FromHex(hex, &b)) ids.push_back(Id::FromSpan(b));
  }
  return ids;
}

std::vector<Snapshot> Repository::LoadSnapshots(const std::function<void(const Error&)>& on_error) const {
  std::vector<Snapshot> out;
  for (const Id& id : ObjectIds(ObjectType::kSnapshot)) {
    try {
      out.push_back(LoadSnapshot(id));
    } catch (const Error& e) {
      if (!on_error) throw;
      on_error(e);
    }
  }
  std::sort(out.begin(), out.end(), [](const Snapshot& a, const Snapshot& b) {
    return a.time_ns != b.time_ns ? a.time_ns < b.time_ns : a.id < b.id;
  });
  return out;
}

bool SnapshotFilter::Matches(const Snapshot& s) const {
  if (!source.empty() && s.source != source) return false;
  if (!host.empty() && s.host != host) return false;
  for (const auto& t : tags)
    if (std::find(s.tags.begin(), s.tags.end(), t) == s.tags.end()) return false;
  for (const auto& p : paths)
    if (std::find(s.paths.begin(), s.paths.end(), p) == s.paths.end()) return false;
  return true;
}

Id ResolvePrefix(const std::vector<storage::ObjectInfo>& objects, const std::string& prefix, std::string_view what) {
  std::optional<Id> found;
  for (const auto& o : objects) {
    std::string hex = o.name.substr(o.name.rfind('/') + 1);
    if (hex.size() == 64 && hex.rfind(prefix, 0) == 0) {
      if (found) throw Error(ErrorCode::kInvalidArgument, std::string(what) + " id prefix '" + prefix + "' is ambiguous");
      found = Id::FromHexOrThrow(hex);
    }
  }
  if (!found) throw Error(ErrorCode::kNotFound, "no " + std::string(what) + " with id " + prefix);
  return *found;
}

Snapshot Repository::ResolveSnapshot(const std::string& spec, const SnapshotFilter& filter) const {
  if (spec == "latest") {
    std::optional<Snapshot> best;
    for (auto& s : LoadSnapshots([](const Error& e) { log::Warn(e.what()); }))
      if (filter.Matches(s)) best = s;
    if (!best) throw Error(ErrorCode::kNotFound, "no snapshot matches 'latest' with the given filters");
    return *best;
  }
  for (char c : spec)
    if (!isxdigit(static_cast<unsigned char>(c)) || spec.size() > 64)
      throw Error(ErrorCode::kInvalidArgument, "'" + spec + "' is not a snapshot id, id prefix or 'latest'");
  if (spec.empty()) throw Error(ErrorCode::kInvalidArgument, "empty snapshot id");
  std::string lower = spec;
  for (auto& c : lower) c = static_cast<char>(tolower(c));
  return LoadSnapshot(ResolvePrefix(backend_->List("snapshots/"), lower, "snapshot"));
}

std::vector<KeyInfo> Repository::ListKeys() const {
  std::vector<KeyInfo> out;
  for (const auto& k : backend_->List("keys/")) {
    Bytes data = backend_->Get(k.name);
    KeyInfo info = ReadKeyInfo(data, k.name);
    info.id = Id::FromHexOrThrow(k.name.substr(5));
    info.current = info.id == key_id_;
    out.push_back(info);
  }
  return out;
}

Id Repository::AddKey(std::string_view password, const crypto::KdfParams& kdf) {
  Bytes key = EncodeKeyFile(master_, password, kdf);
  Id id = crypto::Sha256(key);
  backend_->Put(ObjectName(ObjectType::kKey, id), key);
  return id;
}

MachineKey Repository::AddMachineKey() {
  MachineKey k;
  k.repository = config_.id;
  Bytes secret = crypto::RandomBytes(k.secret.size());
  std::copy(secret.begin(), secret.end(), k.secret.begin());
  Bytes slot = EncodeMachineKeySlot(master_, k.secret);
  k.slot = crypto::Sha256(slot);
  backend_->Put(ObjectName(ObjectType::kKey, k.slot), slot);
  return k;
}

void Repository::RemoveKey(const Id& id) {
  if (id == key_id_)
    throw Error(ErrorCode::kInvalidArgument, "refusing to remove the key in use (open the repository with another password)");
  if (!backend_->Stat(ObjectName(ObjectType::kKey, id))) throw Error(ErrorCode::kNotFound, "no key " + id.Hex());
  backend_->Remove(ObjectName(ObjectType::kKey, id));
}

}  // namespace bulwark::repo
