// Restore drills: the `drill:` block of bulwark.yaml, the drill record's
// encoding (docs/FORMAT.md "Drill records"), and the verdict.
#include "bulwark/ops/drill.h"

#include <gtest/gtest.h>

#include <string>

#include "bulwark/base/error.h"
#include "bulwark/config/config.h"
#include "bulwark/repo/drill_record.h"
#include "bulwark/repo/repository.h"
#include "bulwark/storage/backend.h"
#include "test_util.h"

namespace bulwark {
namespace {

using config::Parse;

const char kPrelude[] = R"(version: 1
repositories:
  main: {url: /tmp/r}
sources:
)";

config::Config ParseSources(const std::string& sources) { return Parse(kPrelude + sources, "t.yaml"); }

std::string ParseError(const std::string& sources) {
  return MessageOf(ErrorCode::kInvalidArgument, [&] { ParseSources(sources); });
}

TEST(DrillConfigTest, FsDrillWithDefaultsAndAllKeys) {
  auto c = ParseSources(R"(  docs:
    kind: fs
    paths: [/srv/docs]
    drill:
      schedule: "0 4 1 * *"
      rto: 15m
      target: {dir: /var/tmp/drills}
  bare:
    kind: fs
    paths: [/srv/bare]
  empty:
    kind: fs
    paths: [/srv/empty]
    drill:
)");
  const auto& d = c.Source("docs").drill;
  ASSERT_TRUE(d);
  EXPECT_EQ(d->schedule, "0 4 1 * *");
  EXPECT_EQ(d->rto_seconds, 900);
  EXPECT_EQ(d->dir, "/var/tmp/drills");
  EXPECT_TRUE(d->checks.empty());
  EXPECT_FALSE(c.Source("bare").drill);
  ASSERT_TRUE(c.Source("empty").drill);
  EXPECT_EQ(*c.Source("empty").drill, config::DrillConfig{});
}

TEST(DrillConfigTest, PostgresLogicalAndPhysical) {
  auto c = ParseSources(R"(  app:
    kind: postgres
    conninfo: "host=db dbname=app"
    drill:
      rto: 1h30m
      target: {conninfo: "host=scratch dbname=postgres", allow_same_server: true}
      checks:
        - {sql: "SELECT count(*) FROM pgbench_accounts", expect: 100000}
        - {sql: "SELECT max(id) FROM t", min: 1, max: 99}
        - {sql: "SELECT 1", min: -5}
  db:
    kind: postgres
    mode: physical
    conninfo: "host=db dbname=postgres"
    drill:
      target: {pg_bin_dir: /usr/lib/postgresql/15/bin, port: 5499}
)");
  const auto& d = *c.Source("app").drill;
  EXPECT_EQ(d.rto_seconds, 5400);
  EXPECT_EQ(d.conninfo, "host=scratch dbname=postgres");
  EXPECT_TRUE(d.allow_same_server);
  ASSERT_EQ(d.checks.size(), 3u);
  EXPECT_EQ(d.checks[0].sql, "SELECT count(*) FROM pgbench_accounts");
  EXPECT_EQ(d.checks[0].expect, 100000);
  EXPECT_FALSE(d.checks[0].min);
  EXPECT_EQ(d.checks[1].min, 1);
  EXPECT_EQ(d.checks[1].max, 99);
  EXPECT_EQ(d.checks[2].min, -5);
  EXPECT_FALSE(d.checks[2].max);
  const auto& p = *c.Source("db").drill;
  EXPECT_EQ(p.pg_bin_dir, "/usr/lib/postgresql/15/bin");
  EXPECT_EQ(p.port, 5499);
}

TEST(DrillConfigTest, ErrorsNameFileLineColumn) {
  const std::string fs = "  docs:\n    kind: fs\n    paths: [/srv]\n    drill:\n";
  // Line 9 is the first line of the drill block's content (4 prelude lines + 4 of the source).
  EXPECT_EQ(ParseError(fs + "      rto: 0s\n"),
            "t.yaml:9:12: 'rto' in drill of source 'docs' must be more than 0 (leave it out for no budget)");
  EXPECT_CONTAINS(ParseError(fs + "      rto: soon\n"),
                  "t.yaml:9:12: 'rto' in drill of source 'docs': invalid duration");
  EXPECT_CONTAINS(ParseError(fs + "      schedule: \"99 * * * *\"\n"),
                  "t.yaml:9:17: 'schedule' in drill of source 'docs'");
  EXPECT_CONTAINS(ParseError(fs + "      rtoo: 1m\n"),
                  "t.yaml:9:7: unknown key 'rtoo' in drill of source 'docs' (did you mean 'rto'?)");
  EXPECT_CONTAINS(ParseError(fs + "      target: {dir: relative}\n"), "must be an absolute path");
  EXPECT_CONTAINS(ParseError(fs + "      target: {conninfo: \"host=x\"}\n"),
                  "t.yaml:9:16: key 'conninfo' in drill target of source 'docs' is not valid for this source (fs); it "
                  "takes: dir");
  EXPECT_CONTAINS(ParseError(fs + "      checks: [{sql: SELECT 1, expect: 1}]\n"),
                  "t.yaml:9:7: 'checks' in drill of source 'docs': user checks are SQL, for postgres sources only");

  const std::string pg = "  app:\n    kind: postgres\n    conninfo: \"host=db dbname=app\"\n    drill:\n";
  EXPECT_CONTAINS(ParseError(pg + "      rto: 5m\n"),
                  "t.yaml:8:5: drill of source 'app' needs target: {conninfo: ...}");
  EXPECT_CONTAINS(ParseError(pg + "      target: {conninfo: \"host=s password=hunter2\"}\n"), "contains a password");
  EXPECT_EQ(ParseError(pg + "      target: {conninfo: \"host=s password=hunter2\"}\n").find("hunter2"),
            std::string::npos);
  const std::string t = "      target: {conninfo: \"host=s\"}\n      checks:\n";
  EXPECT_CONTAINS(ParseError(pg + t + "        - {sql: SELECT 1}\n"),
                  "t.yaml:11:11: a check in drill of source 'app' needs 'expect' or 'min'/'max'");
  EXPECT_CONTAINS(ParseError(pg + t + "        - {sql: SELECT 1, expect: 1, max: 2}\n"), "has 'expect' or bounds");
  EXPECT_CONTAINS(ParseError(pg + t + "        - {sql: SELECT 1, min: 5, max: 2}\n"), "has max 2 below min 5");
  EXPECT_CONTAINS(ParseError(pg + t + "        - {sql: SELECT 1, expect: many}\n"), "must be an integer");
  EXPECT_CONTAINS(ParseError(pg + t + "        - {expect: 1}\n"), "missing required key 'sql'");
  EXPECT_CONTAINS(ParseError(pg + t + "        - {sql: SELECT 1, expct: 1}\n"), "(did you mean 'expect'?)");
  EXPECT_CONTAINS(ParseError(pg + "      target: {conninfo: \"host=s\", port: 5}\n"),
                  "it takes: conninfo, allow_same_server");
  const std::string phys = "  db:\n    kind: postgres\n    mode: physical\n    conninfo: \"host=db\"\n    drill:\n";
  EXPECT_CONTAINS(ParseError(phys + "      target: {port: 70000}\n"), "must be between 0 and 65535");
  EXPECT_CONTAINS(ParseError(phys + "      target: {dir: /x}\n"), "it takes: pg_bin_dir, port");
}

repo::DrillRecord FullRecord() {
  repo::DrillRecord r;
  r.time_ns = 1'795'000'000'123'456'789;
  r.host = "h";
  r.username = "u";
  r.source = "app";
  r.source_kind = "postgres";
  r.target_kind = "database";
  r.target = "bulwark_drill_00ff on 127.0.0.1:5432/postgres";
  r.kept = true;
  r.snapshot = Id::FromHexOrThrow(std::string(64, 'a'));
  r.snapshot_time_ns = 1'794'999'000'000'000'000;
  r.checks = {{"rows public.t", "10", "10", true}, {"sql: SELECT 1", "2", "1", false}};
  r.restore_seconds = 1.25;
  r.validate_seconds = 0.5;
  r.total_seconds = 1.75;
  r.rto_budget_seconds = 900;
  r.passed = false;
  r.error = "";
  r.program_version = "0.1.0";
  return r;
}

TEST(DrillRecordTest, RoundTripsEveryField) {
  const repo::DrillRecord r = FullRecord();
  const Bytes enc = r.Encode();
  const repo::DrillRecord back = repo::DrillRecord::Decode(enc, "drill x");
  EXPECT_EQ(back.ToJson(false), r.ToJson(false));
  EXPECT_EQ(back.checks, r.checks);
  EXPECT_EQ(back.total_seconds, 1.75);
  EXPECT_EQ(back.Encode(), enc);
  // The documented shape (docs/FORMAT.md): field names are a promise.
  const auto j = nlohmann::json::parse(std::string(enc.begin(), enc.end()));
  EXPECT_EQ(j["version"], 1);
  EXPECT_EQ(j["time"], "2026-11-18T11:06:40.123456789Z");
  EXPECT_EQ(j["snapshot"], std::string(64, 'a'));
  EXPECT_EQ(j["checks"][1]["expected"], "2");
  EXPECT_EQ(j["timings"]["total_seconds"], 1.75);
  EXPECT_EQ(j["rto_budget_seconds"], 900);
  EXPECT_EQ(j["passed"], false);
}

TEST(DrillRecordTest, DecodeRejectsMalformed) {
  auto code = [](const std::string& text) {
    return CodeOf([&] { repo::DrillRecord::Decode(Bytes(text.begin(), text.end()), "drill 9"); });
  };
  const std::string snap = std::string(64, 'b');
  EXPECT_EQ(code("not json"), ErrorCode::kCorrupt);
  EXPECT_EQ(code("[]"), ErrorCode::kCorrupt);
  EXPECT_EQ(code(R"({"version":2,"time_ns":1,"source":"a","snapshot":")" + snap + "\"}"), ErrorCode::kUnsupported);
  EXPECT_EQ(code(R"({"version":1,"time_ns":1,"source":"a"})"), ErrorCode::kCorrupt);  // no snapshot
  EXPECT_EQ(code(R"({"version":1,"time_ns":1,"source":"a","snapshot":"xyz"})"), ErrorCode::kCorrupt);
  EXPECT_EQ(code(R"({"version":1,"time_ns":1.5,"source":"a","snapshot":")" + snap + "\"}"), ErrorCode::kCorrupt);
  EXPECT_EQ(code(R"({"version":1,"time_ns":1,"source":"a","snapshot":")" + snap + R"(","checks":{}})"),
            ErrorCode::kCorrupt);
  EXPECT_EQ(code(R"({"version":1,"time_ns":1,"source":"a","snapshot":")" + snap + R"(","checks":[{"name":1}]})"),
            ErrorCode::kCorrupt);
  EXPECT_EQ(code(R"({"version":1,"time_ns":1,"source":"a","snapshot":")" + snap + R"(","passed":"yes"})"),
            ErrorCode::kCorrupt);
  EXPECT_EQ(
      code(R"({"version":1,"time_ns":1,"source":"a","snapshot":")" + snap + R"(","timings":{"total_seconds":-1}})"),
      ErrorCode::kCorrupt);
  // Minimal: everything optional defaults.
  auto m = repo::DrillRecord::Decode(
      [&] {
        std::string t = R"({"version":1,"time_ns":7,"source":"a","snapshot":")" + snap + R"(","future":1})";
        return Bytes(t.begin(), t.end());
      }(),
      "d");
  EXPECT_EQ(m.time_ns, 7);
  EXPECT_FALSE(m.passed);
  EXPECT_TRUE(m.checks.empty());
}

