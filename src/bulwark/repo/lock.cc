#include "bulwark/repo/lock.h"

#include <unistd.h>

#include <chrono>
#include <random>
#include <set>
#include <thread>
#include <utility>
#include <nlohmann/json.hpp>

#include "bulwark/base/error.h"
#include "bulwark/base/json.h"
#include "bulwark/base/log.h"
#include "bulwark/base/sys.h"

namespace bulwark::repo {

using nlohmann::json;

namespace {

LockInfo Decode(Repository* repo, const storage::ObjectInfo& o) {
  LockInfo info;
  info.id = Id::FromHexOrThrow(o.name.substr(o.name.rfind('/') + 1));
  Bytes raw = repo->backend().Get(o.name);
  Bytes body = OpenObject(repo->aead(), ObjectType::kLock, raw, repo->backend().Location() + "/" + o.name);
  json j = json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw Error(ErrorCode::kCorrupt, o.name + ": not valid JSON");
  info.host = j.value("host", "");
  info.username = j.value("username", "");
  info.pid = JsonInt(j, "pid", o.name, false);
  info.time_ns = JsonInt(j, "time_ns", o.name, false);
  info.exclusive = j.value("exclusive", false);
  info.released = j.value("released", false);
  return info;
}

std::string Describe(const LockInfo& l) {
  return std::string(l.exclusive ? "exclusive" : "shared") + " lock " + l.id.Short() + " held by pid " +
         std::to_string(l.pid) + " on " + l.host + " (" + l.username + ") since " + FormatTime(l.time_ns);
}

}  // namespace

std::vector<LockInfo> Lock::List(Repository* repo, bool remove_stale) {
  std::vector<LockInfo> out;
  std::string host = sys::Hostname();
  int64_t now = NowNs();
  // Stale, released or unreadable locks this process may not remove
  // (append-only or read-only credentials): ignored, with one warning.
  std::vector<std::string> kept;
  std::string denied;
  auto remove = [&](const std::string& name, const std::string& short_id) {
    try {
      repo->backend().Remove(name);
      return true;
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kPermission) throw;
      if (denied.empty()) denied = e.what();
      kept.push_back(short_id);
      return false;
    }
  };
  for (const auto& o : repo->backend().List("locks/")) {
    LockInfo l;
    try {
      l = Decode(repo, o);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kNotFound) continue;  // released meanwhile
      if (remove_stale && e.code() == ErrorCode::kCorrupt) {
        // A lock object that cannot be read (e.g. written under a removed key
        // or damaged) only gets in the way; locks carry no data.
        if (remove(o.name, o.name.substr(o.name.rfind('/') + 1, 8)))
          log::Warn(std::string("removed unreadable lock: ") + e.what());
        continue;
      }
      throw;
    }
    bool dead = l.host == host && !sys::ProcessAlive(l.pid);
    // Age by storage timestamp too: robust against the holder's clock.
    int64_t age_s = std::min(now - l.time_ns, now - o.mtime_ns) / 1000000000;
    bool expired = age_s > kStaleAfterSeconds;
    if (remove_stale && (l.released || dead || expired)) {
      if (remove(o.name, l.id.Short()))
        log::Info("removed " + std::string(l.released ? "released " : "stale ") + Describe(l) +
                  (l.released ? ": its holder could not delete it"
                   : dead     ? ": that process is gone"
                              : ": not refreshed for 30 minutes"));
      continue;
    }
    out.push_back(l);
  }
  {
    // Once per lock and process: Acquire lists again and again while it waits.
    static std::mutex mu;
    static std::set<std::string> warned;
    std::lock_guard<std::mutex> guard(mu);
    std::erase_if(kept, [&](const std::string& id) { return !warned.insert(id).second; });
  }
  if (!kept.empty()) {
    std::string ids;
    for (size_t i = 0; i < kept.size() && i < 5; ++i) ids += (i ? ", " : "") + kept[i];
    if (kept.size() > 5) ids += ", ...";
    log::Warn("cannot remove " + std::to_string(kept.size()) + " stale or released lock(s) (" + ids +
              "): no delete permission (" + denied +
              "); ignoring them (they lock nothing); the next command with delete permission (prune, forget, "
              "unlock) removes them");
  }
  return out;
}

Lock::Lock(Repository* repo, bool exclusive) : repo_(repo), exclusive_(exclusive) {}

Bytes Lock::Encode(bool released) const {
  json j = {{"host", sys::Hostname()},     {"username", sys::Username()}, {"pid", static_cast<int64_t>(getpid())},
            {"time", FormatTime(NowNs())}, {"time_ns", NowNs()},          {"exclusive", exclusive_}};
  if (released) j["released"] = true;
  std::string s = j.dump();
  return SealObject(repo_->aead(), ObjectType::kLock, AsBytes(s));
}

void Lock::Write() {
  Bytes obj = Encode(false);
  if (!delete_error_.empty()) {
    // Old lock objects cannot be deleted: refresh in place (or reuse one of
    // ours marked released) rather than leave one behind per refresh.
    Id id = !id_.IsZero() ? id_ : !parked_.IsZero() ? parked_ : crypto::RandomId();
    repo_->backend().Put(Repository::ObjectName(ObjectType::kLock, id), obj);
    if (id == parked_) parked_ = Id{};
    id_ = id;
    return;
  }
  Id fresh = crypto::RandomId();
  repo_->backend().Put(Repository::ObjectName(ObjectType::kLock, fresh), obj);
  Id old = std::exchange(id_, fresh);
  if (!old.IsZero() && Drop(old))
    log::Info("cannot delete the previous lock object " + old.Short() + " (" + delete_error_ +
              "): marked it released; refreshing lock " + id_.Short() + " in place from now on");
}

