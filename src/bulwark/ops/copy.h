// Copy: copies snapshots from one repository to another (`bulwark copy`), the
// off-site / cross-region path. The two repositories may have different
// passwords, keys, chunker parameters and compression levels.
//
// What moves: only blobs the destination does not hold. Each is read from the
// source (AEAD tag and keyed id verified, Repository::LoadBlob), then stored
// through a repo::BlobSaver: re-encrypted under the destination's key and
// compressed at the destination's level. Chunk boundaries never change: a
// copied file keeps the source's chunks.
//
// Blob ids (docs/FORMAT.md "Cryptography"):
//  * Shared blob-id key (the destination was made with `init
//    --copy-chunker-params --from-repo SOURCE`, or the other way round): ids
//    are equal in both repositories. A data blob the destination's index
//    holds is skipped by id and never read; trees are stored verbatim.
//  * Different keys: every data blob of a copied snapshot is read once per run
//    to compute its destination id; trees are rewritten with the mapped ids.
//    The source -> destination id map lives in memory for the run (about
//    100 bytes per distinct blob).
// Trees are always read from the source (they are small) so that every blob a
// copied snapshot references is checked against the destination's index: a
// tree present in the destination does not prove its blobs are.
//
// Idempotence: a copied snapshot records its origin (Snapshot::copied_from).
// The origin of a snapshot is its copied_from, or else (the repository id it
// is stored in, its id). A source snapshot whose origin equals that of a
// destination snapshot is skipped, so a second run copies nothing, a copy of
// a copy is recognised, and copying back does not duplicate.
//
// Commit order, per snapshot: BlobSaver::Flush (packs, then index objects),
// then the snapshot object. A failure (damaged source blob, full disk) stops
// the copy with that error: snapshots copied before it stay, the failing one
// is not written, packs already uploaded for it are unreferenced (prune
// removes them); the destination stays consistent.
//
// Preconditions: both repositories are open with their indexes loaded
// (Repository::LoadIndex) and the caller holds a lock on each (shared
// suffices: copy only adds objects, like backup).
// Thread-safety: one Copy at a time per destination; `progress` may be read
// from other threads while it runs.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "bulwark/repo/repository.h"

namespace bulwark::ops {

struct CopyProgress {
  std::atomic<uint64_t> snapshots_total{0}, snapshots_done{0};  // selected / handled (copied or skipped)
  std::atomic<uint64_t> blobs_copied{0}, bytes_copied{0};       // stored in the destination (plaintext bytes)
  std::atomic<uint64_t> bytes_read{0};                           // plaintext bytes read from the source
};

// One selected source snapshot and what happened to it.
struct CopiedSnapshot {
  repo::Snapshot source;        // as stored in the source repository (source.id is its id there)
  bool skipped = false;         // the destination already holds a snapshot of the same origin
  Id existing;                  // when skipped: that destination snapshot
  Id destination;               // the new snapshot's id (zero when skipped or in a dry run)
  uint64_t blobs = 0, bytes = 0;  // blobs and plaintext bytes stored for it (dry run: that would be)
};

struct CopyOptions {
  // Snapshot ids, unique id prefixes or "latest" (narrowed by `filter`);
  // empty: every source snapshot that matches `filter`.
  std::vector<std::string> snapshots;
  repo::SnapshotFilter filter;
  // Walk and count, write nothing. With a shared blob-id key the counts are
  // exact; otherwise no data is read and every data blob and tree of the
  // selected snapshots is counted (an upper bound; CopyResult::exact false).
  bool dry_run = false;
  std::optional<int> compression;  // zstd level for data blobs; default: the destination's
  CopyProgress* progress = nullptr;
  // Called after each selected snapshot was copied (or would be) or skipped.
  std::function<void(const CopiedSnapshot&)> on_snapshot;
  // Damaged source or destination snapshot objects are skipped and reported
  // here (nullptr: they throw).
  std::function<void(const std::string&)> on_warning;
};

struct CopyResult {
  std::vector<CopiedSnapshot> snapshots;  // every selected snapshot, oldest first
  uint64_t snapshots_copied = 0, snapshots_skipped = 0;
  uint64_t blobs_copied = 0;   // blobs (data and tree) stored in the destination
  uint64_t bytes_copied = 0;   // their plaintext bytes
  uint64_t bytes_stored = 0;   // bytes of packs written to the destination (0 in a dry run)
  uint64_t blobs_read = 0;     // data blobs read from the source
  uint64_t bytes_read = 0;     // their plaintext bytes
  bool shared_id_key = false;  // the repositories share K_id (see above)
  bool exact = true;           // false: dry-run counts are an upper bound
};

// Copies the selected snapshots from `source` into `destination`.
// Throws bulwark::Error: kInvalidArgument when both are the same repository
// or a snapshot spec is malformed/ambiguous, kNotFound for an unknown
// snapshot, kCorrupt for a damaged source object (the message names the
// snapshot, the file path and the blob), storage errors (kNoSpace, kIo, ...)
// from writing the destination.
CopyResult Copy(repo::Repository& source, repo::Repository& destination, const CopyOptions& options);

// The origin of snapshot `s` stored in the repository with id `repository`
// (see "Idempotence" above).
repo::CopiedFrom OriginOf(const repo::Snapshot& s, const Id& repository);

}  // namespace bulwark::ops
