// The ClickHouse source's pure parts: URL and version parsing, TabSeparated
// decoding, quoting, the Native type parser and stream validator
// (source/clickhouse/http.h, native.h). The server side is in
// tests/e2e/clickhouse_test.cc.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "bulwark/base/error.h"
#include "bulwark/source/clickhouse/http.h"
#include "bulwark/source/clickhouse/native.h"
#include "bulwark/source/clickhouse/schema.h"

namespace bulwark::source::clickhouse {
namespace {

TEST(ClickHouseUrl, NormalizesAndRefusesCredentialsAndQueries) {
  EXPECT_EQ(NormalizeUrl("http://db:8123"), "http://db:8123");
  EXPECT_EQ(NormalizeUrl("http://db:8123/"), "http://db:8123");
  EXPECT_EQ(NormalizeUrl("HTTPS://db"), "https://db");
  EXPECT_EQ(NormalizeUrl("db.internal:8123"), "http://db.internal:8123");
  EXPECT_EQ(NormalizeUrl("http://[::1]:8123"), "http://[::1]:8123");
  for (const char* bad : {"", "ftp://db", "http://user:pw@db:8123", "http://user@db", "http://db:8123/?user=x",
                          "http://db/#x", "http://db/path", "http://", "http://db\n", "http://d b"}) {
    try {
      NormalizeUrl(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << bad;
      // The message quotes the URL as given, so it must not be one with a password in it...
      // except that it is the user's own input; it never leaves the process but on stderr.
    }
  }
  try {
    NormalizeUrl("http://bk:s3cr3t@db:8123");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no user or password in the URL"), std::string::npos) << e.what();
  }
}

TEST(ClickHouseVersion, Parses) {
  auto v = ServerVersion::Parse("18.16.1\n");
  EXPECT_EQ(v.major, 18);
  EXPECT_EQ(v.minor, 16);
  EXPECT_EQ(v.patch, 1);
  EXPECT_EQ(v.text, "18.16.1");
  EXPECT_TRUE(v.AtLeast(18, 16));
  EXPECT_TRUE(v.AtLeast(18, 1));
  EXPECT_FALSE(v.AtLeast(19, 1));
  EXPECT_FALSE(v.AtLeast(18, 17));
  auto n = ServerVersion::Parse("23.8.2.7");
  EXPECT_TRUE(n.AtLeast(23, 3));
  EXPECT_EQ(n.patch, 2);
  EXPECT_THROW(ServerVersion::Parse("garbage"), Error);
  EXPECT_THROW(ServerVersion::Parse("18"), Error);
}

TEST(ClickHouseTsv, UnescapesFieldsAndRows) {
  auto rows = ParseTsv("a\tb\\tc\n\\N\t\\\\x\\n\ny\\'z\t\\x41\\0\n");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"a", "b\tc"}));
  EXPECT_EQ(rows[1], (std::vector<std::string>{"", "\\x\n"}));
  EXPECT_EQ(rows[2], (std::vector<std::string>{"y'z", std::string("A\0", 2)}));
  EXPECT_TRUE(ParseTsv("").empty());
  EXPECT_EQ(ParseTsv("last"), (std::vector<std::vector<std::string>>{{"last"}}));
  EXPECT_EQ(ParseTsv("\n"), (std::vector<std::vector<std::string>>{{""}}));
  EXPECT_THROW(ParseTsv("a\\"), Error);
}

TEST(ClickHouseQuote, EscapesNamesAndStrings) {
  EXPECT_EQ(QuoteName("t"), "`t`");
  EXPECT_EQ(QuoteName("a`b\\c"), "`a\\`b\\\\c`");
  EXPECT_EQ(QuoteString("it's"), "'it\\'s'");
  EXPECT_EQ(ShortSql("SELECT\n1"), "SELECT 1");
  EXPECT_EQ(ShortSql(std::string(400, 'x')), std::string(300, 'x') + "...");
}

