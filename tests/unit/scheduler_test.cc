// The agent's scheduler with a fake clock, and its persisted state.
#include "bulwark/agent/scheduler.h"

#include <gtest/gtest.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bulwark/agent/agent.h"
#include "bulwark/agent/state.h"
#include "bulwark/base/error.h"
#include "test_util.h"

namespace bulwark::agent {
namespace {

class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t now) : now_(now) {}
  int64_t NowSeconds() const override { return now_; }
  void Set(int64_t now) { now_ = now; }
  void Advance(int64_t seconds) { now_ += seconds; }

 private:
  int64_t now_;
};

SourcePolicy Policy(const std::string& name, const char* schedule, bool suspended = false, const char* zone = "UTC") {
  return {name, config::CronSchedule::Parse(schedule, TimeZone::Load(zone)), suspended};
}

std::vector<DueJob> Jobs(std::initializer_list<DueJob> jobs) { return jobs; }

std::string ShowJobs(const std::vector<DueJob>& jobs) {
  std::string out;
  for (const DueJob& j : jobs) out += j.source + "@" + TimeZone().FormatRfc3339(j.slot) + " ";
  return out;
}

#define EXPECT_DUE(scheduler, ...) EXPECT_EQ(ShowJobs((scheduler).Due()), ShowJobs(Jobs({__VA_ARGS__})))
#define EXPECT_NOTHING_DUE(scheduler) EXPECT_EQ(ShowJobs((scheduler).Due()), "")

void ExpectError(ErrorCode code, const std::string& needle, const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    return;
  }
  ADD_FAILURE() << "no error (wanted '" << needle << "')";
}

TEST(SchedulerTest, DueAtTheSlotNotBeforeAndNotAgain) {
  FakeClock clock(Utc(2024, 1, 1, 0, 0));
  Scheduler s({Policy("docs", "0 2 * * *")}, State(), clock);
  EXPECT_NOTHING_DUE(s);
  EXPECT_EQ(s.NextRun("docs"), Utc(2024, 1, 1, 2, 0));
  EXPECT_EQ(s.NextWakeup(), Utc(2024, 1, 1, 2, 0));
  clock.Set(Utc(2024, 1, 1, 1, 59, 59));
  EXPECT_NOTHING_DUE(s);
  clock.Set(Utc(2024, 1, 1, 2, 0));
  EXPECT_DUE(s, {"docs", Utc(2024, 1, 1, 2, 0)});
  EXPECT_EQ(s.NextRun("docs"), Utc(2024, 1, 1, 2, 0)) << "due now";
  EXPECT_TRUE(s.Due() == s.Due()) << "Due() changes nothing";
  s.Start("docs", Utc(2024, 1, 1, 2, 0));
  EXPECT_NOTHING_DUE(s);
  EXPECT_EQ(s.NextWakeup(), std::nullopt) << "the only source is running";
  clock.Advance(90);
  s.Finish("docs", JobResult::kSuccess);
  EXPECT_NOTHING_DUE(s);
  EXPECT_EQ(s.NextRun("docs"), Utc(2024, 1, 2, 2, 0));
  const SourceState& st = s.state().sources.at("docs");
  EXPECT_EQ(st.last_slot, Utc(2024, 1, 1, 2, 0));
  EXPECT_EQ(st.last_start, Utc(2024, 1, 1, 2, 0));
  EXPECT_EQ(st.last_end, Utc(2024, 1, 1, 2, 1, 30));
  EXPECT_EQ(st.result, JobResult::kSuccess);
  EXPECT_FALSE(st.running);
}

