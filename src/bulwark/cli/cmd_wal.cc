// bulwark wal-push / wal-fetch: PostgreSQL's archive_command and
// restore_command (ops/wal.h; docs/POSTGRES.md "WAL archiving").
//
//   archive_command = 'bulwark --repo R --key-file K wal-push --source main %p'
//   restore_command = 'bulwark --repo R --key-file K wal-fetch --source main %f %p'
//
// Exit codes are what PostgreSQL acts on:
//   wal-push   0 archived (or already archived with the same content);
//              anything else makes PostgreSQL keep the segment and retry
//              (1 for errors, 2 for usage, as every command).
//   wal-fetch  0 restored; 1 not archived (nothing on stderr unless -v:
//              PostgreSQL probes for files that normally do not exist, e.g.
//              the next timeline's .history); 128 (kExitWalFetchFatal) for
//              every other failure, usage errors included. PostgreSQL treats
//              an exit code above 125 like a signal: it aborts recovery
//              (FATAL) instead of taking the file as missing. With 1 for an
//              unreachable repository, a damaged object or a wrong key,
//              recovery would end at the last file it got and promote a new
//              timeline early, silently losing the transactions after it.
//              (docs/POSTGRES-NOTES.md §5: exit 130 aborted startup.)
#include <cstdio>
#include <iostream>

#include "bulwark/base/error.h"
#include "bulwark/cli/common.h"
#include "bulwark/config/config.h"
#include "bulwark/ops/wal.h"
#include "bulwark/repo/wal.h"

namespace bulwark::cli {

namespace {

// The source: a valid name, and when a configuration file is loaded, one of
// its sources (its repository is the one used).
void CheckSource(const std::string& source) {
  repo::ValidateWalSource(source);
  if (const config::Config* c = Config()) {
    const config::SourceConfig& s = c->Source(source);  // throws naming the known sources
    if (s.kind != config::SourceKind::kPostgres)
      throw Error(ErrorCode::kInvalidArgument, "source '" + source + "' is a " + std::string(config::SourceKindName(s.kind)) +
                                                   " source; WAL belongs to a postgres source");
  }
}

}  // namespace

bool IsWalFetch(const CLI::App& app) {
  for (const CLI::App* sub : app.get_subcommands())
    if (sub->get_name() == "wal-fetch") return true;
  return false;
}

void AddWal(CLI::App& app) {
  struct PushOpts {
    std::string source, path;
    int compression = 1;
  };
  auto po = std::make_shared<PushOpts>();
  auto* push = app.add_subcommand("wal-push", "archive one PostgreSQL WAL file (archive_command = '... wal-push %p')");
  push->add_option("--source", po->source, "source name: WAL goes to wal/<source>/ in the repository")->required();
  push->add_option("--compression", po->compression, "zstd level, 0 (off) to 19")->capture_default_str();
  push->add_option("path", po->path, "the WAL file (%p; relative to the working directory)")->required();
  push->callback([po] {
    CheckSource(po->source);
    auto repo = OpenRepository(false, po->source);
    ops::WalPushResult r = ops::WalPush(*repo, po->path, {po->source, po->compression});
    if (G().json) {
      PrintJson({{"message_type", "summary"}, {"name", r.name}, {"bytes", r.bytes}, {"stored_bytes", r.stored_bytes},
                 {"seconds", r.seconds}, {"already_archived", r.already_archived}});
    } else if (r.already_archived) {
      Say(r.name + " already archived (same content)");
    } else {
      Say("archived " + r.name + " (" + HumanBytes(r.bytes) + ", stored " + HumanBytes(r.stored_bytes) + ")");
    }
  });

  struct FetchOpts {
    std::string source, name, dest;
    int prefetch = -1;  // ops::WalFetchOptions: 8 on remote storage, 0 on a local repository
  };
  auto fo = std::make_shared<FetchOpts>();
  auto* fetch = app.add_subcommand(
      "wal-fetch", "restore one PostgreSQL WAL file (restore_command = '... wal-fetch %f %p'); exit 1: not archived");
  fetch->add_option("--source", fo->source, "source name (as given to wal-push)")->required();
  fetch->add_option("--prefetch", fo->prefetch,
                    "also fetch this many following segments into <dir of DEST>/bulwark-spool/ (0: off; default 8 "
                    "on S3, 0 on a local repository)");
  fetch->add_option("name", fo->name, "the WAL file name (%f)")->required();
  fetch->add_option("dest", fo->dest, "where to write it (%p)")->required();
  fetch->callback([fo] {
    // Every failure is fatal for PostgreSQL here, except "not archived":
    // caught here (not in main) so that nothing maps to exit 1 by accident.
    try {
      CheckSource(fo->source);
      std::optional<ops::WalFetchResult> r;
      // With a machine key the repository id is known without a request: a
      // segment prefetched earlier is served without opening the repository.
      if (auto key = MachineKeyFromFlags()) r = ops::WalFetchFromSpool(key->repository, fo->source, fo->name, fo->dest);
      if (!r) {
        auto repo = OpenRepository(false, fo->source);
        r = ops::WalFetch(*repo, fo->name, fo->dest, {fo->source, fo->prefetch});
      }
      if (G().json)
        PrintJson({{"message_type", "summary"}, {"name", fo->name}, {"found", r->found}, {"bytes", r->bytes},
                   {"from_spool", r->from_spool}, {"prefetched", r->prefetched}, {"seconds", r->seconds}});
      if (!r->found) {
        if (G().verbose) std::cerr << "bulwark: " << fo->name << " is not archived (source " << fo->source << ")\n";
        ExitCode() = kExitError;
        return;
      }
      if (G().verbose)
        std::cerr << "bulwark: restored " << fo->name << (r->from_spool ? " from the spool" : "") << " ("
                  << r->bytes << " bytes, " << r->prefetched << " segments prefetched)\n";
    } catch (const Error& e) {
      if (G().json) PrintJson({{"message_type", "error"}, {"code", std::string(ErrorCodeName(e.code()))}, {"message", e.what()}});
      std::cerr << "bulwark: wal-fetch " << fo->name << ": " << e.what() << "\n";
      ExitCode() = kExitWalFetchFatal;
    } catch (const std::exception& e) {
      std::cerr << "bulwark: wal-fetch " << fo->name << ": internal error: " << e.what() << "\n";
      ExitCode() = kExitWalFetchFatal;
    }
  });
}

}  // namespace bulwark::cli