TEST(DrillRecordTest, StoredAsSealedContentAddressedObjects) {
  storage::Backend* raw = nullptr;
  auto backend = storage::NewMemoryBackend();
  raw = backend.get();
  repo::InitOptions io;
  io.kdf = crypto::KdfParams{1, 8 << 20, {}};
  repo::Repository::Init(*raw, "pw", io);
  auto repo = repo::Repository::Open(std::move(backend), "pw");
  repo::DrillRecord a = FullRecord(), b = FullRecord();
  b.time_ns -= 1000;
  b.source = "other";
  const Id ida = repo::SaveDrillRecord(*repo, a);
  const Id idb = repo::SaveDrillRecord(*repo, b);
  EXPECT_EQ(a.id, ida);
  ASSERT_TRUE(repo->backend().Stat("drills/" + ida.Hex()));
  auto all = repo::LoadDrillRecords(*repo);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].id, idb);  // oldest first
  EXPECT_EQ(all[1].source, "app");
  // Damage is reported, not fatal, with an error callback.
  Bytes obj = repo->backend().Get("drills/" + ida.Hex());
  obj[obj.size() / 2] ^= 1;
  repo->backend().Put("drills/" + ida.Hex(), obj);
  int errors = 0;
  EXPECT_EQ(repo::LoadDrillRecords(*repo, [&](const Error&) { ++errors; }).size(), 1u);
  EXPECT_EQ(errors, 1);
  EXPECT_EQ(CodeOf([&] { repo::LoadDrillRecords(*repo); }), ErrorCode::kCorrupt);
}