TEST(SchedulerTest, MissedRunsAfterThreeDaysDownRunOnce) {
  TempDir dir;
  StateStore store(dir.path());
  FakeClock clock(Utc(2024, 1, 1, 1, 0));
  {
    Scheduler s({Policy("daily", "0 2 * * *"), Policy("hourly", "@hourly")}, store.Load(), clock);
    clock.Set(Utc(2024, 1, 1, 2, 0));
    for (const DueJob& j : s.Due()) s.Start(j.source, j.slot);
    clock.Advance(60);
    s.Finish("daily", JobResult::kSuccess);
    s.Finish("hourly", JobResult::kSuccess);
    store.Save(s.state());
  }
  // The agent is down for three days and comes back at 12:20 on Jan 4.
  clock.Set(Utc(2024, 1, 4, 12, 20));
  Scheduler s({Policy("daily", "0 2 * * *"), Policy("hourly", "@hourly")}, store.Load(), clock);
  // Three daily and 82 hourly slots were missed: each source runs once,
  // serving its latest slot.
  EXPECT_DUE(s, {"daily", Utc(2024, 1, 4, 2, 0)}, {"hourly", Utc(2024, 1, 4, 12, 0)});
  for (const DueJob& j : s.Due()) s.Start(j.source, j.slot);
  clock.Advance(600);
  s.Finish("daily", JobResult::kSuccess);
  s.Finish("hourly", JobResult::kFailure, "disk full");
  EXPECT_NOTHING_DUE(s);
  EXPECT_EQ(s.NextRun("hourly"), Utc(2024, 1, 4, 13, 0));
  EXPECT_EQ(s.NextRun("daily"), Utc(2024, 1, 5, 2, 0));
  EXPECT_EQ(s.NextWakeup(), Utc(2024, 1, 4, 13, 0));
  EXPECT_EQ(s.state().sources.at("hourly").error, "disk full");
}

TEST(SchedulerTest, AYearOfDowntimeOfAMinutelyScheduleIsOneRun) {
  FakeClock clock(Utc(2023, 1, 1));
  Scheduler s({Policy("m", "* * * * *")}, State(), clock);
  clock.Set(Utc(2024, 1, 1, 10, 30, 45));
  EXPECT_DUE(s, {"m", Utc(2024, 1, 1, 10, 30)});
}

TEST(SchedulerTest, ARunningJobIsNotStartedTwice) {
  FakeClock clock(Utc(2024, 1, 1, 0, 0));
  Scheduler s({Policy("db", "*/15 * * * *")}, State(), clock);
  clock.Set(Utc(2024, 1, 1, 0, 15));
  EXPECT_DUE(s, {"db", Utc(2024, 1, 1, 0, 15)});
  s.Start("db", Utc(2024, 1, 1, 0, 15));
  // The job runs for 50 minutes: three slots pass, none is due meanwhile.
  for (int minute = 16; minute < 65; ++minute) {
    clock.Set(Utc(2024, 1, 1, 0, 0) + minute * 60);
    EXPECT_NOTHING_DUE(s) << "minute " << minute;
  }
  ExpectError(ErrorCode::kLocked, "a job of source 'db' is already running (started 2024-01-01T00:15:00Z)",
              [&] { s.Start("db", Utc(2024, 1, 1, 1, 0)); });
  ExpectError(ErrorCode::kLocked, "already running", [&] { s.Start("db", std::nullopt); });
  s.Finish("db", JobResult::kSuccess);
  // The slots missed while it ran are served once, by the latest.
  EXPECT_DUE(s, {"db", Utc(2024, 1, 1, 1, 0)});
  ExpectError(ErrorCode::kInvalidArgument, "no job of source 'db' is running",
              [&] { s.Finish("db", JobResult::kSuccess); });
}

TEST(SchedulerTest, AJobLeftRunningByACrashIsRecoveredAsAbandoned) {
  FakeClock clock(Utc(2024, 1, 1, 0, 0));
  State crashed;
  crashed.sources["db"] = {Utc(2024, 1, 1, 0, 0), Utc(2024, 1, 1, 0, 0), 0, JobResult::kNone, "", true, false};
  Scheduler s({Policy("db", "*/15 * * * *"), Policy("web", "@hourly")}, crashed, clock);
  clock.Set(Utc(2024, 1, 1, 0, 30));
  EXPECT_NOTHING_DUE(s);  // "running" forever: never due again without recovery
  EXPECT_EQ(RecoverInterruptedJobs(s), 1);
  EXPECT_FALSE(s.state().sources.at("db").running);
  EXPECT_EQ(s.state().sources.at("db").result, JobResult::kAbandoned);
  EXPECT_DUE(s, {"db", Utc(2024, 1, 1, 0, 30)});
  EXPECT_EQ(RecoverInterruptedJobs(s), 0);
}

