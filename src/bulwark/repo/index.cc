#include "bulwark/repo/index.h"

#include <algorithm>
#include <mutex>
#include <unordered_set>

#include "bulwark/base/error.h"

namespace bulwark::repo {

Bytes IndexFile::Encode() const {
  Bytes out;
  Writer w(&out);
  w.Varint(packs.size());
  for (const auto& p : packs) {
    w.Raw(p.id);
    w.Varint(p.blobs.size());
    for (const auto& b : p.blobs) {
      w.U8(static_cast<uint8_t>(b.type));
      w.U8(b.compressed ? 1 : 0);
      w.Varint(b.offset);
      w.Varint(b.length);
      w.Varint(b.raw_length);
      w.Raw(b.id);
    }
  }
  w.Varint(supersedes.size());
  for (const auto& s : supersedes) w.Raw(s);
  return out;
}

IndexFile IndexFile::Decode(ByteSpan data, std::string_view what) {
  IndexFile f;
  Reader r(data, what);
  uint64_t np = r.Varint();
  if (np > data.size() / 33) r.Fail("pack count out of range");
  f.packs.reserve(np);
  std::unordered_set<Id, IdHash> seen;
  for (uint64_t i = 0; i < np; ++i) {
    IndexFile::Pack p;
    p.id = r.ReadId();
    // Index::AddPack keeps a pack's first listing (another index object may
    // list it again, identically); two listings in one object are malformed.
    if (!seen.insert(p.id).second) r.Fail("pack listed twice");
    uint64_t nb = r.Varint();
    if (nb > r.remaining() / 37) r.Fail("blob count out of range");
    p.blobs.reserve(nb);
    for (uint64_t j = 0; j < nb; ++j) {
      PackedBlob b;
      ReadTypeAndFlags(r, &b);
      uint64_t off = r.Varint(), len = r.Varint(), raw = r.Varint();
      if (off > UINT32_MAX || len > UINT32_MAX || raw > (1u << 31) || off + len > UINT32_MAX)
        r.Fail("blob location out of range");
      b.offset = static_cast<uint32_t>(off);
      b.length = static_cast<uint32_t>(len);
      b.raw_length = static_cast<uint32_t>(raw);
      b.id = r.ReadId();
      p.blobs.push_back(b);
    }
    f.packs.push_back(std::move(p));
  }
  uint64_t ns = r.Varint();
  if (ns > r.remaining() / 32) r.Fail("supersedes count out of range");
  for (uint64_t i = 0; i < ns; ++i) f.supersedes.push_back(r.ReadId());
  if (!r.done()) r.Fail("trailing bytes");
  return f;
}

Index::Entry Index::MakeEntry(uint32_t pack_no, const PackedBlob& b) const {
  Entry e;
  e.id = b.id;
  e.pack_flags = pack_no | (b.compressed ? (1u << 28) : 0) | (uint32_t(static_cast<uint8_t>(b.type) & 3) << 29);
  e.offset = b.offset;
  e.length = b.length;
  e.raw_length = b.raw_length;
  return e;
}

BlobLocation Index::ToLocation(const Entry& e) const {
  BlobLocation loc;
  loc.pack = packs_[e.pack_flags & ((1u << 28) - 1)];
  loc.blob.id = e.id;
  loc.blob.compressed = e.pack_flags & (1u << 28);
  loc.blob.type = static_cast<BlobType>((e.pack_flags >> 29) & 3);
  loc.blob.offset = e.offset;
  loc.blob.length = e.length;
  loc.blob.raw_length = e.raw_length;
  return loc;
}

// Registers a new pack (mu_ held exclusively) and stores its entries with
// `put`; returns false if the pack is already known (the same pack listed by
// two index objects: the first listing counts).
template <typename Put>
bool Index::RegisterLocked(const Id& pack, const std::vector<PackedBlob>& blobs, Put&& put) {
  if (pack_numbers_.count(pack)) return false;
  if (packs_.size() >= (1u << 28)) throw Error(ErrorCode::kUnsupported, "index: too many packs");
  uint32_t no = static_cast<uint32_t>(packs_.size());
  packs_.push_back(pack);
  pack_numbers_[pack] = no;
  PackStats st;
  for (const auto& b : blobs) {
    put(MakeEntry(no, b));
    st.listed_bytes += b.length;
    st.listed_blobs++;
  }
  pack_stats_.push_back(st);
  return true;
}

void Index::AddPack(const Id& pack, const std::vector<PackedBlob>& blobs) {
  std::unique_lock lock(mu_);
  RegisterLocked(pack, blobs, [this](const Entry& e) { pending_.emplace(e.id, e); });
}

void Index::AppendPack(const Id& pack, const std::vector<PackedBlob>& blobs) {
  std::unique_lock lock(mu_);
  RegisterLocked(pack, blobs, [this](const Entry& e) { main_.push_back(e); });
}

void Index::FinishLoad() {
  std::unique_lock lock(mu_);
  const uint32_t mask = (1u << 28) - 1;
  std::sort(main_.begin(), main_.end(), [mask](const Entry& a, const Entry& b) {
    if (a.id != b.id) return a.id < b.id;
    return (a.pack_flags & mask) < (b.pack_flags & mask);
  });
  main_.erase(std::unique(main_.begin(), main_.end(), [](const Entry& a, const Entry& b) { return a.id == b.id; }),
              main_.end());
  main_.shrink_to_fit();
}

void Index::Clear() {
  std::unique_lock lock(mu_);
  packs_.clear();
  pack_stats_.clear();
  pack_numbers_.clear();
  std::vector<Entry>().swap(main_);
  pending_.clear();
}

size_t Index::sorted_size() const {
  std::shared_lock lock(mu_);
  return main_.size();
}

std::optional<size_t> Index::Position(const Id& blob) const {
  std::shared_lock lock(mu_);
  auto it = std::lower_bound(main_.begin(), main_.end(), blob, [](const Entry& e, const Id& id) { return e.id < id; });
  if (it != main_.end() && it->id == blob) return static_cast<size_t>(it - main_.begin());
  return std::nullopt;
}

BlobLocation Index::At(size_t pos) const {
  std::shared_lock lock(mu_);
  return ToLocation(main_.at(pos));
}

uint32_t Index::PackNumberAt(size_t pos) const {
  std::shared_lock lock(mu_);
  return main_.at(pos).pack_flags & ((1u << 28) - 1);
}

uint32_t Index::LengthAt(size_t pos) const {
  std::shared_lock lock(mu_);
  return main_.at(pos).length;
}

BlobType Index::TypeAt(size_t pos) const {
  std::shared_lock lock(mu_);
  return static_cast<BlobType>((main_.at(pos).pack_flags >> 29) & 3);
}

Id Index::PackById(uint32_t pack_number) const {
  std::shared_lock lock(mu_);
  return packs_.at(pack_number);
}

std::optional<uint32_t> Index::PackNumber(const Id& pack) const {
  std::shared_lock lock(mu_);
  auto it = pack_numbers_.find(pack);
  if (it == pack_numbers_.end()) return std::nullopt;
  return it->second;
}

Index::PackStats Index::pack_stats(uint32_t pack_number) const {
  std::shared_lock lock(mu_);
  return pack_stats_.at(pack_number);
}

std::optional<BlobLocation> Index::Find(const Id& blob) const {
  std::shared_lock lock(mu_);
  auto it = std::lower_bound(main_.begin(), main_.end(), blob, [](const Entry& e, const Id& id) { return e.id < id; });
  if (it != main_.end() && it->id == blob) return ToLocation(*it);
  auto p = pending_.find(blob);
  if (p != pending_.end()) return ToLocation(p->second);
  return std::nullopt;
}

void Index::Finalize() {
  std::unique_lock lock(mu_);
  if (pending_.empty()) return;
  std::vector<Entry> add;
  add.reserve(pending_.size());
  for (auto& [id, e] : pending_) add.push_back(e);
  pending_.clear();
  std::sort(add.begin(), add.end(), [](const Entry& a, const Entry& b) { return a.id < b.id; });
  std::vector<Entry> merged;
  merged.reserve(main_.size() + add.size());
  std::merge(main_.begin(), main_.end(), add.begin(), add.end(), std::back_inserter(merged),
             [](const Entry& a, const Entry& b) { return a.id < b.id; });
  merged.erase(std::unique(merged.begin(), merged.end(), [](const Entry& a, const Entry& b) { return a.id == b.id; }),
               merged.end());
  merged.shrink_to_fit();
  main_.swap(merged);
}

size_t Index::blob_count() const {
  std::shared_lock lock(mu_);
  return main_.size() + pending_.size();
}

size_t Index::pack_count() const {
  std::shared_lock lock(mu_);
  return packs_.size();
}

std::vector<Id> Index::Packs() const {
  std::shared_lock lock(mu_);
  return packs_;
}

bool Index::HasPack(const Id& pack) const {
  std::shared_lock lock(mu_);
  return pack_numbers_.count(pack) > 0;
}

void Index::ForEach(const std::function<void(const Id&, const PackedBlob&)>& fn) const {
  std::shared_lock lock(mu_);
  for (const auto& e : main_) {
    auto loc = ToLocation(e);
    fn(loc.pack, loc.blob);
  }
  for (const auto& [id, e] : pending_) {
    auto loc = ToLocation(e);
    fn(loc.pack, loc.blob);
  }
}

}  // namespace bulwark::repo
