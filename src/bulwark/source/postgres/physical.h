// PostgreSQL physical base backups (source/postgres/physical.cc; entry point
// BackupPhysical in backup.h): what a base backup is made of, and the
// decoders for the two files of it that bulwark reads, backup_label and
// backup_manifest.
//
// Two ways to take a base backup (config::PgBackupMethod, `method:`):
//
// files (the default when bulwark runs on the database host): one libpq
// session calls pg_backup_start(label, fast => true) (pg_start_backup on
// PostgreSQL 13 and 14), bulwark reads the data directory in place
// (ops::BackupDirectory: every core chunks, hashes and compresses; a file
// whose size, mtime, ctime and inode equal those in the previous base
// backup of the source is not read again), then the same session calls
// pg_backup_stop(wait_for_archive => true), whose backup_label (and
// tablespace_map) become files of the snapshot. This is PostgreSQL's
// "low-level API" (documentation §26.3.3, "Making a Base Backup Using the
// Low Level API"), the way pgBackRest and WAL-G take backups. Files changed
// while they are read are made consistent by WAL replay from the backup's
// start (full-page writes are on during a backup). What is left out is what
// pg_basebackup leaves out (PostgreSQL 15 basebackup.c;
// SelectDataDirectoryEntry). There is no server-written manifest: bulwark
// writes backup_manifest itself (WriteBackupManifest): every file with its
// size and mtime as stored, and the backup's WAL range, without per-file
// checksums (the content is verified by bulwark's own blob ids, SHA-256, at
// every restore). Not yet supported: tablespaces outside the data
// directory.
//
// stream (bulwark anywhere the server is reachable): bulwark runs the
// server's own `pg_basebackup -D - -Ft -X none -c fast -w
// --manifest-checksums=CRC32C` (from pg_bin_dir or
// /usr/lib/postgresql/MAJOR/bin, matching the server's major version) and
// reads its tar from a pipe (ops::BackupTar), rather than speaking the
// replication protocol's BASE_BACKUP itself through libpq:
//  - pg_basebackup speaks every server version's dialect of BASE_BACKUP (the
//    options, the archive and manifest framing and the tablespace streams
//    changed in PostgreSQL 15) and checks the server's version itself; a
//    libpq client would have to re-implement and test each;
//  - it is what the notes verified (docs/POSTGRES-NOTES.md §3): the tar on
//    stdout with `-X none` is complete, backup_label first and
//    backup_manifest last, and pg_verifybackup accepts it.
// Every byte of the cluster crosses the network and is chunked again at
// every backup (the tar carries no inode to skip unchanged files by). It
// cannot write more than one tablespace to stdout (pg_basebackup refuses:
// "can only write single tablespace to stdout"); and `-X stream` is refused
// with a tar on stdout, so the WAL of the backup comes from the WAL archive
// (archive_command), never from the tar. The server's backup_manifest (with
// CRC32C checksums) is kept.
//
// Both wait until the backup's last WAL segment is archived: a broken
// archive_command makes a base backup wait (as it does without bulwark).
//
// The tree (both methods): the data directory at "/<source name>" (with
// backup_label, tablespace_map when there is one, and backup_manifest;
// without postmaster.pid, pg_wal's contents, ...). Unchanged relation files
// deduplicate across base backups by content (FastCDC chunks).
//
// Facts (snapshot.facts["postgres"], all strings unless noted):
//   mode "physical"; system_identifier (decimal string: it exceeds 2^53);
//   timeline (number: START TIMELINE of backup_label); stop_timeline
//   (number: the timeline of the manifest's last WAL range); start_lsn
//   (backup_label START WAL LOCATION), stop_lsn (the manifest's WAL-Ranges
//   End-LSN: backup_label has none), checkpoint_lsn; start_wal_segment (the
//   WAL file holding start_lsn, from backup_label); label; backup_from
//   ("primary" or "standby"); label_start_time (backup_label START TIME as
//   written, in the server's log_timezone); start_time and stop_time (RFC
//   3339 UTC, the server's clock_timestamp() read right before pg_basebackup
//   started and right after it exited: they bracket the backup on the same
//   clock that stamps commits, so a recovery target time at or after
//   stop_time is reachable from this backup); server_version (SHOW
//   server_version), server_version_num (number); manifest_checksum;
//   manifest_files and data_bytes (numbers: the manifest's file count and
//   the sum of their sizes); method ("files" or "stream"); data_directory
//   (files) or pg_basebackup (stream: its path).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bulwark/ops/backup.h"
#include "bulwark/source/postgres/wal_names.h"

