#include "bulwark/ops/reachable.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "bulwark/base/error.h"

namespace bulwark::ops {

BlobMarks::BlobMarks(size_t n) : words_((n + 63) / 64), bits_(new std::atomic<uint64_t>[words_]) {
  for (size_t i = 0; i < words_; ++i) bits_[i].store(0, std::memory_order_relaxed);
}

void MarkReachable(const repo::Repository& repo, const std::vector<repo::Snapshot>& snapshots, BlobMarks* marks,
                   std::unordered_set<Id, IdHash>* missing,
                   const std::function<void(uint64_t done, uint64_t total)>& progress) {
  const repo::Index& index = repo.index();
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Id> queue;
  size_t active = 0;
  uint64_t trees_done = 0;
  std::optional<Error> error;
  // Returns true when `id` is a tree to descend into.
  auto visit = [&](const Id& id, std::unordered_set<Id, IdHash>* local_missing) {
    auto pos = index.Position(id);
    if (!pos) {
      local_missing->insert(id);
      return false;
    }
    return marks->Set(*pos);
  };
  {
    std::unordered_set<Id, IdHash> m;
    for (const auto& s : snapshots)
      if (visit(s.tree, &m)) queue.push_back(s.tree);
    missing->insert(m.begin(), m.end());
  }
  auto work = [&] {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      cv.wait(lock, [&] { return error || !queue.empty() || active == 0; });
      if (error || (queue.empty() && active == 0)) {
        cv.notify_all();
        return;
      }
      Id id = queue.front();
      queue.pop_front();
      ++active;
      lock.unlock();
      std::vector<Id> subtrees;
      std::unordered_set<Id, IdHash> local_missing;
      std::optional<Error> err;
      try {
        repo::Tree tree = repo.LoadTree(id);
        for (const auto& n : tree.nodes) {
          for (const auto& c : n.content) visit(c, &local_missing);
          if (!n.subtree.IsZero() && visit(n.subtree, &local_missing)) subtrees.push_back(n.subtree);
        }
      } catch (const Error& e) {
        err = e.WithContext("reading tree " + id.Short());
      }
      lock.lock();
      --active;
      ++trees_done;
      if (err && !error) error = err;
      missing->insert(local_missing.begin(), local_missing.end());
      for (auto& s : subtrees) queue.push_back(s);
      if (progress && trees_done % 256 == 0) progress(trees_done, trees_done + queue.size());
      cv.notify_all();
    }
  };
  size_t nthreads = std::max(2u, std::min(8u, std::thread::hardware_concurrency() * 2));
  std::vector<std::thread> threads;
  for (size_t i = 1; i < nthreads; ++i) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  if (error) throw *error;
}


std::vector<bool> PacksInUse(const repo::Index& index, const BlobMarks& marks) {
  std::vector<bool> used(index.pack_count(), false);
  for (size_t i = 0; i < index.sorted_size(); ++i)
    if (marks.Get(i)) used[index.PackNumberAt(i)] = true;
  return used;
}

}  // namespace bulwark::ops
