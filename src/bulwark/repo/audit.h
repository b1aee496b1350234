// The audit log: one append-only, hash-chained record per operation, stored
// in the repository itself (docs/AUDIT.md for the behaviour, docs/FORMAT.md
// "Audit records" for the bytes).
//
// Objects: `audit/<seq>-<id>`, where `seq` is the record's sequence number
// (20 decimal digits, zero-padded, so names sort by it) and `id` is the
// SHA-256 of the whole stored (sealed) object, as for every other
// content-addressed object. A record is sealed like a snapshot
// (SealObject, envelope type 9) and never rewritten: a new record is a new
// name, so the log works on append-only credentials and S3 Object Lock.
//
// Chain rule (a DAG, like git's commit graph): record `seq` names as its
// parents every record it saw with a sequence number in
// [seq - kAuditWindow, seq - 1] (at least one at seq - 1; none for seq 1).
// The hash chain is over the sealed bytes: a parent is named by the SHA-256
// of its object, which is also its name, so the links can be followed
// without decrypting, and a record cannot be altered without changing its
// name. Two hosts that append at the same time may both write sequence
// number N (a fork): no exclusive create is needed because their names
// differ (different content, different hash); the next appender names both.
//
// What Verify detects (and what it cannot) is in AuditVerifyReport and
// docs/AUDIT.md: a removed record (a gap in the sequence numbers, or a
// parent that is missing), a reordered or renamed record (the sequence
// number or hash in its name disagrees with its content), an altered record
// (authentication fails). It cannot detect removal of the newest records by
// someone with delete rights (nothing names them yet), except against a
// head the operator kept (`expect_head`).
//
// Thread-safety: AuditLog holds no mutable state; its methods may be called
// from many threads and many processes at once (that is the point of the
// chain rule). Errors: every method throws bulwark::Error (storage errors as
// the backend classifies them: kPermission for read-only credentials).
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bulwark/base/bytes.h"
#include "bulwark/crypto/crypto.h"
#include "bulwark/storage/backend.h"

namespace bulwark::repo {

// How many sequence numbers back a record names its predecessors. With 4,
// removing any record that a later record could see is detected by up to
// four successors, and a record written by a slow appender (one that listed
// before up to three others appended) is still named by the next one.
constexpr uint64_t kAuditWindow = 4;
// Sequence numbers per listing block (Append): the names of a block share all
// but their last three digits.
constexpr uint64_t kAuditBlock = 1000;

// A record's position: its sequence number (1, 2, ...) and the SHA-256 of
// its stored object.
struct AuditRef {
  uint64_t seq = 0;
  Id id;

  // "audit/00000000000000000042-<64 hex>".
  std::string Name() const;
  // Parses an object name (with or without the "audit/" prefix); nullopt if
  // it is not one.
  static std::optional<AuditRef> Parse(std::string_view name);
  auto operator<=>(const AuditRef&) const = default;
};

// One recorded operation. Times are UTC, ns since the Unix epoch.
struct AuditRecord {
  // Chain position: filled by AuditLog::Append, read back by Decode.
  uint64_t seq = 0;
  std::vector<AuditRef> parents;  // sorted
  // Who.
  std::string host, username;
  uint32_t uid = 0;
  std::string key;  // hex id of the key slot that opened the repository ("" if unknown)
  // What.
  std::string command;            // the command path, e.g. "backup", "key add"
  std::vector<std::string> args;  // the command line after the program name, redacted (RedactArguments)
  // Result.
  std::string result = "ok";  // "ok" | "partial" | "error"
  int exit_code = 0;
  std::string error_code;  // ErrorCodeName of the failure ("" when ok)
  std::string error;       // its message, redacted (RedactText)
  std::vector<Id> snapshots_added, snapshots_removed;
  // When.
  int64_t start_ns = 0;     // when the command started
  int64_t duration_ns = 0;  // until the record was made
  std::string program_version;

