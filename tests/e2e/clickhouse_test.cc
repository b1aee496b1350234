// The ClickHouse source (issue 7) against a real ClickHouse 18.16 server
// (scripts/ch-server): `backup --source` of a `kind: clickhouse` source in
// both modes, and `clickhouse restore`.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "ch_server.h"
#include "harness.h"

namespace bulwark::testing {
namespace {

namespace fs = std::filesystem;

// A configuration with one clickhouse source `ch` on `server` as user bulwark
// (password from the server's password file).
std::string Config(const Scratch& s, const ChServer& server, const std::string& mode, const std::string& extra = "") {
  return WriteFile(s.Path("bulwark-" + mode + ".yaml"),
                   s.ConfigPrelude() + "sources:\n  ch:\n    kind: clickhouse\n    url: " + server.url() +
                       "\n    user: bulwark\n    password_file: " + server.password_file() + "\n    mode: " + mode +
                       "\n" + extra);
}

// The test schema: a partitioned MergeTree table with many column types
// (and a MATERIALIZED column), a Log table, a view, a materialized view and
// an AggregatingMergeTree table (a column type the Native validator does not
// know: the server buffers it).
void CreateSchema(const ChServer& ch, const std::string& db) {
  const std::string lc = "allow_experimental_low_cardinality_type=1";
  ch.Query("CREATE DATABASE " + db);
  ch.Query("CREATE TABLE " + db +
               ".events (d Date, id UInt64, s String, n Nullable(Int32), a Array(String), lc LowCardinality(String), "
               "dt DateTime, dec Decimal(10, 2), t Tuple(UInt8, String), e Enum8('a' = 1, 'b' = 2), "
               "fs FixedString(4), m UInt64 MATERIALIZED id * 2) "
               "ENGINE = MergeTree PARTITION BY toYYYYMM(d) ORDER BY id",
           lc);
  ch.Query("CREATE TABLE " + db + ".log (k String, v UInt32) ENGINE = Log");
  ch.Query("CREATE VIEW " + db + ".v AS SELECT id, s FROM " + db + ".events WHERE id % 1000 = 7");
  ch.Query("CREATE MATERIALIZED VIEW " + db + ".mv ENGINE = SummingMergeTree ORDER BY k AS SELECT toString(id % 5) AS k, "
           "count() AS c FROM " + db + ".events GROUP BY k");
  ch.Query("CREATE TABLE " + db +
           ".agg (k UInt8, u AggregateFunction(uniq, UInt64)) ENGINE = AggregatingMergeTree ORDER BY k");
}

void InsertEvents(const ChServer& ch, const std::string& db, uint64_t from, uint64_t n) {
  ch.Query("INSERT INTO " + db +
           ".events (d, id, s, n, a, lc, dt, dec, t, e, fs) SELECT toDate('2024-01-01') + (number % 90), number, "
           "concat('row ', toString(number)), if(number % 3 = 0, NULL, toInt32(number)), [toString(number % 7), 'x'], "
           "toString(number % 11), toDateTime(1700000000 + number), toDecimal64(number, 2) / 100, "
           "(toUInt8(number % 200), toString(number % 13)), if(number % 2 = 0, 'a', 'b'), 'abcd' FROM numbers(" +
           std::to_string(from) + ", " + std::to_string(n) + ")");
}

void Fill(const ChServer& ch, const std::string& db) {
  InsertEvents(ch, db, 0, 200000);
  InsertEvents(ch, db, 200000, 1000);  // a second part per partition
  ch.Query("INSERT INTO " + db + ".log VALUES ('a', 1), ('b', 2), ('c\\ttab', 3)");
  ch.Query("INSERT INTO " + db + ".agg SELECT number % 10, uniqState(number) FROM numbers(5000) GROUP BY number % 10");
}

// Everything of the test schema in `db`, ordered: equal strings mean equal contents.
std::string Contents(const ChServer& ch, const std::string& db) {
  std::string out;
  for (const char* q : {"SELECT *, m FROM DB.events ORDER BY id", "SELECT * FROM DB.log ORDER BY k",
                               "SELECT * FROM DB.v ORDER BY id", "SELECT k, sum(c) FROM DB.mv GROUP BY k ORDER BY k",
                               "SELECT k, uniqMerge(u) FROM DB.agg GROUP BY k ORDER BY k"}) {
    std::string sql = q;
    sql.replace(sql.find("DB."), 2, db);
    out += std::string(q) + "\n" + ch.Query(sql + " FORMAT TSV") + "\n";
  }
  return out;
}

// Equal contents, or a test failure showing the first line that differs
// (gtest's own diff of two 30 MB strings takes gigabytes).
#define EXPECT_SAME_CONTENTS(a, b) ExpectSameContents(a, b, #a " vs " #b)
void ExpectSameContents(const std::string& a, const std::string& b, const char* what) {
  if (a == b) return;
  size_t line = 1, i = 0, start = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) {
    if (a[i] == '\n') {
      ++line;
      start = i + 1;
    }
    ++i;
  }
  auto at = [&](const std::string& s) { return s.substr(start, std::min<size_t>(s.find('\n', start) - start, 300)); };
  ADD_FAILURE() << what << ": " << a.size() << " vs " << b.size() << " bytes; line " << line << " differs:\n  "
                << at(a) << "\n  " << at(b);
}

uint64_t Count(const ChServer& ch, const std::string& sql) { return std::stoull(ch.Query(sql)); }

size_t SnapshotCount(const Scratch& s, const std::string& cfg) {
  RunResult r = s.BwConfig(cfg, {"--json", "snapshots"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  return j.is_array() ? j.size() : 0;
}

// Entries of the server's shadow/ directory other than increment.txt and bulwark's lock files.
std::vector<std::string> ShadowLeftovers(const ChServer& ch) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(ch.data_dir() + "/shadow", ec)) {
    const std::string n = e.path().filename().string();
    if (n == "increment.txt" || (n.size() > 5 && n.substr(n.size() - 5) == ".lock")) continue;
    out.push_back(n);
  }
  return out;
}

class ClickHouseTest : public ::testing::Test {
 protected:
  Scratch s_;
};

TEST_F(ClickHouseTest, NativeRoundTripIntoANewDatabase) {
  START_CH(ch);
  CreateSchema(*ch, "app");
  Fill(*ch, "app");
  const std::string before = Contents(*ch, "app");
  s_.Init();
  const std::string cfg = Config(s_, *ch, "native");

  RunResult b = s_.BwConfig(cfg, {"--json", "backup", "--source", "ch"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  nlohmann::json sum = b.JsonLine("summary");
  ASSERT_TRUE(sum.is_object()) << b.out;
  const nlohmann::json& f = sum["facts"]["clickhouse"];
  EXPECT_EQ(f["mode"], "native");
  EXPECT_EQ(f["server_version"], "18.16.1");
  EXPECT_EQ(f["url"], ch->url());
  const nlohmann::json& ev = f["tables"]["app.events"];
  EXPECT_EQ(ev["rows"], 201000);
  EXPECT_EQ(ev["kind"], "data");
  EXPECT_EQ(ev["engine"], "MergeTree");
  EXPECT_EQ(ev["validated"], true);
  EXPECT_EQ(ev["partitions"], 3);
  EXPECT_EQ(ev["partition_rows"]["202401"], Count(*ch, "SELECT count() FROM app.events WHERE toYYYYMM(d) = 202401"));
  EXPECT_EQ(ev["parts"], Count(*ch, "SELECT count() FROM system.parts WHERE database = 'app' AND table = 'events' AND active"));
  EXPECT_GT(ev["bytes"].get<uint64_t>(), 0u);
  EXPECT_EQ(f["tables"]["app.log"]["rows"], 3);
  EXPECT_EQ(f["tables"]["app.v"]["kind"], "schema");
  EXPECT_EQ(f["tables"]["app.mv"]["kind"], "schema");
  EXPECT_EQ(f["tables"]["app..inner.mv"]["kind"], "inner");
  EXPECT_EQ(f["tables"]["app.agg"]["validated"], false) << "AggregateFunction: buffered by the server";
  EXPECT_EQ(f["tables"]["app.agg"]["rows"], Count(*ch, "SELECT count() FROM app.agg"));
  EXPECT_FALSE(f["tables"].contains("system.parts"));
  // The password is in no output.
  EXPECT_EQ(b.out.find(ch->password()), std::string::npos);
  EXPECT_EQ(b.err.find(ch->password()), std::string::npos);
  RunResult ls = s_.BwConfig(cfg, {"ls", "latest"});
  EXPECT_NE(ls.out.find("/app/events/data.native\n"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("/app/%2Einner%2Emv/data.native\n"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("/app/v/table.sql\n"), std::string::npos) << ls.out;
  EXPECT_EQ(s_.BwConfig(cfg, {"dump", "latest", "/app/database.sql"}).out, "CREATE DATABASE app ENGINE = Ordinary");

  // Change the data after the backup.
  InsertEvents(*ch, "app", 500000, 5000);
  ch->Query("ALTER TABLE app.events DROP PARTITION ID '202402'");
  ch->Query("INSERT INTO app.log VALUES ('late', 9)");
  ASSERT_TRUE(Contents(*ch, "app") != before);

  // A dry run changes nothing.
  RunResult dry = s_.BwConfig(cfg, {"--json", "clickhouse", "restore", "--source", "ch", "--database-map",
                                    "app:restored", "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_EQ(dry.JsonLine("summary")["databases_created"], nlohmann::json::array({"restored"}));
  EXPECT_EQ(ch->Query("SELECT count() FROM system.databases WHERE name = 'restored'"), "0");

  // Restoring over the existing tables is refused, naming them; nothing is changed.
  RunResult refused = s_.BwConfig(cfg, {"clickhouse", "restore", "--source", "ch", "--table", "app.*"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("these exist already: app.agg, app.events"), std::string::npos) << refused.err;

  RunResult r = s_.BwConfig(cfg, {"--json", "clickhouse", "restore", "latest", "--source", "ch", "--table", "app.*",
                                  "--database-map", "app:restored"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  nlohmann::json rs = r.JsonLine("summary");
  ASSERT_TRUE(rs.is_object()) << r.out;
  EXPECT_EQ(rs["databases_created"], nlohmann::json::array({"restored"}));
  size_t verified = 0;
  for (const auto& t : rs["tables"]) {
    if (t["kind"] == "schema") continue;
    EXPECT_TRUE(t["verified"].get<bool>()) << t;
    EXPECT_EQ(t["method"], "native");
    verified++;
  }
  EXPECT_EQ(verified, 4u);  // events, log, agg, .inner.mv
  EXPECT_SAME_CONTENTS(Contents(*ch, "restored"), before);
  // The view reads the restored database's table, not the original one.
  EXPECT_NE(ch->Query("SHOW CREATE TABLE restored.v").find("FROM restored.events"), std::string::npos);
  EXPECT_EQ(Count(*ch, "SELECT count() FROM restored.events"), 201000u);
  // (Contents compares the materialized view too: the restored rows were not counted again by it.)
}

TEST_F(ClickHouseTest, PartsBackupReusesUnchangedPartsAndRestoresByAttaching) {
  START_CH(ch);
  CreateSchema(*ch, "app");
  Fill(*ch, "app");
  ch->Query("OPTIMIZE TABLE app.events FINAL");  // one part per partition
  ch->Query("SYSTEM STOP MERGES");               // and they stay: the new rows' parts are not merged into them
  const std::string before = Contents(*ch, "app");
  s_.Init();
  const std::string cfg = Config(s_, *ch, "parts");

  RunResult b1 = s_.BwConfig(cfg, {"--json", "backup", "--source", "ch"});
  ASSERT_EQ(b1.exit_code, 0) << b1.err;
  nlohmann::json s1 = b1.JsonLine("summary");
  const nlohmann::json& ev1 = s1["facts"]["clickhouse"]["tables"]["app.events"];
  EXPECT_EQ(s1["facts"]["clickhouse"]["mode"], "parts");
  EXPECT_EQ(ev1["rows"], 201000);
  EXPECT_EQ(ev1["parts"], 3);
  EXPECT_EQ(ev1["parts_reused"], 0);
  EXPECT_EQ(ev1["partition_rows"]["202401"], Count(*ch, "SELECT count() FROM app.events WHERE toYYYYMM(d) = 202401"));
  EXPECT_EQ(s1["facts"]["clickhouse"]["tables"]["app.log"]["data_file"], "app/log/data.native");
  EXPECT_TRUE(ShadowLeftovers(*ch).empty()) << "the shadow directory is removed after the backup";
  RunResult ls = s_.BwConfig(cfg, {"ls", "latest"});
  for (const auto& part : ev1["parts_list"])
    EXPECT_NE(ls.out.find("/app/events/parts/" + part.get<std::string>() + "/checksums.txt\n"), std::string::npos)
        << ls.out;

  // 1 % new rows: a new part; the three old ones are not read again.
  InsertEvents(*ch, "app", 1000000, 2010);
  RunResult b2 = s_.BwConfig(cfg, {"--json", "backup", "--source", "ch"});
  ASSERT_EQ(b2.exit_code, 0) << b2.err;
  nlohmann::json s2 = b2.JsonLine("summary");
  const nlohmann::json& ev2 = s2["facts"]["clickhouse"]["tables"]["app.events"];
  EXPECT_EQ(ev2["rows"], 203010);
  EXPECT_EQ(ev2["parts"], ev1["parts"].get<int>() + 3) << "2010 rows over 90 days: a new part in each partition";
  EXPECT_EQ(ev2["parts_reused"], 3);
  EXPECT_LT(s2["bytes_processed"].get<uint64_t>(), s1["bytes_processed"].get<uint64_t>() / 10)
      << "unchanged parts cost no reading";
  EXPECT_TRUE(ShadowLeftovers(*ch).empty());
  const std::string after = Contents(*ch, "app");

  // Restore the second backup by attaching its parts in a new database.
  RunResult r = s_.BwConfig(cfg, {"--json", "clickhouse", "restore", "--source", "ch", "--database-map", "app:copy"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json rs = r.JsonLine("summary");
  for (const auto& t : rs["tables"]) {
    if (t["kind"] == "schema") continue;
    EXPECT_TRUE(t["verified"].get<bool>()) << t;
    if (t["to"] == "copy.events") {
      EXPECT_EQ(t["method"], "parts");
      EXPECT_EQ(t["parts"], 6);
      EXPECT_EQ(t["restored_rows"], 203010);
    }
  }
  EXPECT_SAME_CONTENTS(Contents(*ch, "copy"), after);
  EXPECT_EQ(Count(*ch, "SELECT count() FROM system.parts WHERE database = 'copy' AND table = 'events' AND active"), 6u);
  // The attached parts are the server's (ATTACH moved them out of detached/).
  EXPECT_TRUE(fs::is_empty(ch->data_dir() + "/data/copy/events/detached"));
  // The first backup restores the state before the new rows.
  RunResult r1 = s_.BwConfig(cfg, {"clickhouse", "restore", s1["snapshot_id"].get<std::string>(), "--database-map",
                                   "app:first"});
  ASSERT_EQ(r1.exit_code, 0) << r1.err;
  EXPECT_SAME_CONTENTS(Contents(*ch, "first"), before);
}

TEST_F(ClickHouseTest, PartitionRestoreInBothModes) {
  START_CH(ch);
  CreateSchema(*ch, "app");
  Fill(*ch, "app");
  s_.Init();
  for (const std::string mode : {"parts", "native"}) {
    SCOPED_TRACE(mode);
    const std::string cfg = Config(s_, *ch, mode);
    const std::string events = "SELECT *, m FROM app.events ORDER BY id FORMAT TSV";
    const std::string want = ch->Query(events);
    const uint64_t feb = Count(*ch, "SELECT count() FROM app.events WHERE _partition_id = '202402'");
    ASSERT_GT(feb, 0u);
    RunResult b = s_.BwConfig(cfg, {"backup", "--source", "ch"});
    ASSERT_EQ(b.exit_code, 0) << b.err;

    // Lose one partition and change another; restore only the lost one, in place.
    ch->Query("ALTER TABLE app.events DROP PARTITION ID '202402'");
    InsertEvents(*ch, "app", 900000, 10);  // January gets new rows: they stay
    const uint64_t jan = Count(*ch, "SELECT count() FROM app.events WHERE _partition_id = '202401'");
    RunResult r = s_.BwConfig(cfg, {"--json", "clickhouse", "restore", "--source", "ch", "--table", "app.events",
                                    "--partition", "202402"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    nlohmann::json t = r.JsonLine("summary")["tables"][0];
    EXPECT_EQ(t["to"], "app.events");
    EXPECT_EQ(t["action"], "partitions");
    EXPECT_EQ(t["partitions"], nlohmann::json::array({"202402"}));
    EXPECT_EQ(t["restored_rows"], feb);
    EXPECT_TRUE(t["verified"].get<bool>());
    EXPECT_EQ(Count(*ch, "SELECT count() FROM app.events WHERE _partition_id = '202402'"), feb);
    EXPECT_EQ(Count(*ch, "SELECT count() FROM app.events WHERE _partition_id = '202401'"), jan)
        << "other partitions are left alone";

    // The partition holds rows now: again only with --drop-existing, which replaces it.
    RunResult again = s_.BwConfig(cfg, {"clickhouse", "restore", "--source", "ch", "--table", "app.events",
                                        "--partition", "202402"});
    EXPECT_EQ(again.exit_code, 1);
    EXPECT_NE(again.err.find("app.events (partitions 202402"), std::string::npos) << again.err;
    ch->Query("INSERT INTO app.events (d, id) VALUES ('2024-02-10', 999999999)");
    RunResult replace = s_.BwConfig(cfg, {"clickhouse", "restore", "--source", "ch", "--table", "app.events",
                                          "--partition", "202402", "--drop-existing"});
    ASSERT_EQ(replace.exit_code, 0) << replace.err;
    EXPECT_EQ(Count(*ch, "SELECT count() FROM app.events WHERE _partition_id = '202402'"), feb);
    // Back to the backed-up state, minus January's extra rows.
    ch->Query("ALTER TABLE app.events DELETE WHERE id >= 900000 AND id < 900010");
    ASSERT_TRUE(WaitFor([&] { return Count(*ch, "SELECT count() FROM system.mutations WHERE is_done = 0") == 0; }, 60));
    EXPECT_SAME_CONTENTS(ch->Query(events), want);
    // An unknown partition is an error before anything is done.
    RunResult unknown = s_.BwConfig(cfg, {"clickhouse", "restore", "--source", "ch", "--partition", "209912"});
    EXPECT_EQ(unknown.exit_code, 1);
    EXPECT_NE(unknown.err.find("partition '209912' is in none of the selected tables"), std::string::npos)
        << unknown.err;
  }
}

TEST_F(ClickHouseTest, DropExistingWithASafetyBackup) {
  START_CH(ch);
  CreateSchema(*ch, "app");
  Fill(*ch, "app");
  s_.Init();
  const std::string cfg = Config(s_, *ch, "native");
  const std::string backed_up = Contents(*ch, "app");
  ASSERT_EQ(s_.BwConfig(cfg, {"backup", "--source", "ch"}).exit_code, 0);
  ch->Query("INSERT INTO app.log VALUES ('after', 1)");
  InsertEvents(*ch, "app", 700000, 100);
  const std::string current = Contents(*ch, "app");
  RunResult r = s_.BwConfig(cfg, {"--json", "clickhouse", "restore", "--source", "ch", "--drop-existing",
                                  "--safety-backup", "--table", "app.*"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json rs = r.JsonLine("summary");
  ASSERT_TRUE(rs["safety_backup"].is_string()) << r.out;
  EXPECT_EQ(rs["replaced"].size(), 5u) << rs["replaced"];
  EXPECT_SAME_CONTENTS(Contents(*ch, "app"), backed_up);
  // The safety backup holds what was replaced: restoring it brings that back.
  RunResult back = s_.BwConfig(cfg, {"clickhouse", "restore", rs["safety_backup"].get<std::string>(), "--database-map",
                                     "app:before_restore"});
  ASSERT_EQ(back.exit_code, 0) << back.err;
  EXPECT_SAME_CONTENTS(Contents(*ch, "before_restore"), current);
  RunResult snaps = s_.BwConfig(cfg, {"snapshots", "--tag", "safety-backup"});
  EXPECT_NE(snaps.out.find("1 snapshots"), std::string::npos) << snaps.out;
}

TEST_F(ClickHouseTest, AFailingQueryStoresNoSnapshot) {
  START_CH(ch);
  CreateSchema(*ch, "app");
  Fill(*ch, "app");
  s_.Init();
  const std::string cfg = Config(s_, *ch, "native");
  ASSERT_EQ(s_.BwConfig(cfg, {"backup", "--source", "ch"}).exit_code, 0);
  // User bulwark may now read at most 100000 rows a query: SELECT * FROM app.events breaks off.
  ASSERT_TRUE(ch->SetBulwarkProfile("<max_rows_to_read>100000</max_rows_to_read>", "max_rows_to_read", "100000"));
  RunResult b = s_.BwConfig(cfg, {"backup", "--source", "ch"});
  EXPECT_EQ(b.exit_code, 1);
  EXPECT_NE(b.err.find("source 'ch'"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find("Code: 158"), std::string::npos) << b.err;  // TOO_MANY_ROWS
  EXPECT_NE(b.err.find("app`.`events"), std::string::npos) << b.err;
  EXPECT_EQ(SnapshotCount(s_, cfg), 1u);

  // A wrong password: no snapshot, and the password in no message.
  const std::string wrong = s_.Path("wrong-password");
  WriteFile(wrong, "not-the-password\n");
  const std::string bad = WriteFile(s_.Path("bad.yaml"), s_.ConfigPrelude() + "sources:\n  ch:\n    kind: clickhouse\n"
                                                            "    url: " + ch->url() + "\n    user: bulwark\n"
                                                            "    password_file: " + wrong + "\n");
  RunResult w = s_.BwConfig(bad, {"backup", "--source", "ch"});
  EXPECT_EQ(w.exit_code, 1);
  EXPECT_NE(w.err.find("Wrong password for user bulwark"), std::string::npos) << w.err;
  EXPECT_EQ(w.err.find("not-the-password"), std::string::npos) << w.err;
  EXPECT_EQ(SnapshotCount(s_, cfg), 1u);
}

TEST_F(ClickHouseTest, AKilledPartsBackupLeavesNoSnapshotAndTheNextCleansTheShadowDirectory) {
  START_CH(ch);
  ch->Query("CREATE DATABASE big");
  ch->Query("CREATE TABLE big.t (id UInt64, a UInt64, b UInt64, c UInt64) ENGINE = MergeTree PARTITION BY id % 4 "
            "ORDER BY id");
  ch->Query("INSERT INTO big.t SELECT number, rand64(), rand64(1), rand64(2) FROM numbers(4000000)");
  s_.Init();
  const std::string cfg = Config(s_, *ch, "parts");
  const std::string staging = ch->data_dir() + "/shadow/bulwark.ch";
  const int pid = StartBackground({BulwarkBin(), "--config", cfg, "backup", "--source", "ch"},
                                  {"BULWARK_CACHE_DIR=" + s_.CacheDir()});
  // Killed while it reads the frozen parts: they are staged, and the FREEZE is done (no intent).
  bool staged = false;
  WaitFor(
      [&] {
        staged = fs::exists(staging + "/big/t") && !fs::is_empty(staging + "/big/t") &&
                 !fs::exists(staging + ".intent");
        return staged || waitpid(pid, nullptr, WNOHANG) == pid;
      },
      120, 2);
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(staged) << "the backup ended before its staging directory appeared";
  ASSERT_TRUE(WIFSIGNALED(status)) << "the backup finished before it was killed";
  EXPECT_EQ(SnapshotCount(s_, cfg), 0u);
  EXPECT_TRUE(fs::exists(staging)) << "what the killed backup left";

  // A FREEZE whose parts were never moved: the intent file names it (as a backup killed right
  // after its FREEZE leaves it), and a foreign shadow/N made after it is left alone.
  const std::string shadow = ch->data_dir() + "/shadow/";
  const std::string inc = Trim(ReadFileOr(shadow + "increment.txt", "0"));
  WriteFile(shadow + "bulwark.ch.intent",
            "{\"before\": " + inc + ", \"table\": \"big.t\", \"rel\": \"data/big/t/\"}");
  ch->Query("ALTER TABLE big.t FREEZE");
  const std::string ours = std::to_string(std::stoull(inc) + 1);
  ch->Query("CREATE TABLE big.other (x UInt8) ENGINE = MergeTree ORDER BY x");
  ch->Query("INSERT INTO big.other VALUES (1)");
  ch->Query("ALTER TABLE big.other FREEZE");
  const std::string foreign = std::to_string(std::stoull(inc) + 2);
  ASSERT_TRUE(fs::exists(shadow + ours + "/data/big/t"));
  ASSERT_TRUE(fs::exists(shadow + foreign + "/data/big/other"));

  RunResult b = s_.BwConfig(cfg, {"--json", "backup", "--source", "ch", "--tag", "after-kill"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  nlohmann::json f = b.JsonLine("summary")["facts"]["clickhouse"];
  EXPECT_EQ(f["shadow_cleaned"], nlohmann::json::array({staging, shadow + ours})) << f["shadow_cleaned"];
  EXPECT_EQ(f["tables"]["big.t"]["rows"], 4000000);
  EXPECT_FALSE(fs::exists(staging));
  EXPECT_FALSE(fs::exists(shadow + ours));
  EXPECT_FALSE(fs::exists(shadow + "bulwark.ch.intent"));
  EXPECT_EQ(ShadowLeftovers(*ch), std::vector<std::string>{foreign}) << "only the foreign freeze is left";
  EXPECT_EQ(SnapshotCount(s_, cfg), 1u);
  // And it restores.
  RunResult r = s_.BwConfig(cfg, {"clickhouse", "restore", "--source", "ch", "--table", "big.t", "--database-map",
                                  "big:big2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ch->Query("SELECT count(), sum(a) FROM big2.t"), ch->Query("SELECT count(), sum(a) FROM big.t"));
}

TEST_F(ClickHouseTest, AKilledNativeBackupLeavesNoSnapshot) {
  START_CH(ch);
  ch->Query("CREATE TABLE default.big (id UInt64, a UInt64, b UInt64) ENGINE = MergeTree ORDER BY id");
  ch->Query("INSERT INTO default.big SELECT number, rand64(), rand64(1) FROM numbers(4000000)");
  s_.Init();
  const std::string cfg = Config(s_, *ch, "native");
  const int pid = StartBackground({BulwarkBin(), "--config", cfg, "backup", "--source", "ch"},
                                  {"BULWARK_CACHE_DIR=" + s_.CacheDir()});
  // Killed while the server streams the table to it.
  bool streaming = false;
  WaitFor(
      [&] {
        streaming = ch->Query("SELECT count() FROM system.processes WHERE query LIKE 'SELECT * FROM `default`.`big`%'") == "1";
        return streaming || waitpid(pid, nullptr, WNOHANG) == pid;
      },
      120, 2);
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(streaming) << "the backup ended before its SELECT was seen";
  EXPECT_EQ(SnapshotCount(s_, cfg), 0u);
  RunResult b = s_.BwConfig(cfg, {"backup", "--source", "ch"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(SnapshotCount(s_, cfg), 1u);
}

TEST_F(ClickHouseTest, SourceFromFlagsAndSelection) {
  START_CH(ch);
  CreateSchema(*ch, "app");
  CreateSchema(*ch, "tmp_scratch");
  Fill(*ch, "app");
  s_.Init();
  // A configured source with a selection: only app, without its log table.
  const std::string cfg = Config(s_, *ch, "native", "    databases: [\"app*\"]\n    exclude_tables: [\"*.log\"]\n");
  RunResult b = s_.BwConfig(cfg, {"--json", "backup", "--source", "ch"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  const nlohmann::json t = b.JsonLine("summary")["facts"]["clickhouse"]["tables"];
  EXPECT_TRUE(t.contains("app.events"));
  EXPECT_FALSE(t.contains("app.log"));
  EXPECT_FALSE(t.contains("tmp_scratch.events"));
  EXPECT_FALSE(t.contains("default.x"));
  // From flags, the password from the environment, as user bulwark.
  RunResult f = testing::Run({BulwarkBin(), "--repo", s_.repo(), "--json", "backup", "--clickhouse", ch->url(), "--ch-user",
                     "bulwark", "--source", "adhoc"},
                    {"BULWARK_PASSWORD_FILE=" + s_.Path("password"), "BULWARK_CACHE_DIR=" + s_.CacheDir(),
                     "BULWARK_CLICKHOUSE_PASSWORD_FILE=" + ch->password_file()});
  ASSERT_EQ(f.exit_code, 0) << f.err;
  nlohmann::json fs = f.JsonLine("summary");
  EXPECT_TRUE(fs["facts"]["clickhouse"]["tables"].contains("tmp_scratch.events"));
  EXPECT_TRUE(fs["facts"]["clickhouse"]["tables"].contains("app.log"));
  // Restoring a source given by flags: the server by --url, the password from the environment.
  const std::vector<std::string> env = {"BULWARK_PASSWORD_FILE=" + s_.Path("password"),
                                        "BULWARK_CACHE_DIR=" + s_.CacheDir(),
                                        "BULWARK_CLICKHOUSE_PASSWORD_FILE=" + ch->password_file()};
  RunResult rf = testing::Run({BulwarkBin(), "--repo", s_.repo(), "--json", "clickhouse", "restore", "latest",
                               "--source", "adhoc", "--url", ch->url(), "--user", "bulwark", "--table", "app.log",
                               "--database-map", "app:fromflags"},
                              env);
  ASSERT_EQ(rf.exit_code, 0) << rf.err;
  EXPECT_EQ(ch->Query("SELECT count() FROM fromflags.log"), "3");
  EXPECT_EQ(rf.JsonLine("summary")["tables"].size(), 1u);
  RunResult nourl = testing::Run({BulwarkBin(), "--repo", s_.repo(), "clickhouse", "restore", "latest", "--source",
                                  "adhoc", "--database-map", "app:x"},
                                 env);
  EXPECT_EQ(nourl.exit_code, 2);
  EXPECT_NE(nourl.err.find("give --url"), std::string::npos) << nourl.err;
  // A URL with credentials in it is refused before anything is done.
  RunResult cred = testing::Run({BulwarkBin(), "--repo", s_.repo(), "backup", "--clickhouse",
                        "http://bulwark:secret@127.0.0.1:" + std::to_string(ch->port())},
                       {"BULWARK_PASSWORD_FILE=" + s_.Path("password"), "BULWARK_CACHE_DIR=" + s_.CacheDir()});
  EXPECT_EQ(cred.exit_code, 2) << cred.err;
  EXPECT_NE(cred.err.find("no user or password in the URL"), std::string::npos) << cred.err;
}

}  // namespace
}  // namespace bulwark::testing

namespace bulwark::testing {
namespace {

// The agent's job path (jobs::BackupPlan) runs a clickhouse source as `backup --source` does.
TEST_F(ClickHouseTest, AnAgentJobBacksUpAClickHouseSource) {
  START_CH(ch);
  CreateSchema(*ch, "app");
  Fill(*ch, "app");
  s_.Init();
  const std::string cfg = Config(s_, *ch, "parts", "    retention: {keep_last: 5}\n");
  RunResult r = s_.BwConfig(cfg, {"--json", "run", "ch", "--name", "manual-ch", "--state-dir", s_.Path("state")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = r.Json();
  EXPECT_EQ(j["status"], "success") << r.out;
  RunResult snaps = s_.BwConfig(cfg, {"--json", "snapshots"});
  nlohmann::json list = nlohmann::json::parse(snaps.out, nullptr, false);
  ASSERT_TRUE(list.is_array() && list.size() == 1) << snaps.out;
  EXPECT_EQ(list[0]["kind"], "clickhouse");
  EXPECT_EQ(list[0]["source"], "ch");
  EXPECT_TRUE(ShadowLeftovers(*ch).empty());
}

}  // namespace
}  // namespace bulwark::testing

namespace bulwark::testing {
namespace {

TEST_F(ClickHouseTest, TwoPartsBackupsOfOneSourceAtOnceAreRefused) {
  START_CH(ch);
  ch->Query("CREATE TABLE default.t (x UInt64) ENGINE = MergeTree ORDER BY x");
  ch->Query("INSERT INTO default.t SELECT number FROM numbers(1000)");
  s_.Init();
  const std::string cfg = Config(s_, *ch, "parts");
  ASSERT_EQ(s_.BwConfig(cfg, {"backup", "--source", "ch"}).exit_code, 0);
  // Another backup of the source holds its lock (as a running one does).
  const std::string lock = ch->data_dir() + "/shadow/bulwark.ch.lock";
  ASSERT_TRUE(fs::exists(lock));
  int fd = ::open(lock.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  RunResult b = s_.BwConfig(cfg, {"backup", "--source", "ch"});
  EXPECT_EQ(b.exit_code, 11);
  EXPECT_NE(b.err.find("another parts backup of source 'ch' is running on this host"), std::string::npos) << b.err;
  ::close(fd);
  EXPECT_EQ(s_.BwConfig(cfg, {"backup", "--source", "ch"}).exit_code, 0);
  EXPECT_EQ(SnapshotCount(s_, cfg), 2u);
}

}  // namespace
}  // namespace bulwark::testing