TEST(SchedulerTest, SourcesAreIndependent) {
  FakeClock clock(Utc(2024, 1, 1, 0, 0));
  Scheduler s({Policy("a", "@hourly"), Policy("b", "*/30 * * * *"), Policy("manual", "@daily")}, State(), clock);
  clock.Set(Utc(2024, 1, 1, 1, 0));
  EXPECT_DUE(s, {"a", Utc(2024, 1, 1, 1, 0)}, {"b", Utc(2024, 1, 1, 1, 0)});
  s.Start("a", Utc(2024, 1, 1, 1, 0));
  // a runs long and then fails; b keeps its own slots.
  clock.Set(Utc(2024, 1, 1, 1, 30));
  EXPECT_DUE(s, {"b", Utc(2024, 1, 1, 1, 30)});
  s.Start("b", Utc(2024, 1, 1, 1, 30));
  s.Finish("b", JobResult::kSuccess);
  s.Finish("a", JobResult::kFailure, "exit 1");
  EXPECT_NOTHING_DUE(s);
  clock.Set(Utc(2024, 1, 1, 2, 0));
  EXPECT_DUE(s, {"a", Utc(2024, 1, 1, 2, 0)}, {"b", Utc(2024, 1, 1, 2, 0)});
  EXPECT_EQ(s.state().sources.at("a").result, JobResult::kFailure);
  EXPECT_EQ(s.state().sources.at("b").result, JobResult::kSuccess);
}

TEST(SchedulerTest, SuspendedSourcesNeverRunAndResumeDoesNotReplay) {
  FakeClock clock(Utc(2024, 1, 1, 0, 0));
  Scheduler s({Policy("docs", "@hourly"), Policy("frozen", "@hourly", /*suspended=*/true)}, State(), clock);
  s.Suspend("docs");
  s.Suspend("docs");  // idempotent
  EXPECT_TRUE(s.IsSuspended("docs"));
  EXPECT_TRUE(s.IsSuspended("frozen"));
  for (int hour = 1; hour <= 5; ++hour) {
    clock.Set(Utc(2024, 1, 1, hour, 0));
    EXPECT_NOTHING_DUE(s) << "hour " << hour;
  }
  EXPECT_EQ(s.NextRun("docs"), std::nullopt);
  EXPECT_EQ(s.NextRun("frozen"), std::nullopt);
  EXPECT_EQ(s.NextWakeup(), std::nullopt);
  // Five slots passed while suspended: resume runs once, not five times.
  clock.Set(Utc(2024, 1, 1, 5, 10));
  s.Resume("docs");
  EXPECT_FALSE(s.IsSuspended("docs"));
  EXPECT_DUE(s, {"docs", Utc(2024, 1, 1, 5, 0)});
  s.Start("docs", Utc(2024, 1, 1, 5, 0));
  s.Finish("docs", JobResult::kSuccess);
  EXPECT_NOTHING_DUE(s);
  // Suspended and resumed between two slots: nothing was missed, nothing runs.
  s.Suspend("docs");
  clock.Set(Utc(2024, 1, 1, 5, 40));
  s.Resume("docs");
  EXPECT_NOTHING_DUE(s);
  EXPECT_EQ(s.NextRun("docs"), Utc(2024, 1, 1, 6, 0));
  // The configuration's suspend: true cannot be resumed by command.
  ExpectError(ErrorCode::kInvalidArgument, "source 'frozen' is suspended by its configuration (suspend: true)",
              [&] { s.Resume("frozen"); });
  clock.Set(Utc(2024, 1, 2, 0, 0));
  EXPECT_DUE(s, {"docs", Utc(2024, 1, 2, 0, 0)});
  // Suspension by command is part of the persisted state.
  s.Suspend("docs");
  EXPECT_TRUE(s.state().sources.at("docs").suspended);
  EXPECT_FALSE(s.state().sources.at("frozen").suspended) << "the configuration's suspend is not state";
}

TEST(SchedulerTest, OnDemandRunsDoNotServeSlots) {
  FakeClock clock(Utc(2024, 1, 1, 0, 0));
  Scheduler s({Policy("docs", "0 2 * * *", /*suspended=*/true), Policy("web", "0 2 * * *")}, State(), clock);
  clock.Set(Utc(2024, 1, 1, 1, 0));
  s.Start("docs", std::nullopt);  // allowed while suspended
  s.Finish("docs", JobResult::kSuccess);
  s.Start("web", std::nullopt);
  clock.Set(Utc(2024, 1, 1, 2, 0));
  EXPECT_NOTHING_DUE(s) << "web's on-demand job is still running";
  s.Finish("web", JobResult::kSuccess);
  EXPECT_DUE(s, {"web", Utc(2024, 1, 1, 2, 0)}) << "an on-demand run does not serve the 02:00 slot";
  EXPECT_EQ(s.state().sources.at("web").last_slot, Utc(2024, 1, 1, 0, 0));
}