TEST(DrillVerdictTest, BudgetAndChecks) {
  repo::DrillRecord r;
  r.checks = {{"files", "3", "3", true}};
  r.total_seconds = 2.5;
  ops::JudgeDrill(&r);
  EXPECT_TRUE(r.passed);
  EXPECT_EQ(r.checks.size(), 1u);  // no budget: no rto check

  repo::DrillRecord slow = r;
  slow.checks = {{"files", "3", "3", true}};
  slow.rto_budget_seconds = 2;
  ops::JudgeDrill(&slow);
  EXPECT_FALSE(slow.passed);
  ASSERT_EQ(slow.checks.size(), 2u);
  EXPECT_EQ(slow.checks[1], (repo::DrillCheck{"rto", "<= 2 s", "2.500 s", false}));

  repo::DrillRecord fast = slow;
  fast.checks = {{"files", "3", "3", true}};
  fast.rto_budget_seconds = 3;
  ops::JudgeDrill(&fast);
  EXPECT_TRUE(fast.passed);

  repo::DrillRecord broken = fast;
  broken.checks = {};
  broken.error = "pg_restore exited with status 1";
  ops::JudgeDrill(&broken);
  EXPECT_FALSE(broken.passed);

  repo::DrillRecord failed_check = r;
  failed_check.checks = {{"files", "3", "2", false}};
  ops::JudgeDrill(&failed_check);
  EXPECT_FALSE(failed_check.passed);
}