  // JSON payload (docs/FORMAT.md "Audit records").
  Bytes Encode() const;
  // Throws kCorrupt naming `what` for anything malformed; ignores unknown keys.
  static AuditRecord Decode(ByteSpan data, std::string_view what);
  nlohmann::json ToJson() const;
};

// One record as listed: its name and its content.
struct AuditEntry {
  AuditRef ref;
  AuditRecord record;
};

// A problem Verify found. `seq` orders problems; the first is "the first
// bad record".
struct AuditProblem {
  uint64_t seq = 0;
  std::string name;  // the object concerned (possibly one that is missing)
  // "removed" (missing record or sequence numbers), "altered" (authentication
  // failed or undecodable), "moved" (name and content disagree: renamed,
  // copied, reordered), "broken-link" (a parent list that breaks the rule),
  // "malformed-name" (an object under audit/ that is not a record name).
  std::string kind;
  std::string message;
};

struct AuditVerifyReport {
  uint64_t records = 0;  // objects under audit/
  uint64_t max_seq = 0;
  uint64_t forks = 0;  // sequence numbers held by more than one record
  // Records no other record names (normally those at max_seq): removing one
  // of these cannot be detected.
  std::vector<std::string> heads;
  // Heads older than the window (max_seq - kAuditWindow or below): a record
  // whose appender stalled while several others appended. Legitimate, but
  // unprotected: listed so an operator can note them.
  std::vector<std::string> unanchored;
  // Sorted by seq; at one seq, records present but bad (altered, moved,
  // broken-link) before missing ones, then by name.
  std::vector<AuditProblem> problems;
  bool ok() const { return problems.empty(); }
};

class AuditLog {
 public:
  // Neither is owned; both must outlive the AuditLog. `aead` is the
  // repository's (Repository::aead()).
  AuditLog(storage::Backend& backend, const crypto::Aead& aead) : backend_(backend), aead_(aead) {}

  // Appends `record`: finds the highest sequence number by listing blocks of
  // 1000 sequence numbers (kAuditBlock; about 2 * log2(records / 1000) + 2
  // LISTs, each of at most 1000 names: never the whole log), sets its seq to
  // the highest sequence number + 1 and its parents to every record within
  // the window,
  // seals it and writes it (one PUT). Returns where it was written. A
  // failure writes nothing (the PUT is atomic).
  AuditRef Append(AuditRecord record) const;
  // The records of block `block` (sequence numbers block * kAuditBlock ..
  // + 999), sorted; one LIST of that name prefix.
  std::vector<AuditRef> ListBlock(uint64_t block) const;

  // Every record, decoded, sorted by (seq, start time, id). A record that does
  // not open or decode goes to `on_error` (or is thrown when it is null).
  std::vector<AuditEntry> List(const std::function<void(const Error&)>& on_error = nullptr) const;

  // Checks the whole log (reads every record, `threads` at a time; 0 = the
  // backend's max_connections). `expect_head`, when given, is a record name
  // (or "seq-hex") the operator saw before: it must still exist and be intact,
  // which detects truncation back past it.
  AuditVerifyReport Verify(const std::string& expect_head = "", int threads = 0) const;

 private:
  std::vector<AuditRef> ListRefs(std::vector<std::string>* malformed) const;
  storage::Backend& backend_;
  const crypto::Aead& aead_;
};

// Argument redaction, shared by every command (the only place that decides
// what is secret).
//
// RedactArguments: the value of any option named in kSecretOptions
// ("--opt VALUE" or "--opt=VALUE") becomes "***"; every argument then goes
// through RedactText. RedactText: in `KEY=VALUE` pairs (libpq conninfo
// "password=...", "PGPASSWORD=..." in a command line) whose key contains
// password, passwd, secret, token or credential (any case), the value
// (quoted or not) becomes "***"; in URLs the password of the user
// information ("postgresql://user:pw@host" -> "postgresql://user:***@host")
// does too.
extern const std::vector<std::string_view> kSecretOptions;
std::vector<std::string> RedactArguments(const std::vector<std::string>& args);
std::string RedactText(std::string_view text);

}  // namespace bulwark::repo