TEST(SchedulerTest, NewSourcesWaitAndTheClockSteppingBackRunsNothingAgain) {
  FakeClock clock(Utc(2024, 6, 1, 12, 0));
  State state;
  state.sources["gone"].last_slot = 42;  // a source no longer configured: kept
  Scheduler s({Policy("docs", "0 2 * * *")}, state, clock);
  EXPECT_NOTHING_DUE(s) << "slots before the scheduler knew the source are not missed";
  EXPECT_EQ(s.NextRun("docs"), Utc(2024, 6, 2, 2, 0));
  EXPECT_EQ(s.state().sources.at("gone").last_slot, 42);
  clock.Set(Utc(2024, 6, 2, 2, 0));
  s.Start("docs", s.Due().at(0).slot);
  s.Finish("docs", JobResult::kSuccess);
  clock.Set(Utc(2024, 6, 1, 2, 30));  // NTP steps the clock back a day
  EXPECT_NOTHING_DUE(s);
  EXPECT_EQ(s.NextRun("docs"), Utc(2024, 6, 3, 2, 0));
  ExpectError(ErrorCode::kNotFound, "unknown source 'nope'", [&] { s.NextRun("nope"); });
  ExpectError(ErrorCode::kInvalidArgument, "listed twice", [&] {
    Scheduler({Policy("a", "@daily"), Policy("a", "@daily")}, State(), clock);
  });
}

TEST(SchedulerTest, SchedulesInATimeZoneAcrossTheSpringGap) {
  // 02:30 Berlin does not exist on 2024-03-31: the job is due at the end of
  // the gap, 03:00 CEST = 01:00Z, once.
  FakeClock clock(Utc(2024, 3, 30, 12, 0));
  Scheduler s({Policy("docs", "30 2 * * *", false, "Europe/Berlin")}, State(), clock);
  EXPECT_EQ(s.NextRun("docs"), Utc(2024, 3, 31, 1, 0));
  clock.Set(Utc(2024, 3, 31, 0, 59, 59));
  EXPECT_NOTHING_DUE(s);
  clock.Set(Utc(2024, 3, 31, 1, 0));
  EXPECT_DUE(s, {"docs", Utc(2024, 3, 31, 1, 0)});
  s.Start("docs", Utc(2024, 3, 31, 1, 0));
  s.Finish("docs", JobResult::kSuccess);
  clock.Set(Utc(2024, 3, 31, 23, 0));
  EXPECT_NOTHING_DUE(s);
  EXPECT_EQ(s.NextRun("docs"), Utc(2024, 4, 1, 0, 30));
}

TEST(SchedulerTest, PoliciesFromConfig) {
  const config::Config c = config::Parse(
      "version: 1\nrepositories: {main: {url: /r}}\nsources:\n"
      "  a: {kind: fs, paths: [/a], schedule: '30 2 * * *', timezone: America/New_York}\n"
      "  b: {kind: fs, paths: [/b], schedule: '@daily', suspend: true}\n"
      "  c: {kind: fs, paths: [/c]}\n",
      "t.yaml");
  const std::vector<SourcePolicy> p = SourcePolicy::FromConfig(c);
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].name, "a");
  ASSERT_TRUE(p[0].schedule.has_value());
  EXPECT_EQ(p[0].schedule->zone().name(), "America/New_York");
  EXPECT_FALSE(p[0].suspended);
  EXPECT_TRUE(p[1].suspended);
  EXPECT_FALSE(p[2].schedule.has_value());
  FakeClock clock(Utc(2024, 1, 1));
  Scheduler s(p, State(), clock);
  EXPECT_EQ(s.NextRun("a"), Utc(2024, 1, 1, 7, 30));
  EXPECT_EQ(s.NextRun("b"), std::nullopt);
  EXPECT_EQ(s.NextRun("c"), std::nullopt);
  EXPECT_EQ(s.NextWakeup(), Utc(2024, 1, 1, 7, 30));
}

// ---------------------------------------------------------------------------
// State persistence.

State Sample() {
  State st;
  st.sources["docs"] = {Utc(2024, 1, 4, 2, 0),
                        Utc(2024, 1, 4, 2, 0, 1),
                        Utc(2024, 1, 4, 2, 3),
                        JobResult::kFailure,
                        "backup: s3 PUT: 503 \"SlowDown\"",
                        false,
                        true};
  st.sources["db"] = {Utc(2024, 1, 4, 1, 0), Utc(2024, 1, 4, 1, 0), 0, JobResult::kSuccess, "", true, false};
  return st;
}

