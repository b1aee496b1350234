#include "bulwark/ops/copy.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "bulwark/base/error.h"
#include "bulwark/repo/blob_saver.h"

namespace bulwark::ops {

using repo::BlobType;
using repo::Repository;
using repo::Snapshot;

repo::CopiedFrom OriginOf(const Snapshot& s, const Id& repository) {
  if (s.copied_from) return *s.copied_from;
  return {repository, s.id};
}

namespace {

struct OriginLess {
  bool operator()(const repo::CopiedFrom& a, const repo::CopiedFrom& b) const {
    return std::tie(a.repository, a.snapshot) < std::tie(b.repository, b.snapshot);
  }
};

// Walks one run's snapshots; remembers every tree (and data blob) it handled,
// so a blob shared by many snapshots is read at most once per run.
class Copier {
 public:
  Copier(Repository& src, Repository& dst, const CopyOptions& o, CopyResult* r)
      : src_(src), dst_(dst), opts_(o), r_(r), shared_(src.master_key().id == dst.master_key().id) {
    r_->shared_id_key = shared_;
    r_->exact = shared_ || !o.dry_run;
    if (!o.dry_run) saver_.emplace(&dst_, o.compression.value_or(dst_.config().compression));
  }

  // Copies snapshot `s` (blobs, then the snapshot object); fills `out`.
  void CopySnapshot(const Snapshot& s, CopiedSnapshot* out) {
    uint64_t blobs0 = r_->blobs_copied, bytes0 = r_->bytes_copied;
    snapshot_ = s.id.Short();
    Id root = CopyTree(s.tree, "/");
    out->blobs = r_->blobs_copied - blobs0;
    out->bytes = r_->bytes_copied - bytes0;
    if (!saver_) return;  // dry run
    saver_->Flush();  // packs and index objects are durable before the snapshot
    Snapshot copy = s;
    copy.id = Id{};
    copy.parent.reset();  // the parent names a snapshot of the source repository
    copy.tree = root;
    copy.copied_from = OriginOf(s, src_.config().id);
    out->destination = dst_.SaveSnapshot(copy);
  }

  uint64_t bytes_stored() const { return saver_ ? saver_->stats().bytes_stored.load() : 0; }

 private:
  // Returns the destination id of source tree `id` at snapshot path `path`.
  Id CopyTree(const Id& id, const std::string& path) {
    if (auto it = trees_.find(id); it != trees_.end()) return it->second;
    Bytes raw = Read(id, path, /*data=*/false);
    repo::Tree tree = WithContext(Where(path), [&] { return repo::Tree::Decode(raw, "tree " + id.Short()); });
    for (auto& n : tree.nodes) {
      std::string p = (path == "/" ? "/" : path + "/") + n.name;
      for (auto& c : n.content) c = CopyData(c, p);
      if (n.type == repo::NodeType::kDir) n.subtree = CopyTree(n.subtree, p);
    }
    Id out = id;
    if (shared_) {
      if (saver_) Store(BlobType::kTree, raw, id);  // ids agree: the tree is stored verbatim
      else if (!dst_.index().Has(id)) Count(raw.size());
    } else if (saver_) {
      Bytes enc = tree.Encode();
      out = dst_.ids().Mac(enc);
      Store(BlobType::kTree, enc, out);
    } else {
      Count(raw.size());  // dry run with different keys: the rewritten tree's id is unknown
    }
    trees_.emplace(id, out);
    return out;
  }

  // Returns the destination id of source data blob `id` (of the file at `path`).
  Id CopyData(const Id& id, const std::string& path) {
    if (shared_) {
      if (!data_seen_.insert(id).second || dst_.index().Has(id)) return id;  // never read
      if (!saver_) {
        Count(RawLength(id));
        return id;
      }
      Bytes plain = Read(id, path, true);
      Store(BlobType::kData, plain, id);
      return id;
    }
    if (auto it = data_map_.find(id); it != data_map_.end()) return it->second;
    if (!saver_) {
      Count(RawLength(id));
      data_map_.emplace(id, id);
      return id;
    }
    Bytes plain = Read(id, path, true);
    Id out = dst_.ids().Mac(plain);
    Store(BlobType::kData, plain, out);
    data_map_.emplace(id, out);
    return out;
  }

