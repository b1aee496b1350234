#include "bulwark/ops/prune.h"

#include "bulwark/ops/reachable.h"

#include <algorithm>
#include <initializer_list>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "bulwark/base/error.h"
#include "bulwark/base/log.h"
#include "bulwark/repo/blob_saver.h"
#include "bulwark/repo/pack.h"

namespace bulwark::ops {
namespace {

using repo::IndexFile;
using repo::ObjectType;
using repo::Repository;

// Index objects the consolidated index is split into: about 2 MiB each.
constexpr size_t kBlobsPerIndexObject = 50000;

struct StoredPack {
  uint64_t size = 0;
  int64_t mtime_ns = 0;
};

std::optional<Id> IdFromName(const std::string& name) {
  std::string hex = name.substr(name.rfind('/') + 1);
  Bytes b;
  if (hex.size() != 64 || !FromHex(hex, &b)) return std::nullopt;
  return Id::FromSpan(b);
}

std::string FirstIds(const std::unordered_set<Id, IdHash>& ids) {
  std::vector<Id> v(ids.begin(), ids.end());
  std::sort(v.begin(), v.end());
  std::string out;
  for (size_t i = 0; i < v.size() && i < 3; ++i) out += (i ? ", " : "") + v[i].Short();
  if (v.size() > 3) out += ", ...";
  return out;
}

enum PackState : uint8_t { kKeep, kRepack, kDelete, kDropMissing };

}  // namespace

PruneStats Prune(Repository& repo, const PruneOptions& o) {
  if (o.storage_now_ns <= 0) throw Error(ErrorCode::kInternal, "prune: the storage's current time is unknown");
  if (!(o.max_unused >= 0 && o.max_unused <= 1))
    throw Error(ErrorCode::kInvalidArgument, "prune: max unused share must be between 0 and 100%");
  if (o.grace_ns < 0) throw Error(ErrorCode::kInvalidArgument, "prune: grace period must not be negative");
  const auto t0 = std::chrono::steady_clock::now();
  storage::Backend& be = repo.backend();
  PruneStats st;

  // Every snapshot must be readable: an unreadable one could reference
  // anything, and prune would delete its data.
  std::vector<repo::Snapshot> snapshots = repo.LoadSnapshots();
  st.snapshots = snapshots.size();

  repo.LoadIndex();
  std::vector<Id> supersede = repo.index_ids();
  for (const auto& id : repo.superseded_index_ids()) supersede.push_back(id);
  st.index_objects_before = supersede.size();

  std::unordered_map<Id, StoredPack, IdHash> stored;
  for (const auto& obj : be.List("data/"))
    if (auto id = IdFromName(obj.name)) stored[*id] = {obj.size, obj.mtime_ns};
  std::vector<repo::MarksObject> marks_objects = repo.LoadMarks();

  repo::Index& index = repo.index();
  std::unique_ptr<BlobMarks> marks;
  for (;;) {
    marks = std::make_unique<BlobMarks>(index.sorted_size());
    std::unordered_set<Id, IdHash> missing;
    MarkReachable(repo, snapshots, marks.get(), &missing, [&](uint64_t done, uint64_t total) {
      if (o.progress) o.progress("mark", done, total);
    });
    if (missing.empty()) break;
    // A snapshot needs blobs no indexed pack holds. They may be in a pack an
    // earlier prune marked (a backup that started before the marking used
    // them) or in an unindexed pack: put such packs back into the index.
    IndexFile put_back;
    for (const auto& [id, sp] : stored) {
      if (index.HasPack(id)) continue;
      auto blobs = repo.ReadPackHeader({Repository::ObjectName(ObjectType::kPack, id), sp.size, sp.mtime_ns}, id);
      if (!blobs) continue;
      bool needed = false;
      for (const auto& b : *blobs) needed |= missing.erase(b.id) > 0;
      if (needed) put_back.packs.push_back({id, std::move(*blobs)});
    }
    // Trees put back may reveal more missing blobs (their children, maybe
    // in other marked packs): go round again while packs are found.
    if (put_back.packs.empty())
      throw Error(ErrorCode::kCorrupt, "prune: " + std::to_string(missing.size()) +
                                           " blob(s) referenced by snapshots are in no pack (" + FirstIds(missing) +
                                           "); nothing was deleted; run 'bulwark check'");
    if (!o.dry_run) supersede.push_back(repo.SaveUnpacked(ObjectType::kIndex, put_back.Encode()));
    for (const auto& p : put_back.packs) index.AddPack(p.id, p.blobs);
    index.Finalize();
    st.packs_recovered += put_back.packs.size();
    log::Info("prune: put " + std::to_string(put_back.packs.size()) +
              " marked or unindexed pack(s) back into the index: snapshots reference their blobs");
  }

  // Per pack: bytes and blobs in use.
  const size_t n = index.sorted_size();
  const uint32_t npacks = static_cast<uint32_t>(index.pack_count());
  std::vector<uint64_t> used_bytes(npacks, 0);
  std::vector<uint32_t> used_blobs(npacks, 0);
  st.blobs = n;
  for (size_t i = 0; i < n; ++i) {
    if (!marks->Get(i)) continue;
    uint32_t pk = index.PackNumberAt(i);
    used_bytes[pk] += index.LengthAt(i);
    used_blobs[pk]++;
    st.blobs_used++;
  }

  // Plan.
  std::vector<uint8_t> state(npacks, kKeep);
  struct Candidate {
    uint32_t pack;
    uint64_t used, unused;
  };
  std::vector<Candidate> candidates;
  uint64_t total_used = 0, unused_in_partial = 0;
  for (uint32_t pk = 0; pk < npacks; ++pk) {
    Id id = index.PackById(pk);
    auto ps = index.pack_stats(pk);
    auto it = stored.find(id);
    if (it == stored.end()) {
      if (used_blobs[pk])
        throw Error(ErrorCode::kCorrupt, "prune: pack " + id.Short() + " is in the index but missing from " +
                                             be.Location() + ", and snapshots need " + std::to_string(used_blobs[pk]) +
                                             " of its blobs; nothing was deleted; run 'bulwark check'");
      state[pk] = kDropMissing;
      st.packs_missing_unused++;
      continue;
    }
    st.packs++;
    uint64_t unused = ps.listed_bytes > used_bytes[pk] ? ps.listed_bytes - used_bytes[pk] : 0;
    st.used_bytes += used_bytes[pk];
    st.unused_bytes += unused;
    if (used_blobs[pk] == 0) {
      state[pk] = kDelete;
      st.packs_unused++;
      st.bytes_unused_packs += it->second.size;
      continue;
    }
    total_used += used_bytes[pk];
    if (unused > 0) {
      candidates.push_back({pk, used_bytes[pk], unused});
      unused_in_partial += unused;
    }
  }
  // Most wasteful packs first, until the unused share is tolerable (restic's
  // --max-unused policy: unused <= max_unused / (1 - max_unused) * used).
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    return double(a.unused) / double(a.used + a.unused) > double(b.unused) / double(b.used + b.unused);
  });
  const double allowed = o.max_unused >= 1 ? std::numeric_limits<double>::infinity()
                                           : o.max_unused / (1 - o.max_unused) * double(total_used);
  uint64_t budget = o.max_repack_bytes;
  for (const auto& c : candidates) {
    if (double(unused_in_partial) <= allowed) break;
    uint64_t size = stored[index.PackById(c.pack)].size;
    if (size > budget) continue;
    budget -= size;
    state[c.pack] = kRepack;
    unused_in_partial -= c.unused;
    st.packs_repack++;
    st.bytes_repack += size;
    st.bytes_repack_unused += c.unused;
  }
  for (uint32_t pk = 0; pk < npacks; ++pk)
    if (state[pk] == kKeep) {
      st.packs_keep++;
      st.bytes_keep += stored[index.PackById(pk)].size;
    }

  // A pack is protected when the index keeps it: never deleted, whatever a
  // marks object says. Pack numbers >= npacks are packs this run wrote.
  auto indexed_and_kept = [&](const Id& id) {
    auto pk = index.PackNumber(id);
    return pk && (*pk >= npacks || state[*pk] == kKeep);
  };

  // Phase two: delete what was marked at least `grace` ago (storage clock),
  // and unindexed packs at least that old; with `execute` false only count
  // what would go (dry run).
  const bool object_lock = !repo.config().object_lock_mode.empty();
  auto sweep = [&](int64_t now, bool execute) {
    uint64_t to_delete = 0, deleted_so_far = 0;
    for (const auto& m : marks_objects)
      if (now - m.mtime_ns >= o.grace_ns) to_delete += m.packs.packs.size();
    // Returns false when the pack stays because Object Lock still retains it.
    auto remove_pack = [&](const Id& id) {
      auto it = stored.find(id);
      if (it == stored.end()) return true;
      std::string name = Repository::ObjectName(ObjectType::kPack, id);
      if (object_lock) {
        auto info = be.Stat(name);
        if (info && info->retain_until_ns > now) {
          st.packs_locked++;
          st.bytes_locked += it->second.size;
          log::Debug("prune: pack " + id.Short() + " is locked until " + repo::FormatTime(info->retain_until_ns));
          return false;
        }
      }
      if (execute) be.Remove(name);
      st.packs_deleted++;
      st.bytes_deleted += it->second.size;
      stored.erase(it);
      return true;
    };
    auto wait = [&](const Id& id) {
      if (auto it = stored.find(id); it != stored.end()) {
        st.packs_waiting++;
        st.bytes_waiting += it->second.size;
      }
    };
    std::unordered_set<Id, IdHash> in_marks;
    for (const auto& m : marks_objects) {
      bool due = now - m.mtime_ns >= o.grace_ns;
      bool all_gone = true;
      for (const auto& p : m.packs.packs) {
        in_marks.insert(p.id);
        if (indexed_and_kept(p.id)) continue;
        if (!due) {
          wait(p.id);
          continue;
        }
        all_gone &= remove_pack(p.id);
        if (o.progress && ++deleted_so_far % 64 == 0) o.progress("delete", deleted_so_far, to_delete);
      }
      if (execute && due && all_gone) {  // a locked pack keeps its marks object for a later run
        be.Remove(Repository::ObjectName(ObjectType::kMarks, m.id));
        st.marks_objects_removed++;
      }
    }
    std::vector<Id> orphans;
    for (const auto& [id, sp] : stored)
      if (!index.HasPack(id) && !in_marks.count(id)) orphans.push_back(id);
    for (const auto& id : orphans) {
      if (now - stored[id].mtime_ns >= o.grace_ns)
        remove_pack(id);
      else
        wait(id);
    }
  };

  // The Object Lock maintenance on the packs that stay (object_lock.h).
  auto extend_locks = [&](std::vector<Id> live, const std::vector<Id>& index_ids, bool dry_run) {
    if (!object_lock || !o.extend_locks) return;
    LockExtendOptions lo;
    lo.now_ns = o.storage_now_ns;
    lo.margin_ns = o.lock_margin_ns;
    lo.dry_run = dry_run;
    lo.progress = o.progress;
    st.locks = ExtendLocks(repo, snapshots, live, index_ids, lo);
    st.locks_extended = true;
  };
  auto packs_in_state = [&](std::initializer_list<uint8_t> states) {
    std::vector<Id> out;
    for (uint32_t pk = 0; pk < npacks; ++pk)
      if (std::find(states.begin(), states.end(), state[pk]) != states.end()) out.push_back(index.PackById(pk));
    return out;
  };

  if (o.dry_run) {
    sweep(o.storage_now_ns, /*execute=*/false);
    extend_locks(packs_in_state({kKeep, kRepack}), repo.index_ids(), /*dry_run=*/true);
    st.duration_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return st;
  }

  // Repack: copy the live units of the chosen packs into new packs.
  std::unique_ptr<repo::BlobSaver> saver;
  if (st.packs_repack > 0) {
    saver = std::make_unique<repo::BlobSaver>(&repo, o.compression >= 0 ? o.compression : repo.config().compression);
    saver->RecordWrittenPacks();
    std::unordered_map<uint32_t, std::vector<size_t>> live;
    for (size_t i = 0; i < n; ++i)
      if (marks->Get(i)) {
        uint32_t pk = index.PackNumberAt(i);
        if (state[pk] == kRepack) live[pk].push_back(i);
      }
    uint64_t done = 0;
    for (const auto& [pk, positions] : live) {
      Id pack = index.PackById(pk);
      std::string name = Repository::ObjectName(ObjectType::kPack, pack);
      Bytes data = WithContext("repacking pack " + pack.Short(), [&] { return be.Get(name); });
      for (size_t pos : positions) {
        repo::BlobLocation loc = index.At(pos);
        std::string what = "blob " + loc.blob.id.Short() + " in pack " + pack.Short();
        if (uint64_t(loc.blob.offset) + loc.blob.length > data.size())
          throw Error(ErrorCode::kCorrupt, "prune: " + what + " lies beyond the end of the pack; nothing was deleted");
        ByteSpan sealed(data.data() + loc.blob.offset, loc.blob.length);
        // Verify before copying: a damaged unit must not spread into new packs.
        WithContext("prune: repacking " + what, [&] {
          repo::OpenBlobView(repo.aead(), repo.ids(), loc.blob, sealed, what);
          return 0;
        });
        saver->SaveSealed(loc.blob, sealed);
      }
      if (o.progress) o.progress("repack", ++done, live.size());
    }
    saver->Flush();
    st.packs_written = saver->stats().packs_written;
    st.bytes_written = saver->stats().bytes_stored;
    for (const auto& id : saver->written_index_ids()) supersede.push_back(id);
  }

  // Phase one: record the packs to delete (they leave the index next).
  std::optional<repo::MarksObject> new_marks;
  {
    IndexFile mk;
    for (uint32_t pk = 0; pk < npacks; ++pk)
      if (state[pk] == kDelete || state[pk] == kRepack) mk.packs.push_back({index.PackById(pk), {}});
    if (!mk.packs.empty()) {
      repo::MarksObject m;
      m.id = repo.SaveUnpacked(ObjectType::kMarks, mk.Encode());
      auto info = be.Stat(Repository::ObjectName(ObjectType::kMarks, m.id));
      m.mtime_ns = info ? info->mtime_ns : o.storage_now_ns;
      m.packs = std::move(mk);
      new_marks = std::move(m);
    }
  }

  // The consolidated index: every kept pack and every new pack; its last
  // object supersedes all older index objects, which are removed after.
  // Superseded index objects: an object in effect lists them, so they go
  // without rewriting anything; Object Lock may retain some (they stay,
  // superseded, until a later prune).
  auto retained = [&](const std::string& name) {
    if (!object_lock) return false;
    auto info = be.Stat(name);
    return info && info->retain_until_ns > o.storage_now_ns;
  };
  // A new consolidated index must keep superseding the ones that stay.
  std::unordered_set<Id, IdHash> removed_superseded;
  for (const auto& id : repo.superseded_index_ids()) {
    std::string name = Repository::ObjectName(ObjectType::kIndex, id);
    if (retained(name)) {
      st.index_objects_locked++;
      continue;
    }
    be.Remove(name);
    removed_superseded.insert(id);
    st.index_objects_removed++;
  }
  supersede.erase(std::remove_if(supersede.begin(), supersede.end(),
                                 [&](const Id& id) { return removed_superseded.count(id) > 0; }),
                  supersede.end());
  // The consolidated index is written when packs change, or when it is
  // split into more objects than needed (backups add one each). Not for the
  // latter under Object Lock: the old objects would stay until their
  // retention ends, so consolidating would only add objects.
  const size_t consolidated_objects = std::max<size_t>(1, (n + kBlobsPerIndexObject - 1) / kBlobsPerIndexObject);
  bool changed = st.packs_repack || st.packs_unused || st.packs_missing_unused || st.packs_recovered;
  std::vector<Id> index_in_effect = repo.index_ids();
  if (changed || (!object_lock && repo.index_ids().size() > consolidated_objects)) {
    index_in_effect.clear();
    std::vector<uint32_t> count(npacks, 0);
    size_t kept_entries = 0;
    for (size_t i = 0; i < n; ++i) {
      uint32_t pk = index.PackNumberAt(i);
      if (state[pk] == kKeep) count[pk]++, kept_entries++;
    }
    std::vector<uint32_t> start(npacks + 1, 0);
    for (uint32_t pk = 0; pk < npacks; ++pk) start[pk + 1] = start[pk] + count[pk];
    std::vector<uint32_t> order(kept_entries);  // positions grouped by pack: 4 bytes per blob
    {
      std::vector<uint32_t> fill(start.begin(), start.end() - 1);
      for (size_t i = 0; i < n; ++i) {
        uint32_t pk = index.PackNumberAt(i);
        if (state[pk] == kKeep) order[fill[pk]++] = static_cast<uint32_t>(i);
      }
    }
    IndexFile cur;
    size_t cur_blobs = 0;
    auto add_pack = [&](const Id& id, std::vector<repo::PackedBlob> blobs) {
      if (cur_blobs > 0 && cur_blobs + blobs.size() > kBlobsPerIndexObject) {
        index_in_effect.push_back(repo.SaveUnpacked(ObjectType::kIndex, cur.Encode()));
        st.index_objects_written++;
        cur = IndexFile();
        cur_blobs = 0;
      }
      cur_blobs += blobs.size();
      cur.packs.push_back({id, std::move(blobs)});
    };
    for (uint32_t pk = 0; pk < npacks; ++pk) {
      if (count[pk] == 0) continue;
      std::vector<repo::PackedBlob> blobs;
      blobs.reserve(count[pk]);
      for (uint32_t j = start[pk]; j < start[pk + 1]; ++j) blobs.push_back(index.At(order[j]).blob);
      std::sort(blobs.begin(), blobs.end(), [](auto& a, auto& b) { return a.offset < b.offset; });
      add_pack(index.PackById(pk), std::move(blobs));
    }
    if (saver)
      for (const auto& [id, blobs] : saver->written_packs()) add_pack(id, blobs);
    cur.supersedes = supersede;
    index_in_effect.push_back(repo.SaveUnpacked(ObjectType::kIndex, cur.Encode()));
    st.index_objects_written++;
    const std::unordered_set<Id, IdHash> old_superseded(repo.superseded_index_ids().begin(),
                                                         repo.superseded_index_ids().end());
    for (const auto& id : supersede) {
      if (old_superseded.count(id)) continue;  // retained: counted above
      std::string name = Repository::ObjectName(ObjectType::kIndex, id);
      if (retained(name)) {
        st.index_objects_locked++;
        continue;
      }
      be.Remove(name);
      st.index_objects_removed++;
    }
  }

  int64_t now = o.storage_now_ns;
  if (new_marks) {
    now = std::max(now, new_marks->mtime_ns);
    marks_objects.push_back(*new_marks);
  }
  sweep(now, /*execute=*/true);
  {
    std::vector<Id> live = packs_in_state({kKeep});
    if (saver)
      for (const auto& [id, blobs] : saver->written_packs()) live.push_back(id);
    extend_locks(std::move(live), index_in_effect, /*dry_run=*/false);
  }
  st.duration_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return st;
}

}  // namespace bulwark::ops
