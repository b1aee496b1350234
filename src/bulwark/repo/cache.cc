#include "bulwark/repo/cache.h"

#include <cstring>
#include <limits>

#include "bulwark/base/error.h"
#include "bulwark/crypto/crypto.h"
#include "bulwark/storage/local.h"

namespace bulwark::repo {

namespace {
constexpr std::string_view kMagic = "BWVP";
constexpr uint8_t kVersion = 1;

bool Set(const char* v) { return v && *v; }
}  // namespace

std::string CacheBaseDir(const char* bulwark_cache_dir, const char* xdg_cache_home, const char* home) {
  if (Set(bulwark_cache_dir)) return bulwark_cache_dir;
  if (Set(xdg_cache_home)) return std::string(xdg_cache_home) + "/bulwark";
  if (Set(home)) return std::string(home) + "/.cache/bulwark";
  return "";
}

Bytes VerifiedPacks::Encode() const {
  Bytes out;
  Writer w(&out);
  w.Raw(AsBytes(kMagic));
  w.U8(kVersion);
  w.Raw(repository);
  w.Varint(packs.size());
  for (const auto& [id, seconds] : packs) {
    w.Raw(id);
    w.Varint(static_cast<uint64_t>(std::max<int64_t>(seconds, 0)));
  }
  w.Raw(crypto::Sha256(out));
  return out;
}

VerifiedPacks VerifiedPacks::Decode(ByteSpan data, std::string_view what) {
  constexpr size_t kMin = kMagic.size() + 1 + Id::kSize + 1 + Id::kSize;
  if (data.size() < kMin) throw Error(ErrorCode::kCorrupt, std::string(what) + ": too short to be a cache file");
  ByteSpan body = data.first(data.size() - Id::kSize);
  if (crypto::Sha256(body) != Id::FromSpan(data.last(Id::kSize)))
    throw Error(ErrorCode::kCorrupt, std::string(what) + ": checksum mismatch (damaged or truncated)");
  Reader r(body, what);
  if (AsString(r.Raw(kMagic.size())) != kMagic) r.Fail("not a verified-packs cache file (bad magic)");
  if (r.U8() != kVersion) r.Fail("unknown version");
  VerifiedPacks v;
  v.repository = r.ReadId();
  uint64_t n = r.Varint();
  if (n > r.remaining() / (Id::kSize + 1)) r.Fail("entry count larger than the file");
  std::optional<Id> prev;
  for (uint64_t i = 0; i < n; ++i) {
    Id id = r.ReadId();
    if (prev && !(*prev < id)) r.Fail("pack ids not strictly ascending");
    uint64_t seconds = r.Varint();
    if (seconds > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) r.Fail("time out of range");
    v.packs.emplace_hint(v.packs.end(), id, static_cast<int64_t>(seconds));
    prev = id;
  }
  if (!r.done()) r.Fail("trailing bytes");
  return v;
}

VerifiedPacks LoadVerifiedPacks(const std::string& dir, const Id& repository, std::string* warning) {
  VerifiedPacks empty;
  empty.repository = repository;
  std::string path = dir + "/" + std::string(kVerifiedPacksFile);
  try {
    auto backend = storage::NewLocalBackend(dir);
    if (!backend->Stat(std::string(kVerifiedPacksFile))) return empty;
    VerifiedPacks v = VerifiedPacks::Decode(backend->Get(std::string(kVerifiedPacksFile)), path);
    if (v.repository != repository)
      throw Error(ErrorCode::kCorrupt, path + ": belongs to repository " + v.repository.Short() + ", not " +
                                           repository.Short());
    return v;
  } catch (const Error& e) {
    if (warning) *warning = std::string("ignoring the cache of verified packs: ") + e.what();
    return empty;
  }
}

void SaveVerifiedPacks(const std::string& dir, const VerifiedPacks& v) {
  storage::NewLocalBackend(dir)->Put(std::string(kVerifiedPacksFile), v.Encode());
}

namespace {
// u scaled to 53 bits: the top 53 bits of the first 8 bytes (LE) of
// SHA-256(pack id || u64 LE verified_at).
uint64_t Spread53(const Id& pack, int64_t verified_at) {
  uint8_t in[Id::kSize + 8];
  std::memcpy(in, pack.b.data(), Id::kSize);
  for (int i = 0; i < 8; ++i) in[Id::kSize + i] = static_cast<uint8_t>(static_cast<uint64_t>(verified_at) >> (8 * i));
  Id h = crypto::Sha256(ByteSpan(in, sizeof in));
  uint64_t x = 0;
  for (int i = 7; i >= 0; --i) x = x << 8 | h.b[i];
  return x >> 11;
}
}  // namespace

double SpreadOf(const Id& pack, int64_t verified_at) {
  return static_cast<double>(Spread53(pack, verified_at)) / static_cast<double>(uint64_t(1) << 53);
}

int64_t ReverifyAfter(const Id& pack, int64_t verified_at, int64_t max_age_seconds) {
  if (max_age_seconds <= 0) return 0;
  // Integer arithmetic: exact and free of overflow for any int64 maximum age.
  int64_t half = max_age_seconds / 2, rest = max_age_seconds - half;
  return half + static_cast<int64_t>((static_cast<unsigned __int128>(rest) * Spread53(pack, verified_at)) >> 53);
}

bool IsDue(const Id& pack, std::optional<int64_t> last, int64_t now, int64_t max_age_seconds) {
  if (!last || *last > now) return true;
  // now >= *last: the difference always fits in a u64 (no signed overflow).
  uint64_t age = static_cast<uint64_t>(now) - static_cast<uint64_t>(*last);
  return age >= static_cast<uint64_t>(ReverifyAfter(pack, *last, max_age_seconds));
}

}  // namespace bulwark::repo
