// bulwark.yaml: parsing and validation into typed structs.
//
// File shape (every key not listed here is an error, with a "did you mean"
// suggestion when a known key is close):
//
//   version: 1                          # required, must be 1
//   default_repository: local           # optional; must name a repository
//   repositories:                       # map name -> repository
//     local:
//       url: /var/backups/bulwark       # required, non-empty string
//       password_file: /etc/bulwark/pw  # optional, absolute path
//       compression: 3                  # optional: zstd level 1..19, or off
//       s3:                             # optional, S3 URLs only (docs/S3.md); the
//         endpoint: https://minio:9000  #   environment and --s3-* flags override
//         region: eu-central-1          #   each field: endpoint (http/https),
//         path_style: true              #   region, profile, path_style,
//         tls_verify: true              #   tls_verify (booleans), max_attempts
//         max_attempts: 8               #   (1..100); never credentials
//   sources:                            # map name -> source
//     docs:
//       kind: fs                        # required: fs | command | postgres |
//                                       # clickhouse
//       # kind fs:
//       paths: [/usr/share/doc, /etc]   # required, non-empty, absolute, unique
//       exclude: ["*.tmp"]              # optional list of patterns
//       exclude_file: /etc/b/docs.ex    # optional, absolute path
//       one_file_system: true           # optional bool, default false
//       # kind command:
//       command: [etcdctl, snapshot, save, -]  # required, non-empty argv
//       stdin_name: etcd.db             # optional, default "<name>.stream";
//                                       # a plain file name (no '/')
//       timeout: 1h                     # optional duration, 0 = none
//       # kind postgres (docs/POSTGRES.md):
//       conninfo: "host=db port=5432 user=backup dbname=app"  # required:
//                                       # libpq keyword=value string or URI;
//                                       # must not contain a password (use
//                                       # PGPASSFILE / PGPASSWORD)
//       mode: logical                   # optional: logical (default) | physical
//       method: auto                    # optional (physical): auto (default) |
//                                       # files | stream; see PgBackupMethod
//       pg_bin_dir: /usr/lib/postgresql/15/bin  # optional, absolute; default:
//                                       # the server's major version's directory
//       globals: true                   # optional bool (logical): also store
//                                       # pg_dumpall --globals-only
//       schema_version_query: "SELECT max(version) FROM schema_migrations"
//                                       # optional (logical): recorded in facts
//       # kind clickhouse (docs/CLICKHOUSE.md):
//       url: http://db:8123             # required: the HTTP interface; no
//                                       # user or password in it
//       user: backup                    # optional; default: the server's
//                                       # default user (BULWARK_CLICKHOUSE_USER)
//       password_file: /etc/bulwark/ch  # optional, absolute; else
//                                       # BULWARK_CLICKHOUSE_PASSWORD_FILE or
//                                       # BULWARK_CLICKHOUSE_PASSWORD
//       mode: native                    # optional: native (default) | parts
//       databases: [app, "logs_*"]      # optional globs; default: all but
//                                       # system and information_schema
//       tables: ["app.*"]               # optional DATABASE.TABLE globs
//       exclude_tables: ["*.tmp_*"]     # optional DATABASE.TABLE globs
//       data_path: /var/lib/clickhouse  # optional, absolute (parts): the
//                                       # server's <path>; default: asked
//       tls_verify: true                # optional bool (https), default true
//       # any kind:
//       tags: [daily]                   # optional; non-empty, no ','
//       host: myhost                    # optional non-empty string
//       repository: local               # optional; defaults to
//                                       # default_repository, or to the only
//                                       # repository if there is exactly one
//       chunker: {min: 512KiB, avg: 1MiB, max: 8MiB}  # optional, see below
//       schedule: "0 2 * * *"           # optional, see cron.h: 5-field cron,
//                                       # @daily, @hourly, "@every 6h"
//       timezone: Europe/Berlin         # optional IANA zone name (or UTC),
//                                       # checked to exist: the schedule's
//                                       # fields are evaluated in it (DST
//                                       # rules in cron.h; @every stays UTC)
//                                       # and forget --source buckets
//                                       # snapshots in it; default UTC
//       suspend: false                  # optional bool: true = the agent
//                                       # never starts scheduled jobs of
//                                       # this source (bulwark/agent/scheduler.h)
//       hooks:                          # optional; commands the agent runs
//         pre:                          #   around each job of the source
//           - command: [fsfreeze, -f, /data]  # required, non-empty argv (no
//                                       #   shell; argv[0] found on PATH)
//             timeout: 30s              # optional duration, default 10m,
//                                       #   0 = none; killed after it
//             on_error: fail            # optional: fail (default) | continue
//         post:
//           - command: [fsfreeze, -u, /data]
//             on_error: continue
//       retention: {keep_last: 3, keep_daily: 7, keep_within: 30d}  # see below
//       ttl: 90d                        # optional calendar duration: backups
//                                       # of this source expire after it
//       copy_to: [offsite]              # optional; repositories, unique, not
//                                       # the source's own repository
//       prune: false                    # optional bool: the agent's job (and
//                                       # `bulwark run`) prunes the source's
//                                       # repository after a forget that
//                                       # removed snapshots (bulwark/jobs/job.h)
//       drill:                          # optional restore drill (docs/DRILLS.md)
//         schedule: "0 4 1 * *"         #   optional cron expression (cron.h)
//         rto: 15m                      #   optional budget, a duration > 0: a
//                                       #   drill slower than this fails
//         target:                       #   optional for fs/command; keys by kind:
//           dir: /var/tmp/drills        #   fs, command: absolute parent of the
//                                       #   scratch directory (default $TMPDIR
//                                       #   or /tmp); never below `paths`
//           conninfo: "host=scratch user=drill dbname=postgres"
//                                       #   postgres logical, required: the
//                                       #   scratch server (no password) where
//                                       #   bulwark_drill_<random> is created
//                                       #   and dropped
//           allow_same_server: false    #   postgres logical: allow the source's
//                                       #   own server as the scratch server
//           pg_bin_dir: /usr/lib/postgresql/15/bin  # postgres physical,
//                                       #   optional, absolute
//           port: 0                     #   postgres physical: port of the
//                                       #   scratch cluster; 0 = a free port
//         checks:                       #   postgres only: SQL returning one
//           - {sql: "SELECT count(*) FROM t", expect: 42}   # integer value,
//           - {sql: "SELECT max(id) FROM t", min: 1, max: 99}  # or bounds
//
// Hooks (run by the agent, in list order): `pre` hooks before the job; a
// pre hook that fails (non-zero exit, signal, timeout) with on_error: fail
// stops the job before the backup, which is then a failed run; with
// continue, the failure is logged and the next hook / the backup runs.
// `post` hooks always run after the job, whatever its result (so a freeze is
// undone even after a failed backup); a failing post hook with on_error:
// fail makes the run failed. `pre:` and `post:` may be empty lists.
//
// Names of repositories and sources: 1..64 characters of [A-Za-z0-9._-],
// starting with a letter or digit.
//
// Chunker sizes use bulwark::ParseSize ("512KiB", "1MiB", "65536"); any of
// min/avg/max may be omitted (defaults 512 KiB / 1 MiB / 8 MiB) and the result
// must satisfy 64 B <= min < avg < max <= 64 MiB with avg a power of two.
//
// Retention (the policy `bulwark forget --source NAME` applies; semantics in
// bulwark/ops/retention.h):
//   keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly,
//   keep_yearly: counts 0..1000000, or -1 / unlimited (keep all);
//   keep_within, keep_within_hourly, keep_within_daily, keep_within_weekly,
//   keep_within_monthly, keep_within_yearly: calendar durations
//   (bulwark::CalendarDuration: "1y5m7d2h", "36h", "4w"; here 'm' is MONTHS,
//   unlike `timeout` and other durations, where 'm' is minutes);
//   keep_tags: list of tag sets, each "a,b" = a snapshot having both a and b
//   ("" = snapshots without tags);
//   group_by: list of host, source, paths, tags (default [host, source];
//   [] = one group).
//
// YAML details: `repositories:` or `sources:` with no value is an empty
// mapping; any other key with no value is an error. Only one YAML document
// is allowed. Integers are decimal. Booleans are true/false (yes/no, on/off
// are also accepted). Strings must not contain NUL bytes.
//
// Errors: everything here throws bulwark::Error. Invalid configuration is
// kInvalidArgument with a message "FILE:LINE:COLUMN: what is wrong" (1-based
// line and column pointing at the offending key or value; YAML syntax errors
// use the parser's position), e.g.
//   bulwark.yaml:14:5: unknown key 'exlude' in source 'docs' (did you mean 'exclude'?)
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bulwark/base/civil_time.h"
#include "bulwark/config/cron.h"
#include "bulwark/storage/s3/settings.h"

