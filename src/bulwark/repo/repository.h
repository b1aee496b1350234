// A repository: opened with a password, it gives access to the master key,
// the index, blobs, trees and snapshots (docs/FORMAT.md).
//
// Thread-safety: after Open and LoadIndex, LoadBlob/LoadTree/SaveUnpacked/
// LoadUnpacked may be called from many threads. Index mutation goes through
// BlobSaver.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bulwark/base/bytes.h"
#include "bulwark/base/error.h"
#include "bulwark/chunk/fastcdc.h"
#include "bulwark/crypto/crypto.h"
#include "bulwark/repo/format.h"
#include "bulwark/repo/index.h"
#include "bulwark/repo/snapshot.h"
#include "bulwark/repo/tree.h"
#include "bulwark/repo/tree_cache.h"
#include "bulwark/storage/backend.h"

namespace bulwark::repo {

struct RepoConfig {
  Id id;                    // repository id (random)
  Bytes chunker_seed;       // 32 bytes; derives the Gear table
  chunk::Params chunker;    // default chunk sizes for sources without their own
  int compression = 3;      // default zstd level; 0 = off
  int64_t created_ns = 0;
  // Object Lock (WORM; S3 only): "governance" or "compliance", or empty; every
  // object but locks is written with a retain-until date this many days ahead.
  std::string object_lock_mode;
  int64_t object_lock_days = 0;

  Bytes Encode() const;  // JSON
  static RepoConfig Decode(ByteSpan data, std::string_view what);
};

// Puts `backend` in the Object Lock mode `config` asks for (RepoConfig::
// object_lock_mode, object_lock_days): what opening a repository does to its
// own backend, for another handle on the same storage (the audit trail's).
// Does nothing without Object Lock.
void ApplyObjectLock(storage::Backend& backend, const RepoConfig& config);

// What opens a key slot (docs/FORMAT.md, "Key slots").
enum class KeyKind {
  kPassword,  // Argon2id of a password
  kMachine,   // HMAC-SHA-256 of a random 256-bit secret kept in a machine key file (MachineKey)
};
std::string_view KeyKindName(KeyKind kind);  // "password" | "machine"

struct KeyInfo {
  Id id;
  KeyKind kind = KeyKind::kPassword;
  std::string host, username;
  int64_t created_ns = 0;
  crypto::KdfParams kdf;  // password slots only
  bool current = false;   // the key slot that opened this session
};

// Key file payload (plaintext JSON after the envelope): KDF parameters, salt
// and the master key sealed under the Argon2id-derived key.
Bytes EncodeKeyFile(const crypto::MasterKey& master, std::string_view password, const crypto::KdfParams& kdf);
// Returns the master key if `password` opens it (runs Argon2id with the
// file's parameters); nullopt if the password is wrong or the slot is a
// machine slot (no derivation then); throws kCorrupt for a malformed key file.
// Fills `info` when given.
std::optional<crypto::MasterKey> OpenKeyFile(ByteSpan data, std::string_view password, std::string_view what,
                                             KeyInfo* info);

// A machine key: what a non-interactive caller (PostgreSQL's archive_command)
// opens the repository with instead of a password. The key slot keys/<slot>
// wraps the master key under KEK = HMAC-SHA-256(secret, "bulwark-machine-key-v1"
// ‖ salt): no Argon2id, so opening costs two small reads and microseconds of
// CPU. The secret is 256 random bits, so no password-stretching is needed:
// it cannot be guessed, only stolen. Whoever can read the machine key file can
// read and write the repository, like a password holder; `key remove <slot>`
// revokes it. docs/FORMAT.md "Machine key files", docs/POSTGRES.md.
struct MachineKey {
  Id repository;          // the repository's id (config "id")
  Id slot;                // the key slot it opens: keys/<slot>
  crypto::Key32 secret{};

