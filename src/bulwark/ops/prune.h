// Prune: reclaim the space of data no snapshot references any more.
//
// Algorithm (mark and sweep, planned from the index alone; see
// docs/ARCHITECTURE.md "Prune" and docs/FORMAT.md "Prune marks"):
//   1. Load the index; mark every blob reachable from every snapshot (one bit
//      per index entry; trees are read in parallel). A referenced blob that
//      no indexed pack holds is looked for in marked and unindexed packs and
//      put back into the index if found; otherwise prune stops before
//      changing anything (the repository is damaged: run check).
//   2. Per pack: wholly used -> keep; wholly unused -> mark for deletion;
//      partly used -> repack candidates, most wasteful first, until the
//      repository's unused share is at most `max_unused` of the used bytes,
//      within `max_repack_bytes` (the policy of restic's prune --max-unused).
//   3. Repack: live blob units are copied verbatim (verified first) into new
//      packs; then a `marked/` object lists the packs to delete (with their
//      blobs), then a consolidated index is written whose last object
//      supersedes every older one, then the older index objects are removed.
//   4. Deletion is the second phase: a marked pack is deleted only when its
//      marks object is older than `grace` by the storage's clock, and an
//      unindexed pack (an interrupted or concurrent backup's upload) only
//      when the pack itself is. A backup that read the index before the
//      marking either finished long ago or lost its lock (and then does not
//      commit: BackupOptions::before_commit).
//   Under Object Lock (RepoConfig::object_lock_mode) a due pack or a
//   superseded index object whose retain-until date (HEAD) is still ahead is
//   not deleted; it is reported, and a later prune deletes it once free (a
//   pack keeps its marks object; a superseded index object stays superseded).
//   Then the maintenance of object_lock.h runs on what prune keeps: live
//   objects are retained at least as long as the snapshots that need them.
//   Every step leaves a valid repository, so prune is resumable: after a
//   crash the next run plans again from what is there.
//
// Memory: the index (48 bytes per blob) plus one bit per blob, plus per pack
// a few counters; repack holds one pack and BlobSaver's buffers.
//
// The caller must hold an exclusive repository lock. Not thread-safe:
// one Prune per repository at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <string>

#include "bulwark/ops/object_lock.h"
#include "bulwark/repo/repository.h"

namespace bulwark::ops {

struct PruneOptions {
  double max_unused = 0.05;  // tolerated unused bytes as a share of all bytes, in [0, 1]; 1 = never repack
  uint64_t max_repack_bytes = std::numeric_limits<uint64_t>::max();  // bytes of packs to repack per run
  int64_t grace_ns = int64_t(3600) * 1000000000;  // storage-time age before deletion (ns)
  int64_t storage_now_ns = 0;  // the storage's clock now (repo::Lock::Touch); required
  bool dry_run = false;        // plan only: nothing is written or deleted
  int compression = -1;        // level for BlobSaver (only tree/data units are copied verbatim); -1 = repository's
  // Object Lock repositories only: run the retention maintenance after the
  // sweep (object_lock.h), with this margin (0 = its default).
  bool extend_locks = true;
  int64_t lock_margin_ns = 0;
  // Progress: phase ("mark", "repack", "delete"), done and total units.
  std::function<void(const std::string& phase, uint64_t done, uint64_t total)> progress;
};

struct PruneStats {
  uint64_t snapshots = 0;
  uint64_t blobs = 0, blobs_used = 0;                  // index entries
  uint64_t packs = 0;                                   // packs the index lists
  uint64_t used_bytes = 0, unused_bytes = 0;            // sealed blob bytes in indexed packs
  uint64_t packs_keep = 0, bytes_keep = 0;              // kept as they are (bytes: pack blob bytes)
  uint64_t packs_repack = 0, bytes_repack = 0;          // repacked (bytes read)
  uint64_t bytes_repack_unused = 0;                     // unused bytes inside repacked packs
  uint64_t packs_unused = 0, bytes_unused_packs = 0;    // wholly unused: marked now
  uint64_t packs_missing_unused = 0;                    // indexed, absent from storage, not needed: dropped
  uint64_t packs_written = 0, bytes_written = 0;        // new packs from repacking
  uint64_t packs_recovered = 0;                         // marked/unindexed packs put back in the index
  uint64_t packs_deleted = 0, bytes_deleted = 0;        // deleted now (grace over), incl. orphans
  uint64_t packs_waiting = 0, bytes_waiting = 0;        // marked or unindexed, grace not over yet
  uint64_t packs_locked = 0, bytes_locked = 0;          // due, but under Object Lock: kept, retried later
  uint64_t index_objects_before = 0, index_objects_written = 0, index_objects_removed = 0;
  uint64_t index_objects_locked = 0;                    // superseded, but Object Lock retains them: kept
  uint64_t marks_objects_removed = 0;
  bool locks_extended = false;  // the Object Lock maintenance ran; its figures:
  LockExtendStats locks;
  double duration_seconds = 0;
};

// Runs prune (or only plans it with dry_run). Throws bulwark::Error:
// kCorrupt when snapshots reference data no pack holds or a pack to repack
// is damaged (nothing is deleted then), kInvalidArgument for bad options,
// backend errors as they come (a later run resumes).
PruneStats Prune(repo::Repository& repo, const PruneOptions& options);

}  // namespace bulwark::ops
