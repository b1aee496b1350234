// bulwark's ClickHouse HTTP client and Native validator
// (source/clickhouse/http.h, native.h) against a real ClickHouse 18.16.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "bulwark/base/error.h"
#include "bulwark/source/clickhouse/http.h"
#include "bulwark/source/clickhouse/native.h"
#include "ch_server.h"
#include "harness.h"

namespace bulwark::testing {
namespace {

namespace ch = bulwark::source::clickhouse;

ch::Endpoint As(const ChServer& s, const std::string& user = "bulwark") {
  ch::Endpoint e;
  e.url = s.url();
  e.user = user;
  if (user == "bulwark") e.password = s.password();
  return e;
}

std::string ReadAllOf(ch::ResponseStream& st, size_t piece) {
  std::string out;
  std::vector<uint8_t> buf(piece);
  for (;;) {
    size_t n = st.Read(buf.data(), buf.size());
    if (n == 0) return out;
    out.append(reinterpret_cast<char*>(buf.data()), n);
  }
}

TEST(ChClient, QueriesRowsVersionAndSettings) {
  START_CH(s);
  ch::Client c(As(*s));
  EXPECT_EQ(c.Version().text, "18.16.1");
  EXPECT_EQ(c.Version().major, 18);
  EXPECT_TRUE(c.HasSetting("max_block_size"));
  EXPECT_FALSE(c.HasSetting("no_such_setting"));
  EXPECT_EQ(c.Query("SELECT 1"), "1\n");
  auto rows = c.Rows("SELECT number, concat('a\\tb', toString(number)) FROM numbers(3)");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[2], (std::vector<std::string>{"2", "a\tb2"}));
  EXPECT_EQ(c.Value("SELECT 'x\\ny'"), "x\ny");
  // URL parameters: a setting, and the database the statement runs in.
  c.Query("CREATE DATABASE d1");
  c.Query("CREATE TABLE t (x UInt8) ENGINE = Log", {{"database", "d1"}});
  EXPECT_EQ(c.Value("SELECT count() FROM system.tables WHERE database = 'd1'"), "1");
  EXPECT_EQ(c.Value("SELECT value FROM system.settings WHERE name = 'max_block_size'", {{"max_block_size", "1234"}}), "1234");
}

TEST(ChClient, ErrorsNameTheServerAndTheStatement) {
  START_CH(s);
  auto client = std::make_unique<ch::Client>(As(*s));
  ch::Client& c = *client;
  try {
    c.Query("SELECT * FROM no_such_table");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kSourceFailed);
    const std::string m = e.what();
    EXPECT_NE(m.find("ClickHouse " + s->url() + ": SELECT * FROM no_such_table: HTTP 404: Code: 60"), std::string::npos)
        << m;
    EXPECT_EQ(m.find("e.what()"), std::string::npos) << m;
  }
  // A failure late in a result is still an error status: Query has the server buffer it.
  try {
    c.Query("SELECT throwIf(number = 300000) FROM numbers(400000)", {{"max_block_size", "1000"}});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Code: 395"), std::string::npos) << e.what();
  }
  // Wrong password: kPermission, and the password is in no message.
  ch::Endpoint bad = As(*s);
  bad.password = "wrong-secret";
  try {
    ch::Client(bad).Query("SELECT 1");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kPermission);
    EXPECT_NE(std::string(e.what()).find("Wrong password for user bulwark"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("wrong-secret"), std::string::npos);
    EXPECT_EQ(std::string(e.what()).find(s->password()), std::string::npos);
  }
  // Nobody listening. (The client goes first: the server waits for open keep-alive connections
  // at shutdown.)
  client.reset();
  const int port = s->port();
  ASSERT_TRUE(s->Stop());
  ch::Endpoint gone;
  gone.url = "http://127.0.0.1:" + std::to_string(port);
  try {
    ch::Client(gone).Query("SELECT 1");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kSourceFailed);
    EXPECT_NE(std::string(e.what()).find("ClickHouse " + gone.url + ": SELECT 1: "), std::string::npos) << e.what();
  }
}

TEST(ChClient, StreamsALargeResultInSmallReadsAndValidatesIt) {
  START_CH(s);
  ch::Client c(As(*s));
  // About 80 MB of Native: read 4 KiB at a time (the transfer pauses while the reader is behind).
  const std::string sql = "SELECT number AS n, toString(number) AS s FROM numbers(5000000) FORMAT Native";
  auto st = c.Stream(sql, {{"max_block_size", "65536"}});
  ch::NativeValidator v(ch::NativeColumns{{"n", "UInt64"}, {"s", "String"}});
  std::vector<uint8_t> buf(4096);
  uint64_t total = 0;
  for (;;) {
    size_t n = st->Read(buf.data(), buf.size());
    if (n == 0) break;
    v.Feed(buf.data(), n);
    total += n;
  }
  v.Finish();
  EXPECT_EQ(v.rows(), 5000000u);
  EXPECT_GT(v.blocks(), 70u);
  EXPECT_EQ(total, st->bytes());
  EXPECT_GT(total, 60u << 20);
  EXPECT_EQ(total, v.bytes());
}