TEST(NativeType, KnownAndUnknownTypes) {
  using K = NativeType::Kind;
  struct Case {
    const char* name;
    K kind;
    uint64_t size;
  };
  for (const Case& c : std::vector<Case>{{"UInt8", K::kFixed, 1},
                                         {"Int64", K::kFixed, 8},
                                         {"Float32", K::kFixed, 4},
                                         {"Date", K::kFixed, 2},
                                         {"DateTime", K::kFixed, 4},
                                         {"DateTime('Europe/Berlin')", K::kFixed, 4},
                                         {"DateTime64(3, 'UTC')", K::kFixed, 8},
                                         {"Decimal(10, 2)", K::kFixed, 8},
                                         {"Decimal(9, 2)", K::kFixed, 4},
                                         {"Decimal(38, 2)", K::kFixed, 16},
                                         {"Decimal128(3)", K::kFixed, 16},
                                         {"UUID", K::kFixed, 16},
                                         {"FixedString(3)", K::kFixed, 3},
                                         {"Enum8('a' = 1, 'b,c' = 2)", K::kFixed, 1},
                                         {"Enum16('x' = 1000)", K::kFixed, 2},
                                         {"IPv6", K::kFixed, 16},
                                         {"String", K::kString, 0},
                                         {"Nullable(String)", K::kNullable, 0},
                                         {"Array(Array(UInt8))", K::kArray, 0},
                                         {"Tuple(UInt8, String)", K::kTuple, 0},
                                         {"Tuple(a UInt8, b Nullable(String))", K::kTuple, 0},
                                         {"Map(String, UInt64)", K::kArray, 0},
                                         {"LowCardinality(Nullable(String))", K::kLowCardinality, 0},
                                         {"SimpleAggregateFunction(sum, UInt64)", K::kFixed, 8},
                                         {"Point", K::kTuple, 0},
                                         {"MultiPolygon", K::kArray, 0}}) {
    std::string why;
    auto t = ParseNativeType(c.name, &why);
    ASSERT_TRUE(t.has_value()) << c.name << ": " << why;
    EXPECT_EQ(t->kind, c.kind) << c.name;
    if (c.kind == K::kFixed) {
      EXPECT_EQ(t->size, c.size) << c.name;
    }
  }
  auto lc = ParseNativeType("LowCardinality(Nullable(String))");
  ASSERT_TRUE(lc);
  EXPECT_EQ(lc->children[0].kind, K::kString);  // the keys lose their Nullable
  auto named = ParseNativeType("Tuple(a UInt8, b Nullable(String))");
  ASSERT_TRUE(named);
  ASSERT_EQ(named->children.size(), 2u);
  EXPECT_EQ(named->children[1].kind, K::kNullable);
  for (const char* bad : {"AggregateFunction(uniq, UInt64)", "Object('json')", "Nested(a UInt8)", "Foo", "",
                          "Array(", "Array(UInt8", "Tuple()", "FixedString(0)", "Decimal(99, 1)", "UInt8(3)",
                          "LowCardinality(Array(String))", "Array(AggregateFunction(sum, UInt8))"}) {
    std::string why;
    EXPECT_FALSE(ParseNativeType(bad, &why).has_value()) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
  std::string deep;
  for (int i = 0; i < 40; ++i) deep += "Array(";
  deep += "UInt8";
  for (int i = 0; i < 40; ++i) deep += ")";
  EXPECT_FALSE(ParseNativeType(deep).has_value());
}

// A Native stream written by hand (native.h has the layout).
class NativeWriter {
 public:
  NativeWriter& Varint(uint64_t v) {
    while (v >= 0x80) {
      out_ += static_cast<char>(v | 0x80);
      v >>= 7;
    }
    out_ += static_cast<char>(v);
    return *this;
  }
  NativeWriter& Str(const std::string& s) {
    Varint(s.size());
    out_ += s;
    return *this;
  }
  NativeWriter& U64(uint64_t v) {
    for (int i = 0; i < 8; ++i) out_ += static_cast<char>(v >> (8 * i));
    return *this;
  }
  NativeWriter& Raw(const std::string& s) {
    out_ += s;
    return *this;
  }
  NativeWriter& Header(uint64_t columns, uint64_t rows) { return Varint(columns).Varint(rows); }
  NativeWriter& Column(const std::string& name, const std::string& type) { return Str(name).Str(type); }
  const std::string& str() const { return out_; }

 private:
  std::string out_;
};

// A block of 3 rows: id UInt64, s String, n Nullable(Int32), a Array(String),
// lc LowCardinality(String), t Tuple(UInt8, FixedString(2)).
std::string Block(uint64_t first_id) {
  NativeWriter w;
  w.Header(6, 3);
  w.Column("id", "UInt64");
  for (uint64_t i = 0; i < 3; ++i) w.U64(first_id + i);
  w.Column("s", "String").Str("a").Str("").Str("ccc");
  w.Column("n", "Nullable(Int32)").Raw(std::string("\0\1\0", 3)).Raw(std::string(12, '\7'));
  w.Column("a", "Array(String)").U64(2).U64(2).U64(3).Str("x").Str("y").Str("z");
  w.Column("lc", "LowCardinality(String)").U64(1).U64(0x600).U64(2).Str("").Str("k").U64(3).Raw(std::string("\1\0\1", 3));
  w.Column("t", "Tuple(UInt8, FixedString(2))").Raw("\1\2\3").Raw("aabbcc");
  return w.str();
}

const std::vector<std::pair<std::string, std::string>> kColumns = {
    {"id", "UInt64"},         {"s", "String"},
    {"n", "Nullable(Int32)"}, {"a", "Array(String)"},
    {"lc", "LowCardinality(String)"}, {"t", "Tuple(UInt8, FixedString(2))"}};

void FeedInPieces(NativeValidator& v, const std::string& s, size_t piece) {
  for (size_t i = 0; i < s.size(); i += piece)
    v.Feed(reinterpret_cast<const uint8_t*>(s.data()) + i, std::min(piece, s.size() - i));
}

TEST(NativeValidator, CountsRowsOfWholeBlocksFedInAnyPieces) {
  const std::string stream = Block(1) + Block(4) + Block(7);
  for (size_t piece : {size_t{1}, size_t{2}, size_t{3}, size_t{7}, size_t{64}, stream.size()}) {
    NativeValidator v(kColumns);
    FeedInPieces(v, stream, piece);
    v.Finish();
    EXPECT_EQ(v.rows(), 9u) << piece;
    EXPECT_EQ(v.blocks(), 3u);
    EXPECT_EQ(v.bytes(), stream.size());
  }
  // Without expected columns, the first block's are taken.
  NativeValidator v;
  FeedInPieces(v, stream, 5);
  v.Finish();
  EXPECT_EQ(v.columns(), kColumns);
  // An empty stream (an empty table) is valid.
  NativeValidator e(kColumns);
  e.Finish();
  EXPECT_EQ(e.rows(), 0u);
}

TEST(NativeValidator, RejectsAStreamCutShortAnywhere) {
  const std::string stream = Block(1) + Block(4);
  for (size_t cut = 1; cut < stream.size(); ++cut) {
    if (cut == Block(1).size()) continue;  // a block boundary: valid
    NativeValidator v(kColumns);
    try {
      FeedInPieces(v, stream.substr(0, cut), 4);
      v.Finish();
      ADD_FAILURE() << "accepted a stream cut at byte " << cut;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kCorrupt);
    }
  }
}

