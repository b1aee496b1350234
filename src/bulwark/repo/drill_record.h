// Drill records: the evidence a restore drill leaves in the repository
// (`bulwark drill`, ops/drill.h; docs/FORMAT.md "Drill records",
// docs/DRILLS.md).
//
// A record is a sealed small object (SealObject, type 10; 9 is the audit
// log's record) whose payload is JSON, stored as `drills/<sha256 of the object>`: content-addressed and
// written once, never rewritten or deleted by bulwark (prune lists only
// data/, index/ and marked/; forget removes snapshots only), so the format
// works under S3 Object Lock, where a record is retained like a snapshot.
// A record names its snapshot by id; it stays after that snapshot is
// forgotten (it is evidence of what was true when the drill ran).
//
// Thread-safety: plain values; SaveDrillRecord / LoadDrillRecords use the
// repository's thread-safe object calls.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "bulwark/base/bytes.h"
#include "bulwark/base/error.h"

namespace bulwark::repo {

class Repository;

// One check of a drill and its outcome. `expected` and `actual` are text as
// shown to the operator ("42", "10..20", "<= 900 s", "3 errors").
struct DrillCheck {
  std::string name;  // "files", "bytes", "blob ids", "rows public.t", "schema_version", "sql: ...", "rto"
  std::string expected;
  std::string actual;
  bool passed = false;
  bool operator==(const DrillCheck&) const = default;
};

struct DrillRecord {
  Id id;                // not stored: the object's name
  int64_t time_ns = 0;  // when the drill started, ns since the Unix epoch (UTC)
  std::string host, username;
  std::string source;       // configured source name
  std::string source_kind;  // "fs" | "command" | "postgres"
  // What was restored into: "directory" (fs, command), "database" (postgres
  // logical: a temporary database on the scratch server), "cluster"
  // (postgres physical: a temporary data directory started on a port).
  std::string target_kind;
  // Where: the scratch directory, "bulwark_drill_<hex> on HOST:PORT" or
  // "127.0.0.1:PORT <data dir>". Never a password (conninfos carry none).
  std::string target;
  bool kept = false;  // --keep: the target was left in place
  Id snapshot;        // the snapshot restored
  int64_t snapshot_time_ns = 0;
  std::vector<DrillCheck> checks;  // in the order they ran
  double restore_seconds = 0;      // start -> restored (server recovered, for physical)
  double validate_seconds = 0;     // restored -> validated
  double total_seconds = 0;        // start -> validated: the measured RTO
  int64_t rto_budget_seconds = 0;  // 0 = no budget
  bool passed = false;             // every check passed, no error, within the budget
  std::string error;               // what stopped the drill early ("" = it ran to the end)
  std::string program_version;

  nlohmann::json ToJson(bool with_id) const;
  // Throws Error(kCorrupt) naming `what` on malformed JSON or fields,
  // kUnsupported for an unknown version. Unknown keys are ignored.
  static DrillRecord FromJson(const nlohmann::json& j, std::string_view what);
  Bytes Encode() const;  // the JSON payload (before sealing)
  static DrillRecord Decode(ByteSpan data, std::string_view what);
};

// Seals and stores `record` as drills/<id>; sets and returns record.id.
// Throws what Backend::Put throws.
Id SaveDrillRecord(Repository& repo, DrillRecord& record);
// Every drill record, oldest first (by time_ns, then id). A damaged record
// is reported to `on_error` and skipped (thrown when on_error is null).
std::vector<DrillRecord> LoadDrillRecords(Repository& repo,
                                          const std::function<void(const Error&)>& on_error = nullptr);

}  // namespace bulwark::repo
