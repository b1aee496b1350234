// Fuzzes the PostgreSQL WAL name and history decoders
// (source/postgres/wal_names.h): ParseHistory must return or throw
// Error(kCorrupt), and what it returns is ordered; ParseWalFileName and
// ParseLsn must agree with their formatters (a parsed segment name formats
// back to itself; a parsed LSN round-trips).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "bulwark/base/error.h"
#include "bulwark/source/postgres/wal_names.h"

namespace pg = bulwark::source::postgres;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  try {
    auto h = pg::ParseHistory(in, "fuzz.history");
    for (size_t i = 1; i < h.size(); ++i)
      if (h[i].parent <= h[i - 1].parent || h[i].switch_lsn < h[i - 1].switch_lsn) std::abort();
  } catch (const bulwark::Error& e) {
    if (e.code() != bulwark::ErrorCode::kCorrupt) std::abort();
  }
  for (uint64_t seg_size : {pg::kDefaultWalSegmentSize, uint64_t{1} << 20, uint64_t{1} << 30}) {
    if (auto f = pg::ParseWalFileName(in, seg_size)) {
      if (f->timeline == 0) std::abort();
      if (f->kind == pg::WalFileKind::kSegment && pg::SegmentFileName(f->timeline, f->segno, seg_size) != in)
        std::abort();
      if (f->kind == pg::WalFileKind::kHistory && pg::HistoryFileName(f->timeline) != in) std::abort();
    }
  }
  if (auto lsn = pg::ParseLsn(in)) {
    if (pg::ParseLsn(pg::FormatLsn(*lsn)) != lsn) std::abort();
  }
  return 0;
}