TEST(NativeValidator, QuotesTheServersExceptionAppendedAfterABlock) {
  const std::string stream =
      Block(1) + "Code: 395, e.displayText() = DB::Exception: Value passed to 'throwIf' function is non zero, "
                 "e.what() = DB::Exception\n";
  NativeValidator v(kColumns);
  try {
    FeedInPieces(v, stream, 4096);
    v.Finish();
    FAIL() << "accepted an exception as a block";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorrupt);
    EXPECT_NE(std::string(e.what()).find("the server reported an error after 3 rows: Code: 395"), std::string::npos)
        << e.what();
  }
  // Fed byte by byte the same.
  NativeValidator w(kColumns);
  EXPECT_THROW(
      {
        FeedInPieces(w, stream, 1);
        w.Finish();
      },
      Error);
}

TEST(NativeValidator, RejectsOtherColumnsAndBrokenStructure) {
  auto reject = [](const std::string& s, const std::string& what) {
    NativeValidator v(kColumns);
    try {
      FeedInPieces(v, s, 3);
      v.Finish();
      ADD_FAILURE() << "accepted: " << what;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kCorrupt) << what;
    }
  };
  NativeWriter other;
  other.Header(1, 1).Column("id", "UInt32").Raw("abcd");
  reject(other.str(), "other columns");
  NativeWriter renamed;
  renamed.Header(6, 0).Column("ID", "UInt64").Column("s", "String").Column("n", "Nullable(Int32)")
      .Column("a", "Array(String)").Column("lc", "LowCardinality(String)").Column("t", "Tuple(UInt8, FixedString(2))");
  reject(renamed.str(), "a renamed column");
  // Array offsets that go down.
  NativeWriter bad_offsets;
  bad_offsets.Header(1, 2).Column("a", "Array(String)").U64(2).U64(1).Str("x").Str("y");
  NativeValidator v1(NativeColumns{{"a", "Array(String)"}});
  EXPECT_THROW(FeedInPieces(v1, bad_offsets.str(), 2), Error);
  // LowCardinality with a wrong version or index count.
  NativeWriter lc;
  lc.Header(1, 2).Column("lc", "LowCardinality(String)").U64(2);
  NativeValidator v2(NativeColumns{{"lc", "LowCardinality(String)"}});
  EXPECT_THROW(FeedInPieces(v2, lc.str(), 2), Error);
  NativeWriter lc2;
  lc2.Header(1, 2).Column("lc", "LowCardinality(String)").U64(1).U64(0x200).U64(1).Str("k").U64(3).Raw("\0\0\0");
  NativeValidator v3(NativeColumns{{"lc", "LowCardinality(String)"}});
  EXPECT_THROW(FeedInPieces(v3, lc2.str(), 2), Error);
  // A varint longer than 10 bytes.
  NativeValidator v4(kColumns);
  EXPECT_THROW(FeedInPieces(v4, std::string(11, '\xff'), 1), Error);
  // Unknown column types in the caller's list.
  EXPECT_THROW(NativeValidator(NativeColumns{{"x", "AggregateFunction(sum, UInt64)"}}), Error);
}

