#include "bulwark/ops/retention.h"

#include <algorithm>
#include <limits>
#include <map>
#include <optional>
#include <tuple>

#include "bulwark/base/error.h"

namespace bulwark::ops {
namespace {

constexpr int64_t kNsPerSecond = 1000000000;

enum class Bucket { kLast, kHourly, kDaily, kWeekly, kMonthly, kYearly };

const char* BucketName(Bucket b) {
  switch (b) {
    case Bucket::kLast: return "last";
    case Bucket::kHourly: return "hourly";
    case Bucket::kDaily: return "daily";
    case Bucket::kWeekly: return "weekly";
    case Bucket::kMonthly: return "monthly";
    case Bucket::kYearly: return "yearly";
  }
  return "?";
}

// The bucket a snapshot falls in; `nr` (its position, newest first) makes
// every snapshot its own bucket for keep_last.
int64_t BucketOf(Bucket b, const CivilTime& c, size_t nr) {
  switch (b) {
    case Bucket::kLast: return static_cast<int64_t>(nr);
    case Bucket::kHourly: return ((c.year * 100 + c.month) * 100 + c.day) * 100 + c.hour;
    case Bucket::kDaily: return (c.year * 100 + c.month) * 100 + c.day;
    case Bucket::kWeekly: return IsoYearWeek(c.year, c.month, c.day);
    case Bucket::kMonthly: return c.year * 100 + c.month;
    case Bucket::kYearly: return c.year;
  }
  return 0;
}

std::string Join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::string TagSetText(const std::vector<std::string>& set) {
  return set.size() == 1 && set[0].empty() ? "''" : Join(set, ",");
}

// restic's HasTags: every tag of the set; the set {""} matches untagged snapshots.
bool HasTagSet(const repo::Snapshot& s, const std::vector<std::string>& set) {
  for (const auto& t : set) {
    if (t.empty()) return s.tags.empty();
    if (std::find(s.tags.begin(), s.tags.end(), t) == s.tags.end()) return false;
  }
  return true;
}

RetentionGroupKey KeyOf(const repo::Snapshot& s, const config::GroupBy& by) {
  RetentionGroupKey k;
  k.by = by;
  if (by.host) k.host = s.host;
  if (by.source) k.source = s.source;
  if (by.paths) {
    k.paths = s.paths;
    std::sort(k.paths.begin(), k.paths.end());
  }
  if (by.tags) {
    for (const auto& t : s.tags)
      if (t != repo::kPinTag) k.tags.push_back(t);
    std::sort(k.tags.begin(), k.tags.end());
    k.tags.erase(std::unique(k.tags.begin(), k.tags.end()), k.tags.end());
  }
  return k;
}

struct Counter {
  Bucket bucket;
  int count;  // left; -1 = unlimited
  std::optional<int64_t> last;
};

struct WithinRule {
  Bucket bucket;
  const CalendarDuration* within;
  int64_t cutoff_ns = 0;
  std::optional<int64_t> last;
};

// Decides one group: `group` holds the snapshots the rules see (expired,
// unpinned ones already set aside), sorted newest first.
std::vector<RetentionDecision> Decide(std::vector<repo::Snapshot> group, const RetentionPolicy& p,
                                      const TimeZone& tz, int64_t now_ns) {
  std::vector<RetentionDecision> out;
  if (group.empty()) return out;
  const bool empty_policy = p.empty();

  // The newest snapshot not in the future; restic's findLatestTimestamp. If
  // every snapshot is in the future, every snapshot is "within".
  std::optional<int64_t> latest;
  for (const auto& s : group)
    if (s.time_ns < now_ns && (!latest || s.time_ns > *latest)) latest = s.time_ns;
  const auto cutoff = [&](const CalendarDuration& d) {
    return latest ? d.SubtractFrom(*latest, tz) : std::numeric_limits<int64_t>::min();
  };

  std::vector<Counter> counters;
  const std::pair<Bucket, int> counts[] = {{Bucket::kLast, p.keep_last},       {Bucket::kHourly, p.keep_hourly},
                                           {Bucket::kDaily, p.keep_daily},     {Bucket::kWeekly, p.keep_weekly},
                                           {Bucket::kMonthly, p.keep_monthly}, {Bucket::kYearly, p.keep_yearly}};
  for (const auto& [b, n] : counts)
    if (n != 0) counters.push_back({b, n, std::nullopt});
  std::vector<WithinRule> withins;
  const std::pair<Bucket, const CalendarDuration*> durations[] = {
      {Bucket::kHourly, &p.keep_within_hourly},   {Bucket::kDaily, &p.keep_within_daily},
      {Bucket::kWeekly, &p.keep_within_weekly},   {Bucket::kMonthly, &p.keep_within_monthly},
      {Bucket::kYearly, &p.keep_within_yearly}};
  for (const auto& [b, d] : durations)
    if (!d->zero()) withins.push_back({b, d, cutoff(*d), std::nullopt});
  const int64_t within_cutoff = p.keep_within.zero() ? 0 : cutoff(p.keep_within);

  const size_t n = group.size();
  for (size_t nr = 0; nr < n; ++nr) {
    RetentionDecision d;
    d.snapshot = std::move(group[nr]);
    const repo::Snapshot& s = d.snapshot;
    auto& why = d.reasons;
    if (s.pinned()) why.push_back("pinned");
    if (s.expires_ns && *s.expires_ns > now_ns) why.push_back("ttl");
    for (const auto& set : p.keep_tags)
      if (HasTagSet(s, set)) why.push_back("tag " + TagSetText(set));
    if (!p.keep_within.zero() && s.time_ns > within_cutoff) why.push_back("within " + p.keep_within.ToString());

    int64_t sec = s.time_ns / kNsPerSecond;
    if (s.time_ns % kNsPerSecond < 0) --sec;
    const CivilTime civil = tz.ToCivil(sec);
    const bool oldest = nr == n - 1;
    for (auto& c : counters) {
      if (c.count == 0) continue;
      const int64_t v = BucketOf(c.bucket, civil, nr);
      if (c.last == v && !oldest) continue;
      why.push_back(std::string(c.last == v ? "oldest " : "") + BucketName(c.bucket));
      c.last = v;
      if (c.count > 0) --c.count;
    }
    for (auto& w : withins) {
      if (s.time_ns <= w.cutoff_ns) continue;
      const int64_t v = BucketOf(w.bucket, civil, nr);
      if (w.last == v && !oldest) continue;
      why.push_back(std::string(w.last == v ? "oldest " : "") + BucketName(w.bucket) + " within " +
                    w.within->ToString());
      w.last = v;
    }
    if (empty_policy && why.empty()) why.push_back("no policy");
    d.keep = !why.empty();
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace

std::string RetentionGroupKey::ToString() const {
  std::vector<std::string> parts;
  if (by.host) parts.push_back("host '" + host + "'");
  if (by.source) parts.push_back("source '" + source + "'");
  if (by.paths) parts.push_back("paths [" + Join(paths, " ") + "]");
  if (by.tags) parts.push_back("tags [" + Join(tags, " ") + "]");
  return parts.empty() ? "all snapshots" : Join(parts, ", ");
}

bool RetentionGroupKey::operator<(const RetentionGroupKey& o) const {
  return std::tie(host, source, paths, tags) < std::tie(o.host, o.source, o.paths, o.tags);
}

std::vector<RetentionGroup> ApplyRetention(std::vector<repo::Snapshot> snapshots, const RetentionPolicy& policy,
                                           const TimeZone& tz, int64_t now_ns) {
  std::sort(snapshots.begin(), snapshots.end(), [](const repo::Snapshot& a, const repo::Snapshot& b) {
    return a.time_ns != b.time_ns ? a.time_ns > b.time_ns : a.id < b.id;
  });
  const config::GroupBy by = policy.group_by.value_or(config::GroupBy{});
  std::map<RetentionGroupKey, std::vector<repo::Snapshot>> grouped;
  for (auto& s : snapshots) {
    RetentionGroupKey k = KeyOf(s, by);
    grouped[std::move(k)].push_back(std::move(s));
  }

  std::vector<RetentionGroup> out;
  for (auto& [key, list] : grouped) {
    // Expired, unpinned snapshots go before the rules see the group.
    std::vector<repo::Snapshot> candidates;
    std::vector<RetentionDecision> expired;
    for (auto& s : list) {
      if (s.expires_ns && *s.expires_ns <= now_ns && !s.pinned()) {
        expired.push_back({std::move(s), false, {"ttl expired"}});
      } else {
        candidates.push_back(std::move(s));
      }
    }
    const size_t candidate_count = candidates.size();
    RetentionGroup g;
    g.key = key;
    g.snapshots = Decide(std::move(candidates), policy, tz, now_ns);
    if (!policy.empty() && candidate_count > 0 &&
        std::none_of(g.snapshots.begin(), g.snapshots.end(), [](const RetentionDecision& d) { return d.keep; }))
      throw Error(ErrorCode::kInvalidArgument,
                  "refusing to remove every snapshot of group " + key.ToString() + ": the policy (" +
                      DescribePolicy(policy) + ") keeps none of its " + std::to_string(candidate_count) +
                      " snapshots");
    // Back into newest-first order.
    for (auto& e : expired) g.snapshots.push_back(std::move(e));
    std::stable_sort(g.snapshots.begin(), g.snapshots.end(), [](const RetentionDecision& a, const RetentionDecision& b) {
      return a.snapshot.time_ns != b.snapshot.time_ns ? a.snapshot.time_ns > b.snapshot.time_ns
                                                      : a.snapshot.id < b.snapshot.id;
    });
    out.push_back(std::move(g));
  }
  return out;
}

std::string DescribePolicy(const RetentionPolicy& p) {
  if (p.empty()) return "no policy: keep everything but expired snapshots";
  std::vector<std::string> counts, rest;
  const std::pair<int, const char*> c[] = {{p.keep_last, "latest"},     {p.keep_hourly, "hourly"},
                                           {p.keep_daily, "daily"},     {p.keep_weekly, "weekly"},
                                           {p.keep_monthly, "monthly"}, {p.keep_yearly, "yearly"}};
  for (const auto& [n, name] : c)
    if (n != 0) counts.push_back((n < 0 ? std::string("all") : std::to_string(n)) + " " + name);
  if (!counts.empty()) rest.push_back(Join(counts, ", ") + " snapshots");
  const std::pair<const CalendarDuration*, const char*> w[] = {
      {&p.keep_within_hourly, "hourly"}, {&p.keep_within_daily, "daily"},     {&p.keep_within_weekly, "weekly"},
      {&p.keep_within_monthly, "monthly"}, {&p.keep_within_yearly, "yearly"}};
  for (const auto& [d, name] : w)
    if (!d->zero()) rest.push_back(std::string(name) + " snapshots within " + d->ToString());
  if (!p.keep_within.zero()) rest.push_back("snapshots within " + p.keep_within.ToString() + " of the newest");
  for (const auto& set : p.keep_tags) rest.push_back("snapshots tagged " + TagSetText(set));
  return "keep " + Join(rest, ", ");
}

}  // namespace bulwark::ops
