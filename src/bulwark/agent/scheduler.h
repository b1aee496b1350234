// The agent's scheduler: pure logic that decides which sources' jobs start
// when. It performs no I/O, starts nothing and never sleeps; the agent asks
// it what is due, runs those jobs, reports their start and end, saves
// state() through StateStore (bulwark/agent/state.h) and sleeps until
// NextWakeup() or an event (a job ended, a command arrived).
//
// Times are seconds since the Unix epoch (UTC), from the injected Clock.
//
// Rules:
//   * Slots: a source's schedule (config::CronSchedule, evaluated in the
//     source's time zone with the DST rules of bulwark/config/cron.h) fires
//     at "slots". A source is due when it has a schedule, is not suspended,
//     has no job running, and some slot lies in (last_slot, now]; the due
//     job serves the LATEST such slot. So runs missed during downtime (or
//     while the previous job ran long) run ONCE when the agent is back, not
//     once per missed slot.
//   * One job per source at a time: Start refuses a second one; a source
//     whose job runs is not due until Finish.
//   * Sources are independent: one source's failure or long job does not
//     delay another's.
//   * Suspended sources (config `suspend: true`, or Suspend()) are never due.
//     Resume() does not replay the suspended period: if any slot passed, the
//     source is due once (serving the latest slot), else it waits for its
//     next slot.
//   * A source that never served a slot (no state entry, or last_slot 0)
//     starts with last_slot = now: slots before the agent knew it are not
//     "missed"; it first runs at its next slot (or on demand).
//   * If the clock steps back, nothing runs again: a slot is served only if
//     it is later than last_slot.
//
// Thread-safety: not thread-safe; the agent calls it from one thread (or
// under one mutex). The Clock must outlive the Scheduler.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bulwark/agent/state.h"
#include "bulwark/config/config.h"
#include "bulwark/config/cron.h"

namespace bulwark::agent {

// Seconds since the Unix epoch. Tests inject a fake.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowSeconds() const = 0;
};

// The system's real-time clock (CLOCK_REALTIME). Thread-safe.
class SystemClock final : public Clock {
 public:
  int64_t NowSeconds() const override;
};

// What the scheduler needs of one configured source.
struct SourcePolicy {
  std::string name;
  std::optional<config::CronSchedule> schedule;  // nullopt: on-demand runs only
  bool suspended = false;                        // the configuration's `suspend: true`

  // One policy per source of `c`, in name order.
  static std::vector<SourcePolicy> FromConfig(const config::Config& c);
  // The same sources with their drill schedule (`drill.schedule`; nullopt
  // when a source has no drill or no drill schedule): the agent's drill lane.
  static std::vector<SourcePolicy> DrillsFromConfig(const config::Config& c);
};

struct DueJob {
  std::string source;
  int64_t slot = 0;  // the fire time this job serves (<= now)
  bool operator==(const DueJob&) const = default;
};

class Scheduler {
 public:
  // `state`: as loaded by StateStore::Load (sources missing from it are
  // added, see the rules above; entries of unknown sources are kept as they
  // are). Throws Error(kInvalidArgument) if two policies share a name.
  Scheduler(std::vector<SourcePolicy> policies, State state, const Clock& clock);

  // The jobs to start now, ordered by slot, then source name. Calling it
  // changes nothing: a job is due until Start is called for it.
  std::vector<DueJob> Due() const;

  // When `source`'s next scheduled job starts: now if it is due, else its
  // next slot (for a running source: the first slot after now; a slot that
  // passes while the job runs is served once, when the job ends). nullopt
  // when it has no schedule or is suspended. Throws Error(kNotFound) for an
  // unknown source.
  std::optional<int64_t> NextRun(std::string_view source) const;

  // The earliest NextRun of the sources that are not running: when the
  // agent should next call Due() if nothing else happens. nullopt when
  // nothing is scheduled (sleep until an event).
  std::optional<int64_t> NextWakeup() const;

  // Records that a job of `source` started now. `slot`: the DueJob's slot
  // for a scheduled job (it becomes last_slot), nullopt for an on-demand run
  // (allowed while suspended; it does not count as serving a slot). Throws
  // Error(kNotFound) for an unknown source, Error(kLocked) if a job of the
  // source is running.
  void Start(std::string_view source, std::optional<int64_t> slot);

  // Records that the running job of `source` ended now with `result`
  // (kSuccess, kFailure or kAbandoned) and, for a failure, `error`. Throws
  // Error(kNotFound) for an unknown source, Error(kInvalidArgument) if no
  // job of it is running.
  void Finish(std::string_view source, JobResult result, std::string error = "");

  // Suspends `source` (persisted in state; a running job is not stopped).
  // Idempotent. Throws Error(kNotFound) for an unknown source.
  void Suspend(std::string_view source);
  // Undoes Suspend. Idempotent. Throws Error(kNotFound) for an unknown
  // source, Error(kInvalidArgument) if the configuration suspends it
  // (`suspend: true` wins; change the configuration).
  void Resume(std::string_view source);

  // Suspended by configuration or command.
  bool IsSuspended(std::string_view source) const;

  const std::vector<SourcePolicy>& policies() const { return policies_; }
  const State& state() const { return state_; }

 private:
  const SourcePolicy& Policy(std::string_view source) const;
  SourceState& Mutable(std::string_view source);
  // The latest slot in (after, now], if any.
  std::optional<int64_t> LatestSlot(const config::CronSchedule& s, int64_t after, int64_t now) const;

  std::vector<SourcePolicy> policies_;
  State state_;
  const Clock& clock_;
};

}  // namespace bulwark::agent
