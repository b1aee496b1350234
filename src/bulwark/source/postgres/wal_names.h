// PostgreSQL WAL arithmetic: LSNs, segment file names, timeline history
// files, and what an archive covers (ranges, gaps, what a set of base
// backups still needs). Pure functions; thread-safe.
//
// Formats (PostgreSQL 15 source, src/include/access/xlog_internal.h):
// - LSN "X/Y": two hex numbers, the high and low 32 bits of a 64-bit
//   byte position in the WAL stream.
// - Segment file "TTTTTTTTXXXXXXXXYYYYYYYY" (24 upper-case hex digits):
//   timeline, then segment number segno split as segno / S and segno % S
//   where S = 0x100000000 / wal_segment_size (256 for 16 MiB segments).
//   The segment of an LSN is lsn / wal_segment_size.
// - "TTTTTTTT.history": one line per ancestor timeline "parentTLI <TAB>
//   switchpoint-LSN <TAB> reason" (the point where that timeline ended).
// - "<segment>.XXXXXXXX.backup": a base backup's history file (start offset).
// - "<segment>.partial": the last, incomplete segment of a timeline that
//   was promoted away from.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bulwark::source::postgres {

inline constexpr uint64_t kDefaultWalSegmentSize = 16ull << 20;  // bytes

// A WAL location (log sequence number): a 64-bit byte position.
using Lsn = uint64_t;
// Parses "16/B374D848" (1..8 hex digits each side, either case); nullopt
// if malformed.
std::optional<Lsn> ParseLsn(std::string_view s);
// 0x16B374D848 -> "16/B374D848" (upper case, no leading zeros, as PostgreSQL prints).
std::string FormatLsn(Lsn lsn);

enum class WalFileKind { kSegment, kHistory, kBackup, kPartial };

struct WalFile {
  WalFileKind kind = WalFileKind::kSegment;
  uint32_t timeline = 0;
  uint64_t segno = 0;  // segments, backup files and partials; 0 for history files
  bool operator==(const WalFile&) const = default;
};

// Classifies a file name from pg_wal / the archive; nullopt for anything
// else (so callers can refuse it). Timeline 0 is invalid. `segment_size`
// (a power of two, 1 MiB..1 GiB) bounds the low part of segment names.
std::optional<WalFile> ParseWalFileName(std::string_view name, uint64_t segment_size = kDefaultWalSegmentSize);
// The segment file name of (timeline, segno).
std::string SegmentFileName(uint32_t timeline, uint64_t segno, uint64_t segment_size = kDefaultWalSegmentSize);
// "00000002.history".
std::string HistoryFileName(uint32_t timeline);
inline uint64_t SegmentOf(uint64_t lsn, uint64_t segment_size = kDefaultWalSegmentSize) { return lsn / segment_size; }

// One line of a timeline history file: timeline `parent` ended at
// `switch_lsn` (the child timeline starts there).
struct TimelineSwitch {
  uint32_t parent = 0;
  uint64_t switch_lsn = 0;
  bool operator==(const TimelineSwitch&) const = default;
};
// Parses a history file's content (comments '#' and blank lines skipped).
// Throws Error(kCorrupt) naming `what` and the line on malformed input.
std::vector<TimelineSwitch> ParseHistory(std::string_view content, std::string_view what);

// The segments of one timeline in an archive, as contiguous runs.
struct SegmentRun {
  uint64_t first = 0, last = 0;  // segno, inclusive
};
struct TimelineCoverage {
  uint32_t timeline = 0;
  std::vector<SegmentRun> runs;  // sorted; more than one = gaps between them
};
// Groups the segment files of `names` (others are ignored) by timeline.
std::vector<TimelineCoverage> Coverage(const std::vector<std::string>& names,
                                       uint64_t segment_size = kDefaultWalSegmentSize);

// A base backup as WAL sees it: it needs every segment from its start
// segment up to its stop segment, on its timeline, to become consistent.
struct BaseBackupWal {
  uint32_t timeline = 0;
  uint64_t start_lsn = 0, stop_lsn = 0;
};

// Does the archive hold every segment from `b`'s start to its stop segment
// (on b.timeline)? `present` = segment names (others ignored).
bool Consistent(const BaseBackupWal& b, const std::vector<std::string>& present,
                uint64_t segment_size = kDefaultWalSegmentSize);

// WAL expiry: the archive files no remaining base backup needs. A base
// backup needs every segment from its start segment on, on its own timeline
// and on every later one (recovery may follow any of them), so a file is
// kept when its segno >= the smallest start segment of `kept` (segments,
// partials and backup files alike). History files are always kept (tiny,
// and recovery reads them for every timeline). With no kept base backups,
// nothing is expired (the archive may be all there is). Returns the names to
// delete, sorted.
std::vector<std::string> ExpirableWal(const std::vector<std::string>& names, const std::vector<BaseBackupWal>& kept,
                                      uint64_t segment_size = kDefaultWalSegmentSize);

}  // namespace bulwark::source::postgres
