// The agent's persisted per-source scheduling state: what ran last, when,
// and how it ended. The scheduler (bulwark/agent/scheduler.h) reads and
// updates it; StateStore keeps it in one JSON file across agent restarts.
//
// File: <state dir>/scheduler.json (the agent's state directory, e.g.
// /var/lib/bulwark), written atomically (temp file, fsync, rename, fsync of
// the directory; sys::WriteFileAtomic), so a crash leaves the previous or
// the new state. Format (version 1), times in seconds since the Unix epoch
// (UTC), 0 = never:
//
//   {
//     "format": "bulwark-scheduler-state",
//     "version": 1,
//     "sources": {
//       "docs": {
//         "last_slot": 1711846800,   // the schedule's fire time that the last
//                                    // scheduled job served (or when the
//                                    // scheduler first saw the source)
//         "last_start": 1711846801,  // the last job's start (any job, also
//                                    // on-demand runs)
//         "last_end": 1711846923,    // its end; 0 while it runs
//         "result": "success",       // none | success | failure | abandoned
//         "error": "",               // the failure's message, or ""
//         "running": false,          // a job was started and has not ended
//         "suspended": false         // by `bulwark suspend` (the config's
//                                    // `suspend: true` is not stored here)
//       }
//     }
//   }
//
// Unknown keys are ignored (a newer agent may add some); a newer "version"
// is refused. Entries of sources no longer in the configuration are kept.
//
// Errors: Load throws Error(kCorrupt) for a file that is not valid state
// (the message names the file and says how to get out: move the file aside;
// the agent then starts afresh and every source waits for its next slot),
// kUnsupported for a newer version, and ErrnoError codes (naming the file)
// when it cannot be read. A missing file is an empty state, not an error.
//
// Thread-safety: StateStore holds only its path; concurrent Save calls on
// the same file must be serialised by the caller (the agent saves from one
// thread). Two agents must not share a state directory.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace bulwark::agent {

enum class JobResult { kNone, kSuccess, kFailure, kAbandoned };

// "none", "success", "failure", "abandoned".
std::string_view JobResultName(JobResult r);

struct SourceState {
  int64_t last_slot = 0;   // seconds since the epoch; 0 = never
  int64_t last_start = 0;  // seconds since the epoch; 0 = never
  int64_t last_end = 0;    // seconds since the epoch; 0 = never / running
  JobResult result = JobResult::kNone;
  std::string error;  // message of the last failure, or ""
  bool running = false;
  bool suspended = false;  // by command (not by the configuration)
  bool operator==(const SourceState&) const = default;
};

struct State {
  std::map<std::string, SourceState> sources;  // by source name
  bool operator==(const State&) const = default;
};

class StateStore {
 public:
  static constexpr const char* kFileName = "scheduler.json";
  static constexpr int kVersion = 1;

  // `dir`: the state directory; it must exist (Save does not create it).
  // `file_name`: kFileName for the backup schedule; another job kind's
  // schedule (drills) keeps its own file in the same format.
  explicit StateStore(std::string dir, std::string_view file_name = kFileName);

  const std::string& path() const { return path_; }

  // Reads the state file. A job recorded as running belonged to an agent
  // that ended without finishing it: it is returned as not running, with
  // result kAbandoned and last_end = 0 (the scheduler runs the source again
  // at its next slot, or at once if a slot passed).
  State Load() const;

  // Replaces the state file atomically and durably.
  void Save(const State& state) const;

  // The JSON text Save writes / Load reads (exposed for tests and tools).
  static std::string Encode(const State& state);
  // `what` names the data in errors (the file's path).
  static State Decode(std::string_view text, const std::string& what);

 private:
  std::string path_;
};

}  // namespace bulwark::agent