  // The file's content: JSON {"version":1,"kind":"bulwark-machine-key",
  // "repository":HEX,"key":HEX,"secret":HEX,"created":RFC3339}.
  std::string Encode() const;
  // Throws kInvalidArgument naming `what` (the file) for anything malformed.
  static MachineKey Decode(std::string_view text, std::string_view what);
};

// A machine key slot's payload for `master`, wrapped under `secret`.
Bytes EncodeMachineKeySlot(const crypto::MasterKey& master, const crypto::Key32& secret);
// Returns the master key if `secret` opens the machine slot `data`; nullopt
// if it does not (another secret, or a password slot); throws kCorrupt for a
// malformed key slot. Fills `info` when given.
std::optional<crypto::MasterKey> OpenMachineKeySlot(ByteSpan data, const crypto::Key32& secret, std::string_view what,
                                                    KeyInfo* info);

// The key file's metadata (no key derivation). Throws kCorrupt.
KeyInfo ReadKeyInfo(ByteSpan data, std::string_view what);

struct InitOptions {
  chunk::Params chunker;
  int compression = 3;
  crypto::KdfParams kdf;  // salt generated
  // Reuse another repository's chunker seed and sizes (`init
  // --copy-chunker-params`): the same data splits into the same chunks.
  std::optional<RepoConfig> copy_chunker_from;
  std::string object_lock_mode;  // "governance" | "compliance" | "" (see RepoConfig)
  int64_t object_lock_days = 0;  // 1..36500 when a mode is set
  // Reuse another repository's blob-id key K_id (MasterKey::id) instead of a
  // random one, so equal chunks get equal blob ids in both repositories and
  // `copy` moves trees verbatim and skips present blobs without reading them.
  // The encryption key K_enc is always new. docs/FORMAT.md "Cryptography".
  std::optional<crypto::Key32> id_key;
};

struct SnapshotFilter {
  std::string source, host;
  std::vector<std::string> tags;   // every tag must be present
  std::vector<std::string> paths;  // every path must be present
  bool Matches(const Snapshot& s) const;
};

// One `marked/<sha256>` object: packs a prune removed from the index and will
// delete once the grace period has passed (docs/FORMAT.md, "Prune marks").
struct MarksObject {
  Id id;
  int64_t mtime_ns = 0;  // storage timestamp of the object (ns, UTC)
  IndexFile packs;       // the marked packs (their blob lists are empty)
};

class Repository {
 public:
  // Creates a repository in an empty location. Throws kAlreadyExists.
  static void Init(storage::Backend& backend, std::string_view password, InitOptions options);
  // Opens with the password: tries every key slot. Throws kNoRepository when
  // there is no config object, kWrongPassword when no slot opens.
  static std::unique_ptr<Repository> Open(std::unique_ptr<storage::Backend> backend, std::string_view password);
  // Opens with a machine key (no password, no KDF): reads only keys/<slot>
  // and config (two requests; keys/ is not listed). Throws kWrongPassword when
  // the slot does not exist (revoked, or another repository's key) or does not
  // open, kNoRepository without a config object, kInvalidArgument when the
  // repository's id is not the key's. `what` names the key file in messages.
  static std::unique_ptr<Repository> OpenWithMachineKey(std::unique_ptr<storage::Backend> backend,
                                                        const MachineKey& key, std::string_view what);

  storage::Backend& backend() { return *backend_; }
  const RepoConfig& config() const { return config_; }
  const crypto::Aead& aead() const { return aead_; }
  const crypto::KeyedHasher& ids() const { return ids_; }
  const chunk::GearTable& gear() const { return gear_; }
  const crypto::MasterKey& master_key() const { return master_; }
  const Id& key_id() const { return key_id_; }
  Index& index() { return index_; }
  const Index& index() const { return index_; }

  // Loads every index object (parallel), honouring `supersedes` lists.
  // Throws kCorrupt naming a damaged one.
  void LoadIndex();
  // Finds packs that no index object lists (an interrupted backup uploaded
  // them), reads their headers from the pack tails and writes one index
  // object for them, so their blobs are reused instead of uploaded again.
  // Damaged or partial packs are skipped (check reports them). Returns the
  // number of packs recovered. The index must be loaded.
  // Packs listed in prune marks are not orphans and are skipped.
  size_t IndexOrphanPacks();
  // Reads a pack's blob list from its tail (one or two ranged reads).
  // Returns nullopt for a damaged, partial or vanished pack.
  std::optional<std::vector<PackedBlob>> ReadPackHeader(const storage::ObjectInfo& object, const Id& pack) const;
  // Every prune marks object; a damaged one is skipped with a warning.
  std::vector<MarksObject> LoadMarks() const;
  // Ids of the index objects loaded by LoadIndex, and of the objects it
  // skipped because a newer index object supersedes them (prune deletes
  // those; they exist only when a prune stopped before finishing).
  const std::vector<Id>& index_ids() const { return index_ids_; }
  const std::vector<Id>& superseded_index_ids() const { return superseded_ids_; }

