#include "bulwark/agent/scheduler.h"

#include <algorithm>
#include <ctime>
#include <set>

#include "bulwark/base/error.h"

namespace bulwark::agent {
namespace {

// The first fire time after `after`, or nullopt past the schedule's range.
std::optional<int64_t> NextSlot(const config::CronSchedule& s, int64_t after) {
  if (after < config::CronSchedule::kMinTime) after = config::CronSchedule::kMinTime;
  if (after > config::CronSchedule::kMaxTime) return std::nullopt;
  try {
    return s.Next(after);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kInvalidArgument) return std::nullopt;  // no fire time before year 10000
    throw;
  }
}

}  // namespace

int64_t SystemClock::NowSeconds() const { return static_cast<int64_t>(std::time(nullptr)); }

std::vector<SourcePolicy> SourcePolicy::FromConfig(const config::Config& c) {
  std::vector<SourcePolicy> out;
  for (const auto& [name, s] : c.sources) out.push_back({name, s.ParsedSchedule(), s.suspend});
  return out;
}

std::vector<SourcePolicy> SourcePolicy::DrillsFromConfig(const config::Config& c) {
  std::vector<SourcePolicy> out;
  for (const auto& [name, s] : c.sources) out.push_back({name, s.ParsedDrillSchedule(), s.suspend});
  return out;
}

Scheduler::Scheduler(std::vector<SourcePolicy> policies, State state, const Clock& clock)
    : policies_(std::move(policies)), state_(std::move(state)), clock_(clock) {
  std::set<std::string> seen;
  const int64_t now = clock_.NowSeconds();
  for (const SourcePolicy& p : policies_) {
    if (!seen.insert(p.name).second)
      throw Error(ErrorCode::kInvalidArgument, "scheduler: source '" + p.name + "' is listed twice");
    SourceState& st = state_.sources[p.name];
    if (st.last_slot == 0) st.last_slot = now;  // never served a slot: start counting now
  }
}

const SourcePolicy& Scheduler::Policy(std::string_view source) const {
  for (const SourcePolicy& p : policies_)
    if (p.name == source) return p;
  throw Error(ErrorCode::kNotFound, "scheduler: unknown source '" + std::string(source) + "'");
}

SourceState& Scheduler::Mutable(std::string_view source) {
  Policy(source);  // throws for an unknown source
  return state_.sources.at(std::string(source));
}

bool Scheduler::IsSuspended(std::string_view source) const {
  return Policy(source).suspended || state_.sources.at(std::string(source)).suspended;
}

std::optional<int64_t> Scheduler::LatestSlot(const config::CronSchedule& s, int64_t after, int64_t now) const {
  if (now <= after) return std::nullopt;
  const std::optional<int64_t> first = NextSlot(s, after);
  if (!first || *first > now) return std::nullopt;
  // Look back from now in growing windows, so that a long downtime of a
  // frequent schedule does not walk every missed slot: the walk covers only
  // the smallest window (1 hour, 1 day, 32 days, ...) that holds a slot.
  int64_t slot = *first;
  for (int64_t window = 3600; window < now - after; window *= 8) {
    if (const std::optional<int64_t> s2 = NextSlot(s, now - window); s2 && *s2 <= now) {
      slot = *s2;
      break;
    }
  }
  while (const std::optional<int64_t> n = NextSlot(s, slot)) {
    if (*n > now) break;
    slot = *n;
  }
  return slot;
}

std::vector<DueJob> Scheduler::Due() const {
  const int64_t now = clock_.NowSeconds();
  std::vector<DueJob> due;
  for (const SourcePolicy& p : policies_) {
    const SourceState& st = state_.sources.at(p.name);
    if (!p.schedule || p.suspended || st.suspended || st.running) continue;
    if (const std::optional<int64_t> slot = LatestSlot(*p.schedule, st.last_slot, now)) due.push_back({p.name, *slot});
  }
  std::sort(due.begin(), due.end(),
            [](const DueJob& a, const DueJob& b) { return a.slot != b.slot ? a.slot < b.slot : a.source < b.source; });
  return due;
}

std::optional<int64_t> Scheduler::NextRun(std::string_view source) const {
  const SourcePolicy& p = Policy(source);
  const SourceState& st = state_.sources.at(p.name);
  if (!p.schedule || p.suspended || st.suspended) return std::nullopt;
  const int64_t now = clock_.NowSeconds();
  if (!st.running && LatestSlot(*p.schedule, st.last_slot, now)) return now;
  return NextSlot(*p.schedule, std::max(now, st.last_slot));
}

std::optional<int64_t> Scheduler::NextWakeup() const {
  std::optional<int64_t> wake;
  for (const SourcePolicy& p : policies_) {
    if (state_.sources.at(p.name).running) continue;
    const std::optional<int64_t> next = NextRun(p.name);
    if (next && (!wake || *next < *wake)) wake = next;
  }
  return wake;
}

void Scheduler::Start(std::string_view source, std::optional<int64_t> slot) {
  SourceState& st = Mutable(source);
  if (st.running)
    throw Error(ErrorCode::kLocked, "a job of source '" + std::string(source) + "' is already running (started " +
                                        TimeZone().FormatRfc3339(st.last_start) + ")");
  const int64_t now = clock_.NowSeconds();
  if (slot) st.last_slot = std::max(st.last_slot, *slot);
  st.last_start = now;
  st.last_end = 0;
  st.running = true;
}

void Scheduler::Finish(std::string_view source, JobResult result, std::string error) {
  SourceState& st = Mutable(source);
  if (!st.running)
    throw Error(ErrorCode::kInvalidArgument, "scheduler: no job of source '" + std::string(source) + "' is running");
  st.running = false;
  st.last_end = clock_.NowSeconds();
  st.result = result;
  st.error = result == JobResult::kSuccess ? "" : std::move(error);
}

void Scheduler::Suspend(std::string_view source) { Mutable(source).suspended = true; }

void Scheduler::Resume(std::string_view source) {
  if (Policy(source).suspended)
    throw Error(ErrorCode::kInvalidArgument, "source '" + std::string(source) +
                                                 "' is suspended by its configuration (suspend: true); change the "
                                                 "configuration to resume it");
  Mutable(source).suspended = false;
}

}  // namespace bulwark::agent