TEST(ChClient, AFailureInTheMiddleOfAStreamIsCaughtByTheValidator) {
  START_CH(s);
  ch::Client c(As(*s));
  const std::string sql =
      "SELECT throwIf(number = 3000000) AS x, number FROM system.numbers LIMIT 5000000 FORMAT Native";
  auto st = c.Stream(sql, {{"max_block_size", "65536"}});
  ch::NativeValidator v(ch::NativeColumns{{"x", "UInt8"}, {"number", "UInt64"}});
  try {
    std::vector<uint8_t> buf(65536);
    for (;;) {
      size_t n = st->Read(buf.data(), buf.size());
      if (n == 0) break;
      v.Feed(buf.data(), n);
    }
    v.Finish();
    FAIL() << "the stream was accepted (" << v.rows() << " rows)";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorrupt);
    EXPECT_NE(std::string(e.what()).find("the server reported an error after"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("Code: 395"), std::string::npos) << e.what();
  }
  // Buffered on the server, the same failure is an error status instead.
  auto st2 = c.Stream(sql, {{"max_block_size", "65536"}}, /*buffer_on_server=*/true);
  try {
    ReadAllOf(*st2, 65536);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kSourceFailed);
    EXPECT_NE(std::string(e.what()).find("HTTP 500: Code: 395"), std::string::npos) << e.what();
  }
  // An error before the first byte: the first Read throws.
  auto st3 = c.Stream("SELECT * FROM nowhere FORMAT Native");
  EXPECT_THROW(ReadAllOf(*st3, 100), Error);
}

TEST(ChClient, InsertsAStreamedBody) {
  START_CH(s);
  ch::Client c(As(*s));
  c.Query("CREATE TABLE src (id UInt64, s String, lc LowCardinality(String)) ENGINE = MergeTree ORDER BY id",
          {{"allow_experimental_low_cardinality_type", "1"}});
  c.Query("INSERT INTO src SELECT number, toString(number), toString(number % 7) FROM numbers(1000000)");
  auto st = c.Stream("SELECT * FROM src FORMAT Native");
  const std::string native = ReadAllOf(*st, 1 << 20);
  ch::NativeValidator v(ch::NativeColumns{{"id", "UInt64"}, {"s", "String"}, {"lc", "LowCardinality(String)"}});
  v.Feed(reinterpret_cast<const uint8_t*>(native.data()), native.size());
  v.Finish();
  EXPECT_EQ(v.rows(), 1000000u);

  c.Query("CREATE TABLE dst AS src", {{"allow_experimental_low_cardinality_type", "1"}});
  size_t pos = 0;
  uint64_t sent = c.Insert("INSERT INTO dst FORMAT Native", [&](uint8_t* buf, size_t n) {
    size_t k = std::min<size_t>({n, 10000, native.size() - pos});
    std::memcpy(buf, native.data() + pos, k);
    pos += k;
    return k;
  });
  EXPECT_EQ(sent, native.size());
  EXPECT_EQ(c.Value("SELECT count(), sum(id), uniqExact(lc) FROM dst"), "1000000");
  EXPECT_EQ(c.Rows("SELECT count(), sum(id), uniqExact(lc) FROM dst")[0],
            (std::vector<std::string>{"1000000", "499999500000", "7"}));
  // A broken body is the server's error.
  try {
    std::string junk = "not native at all";
    size_t p = 0;
    c.Insert("INSERT INTO dst FORMAT Native", [&](uint8_t* buf, size_t n) {
      size_t k = std::min(n, junk.size() - p);
      std::memcpy(buf, junk.data() + p, k);
      p += k;
      return k;
    });
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kSourceFailed);
    EXPECT_NE(std::string(e.what()).find("INSERT INTO dst FORMAT Native: HTTP"), std::string::npos) << e.what();
  }
  // A reader that throws aborts the request with its own error.
  EXPECT_THROW(c.Insert("INSERT INTO dst FORMAT Native",
                        [](uint8_t*, size_t) -> size_t { throw Error(ErrorCode::kCorrupt, "bad blob"); }),
               Error);
  EXPECT_EQ(c.Value("SELECT count() FROM dst"), "1000000");
}

}  // namespace
}  // namespace bulwark::testing
