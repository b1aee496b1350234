// BlobSaver: the write side of a repository. Deduplicates, compresses,
// encrypts and packs blobs; uploads full packs on a background thread; writes
// index objects for uploaded packs. Commit order is preserved: a pack is
// uploaded before any index object lists it, and Flush() (called before the
// snapshot is written) returns only when every pack and index object is
// durable.
//
// Memory: at most 2 + kMaxQueuedPacks + U packs (each ~16 MiB: data and tree
// builders, queued, U uploading) are held at once; U = 1 on local storage and
// min(4, the backend's max_connections) on remote storage, where parallel
// PUTs hide the round-trip time.
// Thread-safety: Save may be called from many threads; Flush and the
// destructor from one thread after all Save calls returned.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>

#include "bulwark/repo/pack.h"
#include "bulwark/repo/repository.h"

namespace bulwark::repo {

struct SaverStats {
  std::atomic<uint64_t> blobs_added{0};
  std::atomic<uint64_t> bytes_added{0};   // plaintext bytes of new blobs
  std::atomic<uint64_t> bytes_stored{0};  // bytes of packs written
  std::atomic<uint64_t> packs_written{0};
  std::atomic<uint64_t> index_objects_written{0};
};

class BlobSaver {
 public:
  static constexpr size_t kPackTargetSize = 16u << 20;  // bytes
  static constexpr size_t kMaxQueuedPacks = 1;
  static constexpr size_t kPacksPerIndex = 8;  // an index object every N packs (crash: fewer lost)

  BlobSaver(Repository* repo, int compression_level);
  ~BlobSaver();  // abandons unflushed data (it is unreferenced)

  // Stores `plaintext` as a blob with id `id` (= repo->ids().Mac(plaintext))
  // unless the repository already holds it. Returns true if newly added.
  // Throws what the upload thread hit (e.g. kNoSpace), at the latest in Flush.
  bool Save(BlobType type, ByteSpan plaintext, const Id& id);
  // Adds a blob unit already sealed under this repository's key (prune's
  // repack copies units verbatim: their AAD binds type and id, not the pack).
  // `meta` gives id, type, compressed, length and raw_length. Unlike Save it
  // does not skip blobs the index already lists (the caller is moving them);
  // a blob already added by this saver is skipped.
  void SaveSealed(const PackedBlob& meta, ByteSpan sealed);
  // Computes the id and saves; returns the id.
  Id SaveTree(Tree& tree);
  // Uploads open packs and writes an index object for every uploaded pack
  // not yet indexed. Blocks until durable.
  void Flush();
  const SaverStats& stats() const { return stats_; }
  // Packs uploaded and index objects written so far; the packs' blob lists
  // are kept only after RecordWrittenPacks() (prune builds its consolidated
  // index from them; a backup does not pay the memory). Call after Flush.
  void RecordWrittenPacks() { record_packs_ = true; }
  const std::vector<std::pair<Id, std::vector<PackedBlob>>>& written_packs() const { return written_packs_; }
  const std::vector<Id>& written_index_ids() const { return written_index_ids_; }

 private:
  struct Finished {
    Bytes data;
    std::vector<PackedBlob> blobs;
  };
  void Enqueue(PackBuilder* builder);  // called with mu_ held
  void AddLocked(std::unique_lock<std::mutex>& lock, const PackedBlob& meta, ByteSpan sealed, uint64_t plain_bytes);
  void UploadLoop();
  void WriteIndexLocked();  // mu_ held
  void RethrowLocked();

  Repository* repo_;
  int level_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_set<Id, IdHash> in_flight_;  // saved but not yet in the index
  PackBuilder data_pack_, tree_pack_;
  std::deque<Finished> queue_;
  size_t uploading_ = 0;
  std::vector<std::pair<Id, std::vector<PackedBlob>>> unindexed_;
  std::vector<std::pair<Id, std::vector<PackedBlob>>> written_packs_;
  std::vector<Id> written_index_ids_;
  bool record_packs_ = false;
  std::optional<Error> error_;
  bool stop_ = false;
  SaverStats stats_;
  std::vector<std::thread> uploaders_;  // 1 for local storage, up to 4 for remote (S3)
};

}  // namespace bulwark::repo