namespace bulwark::config {

// Content-defined chunking sizes in bytes (see bulwark/chunk/fastcdc.h).
struct ChunkerSizes {
  uint32_t min_size = 512 * 1024;
  uint32_t avg_size = 1024 * 1024;  // a power of two
  uint32_t max_size = 8 * 1024 * 1024;
  bool operator==(const ChunkerSizes&) const = default;
};

// Which snapshot fields split snapshots into groups that a retention policy
// is applied to separately (forget --group-by, restic's --group-by).
struct GroupBy {
  bool host = true, source = true, paths = false, tags = false;
  // A comma-separated list of host, source, paths, tags; "" = one group for
  // all snapshots. Throws Error(kInvalidArgument) naming an unknown field.
  static GroupBy Parse(std::string_view list);
  std::string ToString() const;  // "host,source"; "" for one group
  bool operator==(const GroupBy&) const = default;
};

// A tag set of keep_tags / --keep-tag: "a,b" -> {a, b} (a snapshot must have
// all of them); "" -> {""} (matches snapshots without tags). Throws
// Error(kInvalidArgument) on an empty element ("a,,b").
std::vector<std::string> ParseTagSet(std::string_view s);

// Parses a retention count: "0".."1000000", or "-1" / "unlimited" (= -1,
// keep all). Throws Error(kInvalidArgument) naming the value.
int ParseRetentionCount(std::string_view s);

// Snapshot retention policy ("forget"); semantics (restic's) in
// bulwark/ops/retention.h. A count of 0 or a zero duration disables a rule;
// -1 is unlimited.
struct Retention {
  int keep_last = 0;
  int keep_hourly = 0;
  int keep_daily = 0;
  int keep_weekly = 0;
  int keep_monthly = 0;
  int keep_yearly = 0;
  CalendarDuration keep_within;  // keep all snapshots this close to the newest
  CalendarDuration keep_within_hourly, keep_within_daily, keep_within_weekly, keep_within_monthly, keep_within_yearly;
  std::vector<std::vector<std::string>> keep_tags;  // see ParseTagSet
  std::optional<GroupBy> group_by;                  // unset = the default (host,source)
  // True when no keep rule is set (group_by is not a rule): a policy that
  // keeps everything.
  bool empty() const;
  bool operator==(const Retention&) const = default;
};
struct RepositoryConfig {
  std::string name;
  std::string url;            // a local directory path, or "s3:bucket/prefix", ...
  std::string password_file;  // absolute path, or empty when not configured
  // Unset: the repository's default. 0: compression off. 1..19: zstd level.
  std::optional<int> compression_level;
  // The `s3:` block (endpoint, region, profile, path_style, tls_verify,
  // max_attempts); the environment and --s3-* flags override it.
  storage::s3::S3Settings s3;
};

enum class SourceKind { kFs, kCommand, kPostgres, kClickHouse };

// One hook command of `hooks:` (semantics in the file-shape comment above).
struct Hook {
  enum class OnError { kFail, kContinue };
  static constexpr int64_t kDefaultTimeoutSeconds = 600;
  std::vector<std::string> command;                  // argv, non-empty, argv[0] non-empty
  int64_t timeout_seconds = kDefaultTimeoutSeconds;  // 0 = no timeout
  OnError on_error = OnError::kFail;
  bool operator==(const Hook&) const = default;
};

struct Hooks {
  std::vector<Hook> pre;   // before the job, in order
  std::vector<Hook> post;  // after the job, in order, whatever its result
  bool empty() const { return pre.empty() && post.empty(); }
  bool operator==(const Hooks&) const = default;
};

// "fail", "continue".
std::string_view OnErrorName(Hook::OnError on_error);

// PostgreSQL backup mode: pg_dump (logical) or base backup + WAL (physical).
enum class PgMode { kLogical, kPhysical };

// How a physical base backup is taken (source/postgres/physical.h):
//   kFiles   the data directory read in place, between pg_backup_start and
//            pg_backup_stop (bulwark runs on the database host); unchanged
//            files are not read again;
//   kStream  pg_basebackup's tar stream (bulwark anywhere: the replication
//            protocol);
//   kAuto    kFiles when the server's data directory is readable here and
//            is that server's (same system identifier), else kStream.
enum class PgBackupMethod { kAuto, kFiles, kStream };
// "auto", "files", "stream"; nullopt for anything else.
std::optional<PgBackupMethod> ParsePgBackupMethod(std::string_view s);

// "fs", "command", "postgres", "clickhouse".
std::string_view SourceKindName(SourceKind kind);

// ClickHouse backup mode (source/clickhouse/backup.h): every table streamed
// as SELECT * FORMAT Native (native: any server, any engine), or the
// MergeTree tables' frozen parts read from the server's data directory
// (parts: bulwark on the server's host).
enum class ChMode { kNative, kParts };
// "native", "parts"; nullopt for anything else.
std::optional<ChMode> ParseChMode(std::string_view s);

// --- drill: (restore drills, ops/drill.h, docs/DRILLS.md) ---
// One user check of a postgres drill: `sql` must return one row with one
// integer value, equal to `expect`, or within [min, max] (either bound may be
// absent, not both; `expect` excludes the bounds).
struct DrillCheckConfig {
  std::string sql;
  std::optional<int64_t> expect, min, max;
  bool operator==(const DrillCheckConfig&) const = default;
};
struct DrillConfig {
  std::string schedule;                  // cron expression as written (validated), or empty
  int64_t rto_seconds = 0;               // RTO budget in seconds; 0 = none (`rto:` must be > 0)
  std::string dir;                       // fs/command: absolute parent of the scratch directory; "" = $TMPDIR or /tmp
  std::string conninfo;                  // postgres logical: the scratch server, no password
  bool allow_same_server = false;        // postgres logical: the source's own server may be the scratch server
  std::string pg_bin_dir;                // postgres physical: absolute, or "" = by the backup's major version
  int port = 0;                          // postgres physical: 1..65535, or 0 = a free port
  std::vector<DrillCheckConfig> checks;  // postgres only
  bool operator==(const DrillConfig&) const = default;
};
// --- end drill ---

struct SourceConfig {
  std::string name;
  SourceKind kind = SourceKind::kFs;

