// Snapshots: one backup of one source at one time (docs/FORMAT.md,
// "Snapshots"). Stored as `snapshots/<sha256>` (a sealed object whose payload
// is JSON). The snapshot is the backup's only commit point: it is written
// after all packs and index objects it references.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "bulwark/base/bytes.h"

namespace bulwark::repo {

// The tag that pins a snapshot (`bulwark tag ID --add keep`, `backup --tag keep`).
inline constexpr std::string_view kPinTag = "keep";

struct SnapshotSummary {
  uint64_t files_new = 0, files_changed = 0, files_unmodified = 0;
  uint64_t dirs = 0, other_entries = 0;
  uint64_t bytes_processed = 0;   // bytes of file content examined (bytes)
  uint64_t bytes_added = 0;       // plaintext bytes of new blobs (bytes)
  uint64_t bytes_stored = 0;      // bytes written to the repository, after compression+encryption
  uint64_t blobs_added = 0;
  uint64_t errors = 0;            // entries skipped (vanished, unreadable)
  double duration_seconds = 0;
};

// Where a snapshot made by `bulwark copy` came from: the snapshot it is a
// copy of, named by the repository that first stored it (config id) and its
// id there. A copy of a copy names the original, so "same origin" is one
// comparison however many hops the snapshot travelled.
struct CopiedFrom {
  Id repository;  // repository id (RepoConfig::id) of the original
  Id snapshot;    // the original snapshot's id in that repository
  bool operator==(const CopiedFrom&) const = default;
};

struct Snapshot {
  Id id;                  // not stored: the object's name
  int64_t time_ns = 0;    // snapshot time, ns since the Unix epoch (UTC)
  std::string host, username;
  uint32_t uid = 0, gid = 0;
  std::string source;     // configured source name, or ""
  std::string kind;       // "fs", "stdin", "command"
  std::vector<std::string> paths, tags, excludes;
  std::optional<Id> parent;
  Id tree;                // root tree blob
  bool partial = false;   // some entries could not be read
  SnapshotSummary summary;
  nlohmann::json facts = nlohmann::json::object();  // facts for later validation
  std::string program_version;
  // Expiry (backup --ttl): ns since the Unix epoch (UTC). After it, forget
  // removes the snapshot unless it is pinned (ops/retention.h).
  std::optional<int64_t> expires_ns;
  // Set when `bulwark tag` rewrote this snapshot: the id of the snapshot as
  // first written (kept across further rewrites, as restic's "original").
  std::optional<Id> original;

  // A pinned snapshot carries the tag kPinTag; no retention policy removes it.
  bool pinned() const;
  std::optional<CopiedFrom> copied_from;  // set by `bulwark copy`; absent in backups

  nlohmann::json ToJson(bool with_id) const;
  // Throws kCorrupt naming `what` on malformed JSON or fields.
  static Snapshot FromJson(const nlohmann::json& j, std::string_view what);
  Bytes Encode() const;
  static Snapshot Decode(ByteSpan data, std::string_view what);
};

// RFC 3339 UTC with nanoseconds: "2026-11-21T10:00:00.123456789Z".
std::string FormatTime(int64_t time_ns);
// For tables: "2026-11-21 10:00:00" (UTC, seconds truncated).
std::string FormatTimeShort(int64_t time_ns);
// Parses RFC 3339 ("2026-11-21T10:00:00Z", fractional seconds, offsets
// "+02:00") and "2026-11-21 10:00:00" (UTC); throws kInvalidArgument.
int64_t ParseTime(std::string_view s);
int64_t NowNs();

}  // namespace bulwark::repo
