#include "bulwark/repo/blob_saver.h"

#include <algorithm>

#include "bulwark/base/error.h"

namespace bulwark::repo {

BlobSaver::BlobSaver(Repository* repo, int compression_level)
    : repo_(repo), level_(compression_level), data_pack_(&repo->aead()), tree_pack_(&repo->aead()) {
  // A pack is flushed at the first blob that crosses the target: room for
  // the target plus one maximal blob, so the buffer is never reallocated.
  data_pack_.Reserve(kPackTargetSize + (8u << 20) + 4096);
  auto caps = repo->backend().capabilities();
  int n = caps.local ? 1 : std::clamp(caps.max_connections, 1, 4);
  for (int i = 0; i < n; ++i) uploaders_.emplace_back([this] { UploadLoop(); });
}

BlobSaver::~BlobSaver() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : uploaders_) t.join();
}

void BlobSaver::RethrowLocked() {
  if (error_) throw *error_;
}

bool BlobSaver::Save(BlobType type, ByteSpan plaintext, const Id& id) {
  if (repo_->index().Has(id)) return false;
  // Seal outside the lock (the expensive part runs in parallel), then take
  // the lock once: a blob that another thread added meanwhile is dropped.
  PackedBlob meta;
  meta.id = id;
  meta.type = type;
  thread_local Bytes sealed;  // reused across calls: no allocation per blob
  SealBlob(repo_->aead(), plaintext, type == BlobType::kTree ? 3 : level_, &meta, &sealed);
  std::unique_lock<std::mutex> lock(mu_);
  RethrowLocked();
  if (!in_flight_.insert(id).second) return false;
  AddLocked(lock, meta, sealed, plaintext.size());
  return true;
}

void BlobSaver::SaveSealed(const PackedBlob& meta, ByteSpan sealed) {
  std::unique_lock<std::mutex> lock(mu_);
  RethrowLocked();
  if (!in_flight_.insert(meta.id).second) return;
  AddLocked(lock, meta, sealed, meta.raw_length);
}

void BlobSaver::AddLocked(std::unique_lock<std::mutex>& lock, const PackedBlob& meta, ByteSpan sealed,
                          uint64_t plain_bytes) {
  PackBuilder& builder = meta.type == BlobType::kTree ? tree_pack_ : data_pack_;
  builder.Add(meta, sealed);
  stats_.blobs_added++;
  stats_.bytes_added += plain_bytes;
  if (builder.size() >= kPackTargetSize) {
    // Backpressure: bound the packs held in memory.
    cv_.wait(lock, [&] { return queue_.size() < kMaxQueuedPacks || error_; });
    RethrowLocked();
    if (builder.size() >= kPackTargetSize) Enqueue(&builder);  // another thread may have done it
  }
}

Id BlobSaver::SaveTree(Tree& tree) {
  Bytes data = tree.Encode();
  Id id = repo_->ids().Mac(data);
  Save(BlobType::kTree, data, id);
  return id;
}

void BlobSaver::Enqueue(PackBuilder* builder) {
  Finished f;
  f.data = builder->Finish(&f.blobs);
  queue_.push_back(std::move(f));
  cv_.notify_all();
}

void BlobSaver::UploadLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty() && stop_) return;
    Finished f = std::move(queue_.front());
    queue_.pop_front();
    ++uploading_;
    cv_.notify_all();
    lock.unlock();
    std::optional<Error> err;
    Id pack_id;
    try {
      pack_id = crypto::Sha256(f.data);
      repo_->backend().Put(Repository::ObjectName(ObjectType::kPack, pack_id), f.data);
    } catch (const Error& e) {
      err = e.WithContext("uploading pack");
    } catch (const std::exception& e) {
      err = Error(ErrorCode::kInternal, std::string("uploading pack: ") + e.what());
    }
    lock.lock();
    --uploading_;
    if (err) {
      if (!error_) error_ = *err;
    } else {
      stats_.packs_written++;
      stats_.bytes_stored += f.data.size();
      unindexed_.emplace_back(pack_id, std::move(f.blobs));
      if (unindexed_.size() >= kPacksPerIndex) {
        try {
          WriteIndexLocked();
        } catch (const Error& e) {
          if (!error_) error_ = e;
        }
      }
    }
    cv_.notify_all();
  }
}

void BlobSaver::WriteIndexLocked() {
  if (unindexed_.empty()) return;
  IndexFile f;
  for (auto& [id, blobs] : unindexed_) f.packs.push_back({id, blobs});
  written_index_ids_.push_back(repo_->SaveUnpacked(ObjectType::kIndex, f.Encode()));
  stats_.index_objects_written++;
  for (auto& [id, blobs] : unindexed_) {
    repo_->index().AddPack(id, blobs);
    for (const auto& b : blobs) in_flight_.erase(b.id);
  }
  if (record_packs_)
    for (auto& p : unindexed_) written_packs_.push_back(std::move(p));
  unindexed_.clear();
}

void BlobSaver::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  RethrowLocked();
  if (!data_pack_.empty()) Enqueue(&data_pack_);
  if (!tree_pack_.empty()) Enqueue(&tree_pack_);
  cv_.wait(lock, [&] { return (queue_.empty() && uploading_ == 0) || error_; });
  RethrowLocked();
  WriteIndexLocked();
}

}  // namespace bulwark::repo
