// bulwark: command-line entry point. Parses global flags, dispatches to the
// command registered by each cmd_*.cc, maps errors to exit codes.
#include <CLI/CLI.hpp>
#include <malloc.h>

#include <iostream>

#include "bulwark/base/error.h"
#include "bulwark/base/log.h"
#include "bulwark/cli/common.h"
#include "bulwark/storage/s3/s3.h"

namespace {

// With --json, one line of request counts when S3 was used: the cost signal
// (PUT/GET/LIST/DELETE/HEAD requests and bytes) of every command.
void PrintStorageRequests() {
  auto& st = bulwark::storage::s3::ProcessStats();
  uint64_t total = st.put + st.get + st.head + st.list + st.del + st.post;
  if (!bulwark::cli::G().json || total == 0) return;
  bulwark::cli::PrintJson({{"message_type", "storage_requests"},
                           {"put", st.put.load()},
                           {"get", st.get.load()},
                           {"head", st.head.load()},
                           {"list", st.list.load()},
                           {"delete", st.del.load()},
                           {"post", st.post.load()},
                           {"retries", st.retries.load()},
                           {"bytes_uploaded", st.bytes_up.load()},
                           {"bytes_downloaded", st.bytes_down.load()}});
}

}  // namespace

int main(int argc, char** argv) {
  // Large buffers (chunks, packs) come and go; a fixed mmap threshold returns
  // them to the OS instead of letting glibc's adaptive threshold keep them
  // in per-thread arenas (peak RSS).
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  mallopt(M_ARENA_MAX, 4);
  using namespace bulwark;
  using namespace bulwark::cli;
  CLI::App app{"bulwark: encrypted, deduplicated backups that prove they can be restored"};
  app.set_version_flag("--version", std::string("bulwark ") + BULWARK_VERSION);
  app.require_subcommand(1);
  app.fallthrough();
  Globals& g = G();
  app.add_option("-r,--repo", g.repo, "repository location (or BULWARK_REPOSITORY)");
  app.add_option("-p,--password-file", g.password_file, "file holding the repository password (or BULWARK_PASSWORD_FILE)");
  app.add_option("--key-file", g.key_file,
                 "open the repository with this machine key file instead of a password (or BULWARK_KEY_FILE; "
                 "'key add --machine-key-file' makes one)");
  app.add_option("-c,--config", g.config_path, "configuration file (or BULWARK_CONFIG)");
  app.add_flag("--json", g.json, "machine-readable JSON output on stdout");
  app.add_flag("-q,--quiet", g.quiet, "print only errors");
  app.add_flag("-v,--verbose", g.verbose, "more detail (repeat for debug)");
  app.add_option("--lock-wait", g.lock_wait, "wait this long for a conflicting lock (e.g. 5m)");
  AddS3Flags(app);
  app.add_flag("--no-lock", g.no_lock,
               "take no repository lock (commands that only read: restore, dump, check, dry runs; e.g. with "
               "read-only credentials)");
  app.add_flag("--no-cache", g.no_cache, "do not use the local cache (BULWARK_CACHE_DIR, ~/.cache/bulwark)");

  AddInit(app);
  AddBackup(app);
  AddRestore(app);
  AddInspect(app);
  AddKey(app);
  AddCheck(app);
  AddConfig(app);
  AddForget(app);
  AddPrune(app);
  AddCopy(app);
  AddLock(app);
  AddPg(app);
  AddWal(app);
  AddAgent(app);
  AddAudit(app);
  AddDrill(app);
  AddClickHouse(app);

  // Every command that opened a repository appends its audit record on the
  // way out (AuditFinish), whatever the result; before the request counts,
  // which include the record's LIST and PUT.
  AuditBegin(app, argc, argv);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    if (rc != 0 && IsWalFetch(app)) return kExitWalFetchFatal;  // a broken restore_command must stop recovery
    return rc == 0 ? 0 : kExitUsage;
  } catch (const Error& e) {
    // Errors thrown from command callbacks run during parse.
    AuditFinish(ExitCodeFor(e.code()), &e);
    PrintStorageRequests();
    if (G().json) PrintJson({{"message_type", "error"}, {"code", std::string(ErrorCodeName(e.code()))}, {"message", e.what()}});
    std::cerr << "bulwark: " << e.what() << "\n";
    return ExitCodeFor(e.code());
  } catch (const std::exception& e) {
    Error internal(ErrorCode::kInternal, e.what());
    AuditFinish(1, &internal);
    std::cerr << "bulwark: internal error: " << e.what() << "\n";
    return 1;
  }
  AuditFinish(ExitCode(), nullptr);
  PrintStorageRequests();
  return ExitCode();
}
