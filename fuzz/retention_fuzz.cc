// Fuzzes the retention expressions (calendar durations, group-by lists, tag
// sets, counts) and the policy engine (ops::ApplyRetention, UTC).
//
// Input: a line of text (the expression, tried as every kind), then bytes that
// build up to 32 snapshots and a policy. Invariants: parsers accept or throw
// Error(kInvalidArgument); a parsed duration survives ToString -> Parse and
// moves time forward (AddTo) or back (SubtractFrom); ApplyRetention decides
// every snapshot exactly once, keeps every pinned one, removes every expired
// unpinned one, gives every kept one a reason, and throws nothing but the
// refuse-to-remove-all kInvalidArgument.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "bulwark/base/civil_time.h"
#include "bulwark/base/error.h"
#include "bulwark/config/config.h"
#include "bulwark/ops/retention.h"

using namespace bulwark;

namespace {

template <typename Fn>
void ExpectValidOrInvalidArgument(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kInvalidArgument) abort();
  }
}

struct Input {
  const uint8_t* p;
  size_t n;
  uint64_t Next(int width) {
    uint64_t v = 0;
    for (int i = 0; i < width; ++i) {
      v = v << 8 | (n ? *p : 0);
      if (n) ++p, --n;
    }
    return v;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const uint8_t* nl = static_cast<const uint8_t*>(memchr(data, '\n', size));
  const size_t text_len = nl ? static_cast<size_t>(nl - data) : size;
  const std::string_view text(reinterpret_cast<const char*>(data), text_len);
  Input in{data + text_len + (nl ? 1 : 0), size - text_len - (nl ? 1 : 0)};

  const int64_t t = 1700000000LL * 1000000000 + static_cast<int64_t>(in.Next(4)) * 1000000000;
  ExpectValidOrInvalidArgument([&] {
    const CalendarDuration d = CalendarDuration::Parse(text);
    if (!(CalendarDuration::Parse(d.ToString()) == d)) abort();
    if (d.AddTo(t, TimeZone()) < t || d.SubtractFrom(t, TimeZone()) > t) abort();
  });
  ExpectValidOrInvalidArgument([&] {
    const config::GroupBy g = config::GroupBy::Parse(text);
    if (!(config::GroupBy::Parse(g.ToString()) == g)) abort();
  });
  ExpectValidOrInvalidArgument([&] {
    if (config::ParseTagSet(text).empty()) abort();
  });
  ExpectValidOrInvalidArgument([&] {
    const int n = config::ParseRetentionCount(text);
    if (n < -1 || n > 1000000) abort();
  });

  // Snapshots: 2-byte hour offsets (clustered so buckets collide), a tag byte,
  // a TTL byte; then a policy from the next bytes.
  const int64_t now = 1704067200LL * 1000000000;  // 2024-01-01T00:00:00Z
  std::vector<repo::Snapshot> snaps;
  const size_t count = in.Next(1) % 33;
  for (size_t i = 0; i < count; ++i) {
    repo::Snapshot s;
    s.id.b[0] = static_cast<uint8_t>(i);
    s.time_ns = now - static_cast<int64_t>(in.Next(2)) * 3600 * 1000000000 + 1000000000LL * 86400 * 30;
    const uint64_t tags = in.Next(1);
    s.host = tags & 1 ? "a" : "b";
    if (tags & 2) s.tags.push_back("keep");
    if (tags & 4) s.tags.push_back("x");
    if (tags & 8) s.tags.push_back("y");
    const uint64_t ttl = in.Next(1);
    if (ttl) s.expires_ns = s.time_ns + static_cast<int64_t>(ttl - 128) * 86400 * 1000000000;
    snaps.push_back(s);
  }
  ops::RetentionPolicy p;
  int* counts[] = {&p.keep_last, &p.keep_hourly, &p.keep_daily, &p.keep_weekly, &p.keep_monthly, &p.keep_yearly};
  for (int* c : counts) *c = static_cast<int>(in.Next(1) % 6) - 1;
  CalendarDuration* durations[] = {&p.keep_within,         &p.keep_within_hourly,  &p.keep_within_daily,
                                   &p.keep_within_weekly,  &p.keep_within_monthly, &p.keep_within_yearly};
  for (CalendarDuration* d : durations) {
    const uint64_t v = in.Next(1);
    if (v & 1) *d = CalendarDuration{0, static_cast<int>(v >> 6), 0, static_cast<int>(v >> 3 & 7), static_cast<int>(v >> 1 & 3)};
  }
  const uint64_t tagsets = in.Next(1);
  if (tagsets & 1) p.keep_tags.push_back({"x"});
  if (tagsets & 2) p.keep_tags.push_back({"x", "y"});
  if (tagsets & 4) p.keep_tags.push_back({""});
  if (tagsets & 8) p.group_by = config::GroupBy{(tagsets & 16) != 0, false, false, (tagsets & 32) != 0};

  std::vector<ops::RetentionGroup> groups;
  try {
    groups = ops::ApplyRetention(snaps, p, TimeZone(), now);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kInvalidArgument) abort();
    return 0;
  }
  size_t seen = 0;
  for (const auto& g : groups)
    for (const auto& d : g.snapshots) {
      ++seen;
      const bool expired = d.snapshot.expires_ns && *d.snapshot.expires_ns <= now;
      if (d.snapshot.pinned() && !d.keep) abort();
      if (expired && !d.snapshot.pinned() && d.keep) abort();
      if (d.keep && d.reasons.empty()) abort();
    }
  if (seen != snaps.size()) abort();
  return 0;
}
