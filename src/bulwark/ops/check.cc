#include "bulwark/ops/check.h"

#include <algorithm>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "bulwark/base/error.h"
#include "bulwark/repo/pack.h"
#include "bulwark/repo/wal.h"

namespace bulwark::ops {

using repo::ObjectType;
using repo::Repository;

namespace {

struct WalObject {
  storage::ObjectInfo info;
  Id key;  // SHA-256 of the name: its entry in the verified-objects records and its subset bucket
};

// Every "wal/<source>/<file name>" object; other names under wal/ and
// objects too small to be a WAL object are reported.
std::vector<WalObject> ListWal(storage::Backend& backend, CheckResult* r) {
  std::vector<WalObject> out;
  for (auto& o : backend.List("wal/")) {
    std::string rest = o.name.substr(4);
    auto slash = rest.find('/');
    bool ok = slash != std::string::npos;
    if (ok) {
      try {
        repo::WalObjectName(rest.substr(0, slash), rest.substr(slash + 1));
      } catch (const Error&) {
        ok = false;
      }
    }
    if (!ok) {
      r->warnings.push_back(o.name + ": unexpected object name under wal/ (not wal/<source>/<WAL file name>)");
      continue;
    }
    if (o.size < repo::kWalPrefixSize + crypto::Aead::kOverhead) {
      r->errors.push_back("WAL object " + o.name + " is truncated (" + std::to_string(o.size) + " bytes)");
      continue;
    }
    Id key = crypto::Sha256(AsBytes(o.name));
    out.push_back({std::move(o), key});
  }
  std::sort(out.begin(), out.end(), [](const WalObject& a, const WalObject& b) { return a.key < b.key; });
  return out;
}

// The subset of `items` (sorted by their ids) that --read-data-subset and
// --max-age select.
template <typename T, typename IdOf>
void SelectForReading(std::vector<T>* items, IdOf id_of, const CheckOptions& options, uint64_t* skipped_recent) {
  if (options.subset_m > 0) {
    std::erase_if(*items, [&](const T& x) {
      const Id& p = id_of(x);
      uint32_t bucket = (uint32_t(p.b[0]) << 24 | uint32_t(p.b[1]) << 16 | uint32_t(p.b[2]) << 8 | p.b[3]) % options.subset_m;
      return bucket != options.subset_n - 1;
    });
  } else if (options.subset_percent > 0 && options.subset_percent < 100) {
    std::mt19937_64 rng(std::random_device{}());
    std::shuffle(items->begin(), items->end(), rng);
    size_t n = static_cast<size_t>(std::ceil(items->size() * options.subset_percent / 100.0));
    items->resize(std::min(items->size(), std::max<size_t>(n, items->empty() ? 0 : 1)));
  }
  if (options.verified && options.max_age_seconds > 0) {
    const auto& seen = options.verified->packs;
    size_t before = items->size();
    std::erase_if(*items, [&](const T& x) {
      auto it = seen.find(id_of(x));
      return !repo::IsDue(id_of(x), it == seen.end() ? std::nullopt : std::optional<int64_t>(it->second),
                          options.now_seconds, options.max_age_seconds);
    });
    *skipped_recent += before - items->size();
  }
}

}  // namespace

CheckResult Check(repo::Repository& repo, const CheckOptions& options) {
  CheckResult r;
  auto& backend = repo.backend();
  // 1. Index objects, one by one.
  std::unordered_map<Id, std::vector<repo::PackedBlob>, IdHash> expected;  // pack -> blobs per index
  repo::Index& index = repo.index();
  std::vector<std::pair<Id, repo::IndexFile>> files;
  std::unordered_set<Id, IdHash> superseded;
  for (const auto& o : backend.List("index/")) {
    std::string hex = o.name.substr(o.name.rfind('/') + 1);
    Bytes b;
    if (hex.size() != 64 || !FromHex(hex, &b)) {
      r.warnings.push_back(o.name + ": unexpected object name");
      continue;
    }
    try {
      Id id = Id::FromSpan(b);
      auto f = repo::IndexFile::Decode(repo.LoadUnpacked(ObjectType::kIndex, id), o.name);
      superseded.insert(f.supersedes.begin(), f.supersedes.end());
      files.emplace_back(id, std::move(f));
    } catch (const Error& e) {
      r.errors.push_back(std::string("index: ") + e.what());
    }
  }
  for (const auto& [id, f] : files) {
    if (superseded.count(id)) {
      r.warnings.push_back("index " + id.Short() + " is superseded by a newer index object (left by a prune that "
                           "stopped early; the next prune removes it)");
      continue;
    }
    for (const auto& p : f.packs) {
      index.AddPack(p.id, p.blobs);
      expected.emplace(p.id, p.blobs);
    }
    r.index_objects++;
  }
  files.clear();
  index.Finalize();
  r.blobs = index.blob_count();

  // 2. Packs present vs indexed.
  std::unordered_map<Id, uint64_t, IdHash> present;
  for (const auto& o : backend.List("data/")) {
    std::string hex = o.name.substr(o.name.rfind('/') + 1);
    Bytes b;
    if (hex.size() != 64 || !FromHex(hex, &b)) continue;
    present[Id::FromSpan(b)] = o.size;
  }
  r.packs = present.size();
  for (const auto& [pack, blobs] : expected) {
    auto it = present.find(pack);
    if (it == present.end()) {
      r.errors.push_back("pack " + pack.Hex() + " is listed in the index but missing (" + std::to_string(blobs.size()) + " blobs lost)");
      continue;
    }
    uint64_t end = 0;
    for (const auto& b : blobs) end = std::max<uint64_t>(end, uint64_t(b.offset) + b.length);
    if (it->second < end + repo::kPackTrailerSize + crypto::Aead::kOverhead)
      r.errors.push_back("pack " + pack.Hex() + " is truncated: " + std::to_string(it->second) + " bytes, index expects more than " + std::to_string(end));
  }
  std::unordered_set<Id, IdHash> marked;
  for (const auto& m : repo.LoadMarks())
    for (const auto& p : m.packs.packs) marked.insert(p.id);
  // WAL objects (repo/wal.h): well-formed names and plausible sizes here; read in step 4.
  std::vector<WalObject> wal = ListWal(backend, &r);
  r.wal_objects = wal.size();
  if (options.verified)
    std::erase_if(options.verified->packs, [&](const auto& e) {
      return !present.count(e.first) &&
             std::none_of(wal.begin(), wal.end(), [&](const WalObject& w) { return w.key == e.first; });
    });
  for (const auto& [pack, size] : present)
    if (!expected.count(pack))
      r.warnings.push_back("pack " + pack.Short() +
                           (marked.count(pack) ? " is marked for deletion by prune (deleted after the grace period)"
                                               : " is not referenced by any index (left by an interrupted backup; "
                                                 "prune will remove it)"));

  // 3. Snapshots and trees.
  std::vector<repo::Snapshot> snaps = repo.LoadSnapshots([&](const Error& e) { r.errors.push_back(std::string("snapshot: ") + e.what()); });
  r.snapshots = snaps.size();
  std::unordered_set<Id, IdHash> seen_trees;
  std::unordered_set<Id, IdHash> missing_reported;
  for (const auto& s : snaps) {
    std::vector<std::pair<Id, std::string>> stack{{s.tree, "/"}};
    while (!stack.empty()) {
      auto [tid, path] = stack.back();
      stack.pop_back();
      if (!seen_trees.insert(tid).second) continue;
      r.trees++;
      repo::Tree t;
      try {
        t = repo.LoadTree(tid);
      } catch (const Error& e) {
        r.errors.push_back("snapshot " + s.id.Short() + " " + path + ": tree " + tid.Short() + ": " + e.what());
        continue;
      }
      for (const auto& n : t.nodes) {
        std::string p = (path == "/" ? "/" : path + "/") + n.name;
        if (n.type == repo::NodeType::kDir) stack.emplace_back(n.subtree, p);
        for (const auto& id : n.content)
          if (!index.Has(id) && missing_reported.insert(id).second)
            r.errors.push_back("snapshot " + s.id.Short() + " " + p + ": data blob " + id.Short() + " is missing");
      }
    }
  }

  // 4. Read data.
  if (options.read_data) {
    std::vector<Id> packs;
    for (const auto& [pack, size] : present) packs.push_back(pack);
    std::sort(packs.begin(), packs.end());
    SelectForReading(&packs, [](const Id& p) -> const Id& { return p; }, options, &r.packs_skipped_recent);
    SelectForReading(&wal, [](const WalObject& w) -> const Id& { return w.key; }, options, &r.wal_skipped_recent);
    std::mutex mu;
    std::atomic<size_t> next{0};
    auto worker = [&] {
      for (size_t i; (i = next++) < packs.size();) {
        const Id& pack = packs[i];
        std::string name = Repository::ObjectName(ObjectType::kPack, pack);
        std::vector<std::string> errs;
        uint64_t blobs_ok = 0, bytes = 0;
        try {
          thread_local Bytes buf;
          ByteSpan data = backend.GetRangeInto(name, 0, present.at(pack), &buf);
          bytes = data.size();
          if (crypto::Sha256(data) != pack) {
            errs.push_back("pack " + pack.Hex() + ": content does not match its name (damaged)");
          }
          std::vector<repo::PackedBlob> blobs;
          try {
            blobs = repo::ParsePack(repo.aead(), data, "pack " + pack.Short());
          } catch (const Error& e) {
            errs.push_back(e.what());
            // Fall back to the index's view of the blobs to report which are damaged.
            auto it = expected.find(pack);
            if (it != expected.end()) blobs = it->second;
          }
          auto it = expected.find(pack);
          if (it != expected.end() && errs.empty()) {
            std::set<std::pair<Id, uint32_t>> a, b;
            for (const auto& x : blobs) a.insert({x.id, x.offset});
            for (const auto& x : it->second) b.insert({x.id, x.offset});
            if (a != b) errs.push_back("pack " + pack.Short() + ": header does not match the index");
          }
          for (const auto& blob : blobs) {
            if (uint64_t(blob.offset) + blob.length > data.size()) {
              errs.push_back("blob " + blob.id.Short() + " in pack " + pack.Short() + ": beyond the end of the pack");
              continue;
            }
            try {
              repo::OpenBlobView(repo.aead(), repo.ids(), blob, ByteSpan(data.data() + blob.offset, blob.length),
                             "blob " + blob.id.Short() + " in pack " + pack.Short());
              blobs_ok++;
            } catch (const Error& e) {
              errs.push_back(e.what());
            }
          }
        } catch (const Error& e) {
          errs.push_back(std::string("pack ") + pack.Short() + ": " + e.what());
        }
        std::lock_guard<std::mutex> lock(mu);
        if (options.verified) {
          if (errs.empty()) options.verified->packs[pack] = options.now_seconds;
          else options.verified->packs.erase(pack);
        }
        r.errors.insert(r.errors.end(), errs.begin(), errs.end());
        r.packs_read++;
        r.blobs_read += blobs_ok;
        r.bytes_read += bytes;
        if (options.packs_done) (*options.packs_done)++;
      }
    };
    int n = options.threads > 0 ? options.threads : static_cast<int>(std::max(2u, std::thread::hardware_concurrency()));
    std::vector<std::thread> threads;
    for (int i = 1; i < n; ++i) threads.emplace_back(worker);
    worker();
    for (auto& t : threads) t.join();

    // WAL objects: authenticate, decompress, compare size and SHA-256 (repo::OpenWal).
    std::atomic<size_t> next_wal{0};
    auto wal_worker = [&] {
      for (size_t i; (i = next_wal++) < wal.size();) {
        const WalObject& w = wal[i];
        std::optional<std::string> err;
        uint64_t bytes = 0;
        try {
          Bytes sealed = backend.Get(w.info.name);
          bytes = sealed.size();
          repo::OpenWal(repo.aead(), w.info.name, sealed, "WAL object " + w.info.name);
        } catch (const Error& e) {
          err = e.code() == ErrorCode::kCorrupt ? std::string(e.what()) : "WAL object " + w.info.name + ": " + e.what();
        }
        std::lock_guard<std::mutex> lock(mu);
        if (options.verified) {
          if (!err) options.verified->packs[w.key] = options.now_seconds;
          else options.verified->packs.erase(w.key);
        }
        if (err) r.errors.push_back(*err);
        else r.wal_read++;
        r.bytes_read += bytes;
      }
    };
    threads.clear();
    for (int i = 1; i < n && static_cast<size_t>(i) < wal.size(); ++i) threads.emplace_back(wal_worker);
    wal_worker();
    for (auto& t : threads) t.join();
  }
  return r;
}

}  // namespace bulwark::ops