namespace bulwark::source::postgres {

// Lsn, ParseLsn and FormatLsn: wal_names.h.

// The lines of `text`, split at '\n' (not included); a last line without
// one counts too. Views into `text`.
std::vector<std::string_view> Lines(std::string_view text);

// The backup_label file at the root of a base backup (PostgreSQL's
// do_pg_backup_start writes it: "KEY: value" lines).
struct BackupLabel {
  Lsn start_lsn = 0;              // START WAL LOCATION
  std::string start_wal_segment;  // its "(file 000000010000000000000010)"
  Lsn checkpoint_lsn = 0;         // CHECKPOINT LOCATION
  std::string method;             // BACKUP METHOD ("streamed")
  std::string backup_from;        // BACKUP FROM ("primary" / "standby")
  std::string start_time;         // START TIME, as written ("2026-11-21 19:32:36 UTC")
  std::string label;              // LABEL
  uint32_t start_timeline = 0;    // START TIMELINE (PostgreSQL 11 and later)
};
// Throws Error(kCorrupt, "backup_label: ...") unless START WAL LOCATION
// (with its file name: 24 hex digits), CHECKPOINT LOCATION and START
// TIMELINE are present and well-formed. Other lines are kept or ignored.
BackupLabel ParseBackupLabel(std::string_view text);

// One entry of the manifest's WAL-Ranges: the WAL needed to make the backup
// consistent, per timeline.
struct WalRange {
  uint32_t timeline = 0;
  Lsn start = 0, end = 0;
};

// What bulwark reads of a backup_manifest (PostgreSQL 13+; JSON,
// docs "Backup Manifest Format").
struct BackupManifest {
  int version = 0;                            // PostgreSQL-Backup-Manifest-Version: 1, or 2 (PostgreSQL 17)
  std::optional<uint64_t> system_identifier;  // version 2 only
  std::vector<WalRange> wal_ranges;           // as listed
  uint64_t files = 0, bytes = 0;              // Files: count, and the sum of their Size
  std::string checksum;                       // Manifest-Checksum (hex SHA-256)

  // The range that ends last (its end is the backup's stop LSN). Requires a
  // non-empty wal_ranges (ParseBackupManifest ensures it).
  const WalRange& Last() const;
};
// Parses a manifest and verifies its Manifest-Checksum: the SHA-256 of every
// byte up to and including the second-to-last newline (PostgreSQL's
// parse_manifest.c). Throws Error(kCorrupt, "backup_manifest: ...") on
// malformed JSON, a missing or unknown version, no WAL-Ranges, an LSN that
// does not parse, or a checksum mismatch.
BackupManifest ParseBackupManifest(std::string_view text);

// One file of a backup_manifest: its path relative to the data directory
// ('/'-separated), size in bytes and mtime (ns since the Unix epoch, UTC;
// written to the second).
struct ManifestFile {
  std::string path;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
};
// A backup_manifest (version 1, PostgreSQL's documentation "Backup Manifest
// Format"; the layout of PostgreSQL's backup_manifest.c, one file per line)
// listing `files` in the given order, without checksums, and `wal_ranges`,
// ending with its Manifest-Checksum (SHA-256 of everything before that
// line). Paths that are not printable ASCII are written as Encoded-Path
// (hex). ParseBackupManifest reads it back; pg_verifybackup accepts it.
std::string WriteBackupManifest(const std::vector<ManifestFile>& files, const std::vector<WalRange>& wal_ranges);

// What the files method stores of a data directory (ops::DirectoryHooks's
// select), as pg_basebackup does (PostgreSQL 15 basebackup.c):
//  - pg_wal: only the directory and its empty archive_status;
//  - the contents of pg_stat_tmp, pg_replslot, pg_dynshmem, pg_notify,
//    pg_serial, pg_snapshots and pg_subtrans: the directories, empty;
//  - never: postmaster.pid, postmaster.opts, postgresql.auto.conf.tmp,
//    current_logfiles.tmp, pg_internal.init*, pgsql_tmp* (anywhere), and a
//    backup_label, tablespace_map or backup_manifest found in the directory
//    (the backup's own are added);
//  - in base/ and pg_tblspc/: temporary relations (t<N>_<relfilenode>...)
//    and every fork but _init of an unlogged relation (one whose
//    <relfilenode>_init is among `siblings`, sorted).
// `rel` is the entry's path relative to the data directory.
ops::EntryAction SelectDataDirectoryEntry(const std::string& rel, bool is_dir,
                                          const std::vector<std::string>& siblings);

}  // namespace bulwark::source::postgres
