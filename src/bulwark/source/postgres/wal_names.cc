#include "bulwark/source/postgres/wal_names.h"

#include <algorithm>
#include <cstdio>

#include "bulwark/base/error.h"
#include "bulwark/repo/wal.h"

namespace bulwark::source::postgres {

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Parses 1..max_digits hex digits (any case); nullopt otherwise.
std::optional<uint64_t> Hex(std::string_view s, size_t max_digits) {
  if (s.empty() || s.size() > max_digits) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    int d = HexValue(c);
    if (d < 0) return std::nullopt;
    v = v * 16 + static_cast<uint64_t>(d);
  }
  return v;
}

uint64_t SegmentsPerXLogId(uint64_t segment_size) { return 0x100000000ull / segment_size; }

}  // namespace

std::optional<uint64_t> ParseLsn(std::string_view s) {
  size_t slash = s.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto hi = Hex(s.substr(0, slash), 8);
  auto lo = Hex(s.substr(slash + 1), 8);
  if (!hi || !lo) return std::nullopt;
  return (*hi << 32) | *lo;
}

std::string FormatLsn(uint64_t lsn) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%X/%X", static_cast<unsigned>(lsn >> 32), static_cast<unsigned>(lsn & 0xffffffffu));
  return buf;
}

std::optional<WalFile> ParseWalFileName(std::string_view name, uint64_t segment_size) {
  // The syntax is repo::WalFileName's (what wal-push accepts); the numbers'
  // bounds are checked here.
  if (!repo::WalFileName::Valid(name)) return std::nullopt;
  repo::WalFileName w = repo::WalFileName::Parse(name);
  if (w.timeline == 0) return std::nullopt;
  WalFile f;
  f.timeline = w.timeline;
  switch (w.kind) {
    case repo::WalFileKind::kHistory: f.kind = WalFileKind::kHistory; return f;
    case repo::WalFileKind::kSegment: f.kind = WalFileKind::kSegment; break;
    case repo::WalFileKind::kPartial: f.kind = WalFileKind::kPartial; break;
    case repo::WalFileKind::kBackup: f.kind = WalFileKind::kBackup; break;
  }
  if (w.seg >= SegmentsPerXLogId(segment_size)) return std::nullopt;
  f.segno = uint64_t{w.log} * SegmentsPerXLogId(segment_size) + w.seg;
  return f;
}

std::string SegmentFileName(uint32_t timeline, uint64_t segno, uint64_t segment_size) {
  const uint64_t per = SegmentsPerXLogId(segment_size);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%08X%08X%08X", timeline, static_cast<unsigned>(segno / per),
                static_cast<unsigned>(segno % per));
  return buf;
}

std::string HistoryFileName(uint32_t timeline) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%08X.history", timeline);
  return buf;
}

std::vector<TimelineSwitch> ParseHistory(std::string_view content, std::string_view what) {
  std::vector<TimelineSwitch> out;
  size_t pos = 0;
  int line_no = 0;
  while (pos < content.size()) {
    size_t end = content.find('\n', pos);
    if (end == std::string_view::npos) end = content.size();
    std::string_view line = content.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    size_t i = 0;
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i == line.size() || line[i] == '#' || line[i] == '\r') continue;
    // parentTLI <ws> switchpoint <ws> reason
    size_t a = i;
    while (i < line.size() && line[i] >= '0' && line[i] <= '9') ++i;
    std::string_view tli_s = line.substr(a, i - a);
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t b = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
    auto lsn = ParseLsn(line.substr(b, i - b));
    if (tli_s.empty() || tli_s.size() > 10 || !lsn)
      throw Error(ErrorCode::kCorrupt, std::string(what) + ": line " + std::to_string(line_no) +
                                           ": expected 'parentTLI switchpoint reason'");
    uint64_t tli = std::stoull(std::string(tli_s));
    if (tli == 0 || tli > 0xffffffffu)
      throw Error(ErrorCode::kCorrupt, std::string(what) + ": line " + std::to_string(line_no) + ": bad timeline");
    if (!out.empty() && (tli <= out.back().parent || *lsn < out.back().switch_lsn))
      throw Error(ErrorCode::kCorrupt, std::string(what) + ": line " + std::to_string(line_no) +
                                           ": timelines or switch points go backwards");
    out.push_back({static_cast<uint32_t>(tli), *lsn});
  }
  return out;
}

std::vector<TimelineCoverage> Coverage(const std::vector<std::string>& names, uint64_t segment_size) {
  std::map<uint32_t, std::vector<uint64_t>> by_tli;
  for (const auto& n : names)
    if (auto f = ParseWalFileName(n, segment_size); f && f->kind == WalFileKind::kSegment)
      by_tli[f->timeline].push_back(f->segno);
  std::vector<TimelineCoverage> out;
  for (auto& [tli, segs] : by_tli) {
    std::sort(segs.begin(), segs.end());
    segs.erase(std::unique(segs.begin(), segs.end()), segs.end());
    TimelineCoverage c;
    c.timeline = tli;
    for (uint64_t s : segs) {
      if (!c.runs.empty() && c.runs.back().last + 1 == s)
        c.runs.back().last = s;
      else
        c.runs.push_back({s, s});
    }
    out.push_back(std::move(c));
  }
  return out;
}

bool Consistent(const BaseBackupWal& b, const std::vector<std::string>& present, uint64_t segment_size) {
  const uint64_t first = SegmentOf(b.start_lsn, segment_size), last = SegmentOf(b.stop_lsn, segment_size);
  for (const auto& c : Coverage(present, segment_size)) {
    if (c.timeline != b.timeline) continue;
    for (const auto& r : c.runs)
      if (r.first <= first && r.last >= last) return true;
  }
  return false;
}

std::vector<std::string> ExpirableWal(const std::vector<std::string>& names, const std::vector<BaseBackupWal>& kept,
                                      uint64_t segment_size) {
  std::vector<std::string> out;
  if (kept.empty()) return out;
  uint64_t oldest = UINT64_MAX;
  for (const auto& b : kept) oldest = std::min(oldest, SegmentOf(b.start_lsn, segment_size));
  for (const auto& n : names) {
    auto f = ParseWalFileName(n, segment_size);
    if (!f || f->kind == WalFileKind::kHistory) continue;  // unknown names: never ours to delete
    if (f->segno < oldest) out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace bulwark::source::postgres
