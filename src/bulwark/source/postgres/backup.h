// Backups of a `kind: postgres` source (bulwark.yaml; docs/POSTGRES.md):
// `mode: logical` (pg_dump custom format + pg_dumpall --globals-only, facts
// taken in the dump's exported snapshot) and `mode: physical` (a base backup
// stored as a tree, the server's backup_manifest kept).
//
// Both store exactly one snapshot (kind "postgres", facts["postgres"]) or,
// when the server, a dump or the base backup fails, none: a failed source
// never leaves a snapshot behind. Repository errors propagate as in
// ops::BackupPaths.
#pragma once

#include "bulwark/config/config.h"
#include "bulwark/ops/backup.h"

namespace bulwark::source::postgres {

// The snapshot kind of every PostgreSQL backup.
inline constexpr const char* kSnapshotKind = "postgres";

// Logical backup (source/postgres/logical.cc). `options` carries the
// snapshot's tags, host, progress and before_commit; its paths are ignored.
// Throws Error(kSourceFailed) naming the server or program that failed.
ops::BackupResult BackupLogical(repo::Repository& repo, const config::SourceConfig& source,
                                const ops::BackupOptions& options);

// Physical base backup (source/postgres/physical.cc). Same contract.
ops::BackupResult BackupPhysical(repo::Repository& repo, const config::SourceConfig& source,
                                 const ops::BackupOptions& options);

// The directory of the PostgreSQL programs for a server of major version
// `major`: `configured` when set, else /usr/lib/postgresql/MAJOR/bin (Debian's
// layout; pg_dump must match the server's major version). Throws
// Error(kNotFound) naming the directory and the Debian package to install
// (postgresql-client-MAJOR) when `program` is not there.
std::string ProgramPath(const std::string& configured, int major, const std::string& program);

}  // namespace bulwark::source::postgres