TEST(DrillVerdictTest, UserChecks) {
  config::DrillCheckConfig eq{"SELECT count(*) FROM t", 42, std::nullopt, std::nullopt};
  EXPECT_TRUE(ops::EvaluateUserCheck(eq, "42").passed);
  auto c = ops::EvaluateUserCheck(eq, "41");
  EXPECT_FALSE(c.passed);
  EXPECT_EQ(c.name, "sql: SELECT count(*) FROM t");
  EXPECT_EQ(c.expected, "42");
  EXPECT_EQ(c.actual, "41");
  EXPECT_FALSE(ops::EvaluateUserCheck(eq, std::nullopt).passed);
  EXPECT_EQ(ops::EvaluateUserCheck(eq, std::nullopt).actual, "NULL");
  EXPECT_FALSE(ops::EvaluateUserCheck(eq, "42.0").passed);
  EXPECT_FALSE(ops::EvaluateUserCheck(eq, "").passed);
  config::DrillCheckConfig range{"SELECT 1", std::nullopt, 10, 20};
  EXPECT_EQ(ops::EvaluateUserCheck(range, "15").expected, "10..20");
  EXPECT_TRUE(ops::EvaluateUserCheck(range, "10").passed);
  EXPECT_TRUE(ops::EvaluateUserCheck(range, "20").passed);
  EXPECT_FALSE(ops::EvaluateUserCheck(range, "21").passed);
  EXPECT_FALSE(ops::EvaluateUserCheck(range, "9").passed);
  config::DrillCheckConfig at_least{"SELECT 1", std::nullopt, 1, std::nullopt};
  EXPECT_EQ(ops::EvaluateUserCheck(at_least, "5").expected, "1..");
  EXPECT_TRUE(ops::EvaluateUserCheck(at_least, "9223372036854775807").passed);
  EXPECT_FALSE(ops::EvaluateUserCheck(at_least, "-3").passed);
}

}  // namespace
}  // namespace bulwark
