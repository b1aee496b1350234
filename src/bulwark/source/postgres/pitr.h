// Point-in-time recovery from a physical base backup (`bulwark pg restore`;
// docs/POSTGRES.md "Physical base backups and PITR").
//
// RestoreBaseBackup writes a base backup's data directory (ops::Restore, or
// a delta update of an existing one), checks it with pg_verifybackup against
// the backup's own backup_manifest, then configures recovery the PostgreSQL
// 12+ way: the settings appended to postgresql.auto.conf and an empty
// recovery.signal (PostgreSQL 15 documentation §26.3.4 "Recovering Using a
// Continuous Archive Backup", §20.5.4-5 "Archive Recovery", "Recovery
// Target"). Starting the server then replays WAL through restore_command
// up to the target and promotes, pauses or shuts down.
//
// Recovery targets (exactly one, or none: replay all WAL there is):
//   time   recovery_target_time, written as an unambiguous UTC timestamp
//          ("2026-11-21 19:33:28.735917+00"). PostgreSQL compares it with
//          commit (and abort) record timestamps.
//   lsn    recovery_target_lsn "X/Y".
//   xid    recovery_target_xid (a transaction id, decimal).
//   name   recovery_target_name (a pg_create_restore_point name, < 64 bytes).
//   immediate  recovery_target = 'immediate': stop as soon as the backup is
//          consistent.
// recovery_target_action is always written (default promote; PostgreSQL's
// own default, pause, leaves a read-only server that looks stuck),
// recovery_target_timeline too (default latest), recovery_target_inclusive
// only when asked.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bulwark/ops/restore.h"
#include "bulwark/repo/repository.h"
#include "bulwark/source/postgres/physical.h"

