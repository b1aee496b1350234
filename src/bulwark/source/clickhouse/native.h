// ClickHouse's Native format, as the HTTP interface writes it for
// `SELECT ... FORMAT Native`: checked as it streams past, without keeping it.
//
// Why: a SELECT that fails after the server has started answering (a read
// error, a killed query, a memory limit) still ends with status 200; the
// server appends its exception text ("Code: 241, e.displayText() = ...") to
// the body (http.h). A backup must not store such a stream as a table's data.
// NativeValidator walks the stream's structure block by block: the text of an
// exception is not a block with the table's columns, and a stream cut short
// does not end at a block boundary. It also counts the rows, which become the
// table's row-count fact.
//
// Format (ClickHouse src/Formats/NativeWriter.cpp; here as 18.16 writes it
// over HTTP, client revision 0: no block info, no custom serialization
// flags): a sequence of blocks, each
//   varint  number of columns
//   varint  number of rows
//   per column: string name, string type name, then (when rows > 0) the
//   column's data in the type's bulk binary serialization.
// Strings are a varint length and the bytes. Data per type, for N rows:
//   fixed-size types (UInt8..UInt256, Int8..Int256, Float32/64, Date,
//     Date32, DateTime, DateTime64, Decimal*, Enum8/16, UUID, IPv4, IPv6,
//     Bool, Interval*)      N values, little-endian
//   String                  N strings
//   FixedString(K)          N x K bytes
//   Nullable(T)             N bytes null map, then T for N rows
//   Array(T)                N UInt64 end offsets (cumulative within the
//                           block), then T for the last offset's rows
//   Map(K, V)               as Array(Tuple(K, V))
//   Tuple(T1, ...)          each element for N rows, in order (named tuples too)
//   LowCardinality(T)       UInt64 key version (1), UInt64 flags (index width
//                           in the low byte: 0..3 = 1, 2, 4, 8 bytes; bit 9:
//                           keys follow; bit 8, a global dictionary, is never
//                           set in Native), UInt64 key count and the keys
//                           (type T without Nullable), UInt64 row count (= N)
//                           and N indexes
//   SimpleAggregateFunction(f, T)  as T
//   Nothing                 N bytes
// Types outside this list (AggregateFunction states, Object/JSON, Variant,
// Dynamic) are not known: ParseNativeType says so, and the backup lets the
// server buffer such a table's result instead (Client::Stream).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bulwark::source::clickhouse {

// A column type as the Native format lays it out.
struct NativeType {
  enum class Kind { kFixed, kString, kNullable, kArray, kTuple, kLowCardinality };
  Kind kind = Kind::kFixed;
  uint64_t size = 0;                // kFixed: bytes per row (FixedString(K): K)
  std::vector<NativeType> children;  // kNullable, kArray, kLowCardinality: 1; kTuple: its elements
};

// Parses a type name as ClickHouse writes it ("Nullable(Array(String))",
// "Tuple(a UInt8, b String)", "DateTime64(3, 'UTC')"). nullopt, with the
// reason in *why, for a malformed name or a type this decoder does not know.
// Nesting is limited to 32 levels.
std::optional<NativeType> ParseNativeType(std::string_view name, std::string* why = nullptr);

// Column names and type names, in order.
using NativeColumns = std::vector<std::pair<std::string, std::string>>;

// Checks a Native stream fed in pieces of any size. Memory: the block
// header's names and type names, and a frame per nesting level.
class NativeValidator {
 public:
  // `columns`: the names and type names every block must have, in order;
  // empty: the first block's are taken, and the others must repeat them.
  explicit NativeValidator(NativeColumns columns = {});
  ~NativeValidator();
  NativeValidator(const NativeValidator&) = delete;
  NativeValidator& operator=(const NativeValidator&) = delete;

  // Consumes the next `n` bytes. Throws Error(kCorrupt) at the first byte
  // that cannot continue a valid stream ("Native stream, byte 1234, block 7:
  // column 'x' is Int8 here, UInt64 before"); when the current block starts
  // with ClickHouse's exception text, the message quotes it instead ("the
  // server reported an error after 123 rows: Code: 241, ..."). After a
  // throw, the validator is unusable.
  void Feed(const uint8_t* data, size_t n);
  // The stream ended: throws Error(kCorrupt) unless it ended after a whole
  // block (or is empty).
  void Finish();

  uint64_t rows() const;    // rows of the complete blocks so far
  uint64_t blocks() const;  // complete blocks
  uint64_t bytes() const;   // bytes consumed
  // The column names and type names (of the first block, or as given).
  const NativeColumns& columns() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace bulwark::source::clickhouse