  // kind fs.
  std::vector<std::string> paths;    // absolute, non-empty list
  std::vector<std::string> exclude;  // patterns, as written
  std::string exclude_file;          // absolute path or empty
  bool one_file_system = false;

  // kind command.
  std::vector<std::string> command;  // argv, non-empty
  std::string stdin_name;            // stored file name; defaults to "<name>.stream"
  int64_t timeout_seconds = 0;       // 0 = no timeout

  // kind postgres.
  std::string conninfo;  // libpq connection string or URI, no password
  PgMode pg_mode = PgMode::kLogical;
  PgBackupMethod pg_method = PgBackupMethod::kAuto;  // physical only
  std::string pg_bin_dir;                            // absolute, or empty = by server version
  bool pg_globals = true;                            // logical: pg_dumpall --globals-only too
  std::string schema_version_query;                  // logical: optional SQL, one value

  // kind clickhouse.
  std::string ch_url;            // NormalizeUrl'd "http://host:8123", no credentials
  std::string ch_user;           // empty = BULWARK_CLICKHOUSE_USER, else the server's default user
  std::string ch_password_file;  // absolute, or empty = from the environment
  ChMode ch_mode = ChMode::kNative;
  std::vector<std::string> ch_databases;       // globs on database names; empty = all but system ones
  std::vector<std::string> ch_tables;          // DATABASE.TABLE globs; empty = all
  std::vector<std::string> ch_exclude_tables;  // DATABASE.TABLE globs
  std::string ch_data_path;                    // parts: the server's <path>; empty = asked from the server
  bool ch_tls_verify = true;