void WriteText(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

TEST(SchedulerStateTest, SurvivesSaveAndLoad) {
  TempDir dir;
  StateStore store(dir.path());
  EXPECT_EQ(store.path(), dir.path() + "/scheduler.json");
  EXPECT_EQ(store.Load(), State()) << "a missing file is an empty state";
  store.Save(Sample());
  store.Save(Sample());  // replaces
  State loaded = store.Load();
  // The job that was running when the agent stopped comes back abandoned.
  SourceState& db = loaded.sources.at("db");
  EXPECT_FALSE(db.running);
  EXPECT_EQ(db.result, JobResult::kAbandoned);
  EXPECT_EQ(db.error, "the agent stopped while the job ran");
  db = Sample().sources.at("db");
  EXPECT_EQ(loaded, Sample());
  // Only the state file is left in the directory (no temp files).
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) names.push_back(e.path().filename());
  EXPECT_EQ(names, std::vector<std::string>{"scheduler.json"});
  // The documented format.
  const nlohmann::json j = nlohmann::json::parse(StateStore::Encode(Sample()));
  EXPECT_EQ(j["format"], "bulwark-scheduler-state");
  EXPECT_EQ(j["version"], 1);
  EXPECT_EQ(j["sources"]["docs"]["last_slot"], Utc(2024, 1, 4, 2, 0));
  EXPECT_EQ(j["sources"]["docs"]["result"], "failure");
  EXPECT_EQ(j["sources"]["docs"]["suspended"], true);
  // Unknown keys (a newer agent's) are ignored.
  EXPECT_EQ(
      StateStore::Decode(
          R"({"format": "bulwark-scheduler-state", "version": 1, "x": 1, "sources": {"a": {"y": [], "last_slot": 5}}})",
          "f")
          .sources.at("a")
          .last_slot,
      5);
}

TEST(SchedulerStateTest, CorruptStateFileIsAClearError) {
  TempDir dir;
  StateStore store(dir.path());
  const std::string path = store.path();
  const std::string way_out = "(move " + path + " aside to start afresh";
  WriteText(path, "{\"format\": \"bulwark-scheduler-state\", \"version\": 1, \"sources\": {\"a\": {\"last_sl");
  ExpectError(ErrorCode::kCorrupt, path + ": invalid JSON: ", [&] { store.Load(); });
  ExpectError(ErrorCode::kCorrupt, way_out, [&] { store.Load(); });
  WriteText(path, "");
  ExpectError(ErrorCode::kCorrupt, path + ": invalid JSON", [&] { store.Load(); });
  WriteText(path,
            R"({"format": "bulwark-scheduler-state", "version": 1, "sources": {"a": {"last_slot": "yesterday"}}})");
  ExpectError(ErrorCode::kCorrupt, path + ": source 'a': field 'last_slot' is not an integer " + way_out,
              [&] { store.Load(); });
  WriteText(path, R"({"format": "bulwark-scheduler-state", "version": 1, "sources": {"a": {"result": "maybe"}}})");
  ExpectError(ErrorCode::kCorrupt, path + ": source 'a': unknown result 'maybe'", [&] { store.Load(); });
  WriteText(path, R"({"format": "bulwark-scheduler-state", "version": 1, "sources": {"a": {"running": 1}}})");
  ExpectError(ErrorCode::kCorrupt, "field 'running' is not true or false", [&] { store.Load(); });
  WriteText(path, R"({"format": "something-else", "version": 1, "sources": {}})");
  ExpectError(ErrorCode::kCorrupt, path + ": not a scheduler state file", [&] { store.Load(); });
  WriteText(path, R"([1, 2])");
  ExpectError(ErrorCode::kCorrupt, path + ": not a JSON object", [&] { store.Load(); });
  WriteText(path, R"({"format": "bulwark-scheduler-state", "version": 2, "sources": {}})");
  ExpectError(ErrorCode::kUnsupported, path + ": state version 2 is not supported", [&] { store.Load(); });
  // The documented way out works: with the file moved aside the state is empty.
  std::filesystem::rename(path, path + ".broken");
  EXPECT_EQ(store.Load(), State());
  // A state file that cannot be read names it.
  std::filesystem::create_directory(path);
  ExpectError(ErrorCode::kIo, path, [&] { store.Load(); });
  // Saving into a missing directory names the file.
  ExpectError(ErrorCode::kNotFound, dir.path() + "/missing/scheduler.json",
              [&] { StateStore(dir.path() + "/missing").Save(Sample()); });
}

}  // namespace
}  // namespace bulwark::agent
