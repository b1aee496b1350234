#include "bulwark/repo/tree_cache.h"

#include "bulwark/base/error.h"

namespace bulwark::repo {

Bytes TreePackCache::Read(const Id& pack, uint64_t offset, uint64_t length, const std::function<Bytes()>& ranged,
                          const std::function<Bytes()>& whole) {
  std::shared_ptr<const Bytes> data;
  {
    std::unique_lock<std::mutex> lock(mu_);
    Entry& e = packs_[pack];
    fetched_.wait(lock, [&] { return !e.fetching; });
    if (e.data) {
      lru_.splice(lru_.begin(), lru_, e.lru);
      data = e.data;
    } else if (++e.ranged_reads <= kRangedReadsBeforeWholePack || capacity_ == 0) {
      lock.unlock();
      return ranged();
    } else {
      e.fetching = true;
      lock.unlock();
      std::shared_ptr<const Bytes> got;
      try {
        got = std::make_shared<const Bytes>(whole());
      } catch (...) {
        lock.lock();
        packs_[pack].fetching = false;
        fetched_.notify_all();
        throw;
      }
      lock.lock();
      Entry& f = packs_[pack];
      f.fetching = false;
      f.data = got;
      lru_.push_front(pack);
      f.lru = lru_.begin();
      used_ += got->size();
      ++whole_fetches_;
      while (used_ > capacity_ && lru_.size() > 1) {  // keep the newest even if alone too big
        Entry& old = packs_[lru_.back()];
        used_ -= old.data->size();
        old.data.reset();
        old.ranged_reads = 0;
        lru_.pop_back();
      }
      fetched_.notify_all();
      data = got;
    }
  }
  if (offset > data->size() || length > data->size() - offset)
    throw Error(ErrorCode::kCorrupt, "pack " + pack.Short() + " is shorter (" + std::to_string(data->size()) +
                                         " bytes) than its index says (blob at " + std::to_string(offset) + ")");
  return Bytes(data->begin() + static_cast<ptrdiff_t>(offset), data->begin() + static_cast<ptrdiff_t>(offset + length));
}

uint64_t TreePackCache::whole_fetches() const {
  std::lock_guard<std::mutex> lock(mu_);
  return whole_fetches_;
}

}  // namespace bulwark::repo