  // Any kind.
  std::vector<std::string> tags;
  std::string host;        // empty = the machine's host name
  std::string repository;  // always resolved to a defined repository name
  std::string schedule;    // cron expression as written (validated), or empty
  std::string timezone;    // as written (a zone that exists), or empty = UTC
  bool suspend = false;    // true: scheduled jobs never start
  Hooks hooks;
  std::optional<ChunkerSizes> chunker;  // unset = repository default
  Retention retention;
  std::optional<CalendarDuration> ttl;  // backups expire this long after their time
  std::vector<std::string> copy_to;     // repository names
  bool prune = false;                   // prune after the job's forget removed snapshots
  std::optional<DrillConfig> drill;     // unset = no drill configured

  // The schedule in the source's time zone, or nullopt when there is none.
  // Does not throw for a SourceConfig that Parse returned (it validated
  // both); otherwise throws Error(kInvalidArgument) as CronSchedule::Parse
  // and TimeZone::Load do.
  std::optional<CronSchedule> ParsedSchedule() const;
  // The drill's schedule (drill->schedule) in the same time zone; nullopt when
  // there is no drill block or it has no schedule (drills then run only on demand).
  std::optional<CronSchedule> ParsedDrillSchedule() const;
  // The source's time zone (UTC when `timezone` is empty); throws as above.
  TimeZone Zone() const;
};

struct Config {
  std::string path;                // the file name used in messages
  std::string default_repository;  // as written, or empty
  std::map<std::string, RepositoryConfig> repositories;
  std::map<std::string, SourceConfig> sources;

  // Throws Error(kNotFound, "unknown source 'x' (known sources: a, b)").
  const SourceConfig& Source(std::string_view name) const;
  // Returns nullptr when there is no such repository.
  const RepositoryConfig* Repository(std::string_view name) const;
};

// Reads and parses a config file. Throws Error(kNotFound) naming the path if
// it does not exist, other ErrnoError codes if it cannot be read,
// kInvalidArgument if it is larger than 16 MiB or invalid (see Parse).
Config LoadFile(const std::string& path);

// Parses YAML text. `path_for_messages` is the FILE part of error messages and
// is stored in Config::path. Throws Error(kInvalidArgument) as described above.
Config Parse(std::string_view yaml, const std::string& path_for_messages);

// Parses a duration into seconds: one or more <digits><unit> groups with units
// s, m, h, d (86400 s), w (7 d), e.g. "30s", "15m", "1h30m", "1w2d". A bare
// "0" is also accepted. Throws Error(kInvalidArgument) on anything else
// (empty, negative, missing unit, whitespace, overflow of int64 seconds).
int64_t ParseDuration(std::string_view s);

}  // namespace bulwark::config