  // Reads and verifies one source blob; errors name the snapshot and path.
  Bytes Read(const Id& id, const std::string& path, bool data) {
    Bytes b = WithContext(Where(path), [&] { return src_.LoadBlob(id); });
    if (data) {
      r_->blobs_read++;
      r_->bytes_read += b.size();
      if (opts_.progress) opts_.progress->bytes_read += b.size();
    }
    return b;
  }

  // Plaintext length of a source blob, from the index (dry run: nothing is read).
  uint64_t RawLength(const Id& id) const {
    auto loc = src_.index().Find(id);
    return loc ? loc->blob.raw_length : 0;
  }

  void Store(BlobType type, ByteSpan plain, const Id& id) {
    if (saver_->Save(type, plain, id)) Count(plain.size());
  }

  void Count(uint64_t bytes) {
    r_->blobs_copied++;
    r_->bytes_copied += bytes;
    if (opts_.progress) {
      opts_.progress->blobs_copied++;
      opts_.progress->bytes_copied += bytes;
    }
  }

  std::string Where(const std::string& path) const {
    return "copying snapshot " + snapshot_ + " from " + src_.backend().Location() + ": " + path;
  }

  Repository& src_;
  Repository& dst_;
  const CopyOptions& opts_;
  CopyResult* r_;
  const bool shared_;
  std::optional<repo::BlobSaver> saver_;  // absent in a dry run
  std::string snapshot_;                 // short id of the snapshot being copied (messages)
  std::unordered_map<Id, Id, IdHash> trees_;     // source tree -> destination tree (visited)
  std::unordered_map<Id, Id, IdHash> data_map_;  // different keys: source data blob -> destination id
  std::unordered_set<Id, IdHash> data_seen_;     // shared key: data blobs handled this run
};

std::vector<Snapshot> SelectSnapshots(Repository& src, const CopyOptions& o) {
  auto warn = [&](const Error& e) {
    if (!o.on_warning) throw e;
    o.on_warning(std::string("source snapshot skipped: ") + e.what());
  };
  std::vector<Snapshot> out;
  if (o.snapshots.empty()) {
    for (auto& s : src.LoadSnapshots(warn))
      if (o.filter.Matches(s)) out.push_back(std::move(s));
    return out;
  }
  std::set<Id> seen;
  for (const auto& spec : o.snapshots) {
    Snapshot s = src.ResolveSnapshot(spec, o.filter);
    if (seen.insert(s.id).second) out.push_back(std::move(s));
  }
  std::sort(out.begin(), out.end(), [](const Snapshot& a, const Snapshot& b) {
    return a.time_ns != b.time_ns ? a.time_ns < b.time_ns : a.id < b.id;
  });
  return out;
}

}  // namespace

CopyResult Copy(Repository& source, Repository& destination, const CopyOptions& options) {
  if (source.config().id == destination.config().id)
    throw Error(ErrorCode::kInvalidArgument, "source " + source.backend().Location() + " and destination " +
                                                 destination.backend().Location() + " are the same repository (id " +
                                                 source.config().id.Short() + ")");
  std::vector<Snapshot> selected = SelectSnapshots(source, options);
  std::map<repo::CopiedFrom, Id, OriginLess> present;  // origin -> destination snapshot
  for (const auto& s : destination.LoadSnapshots([&](const Error& e) {
         if (!options.on_warning) throw e;
         options.on_warning(std::string("destination snapshot ignored: ") + e.what());
       }))
    present.emplace(OriginOf(s, destination.config().id), s.id);

  CopyResult r;
  if (options.progress) options.progress->snapshots_total = selected.size();
  Copier copier(source, destination, options, &r);
  for (const auto& s : selected) {
    CopiedSnapshot c;
    c.source = s;
    repo::CopiedFrom origin = OriginOf(s, source.config().id);
    if (auto it = present.find(origin); it != present.end()) {
      c.skipped = true;
      c.existing = it->second;
      r.snapshots_skipped++;
    } else {
      copier.CopySnapshot(s, &c);
      present.emplace(origin, c.destination);
      r.snapshots_copied++;
    }
    if (options.progress) options.progress->snapshots_done++;
    if (options.on_snapshot) options.on_snapshot(c);
    r.snapshots.push_back(std::move(c));
  }
  r.bytes_stored = copier.bytes_stored();
  return r;
}

}  // namespace bulwark::ops