  // Reads, authenticates, decompresses and verifies one blob.
  // Throws kNotFound if the index does not know it, kCorrupt if damaged.
  Bytes LoadBlob(const Id& id) const;
  // A tree blob, decoded. On remote storage through a TreePackCache
  // (tree_cache.h): a pack that serves many trees is fetched whole once.
  Tree LoadTree(const Id& id) const;
  // Whole tree packs fetched so far (tests, statistics).
  uint64_t tree_packs_fetched() const { return tree_cache_ ? tree_cache_->whole_fetches() : 0; }

  // Content-addressed sealed objects ("index/<sha256>", "snapshots/<sha256>").
  Id SaveUnpacked(ObjectType type, ByteSpan payload);
  Bytes LoadUnpacked(ObjectType type, const Id& id) const;
  static std::string ObjectName(ObjectType type, const Id& id);
  // The ids of the content-addressed objects of `type` in storage (one LIST
  // of its prefix, e.g. "snapshots/"), in listing order; names that are not
  // 64 hex digits are skipped. Not for config and WAL objects (kInternal).
  std::vector<Id> ObjectIds(ObjectType type) const;
  // Checks, before anything is written, that these credentials may delete
  // objects of each of `types`: deletes a random name of each type that does
  // not exist. S3 authorizes a DeleteObject before it looks at the key (204
  // when allowed, 403 AccessDenied when not), so this needs no object and
  // removes none; on a versioned bucket each probe leaves a delete marker
  // (no data, never listed). Throws what Remove throws (kPermission).
  void ProbeDelete(const std::vector<ObjectType>& types);

  // Snapshots.
  Id SaveSnapshot(Snapshot& snapshot);
  // Removes snapshots/<id> (forget, tag's rewrite). Throws what the backend's
  // Remove throws.
  void RemoveSnapshot(const Id& id);
  // Called after SaveSnapshot wrote a snapshot (added = true) or
  // RemoveSnapshot removed one, from whichever thread did it: the audit
  // trail's record of snapshot ids (cli/, repo/audit.h). Must be thread-safe.
  // Set it before the repository is shared between threads.
  using SnapshotListener = std::function<void(const Id& id, bool added)>;
  void set_snapshot_listener(SnapshotListener listener) { snapshot_listener_ = std::move(listener); }
  Snapshot LoadSnapshot(const Id& id) const;
  // All snapshots, sorted by time; damaged ones are reported via `on_error`
  // (or thrown when it is null).
  std::vector<Snapshot> LoadSnapshots(const std::function<void(const Error&)>& on_error = nullptr) const;
  // Resolves "latest", a full id or an unambiguous prefix; `filter` narrows
  // "latest". Throws kNotFound / kInvalidArgument (ambiguous prefix).
  Snapshot ResolveSnapshot(const std::string& spec, const SnapshotFilter& filter) const;

  // Key slots.
  std::vector<KeyInfo> ListKeys() const;
  Id AddKey(std::string_view password, const crypto::KdfParams& kdf);
  // Adds a machine key slot with a fresh random secret; returns the key to
  // write to a machine key file (it is not stored anywhere else).
  MachineKey AddMachineKey();
  // The kind of the key slot that opened this session.
  KeyKind key_kind() const { return key_kind_; }
  void RemoveKey(const Id& id);  // refuses the current key and the last key

 private:
  Repository(std::unique_ptr<storage::Backend> backend, const crypto::MasterKey& master, RepoConfig config,
             const Id& key_id);
  std::unique_ptr<storage::Backend> backend_;
  crypto::MasterKey master_;
  crypto::Aead aead_;
  crypto::KeyedHasher ids_;
  chunk::GearTable gear_;
  RepoConfig config_;
  Id key_id_;
  KeyKind key_kind_ = KeyKind::kPassword;
  Index index_;
  std::vector<Id> index_ids_;
  std::vector<Id> superseded_ids_;
  std::unique_ptr<TreePackCache> tree_cache_;  // null on local storage
  SnapshotListener snapshot_listener_;
};

// Resolves a unique object id from a hex prefix among `names` (object names
// under a prefix such as "snapshots/"). Throws kNotFound / kInvalidArgument.
Id ResolvePrefix(const std::vector<storage::ObjectInfo>& objects, const std::string& prefix, std::string_view what);

}  // namespace bulwark::repo
