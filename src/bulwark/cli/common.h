// Shared pieces of the command-line front end: global options, password
// input, opening the repository, output helpers. Commands stay thin: parse,
// call the library, print text or JSON.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <functional>
#include <set>
#include <string>

#include "bulwark/repo/lock.h"
#include "bulwark/repo/repository.h"

namespace bulwark::config {
struct Config;
struct RepositoryConfig;
}  // namespace bulwark::config

namespace bulwark::source::postgres {
struct ExpireResult;
}  // namespace bulwark::source::postgres

namespace bulwark::metrics {
struct SourceFigures;
}  // namespace bulwark::metrics

namespace bulwark::cli {

struct Globals {
  std::string repo;           // --repo / BULWARK_REPOSITORY
  std::string password_file;  // --password-file / BULWARK_PASSWORD_FILE
  std::string key_file;       // --key-file / BULWARK_KEY_FILE: a machine key file (repo::MachineKey)
  std::string config_path;    // --config / BULWARK_CONFIG
  bool json = false;
  bool quiet = false;
  int verbose = 0;
  std::string lock_wait = "0s";
  bool no_lock = false;       // --no-lock: commands that only read take no repository lock
  bool no_cache = false;      // --no-cache: do not read or write the local cache
  // --s3-endpoint, --s3-region, --s3-profile, --s3-path-style,
  // --s3-tls-verify, --s3-max-attempts: as given ("" = not given).
  std::string s3_endpoint, s3_region, s3_profile, s3_path_style, s3_tls_verify, s3_max_attempts;
};

Globals& G();

// Exit codes (README "Exit codes").
constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitPartial = 3;
constexpr int kExitDamage = 4;
// drill: the drill ran and failed (a check failed, the RTO budget was
// exceeded, or the restore broke off); its record is stored (cmd_drill.cc,
// docs/DRILLS.md).
constexpr int kExitDrillFailed = 5;
// wal-fetch (PostgreSQL's restore_command) on any failure but "not archived"
// (which is 1): PostgreSQL treats exit codes above 125 like a signal and
// aborts recovery, instead of taking the file as missing and ending recovery
// early (cmd_wal.cc, README "Exit codes").
constexpr int kExitWalFetchFatal = 128;

// Password: --password-file, BULWARK_PASSWORD_FILE, BULWARK_PASSWORD, or a
// no-echo prompt on the terminal. Never argv. `confirm` asks twice (prompt).
std::string ReadPassword(bool confirm, const std::string& prompt = "repository password: ");
// The password from `file` (a flag's value), else the file named by the
// environment variable `file_env`, else the variable `password_env`;
// nullopt when none is set.
std::optional<std::string> PasswordFromFlagOrEnv(const std::string& file, const char* file_env,
                                                 const char* password_env);
std::string ReadPasswordFrom(const std::string& file);
std::string PromptPassword(const std::string& prompt, bool confirm);

// Repository URL from --repo, BULWARK_REPOSITORY, the config's repository for
// `source` or its default repository.
std::string RepoUrl(const std::string& source = "");
// Opens the repository of RepoUrl(source): with the machine key file of
// --key-file / BULWARK_KEY_FILE when one is given (the flag wins; no password
// is read then), else with the password (ReadPassword).
std::unique_ptr<repo::Repository> OpenRepository(bool load_index, const std::string& source = "");
// `source` when the loaded configuration defines it (its repository is the
// one to open), else "": a source given only by flags (backup --postgres,
// pg ... --source) uses --repo / the default repository.
std::string ConfiguredSource(const std::string& source);
// The machine key file given by --key-file or BULWARK_KEY_FILE, read and
// decoded; nullopt when neither is set. Throws kInvalidArgument (malformed)
// or the error of reading the file. Never prints the secret.
std::optional<repo::MachineKey> MachineKeyFromFlags();
// The storage backend for `url`, with S3 settings from the configured
// repository of that URL (bulwark.yaml), the environment and the --s3-*
// flags. Throws kInvalidArgument for a bad flag value or URL.
std::unique_ptr<storage::Backend> OpenBackend(const std::string& url);
// Registers the global --s3-* flags.
void AddS3Flags(CLI::App& app);
// Opens the repository at `url` with `password`. Throws kNoRepository naming
// the URL when there is none, kWrongPassword.
std::unique_ptr<repo::Repository> OpenRepositoryAt(const std::string& url, const std::string& password, bool load_index);

// The configuration file from --config / BULWARK_CONFIG (loaded once), or
// nullptr when none is given. Throws what config::LoadFile throws.
const config::Config* Config();
// Opens a repository named in the configuration: password from its
// password_file, else -p/BULWARK_PASSWORD_FILE/BULWARK_PASSWORD, else a
// prompt naming it.
std::unique_ptr<repo::Repository> OpenConfiguredRepository(const config::RepositoryConfig& r, bool load_index);

// A second repository to read from (`copy`, `init --copy-chunker-params`):
// --from-repo / BULWARK_FROM_REPOSITORY, its password from
// --from-password-file / BULWARK_FROM_PASSWORD_FILE / BULWARK_FROM_PASSWORD
// or a no-echo prompt (never argv).
struct FromRepoFlags {
  std::string repo;
  std::string password_file;
  std::string Url() const;  // the flag, else the environment; "" if neither
};
void AddFromRepoFlags(CLI::App* cmd, FromRepoFlags* f);
// Throws kInvalidArgument when no URL is given.
std::unique_ptr<repo::Repository> OpenFromRepository(const FromRepoFlags& f, bool load_index);

// The local cache directory for repository `repo_id`:
// $BULWARK_CACHE_DIR, else $XDG_CACHE_HOME/bulwark, else ~/.cache/bulwark,
// then "/<repository id hex>". "" with --no-cache or when none of these is
// set.
std::string RepositoryCacheDir(const Id& repo_id);

int64_t LockWaitSeconds();

// Repository locks for commands (repo/lock.h), honouring --lock-wait and
// --no-lock, which only commands that never write accept (kInvalidArgument
// for the others, naming `command`).
//
// A command that only reads (restore, dump, check, a dry run): a shared
// lock; none with --no-lock, and none, with a warning, when the credentials
// may not write the lock object (read-only: kPermission). Returns null then.
std::unique_ptr<repo::Lock> LockForReading(repo::Repository* repo);
// A command that adds objects (backup, copy's destination): a shared lock.
std::unique_ptr<repo::Lock> LockForWriting(repo::Repository* repo, const std::string& command);
// A command that deletes objects of `deletes` (prune, forget, tag, key
// remove): RequireDelete (with locks), then an exclusive lock.
std::unique_ptr<repo::Lock> LockExclusive(repo::Repository* repo, const std::string& command,
                                          const std::vector<repo::ObjectType>& deletes);
// Checks that the credentials may delete objects of `deletes`
// (Repository::ProbeDelete), so that a command without that permission
// fails at once, before writing anything: kPermission, "<command> needs
// delete permission on the repository: <storage error>".
void RequireDelete(repo::Repository* repo, const std::string& command, const std::vector<repo::ObjectType>& deletes);

void PrintJson(const nlohmann::json& j);
bool StdoutIsTty();
bool StderrIsTty();
// Prints a line to stdout unless --quiet or --json.
void Say(const std::string& line);

// Registration of commands (one function per file).
void AddInit(CLI::App& app);
void AddBackup(CLI::App& app);
void AddRestore(CLI::App& app);
void AddInspect(CLI::App& app);
void AddKey(CLI::App& app);
void AddCheck(CLI::App& app);
void AddConfig(CLI::App& app);
void AddForget(CLI::App& app);  // forget, tag (cmd_forget.cc)
void AddPrune(CLI::App& app);   // prune (cmd_prune.cc)
void AddCopy(CLI::App& app);    // copy (cmd_copy.cc)
void AddLock(CLI::App& app);    // lock extend (cmd_lock.cc)
void AddPg(CLI::App& app);      // pg restore-dump, pg ... (cmd_pg.cc)
void AddPgPhysical(CLI::App* pg);  // pg restore (cmd_pg_physical.cc)
// The restore_command a restored cluster of `source` runs by default:
// this bulwark's own wal-fetch with the repository, configuration and key
// or password file of this invocation, as absolute paths
// (source/postgres/pitr.h WalFetchRestoreCommand; cmd_pg_physical.cc).
std::string WalFetchRestoreCommandFor(const std::string& source);
void AddDrill(CLI::App& app);  // drill, drills (cmd_drill.cc)
void AddClickHouse(CLI::App& app);  // clickhouse restore (cmd_clickhouse.cc)
// WAL expiry (cmd_pg.cc): prints what ExpireWal did (text or --json).
void ReportWalExpiry(const std::string& source, const source::postgres::ExpireResult& r, bool dry_run);
// After forget removed `removed` (or would, dry run): expires the archived
// WAL of each source that lost a PostgreSQL base backup, judged by the base
// backups that remain. `all` (the repository's snapshots, possibly still
// including `removed`) is called only when a base backup was removed.
void ExpireWalAfterForget(repo::Repository* repo, const std::vector<repo::Snapshot>& removed,
                          const std::function<std::vector<repo::Snapshot>()>& all, bool dry_run);
void AddWal(CLI::App& app);     // wal-push, wal-fetch (cmd_wal.cc)
void AddAgent(CLI::App& app);   // agent, run, suspend, resume, alerts (cmd_agent.cc)
// --pushgateway URL on a one-shot command (cmd_agent.cc).
void AddPushgatewayFlag(CLI::App* cmd, std::string* url);
// Pushes this command's metrics when `flag` or BULWARK_PUSHGATEWAY names a
// Pushgateway, to the group of `source` (or of `repository` when there is no
// source): the families of `figures` (a backup's; null: none) and the
// storage request counters. `replace_group`: PUT, replacing the whole group
// (a successful backup); else POST of only the families that have samples,
// so what the last successful backup pushed (its timestamp) stays (a failed
// backup, forget, prune, copy, check). Never throws: a failed push is a
// warning, never the command's exit code.
// Sets `run` as the callback of `cmd` (forget, prune, copy, check) and adds
// --pushgateway: after `run` returned (not when it threw), the command's
// storage request counters are pushed into the group of its --source. (One
// callback: CLI11 keeps a single final callback per command, so `run` must
// not be set separately with cmd->callback.)
void AddPushAfterSuccess(CLI::App* cmd, std::function<void()> run);
void PushCommandMetrics(const std::string& flag, const std::string& source, const std::string& repository,
                        const metrics::SourceFigures* figures, bool replace_group);
// True when argv names the wal-fetch command: its usage errors must exit
// with kExitWalFetchFatal too (cmd_wal.cc), not 2.
bool IsWalFetch(const CLI::App& app);

// Prune options shared by `prune` and `forget --prune` (cmd_prune.cc).
struct PruneFlags {
  std::string max_unused = "5%";  // repository-wide tolerated unused share
  std::string max_repack_size;    // e.g. "2GiB"; empty = unlimited
  std::string grace = "1h";       // storage-time grace before deleting marked packs
  std::string lock_margin;        // Object Lock maintenance margin; empty = its default
  bool dry_run = false;
};
// Registers the prune flags on `cmd` (for forget: prefixed help, same names).
void AddPruneFlags(CLI::App* cmd, PruneFlags* f);
// Runs prune on an open repository whose caller holds `lock`, an exclusive
// lock (null: a dry run without a lock); prints the plan/result (text or
// --json). Throws bulwark::Error.
void RunPrune(repo::Repository* repo, repo::Lock* lock, const PruneFlags& f);
// The object types prune deletes (for LockExclusive).
std::vector<repo::ObjectType> PruneDeletes();

}  // namespace bulwark::cli
namespace bulwark::ops {
struct LockExtendStats;
}
namespace bulwark::cli {
// The Object Lock maintenance's figures (cmd_lock.cc): as JSON fields, as
// text lines, and the error for live objects found missing.
nlohmann::json LockExtendJson(const ops::LockExtendStats& s);
void SayLockExtend(const ops::LockExtendStats& s, bool dry_run);
void ThrowIfLiveObjectsMissing(const ops::LockExtendStats& s);
// "--margin"/"--lock-margin" value -> ns; throws kInvalidArgument naming `flag`.
int64_t ParseLockMargin(const std::string& value, const char* flag);

// The audit trail (cmd_audit.cc, docs/AUDIT.md). main() calls AuditBegin
// before parsing (start time, redacted arguments) and AuditFinish with the
// exit code (and the error, if one ended the command); every repository a
// command opens as its own (OpenRepository, OpenConfiguredRepository, init)
// is attached, and AuditFinish appends one record to each. An append that
// fails only warns (stderr, and a "warning" line with --json); it never
// changes the exit code. `audit`, `wal-push` and `wal-fetch` are not recorded.
void AuditBegin(const CLI::App& app, int argc, char** argv);
void AuditAttach(repo::Repository* repo, const std::string& url);
void AuditFinish(int exit_code, const Error* error);
// The audit record of one agent job (cmd_agent.cc): the agent process is not
// recorded as a command; while a JobAudit lives, the repositories its thread
// opens (OpenConfiguredRepository -> AuditAttach) are attached to it instead,
// and Finish appends one record per repository: `command` (e.g. "agent
// job") with `args` (redacted here), the job's start (construction) and
// duration, the snapshots written and removed. Like AuditFinish it only
// warns when an append fails. One JobAudit per thread at a time.
class JobAudit {
 public:
  JobAudit(std::string command, const std::vector<std::string>& args);
  ~JobAudit();
  JobAudit(const JobAudit&) = delete;
  JobAudit& operator=(const JobAudit&) = delete;
  void Finish(int exit_code, const Error* error);

 private:
  friend void AuditAttach(repo::Repository* repo, const std::string& url);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};
void AddAudit(CLI::App& app);  // audit, audit verify

// Set by a command to its exit code.
int& ExitCode();

// Filters shared by commands that resolve "latest".
struct SnapshotFilterFlags {
  std::string source, host;
  std::vector<std::string> tags, paths;
  repo::SnapshotFilter Filter() const { return {source, host, tags, paths}; }
};
void AddFilterFlags(CLI::App* cmd, SnapshotFilterFlags* f);

}  // namespace bulwark::cli
