// PostgreSQL WAL archiving: `wal-push` (archive_command) and `wal-fetch`
// (restore_command). One WAL file per repository object, "wal/<source>/<file
// name>" (repo/wal.h, docs/FORMAT.md "WAL objects"; docs/POSTGRES.md "WAL
// archiving" for the set-up and the security model).
//
// Both run once per WAL file, so each call is made cheap: the repository is
// opened with a machine key (no password KDF; repo::MachineKey), neither the
// index nor the snapshots are loaded, and on S3 a push costs four requests
// (GET key slot, GET config, one ranged GET of the object's 81-byte header,
// PUT) and a fetch three.
//
// No repository lock. A lock would cost a PUT and a DELETE per segment, and
// it protects nothing here: WAL objects are never rewritten (a push of
// different content under an existing name is refused, see WalPush), and
// nothing deletes them yet. WAL expiry (deleting WAL older than the oldest
// base backup kept) will run inside prune, under prune's exclusive lock and
// only for WAL older than every base backup still kept, which no running
// archive_command is writing (it writes the newest WAL). Prune and check
// already leave "wal/" alone / verify it (ops/check.h).
//
// Thread-safety: the functions may run concurrently on one Repository (its
// backend and AEAD are thread-safe). WalFetch serializes calls that share a
// spool directory with a file lock.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "bulwark/repo/repository.h"

namespace bulwark::ops {

struct WalPushOptions {
  std::string source;   // wal/<source>/ (repo::ValidateWalSource)
  int compression = 1;  // zstd level 0..19 (0 = store as is); see docs/POSTGRES.md for the measurements
};

struct WalPushResult {
  std::string name;            // the WAL file name ("000000010000000000000010")
  std::string object;          // "wal/<source>/<name>"
  uint64_t bytes = 0;          // size of the file
  uint64_t stored_bytes = 0;   // size of the object written (0 when already archived)
  bool already_archived = false;
  double seconds = 0;          // wall time of the push (not of the process)
};

// Archives the file at `path` (absolute, or relative to the working
// directory: PostgreSQL runs archive_command in the data directory with %p =
// "pg_wal/<name>"). The file name must be a WAL file name
// (repo::WalFileName; kInvalidArgument otherwise). If the object exists
// already, its header is authenticated and compared: the same size and
// SHA-256 is success with already_archived (PostgreSQL retries a push whose
// answer it did not get, e.g. after a crash); anything else throws
// kAlreadyExists and the object is left as it is, never overwritten. A
// damaged existing object throws kCorrupt (it is not replaced either: look
// before deleting it). Otherwise the object is written with one Put, which
// every backend makes atomic and durable (local: temp file, fsync, rename,
// fsync of the directory; S3: one PUT, or a multipart upload that becomes
// visible only when completed): a push killed at any instant leaves either
// no object or the complete one, and PostgreSQL's retry then finishes or
// finds it.
// Known window: two different pushers of the same name with different
// content at the same instant (two clusters archiving into one source) can
// both see "absent" before either writes; the later Put wins.
WalPushResult WalPush(repo::Repository& repo, const std::string& path, const WalPushOptions& options);

constexpr int kDefaultPrefetch = 8;

struct WalFetchOptions {
  std::string source;
  // Segments after a requested segment to fetch into the spool in the same
  // call (same timeline), stopping at the first one not archived; 0 = off;
  // -1 = kDefaultPrefetch on remote storage, 0 on a local repository (no
  // latency to hide there: measured slower, it only adds an fsync per
  // segment; docs/POSTGRES.md).
  int prefetch = -1;
  int threads = 4;  // parallel fetches of the prefetch (each holds ~3 segments of memory)
};

struct WalFetchResult {
  bool found = false;
  bool from_spool = false;  // served from a file an earlier call prefetched
  uint64_t bytes = 0;
  int prefetched = 0;  // segments this call wrote into the spool
  double seconds = 0;
};

// Restores the WAL file `name` to `dest` (PostgreSQL's %f and %p; %p is
// relative to the data directory, the working directory). Returns found =
// false, writing nothing, when the repository has no such object: PostgreSQL
// asks for files that do not exist as a matter of course (the next
// timeline's .history file, the segment after the last). Everything else
// throws: storage errors, kCorrupt for a damaged object (or one moved from
// another name), kInvalidArgument for a name that is not a WAL file name.
// The caller must tell PostgreSQL these apart (cli/cmd_wal.cc: exit 1 only
// for "not found").
//
// `dest` is written atomically: a temp file in the spool directory, then a
// rename (so a killed fetch never leaves half a segment under DEST's name).
//
// Spool: "<directory of dest>/bulwark-spool/" (pg_wal/bulwark-spool: a base
// backup does not include pg_wal's contents, and PostgreSQL's WAL recycling
// ignores names that are not WAL file names). For a segment, after writing
// dest, the next `prefetch` segments are fetched in parallel into the spool
// (durably: temp, fsync, rename), and a later call for one of them is served
// by a rename, without any repository request. Each call first removes
// spool segments before the requested position (PostgreSQL moves forward)
// and leftover temp files. The spool records the repository id and source
// it was filled from and is emptied when either differs. Remove the spool
// when recovery ends (recovery_end_command; docs/POSTGRES.md).
WalFetchResult WalFetch(repo::Repository& repo, const std::string& name, const std::string& dest,
                        const WalFetchOptions& options);

// WalFetch's spool step alone, without the repository: serves `name` from
// the spool when an earlier call prefetched it there for this repository and
// source (so a caller that knows the repository id, e.g. from a machine key
// file, answers most calls without any request); nullopt otherwise.
std::optional<WalFetchResult> WalFetchFromSpool(const Id& repository, const std::string& source,
                                                const std::string& name, const std::string& dest);

// The spool directory WalFetch uses for `dest`.
std::string WalSpoolDir(const std::string& dest);

// Copies the archived WAL of `source` that `to` lacks (`bulwark copy` of a
// PostgreSQL source's base backups: an off-site copy needs the WAL to
// recover to any point). Each file is read from `from` and authenticated
// (OpenWal: size and SHA-256), then sealed anew under `to`'s key at `level`
// and written with one Put. A name present in `to` is skipped without being
// read: wal-push never rewrites a name, so the name identifies the content
// (check --read-data verifies it). Dry run: counts only. Throws what the
// backends and OpenWal throw (kCorrupt names the damaged object; files
// copied before it stay).
struct CopyWalResult {
  size_t copied = 0, present = 0;
  uint64_t bytes = 0;  // plaintext bytes of the copied files
};
CopyWalResult CopyWal(repo::Repository& from, repo::Repository& to, const std::string& source, int level,
                      bool dry_run);

}  // namespace bulwark::ops