namespace bulwark::source::postgres {

struct RecoveryTarget {
  enum class Kind { kNone, kTime, kLsn, kXid, kName, kImmediate };
  Kind kind = Kind::kNone;
  std::string value;    // the setting's value, normalised ("0/17000438", "2026-11-21 19:33:28.735917+00", ...)
  int64_t time_ns = 0;  // kTime: ns since the Unix epoch (UTC), a whole number of microseconds
  Lsn lsn = 0;          // kLsn
};

// The flags' values as given ("" = not given).
struct TargetFlags {
  std::string time = "", lsn = "", xid = "", name = "", target = "";  // target: "immediate"
};
// Validates and normalises: at most one target; time as ParseTargetTime,
// LSN as ParseLsn, xid a decimal integer > 0, name 1..63 bytes, target only
// "immediate". Throws Error(kInvalidArgument) naming the flag.
RecoveryTarget ParseRecoveryTarget(const TargetFlags& flags);

// A recovery target time: RFC 3339 ("2026-11-21T19:33:28.735917Z",
// "...+02:00") or PostgreSQL's output format ("2026-11-21 19:33:28.735917+00",
// "... UTC"), with 'T' or ' ' between date and time, at most 6 fractional
// digits (PostgreSQL keeps microseconds) and a zone: "Z", "UTC", "GMT",
// "+HH", "+HHMM" or "+HH:MM" (also '-'), optionally after one space. A time
// without a zone is refused: PostgreSQL would read it in the server's
// TimeZone. Returns ns since the Unix epoch; throws Error(kInvalidArgument).
int64_t ParseTargetTime(std::string_view s);
// "2026-11-21 19:33:28.735917+00" (microseconds, omitted when zero), UTC.
std::string FormatTargetTime(int64_t time_ns);

struct RecoveryOptions {
  RecoveryTarget target;
  std::string action = "promote";   // promote | pause | shutdown
  std::string timeline = "latest";  // latest | current | a timeline number
  std::optional<bool> inclusive;    // recovery_target_inclusive; time, lsn and xid targets only
  std::string restore_command;      // required
};
// Throws Error(kInvalidArgument) for an unknown action or timeline, an
// inclusive flag with a target that has none, or an empty restore_command.
void ValidateRecoveryOptions(const RecoveryOptions& o);

// The settings to write, in order (key, value unquoted): restore_command,
// the target, recovery_target_inclusive (if set), recovery_target_timeline,
// recovery_target_action. Validates first.
std::vector<std::pair<std::string, std::string>> RecoverySettings(const RecoveryOptions& o);
// A postgresql.conf string literal: single quotes, ' doubled, \ doubled.
std::string QuoteConfValue(std::string_view v);
// `conf` (a postgresql.auto.conf, possibly empty) with every earlier line
// that sets restore_command or a recovery_target* parameter commented out
// ("# [bulwark: replaced] ..."), then `header` as a comment and the settings
// as `key = 'value'` lines.
std::string WithRecoverySettings(std::string_view conf, const std::vector<std::pair<std::string, std::string>>& settings,
                                 const std::string& header);

// A word for /bin/sh: as it is when it holds only letters, digits and
// /._+-:@=,% (so commands stay readable), else 'text' with embedded quotes
// as '\''.
std::string ShellQuote(std::string_view s);

// The default restore_command: bulwark's own wal-fetch,
//   <bulwark> --repo <url> [--config <file>] [--key-file <file> |
//   --password-file <file>] wal-fetch --source <name> %f %p
// (each word ShellQuote'd)
// PostgreSQL runs it with /bin/sh, as its own user, in the data directory:
// paths must be absolute, and the files readable by that user.
struct WalFetchCommand {
  std::string bulwark_bin, repo_url, config_path, key_file, password_file, source;
};
std::string WalFetchRestoreCommand(const WalFetchCommand& c);

// True for a snapshot BackupPhysical wrote (kind postgres, facts mode physical).
bool IsPhysicalSnapshot(const repo::Snapshot& s);

// Which base backup to restore when none is named: among the physical
// snapshots of `source` ("" = any, when they are all of one source), the
// newest (by snapshot time) that can reach the target: for a time target
// the newest whose facts' stop_time is at or before it, for an LSN target
// whose stop_lsn is; for a numeric recovery timeline, one whose timeline is
// not after it; for the other targets (xid, name, immediate, none) simply
// the newest: bulwark cannot know where they lie (name a snapshot for an
// older point). Returns the index into `snapshots`, or nullopt with `*why`
// ("no physical base backup of source 'db' ends at or before ...").
std::optional<size_t> ChooseBaseBackup(const std::vector<repo::Snapshot>& snapshots, const std::string& source,
                                       const RecoveryOptions& recovery, std::string* why);

struct PitrOptions {
  std::string target_dir;  // the data directory to write (created if missing)
  RecoveryOptions recovery;
  // Update an existing data directory of a stopped server in place (like
  // pgBackRest's --delta): files whose size and content (each chunk's keyed
  // hash) match the backup are kept (metadata fixed), others rewritten, and
  // everything not in the backup removed (stale WAL in pg_wal, a stale
  // postmaster.pid, ...). Refused while postmaster.pid names a live process,
  // or when a non-empty directory holds no PG_VERSION (not a data directory).
  bool delta = false;
  bool verify = true;   // pg_verifybackup -n -m DIR/backup_manifest DIR
  bool dry_run = false; // check and plan only: nothing is written
  std::string pg_bin_dir;  // for pg_verifybackup; "" = the backup's major version's directory
  int threads = 0;         // 0 = as ops::Restore
  ops::RestoreProgress* progress = nullptr;
};

struct PitrResult {
  std::string data_dir;  // absolute
  uint64_t files = 0, dirs = 0, bytes = 0;  // in the backup
  // Delta only: files kept, rewritten (or new), and entries removed.
  uint64_t unchanged = 0, written = 0, removed = 0;
  bool verified = false;        // pg_verifybackup ran and passed
  std::string verify_output;    // its output
  std::vector<std::pair<std::string, std::string>> settings;  // written (or, dry run, to write)
  std::vector<std::string> errors;    // damaged data: nothing after the restore step was done
  std::vector<std::string> warnings;
};

// Restores `snapshot` (IsPhysicalSnapshot) as described above. Errors:
// kInvalidArgument (not a physical base backup, bad options), kAlreadyExists
// (a non-empty target without delta), kLocked (delta while the server runs),
// kCorrupt ("pg_verifybackup rejected ..."): the directory is left as
// written, without recovery settings. Damaged blobs are listed in `errors`
// (then neither verification nor settings happen).
PitrResult RestoreBaseBackup(repo::Repository& repo, const repo::Snapshot& snapshot, const PitrOptions& options);

}  // namespace bulwark::source::postgres