bool Lock::Drop(const Id& id) {
  std::string name = Repository::ObjectName(ObjectType::kLock, id);
  try {
    repo_->backend().Remove(name);
    return false;
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kPermission) throw;
    delete_error_ = e.what();
  }
  try {
    repo_->backend().Put(name, Encode(/*released=*/true));
  } catch (const Error& e) {
    throw Error(e.code(), "cannot delete it (" + delete_error_ + ") nor mark it released (" + e.what() + ")");
  }
  parked_ = id;
  return true;
}

std::unique_ptr<Lock> Lock::Acquire(Repository* repo, bool exclusive, int64_t wait_seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait_seconds);
  std::unique_ptr<Lock> lock(new Lock(repo, exclusive));
  auto last_write = std::chrono::steady_clock::now();
  auto drop_own = [&] {
    if (lock->id_.IsZero()) return;
    lock->Drop(lock->id_);  // without delete permission: marked released, reused by the next Write
    lock->id_ = Id{};
  };
  thread_local std::mt19937 rng(std::random_device{}());
  for (int attempt = 0;; ++attempt) {
    std::optional<LockInfo> conflict;
    bool keep_waiting_with_own = false;
    auto others = List(repo, true);
    if (exclusive) {
      // Writer preference: an exclusive waiter keeps its lock object while it
      // waits, so new shared lockers back off and a stream of backups cannot
      // starve a prune. Of two exclusive waiters the smaller id goes first.
      if (lock->id_.IsZero()) {
        lock->Write();
        last_write = std::chrono::steady_clock::now();
        continue;
      }
      for (const auto& l : others) {
        if (l.id == lock->id_) continue;
        conflict = l;
        if (l.exclusive && l.id < lock->id_) {
          keep_waiting_with_own = false;
          break;
        }
        keep_waiting_with_own = true;
      }
      if (!conflict) break;
      if (!keep_waiting_with_own) drop_own();
    } else {
      for (const auto& l : others)
        if (l.id != lock->id_ && l.exclusive) conflict = l;
      if (!conflict) {
        if (lock->id_.IsZero()) {
          lock->Write();
          continue;  // re-check: an exclusive locker may have arrived concurrently
        }
        break;
      }
      drop_own();
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      drop_own();
      throw Error(ErrorCode::kLocked, "repository " + repo->backend().Location() + " is locked: " + Describe(*conflict) +
                                          " (use --lock-wait to wait, or 'bulwark unlock' if that process is gone "
                                          "on another host)");
    }
    if (!lock->id_.IsZero() &&
        std::chrono::steady_clock::now() - last_write > std::chrono::seconds(kRefreshSeconds)) {
      lock->Write();  // a waiting lock is refreshed like a held one
      last_write = std::chrono::steady_clock::now();
    }
    int base = std::min(5000, 200 * (attempt + 1));
    std::this_thread::sleep_for(std::chrono::milliseconds(base / 2 + rng() % (base / 2 + 1)));
  }
  lock->refresher_ = std::thread([l = lock.get()] { l->RefreshLoop(); });
  return lock;
}

int64_t Lock::Touch() {
  std::lock_guard<std::mutex> guard(mu_);
  Write();
  auto st = repo_->backend().Stat(Repository::ObjectName(ObjectType::kLock, id_));
  if (!st) throw Error(ErrorCode::kLocked, "lock " + id_.Short() + " vanished right after it was written");
  return st->mtime_ns;
}

void Lock::CheckHeld() {
  std::lock_guard<std::mutex> guard(mu_);
  if (lost_ || !repo_->backend().Stat(Repository::ObjectName(ObjectType::kLock, id_)))
    throw Error(ErrorCode::kLocked, "this process's lock on " + repo_->backend().Location() +
                                        " was removed by another process (it was considered stale); stopping so "
                                        "that nothing refers to data a concurrent prune may have removed");
}

void Lock::RefreshLoop() {
  std::unique_lock<std::mutex> guard(mu_);
  while (!cv_.wait_for(guard, std::chrono::seconds(kRefreshSeconds), [&] { return stop_; })) {
    try {
      if (!repo_->backend().Stat(Repository::ObjectName(ObjectType::kLock, id_))) {
        lost_ = true;
        log::Warn("lock " + id_.Short() + " was removed by another process; this operation will not commit");
        continue;
      }
      Write();
    } catch (const Error& e) {
      log::Warn(std::string("refreshing lock: ") + e.what());
    }
  }
}

Lock::~Lock() {
  {
    std::lock_guard<std::mutex> guard(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (refresher_.joinable()) refresher_.join();
  if (id_.IsZero()) return;
  std::string where = repo_->backend().Location() + "/" + Repository::ObjectName(ObjectType::kLock, id_);
  try {
    if (!Drop(id_)) return;
    log::Warn("lock object " + where + " stays behind: " + delete_error_ +
              ". It is marked released, so other commands ignore it; the next command with delete permission "
              "(prune, forget, unlock) removes it");
  } catch (const Error& e) {
    log::Warn("releasing lock object " + where + ": " + e.what() +
              ". It counts as a lock until it is judged stale (its process gone, on this host; else " +
              std::to_string(kStaleAfterSeconds / 60) +
              " minutes after its last refresh); the next command with delete permission then removes it");
  }
}

}  // namespace bulwark::repo
