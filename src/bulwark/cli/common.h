// Shared pieces of the command-line front end: global options, password
// input, opening the repository, output helpers. Commands stay thin: parse,
// call the library, print text or JSON.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "bulwark/repo/lock.h"
#include "bulwark/repo/repository.h"

namespace bulwark::cli {

struct Globals {
  std::string repo;           // --repo / BULWARK_REPOSITORY
  std::string password_file;  // --password-file / BULWARK_PASSWORD_FILE
  std::string config_path;    // --config / BULWARK_CONFIG
  bool json = false;
  bool quiet = false;
  int verbose = 0;
  std::string lock_wait = "0s";
  bool no_lock = false;
};

Globals& G();

// Exit codes (README "Exit codes").
constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitPartial = 3;
constexpr int kExitDamage = 4;

// Password: --password-file, BULWARK_PASSWORD_FILE, BULWARK_PASSWORD, or a
// no-echo prompt on the terminal. Never argv. `confirm` asks twice (prompt).
std::string ReadPassword(bool confirm, const std::string& prompt = "repository password: ");
std::string ReadPasswordFrom(const std::string& file);
std::string PromptPassword(const std::string& prompt, bool confirm);

// Repository URL from --repo, BULWARK_REPOSITORY, the config's repository for
// `source` or its default repository.
std::string RepoUrl(const std::string& source = "");
std::unique_ptr<repo::Repository> OpenRepository(bool load_index, const std::string& source = "");

int64_t LockWaitSeconds();

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

// Prune options shared by `prune` and `forget --prune` (cmd_prune.cc).
struct PruneFlags {
  std::string max_unused = "5%";  // repository-wide tolerated unused share
  std::string max_repack_size;    // e.g. "2GiB"; empty = unlimited
  std::string grace = "1h";       // storage-time grace before deleting marked packs
  bool dry_run = false;
};
// Registers the prune flags on `cmd` (for forget: prefixed help, same names).
void AddPruneFlags(CLI::App* cmd, PruneFlags* f);
// Runs prune on an open repository whose caller holds `lock`, an exclusive
// lock; prints the plan/result (text or --json). Throws bulwark::Error.
void RunPrune(repo::Repository* repo, repo::Lock* lock, const PruneFlags& f);

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