TEST(NativeValidator, NestedEmptyArraysAndZeroRowBlocks) {
  NativeWriter w;
  // A block with no rows carries no column data.
  w.Header(2, 0).Column("a", "Array(Array(String))").Column("m", "Map(String, UInt8)");
  w.Header(2, 2).Column("a", "Array(Array(String))").U64(0).U64(2).U64(0).U64(1).Str("q");
  w.Column("m", "Map(String, UInt8)").U64(1).U64(1).Str("k").Raw("\5");
  NativeValidator v(NativeColumns{{"a", "Array(Array(String))"}, {"m", "Map(String, UInt8)"}});
  FeedInPieces(v, w.str(), 1);
  v.Finish();
  EXPECT_EQ(v.rows(), 2u);
  EXPECT_EQ(v.blocks(), 2u);
}

}  // namespace
}  // namespace bulwark::source::clickhouse

namespace bulwark::source::clickhouse {
namespace {

TEST(ClickHouseSchema, EscapesNamesLikeClickHouse) {
  EXPECT_EQ(EscapeForFileName("events_2024"), "events_2024");
  EXPECT_EQ(EscapeForFileName(".inner.mv"), "%2Einner%2Emv");
  EXPECT_EQ(EscapeForFileName("a b/c"), "a%20b%2Fc");
  EXPECT_EQ(EscapeForFileName("\xff"), "%FF");
  EXPECT_EQ(EscapeForFileName("database.sql"), "database%2Esql") << "never a schema file's name";
}

TEST(ClickHouseSchema, SelectionOfDatabasesAndTables) {
  Selection all;
  EXPECT_TRUE(all.Database("app"));
  EXPECT_FALSE(all.Database("system"));
  EXPECT_FALSE(all.Database("information_schema"));
  EXPECT_TRUE(all.Table("app", "t"));
  Selection sys{{"system"}, {}, {}};
  EXPECT_TRUE(sys.Database("system")) << "named literally";
  Selection glob{{"sys*"}, {}, {}};
  EXPECT_FALSE(glob.Database("system")) << "not by a glob";
  Selection s{{"app*"}, {"app*.events", "app.l*"}, {"*.tmp_*", "app2.*"}};
  EXPECT_TRUE(s.Table("app", "events"));
  EXPECT_TRUE(s.Table("app", "log"));
  EXPECT_TRUE(s.Table("app1", "events"));
  EXPECT_FALSE(s.Table("app2", "events"));
  EXPECT_FALSE(s.Table("app", "tmp_x"));
  EXPECT_FALSE(s.Table("app", "other"));
  EXPECT_FALSE(s.Table("logs", "events"));
}

TEST(ClickHouseSchema, RewritesDatabaseReferencesOutsideStrings) {
  EXPECT_EQ(RewriteDatabase("CREATE TABLE app.t (x UInt8) ENGINE = Log", "app", "new"),
            "CREATE TABLE new.t (x UInt8) ENGINE = Log");
  EXPECT_EQ(RewriteDatabase("CREATE VIEW app.v AS SELECT a.x FROM app.t AS a JOIN `app`.u USING x WHERE s = 'app.t'",
                            "app", "copy"),
            "CREATE VIEW copy.v AS SELECT a.x FROM copy.t AS a JOIN copy.u USING x WHERE s = 'app.t'");
  EXPECT_EQ(RewriteDatabase("CREATE MATERIALIZED VIEW app.mv TO app . dst AS SELECT * FROM other.app.x", "app", "b"),
            "CREATE MATERIALIZED VIEW b.mv TO b . dst AS SELECT * FROM other.app.x");
  EXPECT_EQ(RewriteDatabase("CREATE TABLE app.t ENGINE = Distributed(c, 'app', 't')", "app", "z"),
            "CREATE TABLE z.t ENGINE = Distributed(c, 'app', 't')");
  EXPECT_EQ(RewriteDatabase("CREATE TABLE app.t AS myapp.t", "app", "new db"), "CREATE TABLE `new db`.t AS myapp.t");
  EXPECT_EQ(RewriteDatabase("CREATE DATABASE app ENGINE = Ordinary", "app", "restored"),
            "CREATE DATABASE restored ENGINE = Ordinary");
  EXPECT_EQ(RewriteDatabase("CREATE DATABASE `app` ENGINE = Atomic", "app", "r"), "CREATE DATABASE r ENGINE = Atomic");
  EXPECT_EQ(RewriteDatabase("CREATE DATABASE other", "app", "r"), "CREATE DATABASE other");
  // Several at once, each reference once.
  EXPECT_EQ(RewriteDatabases("CREATE VIEW a.v AS SELECT * FROM b.t, a.u", {{"a", "b"}, {"b", "c"}}),
            "CREATE VIEW b.v AS SELECT * FROM c.t, b.u");
  // The identity keeps the text as it was.
  EXPECT_EQ(RewriteDatabases("CREATE TABLE `app`.t AS \"app\".u", {{"app", "app"}}), "CREATE TABLE `app`.t AS \"app\".u");
  // Unterminated quotes do not run past the end.
  EXPECT_EQ(RewriteDatabase("SELECT 'app.x", "app", "b"), "SELECT 'app.x");
  EXPECT_EQ(RewriteDatabase("SELECT `app", "app", "b"), "SELECT `app");
}

TEST(ClickHouseSchema, IfNotExists) {
  EXPECT_EQ(IfNotExists("CREATE DATABASE app ENGINE = Ordinary"), "CREATE DATABASE IF NOT EXISTS app ENGINE = Ordinary");
  EXPECT_EQ(IfNotExists("CREATE TABLE a.t (x UInt8) ENGINE = Log"), "CREATE TABLE IF NOT EXISTS a.t (x UInt8) ENGINE = Log");
  EXPECT_EQ(IfNotExists("CREATE MATERIALIZED VIEW a.mv AS SELECT 1"),
            "CREATE MATERIALIZED VIEW IF NOT EXISTS a.mv AS SELECT 1");
  EXPECT_EQ(IfNotExists("CREATE TABLE IF NOT EXISTS a.t"), "CREATE TABLE IF NOT EXISTS a.t");
  EXPECT_EQ(IfNotExists("ATTACH TABLE a.t"), "CREATE TABLE IF NOT EXISTS a.t");
  EXPECT_EQ(IfNotExists("SELECT 1"), "SELECT 1");
}

}  // namespace
}  // namespace bulwark::source::clickhouse
