#include "bulwark/source/clickhouse/native.h"

#include <algorithm>
#include <cctype>
#include <map>

#include "bulwark/base/error.h"

namespace bulwark::source::clickhouse {
namespace {

constexpr int kMaxDepth = 32;
constexpr uint64_t kMaxNameBytes = 1u << 20;        // a column's name or type name
constexpr uint64_t kMaxColumns = 1u << 20;
constexpr uint64_t kMaxRows = uint64_t{1} << 40;     // per block, and per nested column
constexpr uint64_t kMaxStringBytes = uint64_t{1} << 40;
constexpr size_t kHeadBytes = 512;                   // the start of a block kept for messages

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool IsIdent(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Splits "a, (b, c), 'd,e'" at the commas outside parentheses and quotes.
// False when parentheses or quotes do not balance.
bool SplitArgs(std::string_view s, std::vector<std::string_view>* out) {
  int depth = 0;
  char quote = 0;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (quote) {
      if (c == '\\') ++i;
      else if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"' || c == '`') {
      quote = c;
    } else if (c == '(') {
      ++depth;
    } else if (c == ')') {
      if (--depth < 0) return false;
    } else if (c == ',' && depth == 0) {
      out->push_back(Trim(s.substr(start, i - start)));
      start = i + 1;
    }
  }
  if (depth != 0 || quote) return false;
  out->push_back(Trim(s.substr(start)));
  return true;
}

bool ParseUint(std::string_view s, uint64_t* v) {
  s = Trim(s);
  if (s.empty() || s.size() > 12) return false;
  uint64_t n = 0;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  *v = n;
  return true;
}

NativeType Fixed(uint64_t size) {
  NativeType t;
  t.kind = NativeType::Kind::kFixed;
  t.size = size;
  return t;
}

NativeType Wrap(NativeType::Kind kind, std::vector<NativeType> children) {
  NativeType t;
  t.kind = kind;
  t.children = std::move(children);
  return t;
}

const std::map<std::string_view, uint64_t>& FixedSizes() {
  static const std::map<std::string_view, uint64_t> m = {
      {"UInt8", 1},   {"Int8", 1},     {"Bool", 1},       {"Nothing", 1},    {"UInt16", 2},    {"Int16", 2},
      {"Date", 2},    {"UInt32", 4},   {"Int32", 4},      {"Float32", 4},    {"Date32", 4},    {"IPv4", 4},
      {"UInt64", 8},  {"Int64", 8},    {"Float64", 8},    {"UInt128", 16},   {"Int128", 16},   {"UUID", 16},
      {"IPv6", 16},   {"UInt256", 32}, {"Int256", 32},
  };
  return m;
}

std::optional<NativeType> Parse(std::string_view s, int depth, std::string* why) {
  auto fail = [&](const std::string& w) -> std::optional<NativeType> {
    if (why && why->empty()) *why = w;
    return std::nullopt;
  };
  if (depth > kMaxDepth) return fail("type nested deeper than " + std::to_string(kMaxDepth) + " levels");
  s = Trim(s);
  size_t n = 0;
  while (n < s.size() && IsIdent(s[n])) ++n;
  if (n == 0) return fail("malformed type name '" + std::string(s.substr(0, 100)) + "'");
  const std::string_view name = s.substr(0, n);
  std::string_view rest = Trim(s.substr(n));
  std::vector<std::string_view> args;
  const bool has_args = !rest.empty();
  if (has_args) {
    if (rest.front() != '(' || rest.back() != ')' || !SplitArgs(rest.substr(1, rest.size() - 2), &args))
      return fail("malformed type name '" + std::string(s.substr(0, 100)) + "'");
  }
  const std::string type(name);
  auto one = [&]() -> std::optional<NativeType> {
    if (args.size() != 1) return fail(type + " takes one type argument");
    return Parse(args[0], depth + 1, why);
  };

  if (auto it = FixedSizes().find(name); it != FixedSizes().end()) {
    if (has_args) return fail(type + " takes no arguments");
    return Fixed(it->second);
  }
  if (name == "String") {
    if (has_args) return fail("String takes no arguments");
    NativeType t;
    t.kind = NativeType::Kind::kString;
    return t;
  }
  if (name == "DateTime") return Fixed(4);               // DateTime, DateTime('tz')
  if (name == "DateTime64") return Fixed(8);             // DateTime64(p[, 'tz'])
  if (name == "Enum8") return Fixed(1);
  if (name == "Enum16") return Fixed(2);
  if (name.substr(0, 8) == "Interval") return Fixed(8);  // IntervalSecond, ...
  if (name == "Decimal32") return Fixed(4);
  if (name == "Decimal64") return Fixed(8);
  if (name == "Decimal128") return Fixed(16);
  if (name == "Decimal256") return Fixed(32);
  if (name == "Decimal") {
    uint64_t p = 0;
    if (args.empty() || !ParseUint(args[0], &p) || p < 1 || p > 76) return fail("malformed Decimal precision");
    return Fixed(p <= 9 ? 4 : p <= 18 ? 8 : p <= 38 ? 16 : 32);
  }
  if (name == "FixedString") {
    uint64_t k = 0;
    if (args.size() != 1 || !ParseUint(args[0], &k) || k < 1 || k > (1u << 24)) return fail("malformed FixedString size");
    return Fixed(k);
  }
  if (name == "Nullable") {
    auto c = one();
    if (!c) return c;
    return Wrap(NativeType::Kind::kNullable, {std::move(*c)});
  }
  if (name == "Array") {
    auto c = one();
    if (!c) return c;
    return Wrap(NativeType::Kind::kArray, {std::move(*c)});
  }
  if (name == "LowCardinality") {
    if (args.size() != 1) return fail("LowCardinality takes one type argument");
    auto c = Parse(args[0], depth + 1, why);
    if (!c) return c;
    // The keys are stored without their Nullable: the null is key 0.
    NativeType keys = c->kind == NativeType::Kind::kNullable ? c->children[0] : *c;
    if (keys.kind != NativeType::Kind::kFixed && keys.kind != NativeType::Kind::kString)
      return fail("LowCardinality of a composite type");
    return Wrap(NativeType::Kind::kLowCardinality, {std::move(keys)});
  }
  if (name == "Tuple") {
    if (args.empty()) return fail("Tuple without elements");
    std::vector<NativeType> elems;
    for (std::string_view a : args) {
      // A named element, "x UInt8": its type follows the name.
      size_t sp = 0;
      while (sp < a.size() && IsIdent(a[sp])) ++sp;
      std::string_view t = a;
      if (sp > 0 && sp < a.size() && std::isspace(static_cast<unsigned char>(a[sp]))) t = a.substr(sp);
      auto e = Parse(t, depth + 1, why);
      if (!e) return e;
      elems.push_back(std::move(*e));
    }
    return Wrap(NativeType::Kind::kTuple, std::move(elems));
  }
  if (name == "Map") {
    if (args.size() != 2) return fail("Map takes two type arguments");
    auto k = Parse(args[0], depth + 1, why);
    if (!k) return k;
    auto v = Parse(args[1], depth + 1, why);
    if (!v) return v;
    return Wrap(NativeType::Kind::kArray, {Wrap(NativeType::Kind::kTuple, {std::move(*k), std::move(*v)})});
  }
  if (name == "SimpleAggregateFunction") {
    if (args.size() < 2) return fail("malformed SimpleAggregateFunction");
    return Parse(args.back(), depth + 1, why);
  }
  // Geo types are aliases.
  NativeType point = Wrap(NativeType::Kind::kTuple, {Fixed(8), Fixed(8)});
  auto arrays = [&](int levels) {
    NativeType t = point;
    for (int i = 0; i < levels; ++i) t = Wrap(NativeType::Kind::kArray, {std::move(t)});
    return t;
  };
  if (name == "Point") return point;
  if (name == "Ring" || name == "LineString") return arrays(1);
  if (name == "Polygon" || name == "MultiLineString") return arrays(2);
  if (name == "MultiPolygon") return arrays(3);
  return fail("type " + type + " has no known Native layout");
}

std::string Printable(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\n' || c == '\r') break;
    out += std::isprint(static_cast<unsigned char>(c)) ? c : '?';
  }
  return out;
}

}  // namespace

std::optional<NativeType> ParseNativeType(std::string_view name, std::string* why) {
  if (why) why->clear();
  return Parse(name, 0, why);
}

// ---------------------------------------------------------------------------
// The validator: a stack of frames, each waiting for one primitive read
// (skip n bytes, a fixed-width integer, a varint, a short string).

struct NativeValidator::State {
  enum class Prim { kNone, kSkip, kFixed, kVarint, kBytes };
  struct Frame {
    const NativeType* type;  // nullptr: a block
    uint64_t count = 0;      // rows (a block: its row count, once read)
    int phase = 0;
    uint64_t i = 0, a = 0;
  };

  NativeColumns columns;
  std::vector<NativeType> types;  // parsed columns
  bool given = false;             // columns came from the caller
  std::vector<Frame> stack;
  uint64_t rows = 0, blocks = 0, bytes = 0;

  Prim prim = Prim::kNone;
  uint64_t skip_left = 0;
  size_t fixed_need = 0, fixed_have = 0;
  uint8_t fixed_buf[8] = {};
  uint64_t value = 0;
  int varint_shift = 0;
  uint64_t bytes_need = 0;
  std::string str;
  std::string cur_name;
  std::string head;  // the current block's first bytes
  const uint8_t* rest = nullptr;  // the unconsumed input of the current Feed, for messages
  size_t rest_len = 0;

  [[noreturn]] void Fail(const std::string& what) {
    std::string h = head;
    if (h.size() < kHeadBytes && rest) h.append(reinterpret_cast<const char*>(rest), std::min(rest_len, kHeadBytes - h.size()));
    if (h.rfind("Code: ", 0) == 0)
      throw Error(ErrorCode::kCorrupt, "the server reported an error after " + std::to_string(rows) +
                                           " rows: " + Printable(h).substr(0, 400));
    throw Error(ErrorCode::kCorrupt, "Native stream, byte " + std::to_string(bytes) + ", block " +
                                         std::to_string(blocks + 1) + ": " + what);
  }

  void Skip(uint64_t n) {
    if (n == 0) return;
    prim = Prim::kSkip;
    skip_left = n;
  }
  void FixedInt(size_t k) {
    prim = Prim::kFixed;
    fixed_need = k;
    fixed_have = 0;
  }
  void Varint() {
    prim = Prim::kVarint;
    value = 0;
    varint_shift = 0;
  }
  void ReadBytes(uint64_t n) {
    str.clear();
    if (n == 0) return;  // value is ready: an empty string
    prim = Prim::kBytes;
    bytes_need = n;
  }
  void Push(const NativeType* t, uint64_t count) {
    if (count > 0) stack.push_back({t, count, 0, 0, 0});
  }
  uint64_t Mul(uint64_t a, uint64_t b) {
    uint64_t r;
    if (__builtin_mul_overflow(a, b, &r) || r > kMaxStringBytes) Fail("column data size overflows");
    return r;
  }

  void StepBlock(Frame& f) {
    switch (f.phase) {
      case 0:
        f.phase = 1;
        Varint();
        return;
      case 1:
        if (value > kMaxColumns) Fail("implausible column count " + std::to_string(value));
        if ((given || blocks > 0) && value != columns.size())
          Fail(std::to_string(value) + " columns, expected " + std::to_string(columns.size()));
        if (value == 0) Fail("a block without columns");
        f.a = value;
        f.phase = 2;
        Varint();
        return;
      case 2:
        if (value > kMaxRows) Fail("implausible row count " + std::to_string(value));
        f.count = value;
        f.phase = 3;
        return;
      case 3:
        if (f.i == f.a) {
          rows += f.count;
          ++blocks;
          stack.pop_back();
          return;
        }
        f.phase = 4;
        Varint();
        return;
      case 4:
        if (value > kMaxNameBytes) Fail("implausible column name length " + std::to_string(value));
        f.phase = 5;
        ReadBytes(value);
        return;
      case 5:
        cur_name = std::move(str);
        f.phase = 6;
        Varint();
        return;
      case 6:
        if (value > kMaxNameBytes) Fail("implausible type name length " + std::to_string(value));
        f.phase = 7;
        ReadBytes(value);
        return;
      case 7: {
        const size_t i = static_cast<size_t>(f.i);
        if (i < columns.size()) {
          if (columns[i].first != cur_name || columns[i].second != str)
            Fail("column " + std::to_string(i + 1) + " is '" + Printable(cur_name).substr(0, 100) + " " +
                 Printable(str).substr(0, 100) + "', expected '" + columns[i].first + " " + columns[i].second + "'");
        } else {
          std::string why;
          auto t = ParseNativeType(str, &why);
          if (!t) Fail("column '" + Printable(cur_name).substr(0, 100) + "': " + why);
          columns.emplace_back(std::move(cur_name), std::move(str));
          types.push_back(std::move(*t));
        }
        f.i++;
        f.phase = 3;
        const uint64_t n = f.count;
        const NativeType* t = &types[i];
        Push(t, n);  // may reallocate: `f` is not used after this
        return;
      }
    }
  }

  void StepData(Frame& f) {
    const NativeType& t = *f.type;
    switch (t.kind) {
      case NativeType::Kind::kFixed:
        if (f.phase == 0) {
          f.phase = 1;
          Skip(Mul(f.count, t.size));
        } else {
          stack.pop_back();
        }
        return;
      case NativeType::Kind::kString:
        if (f.phase == 0) {
          if (f.i == f.count) {
            stack.pop_back();
            return;
          }
          f.phase = 1;
          Varint();
        } else {
          if (value > kMaxStringBytes) Fail("implausible string length " + std::to_string(value));
          f.phase = 0;
          f.i++;
          Skip(value);
        }
        return;
      case NativeType::Kind::kNullable:
        if (f.phase == 0) {
          f.phase = 1;
          Skip(f.count);
        } else if (f.phase == 1) {
          f.phase = 2;
          Push(&t.children[0], f.count);
        } else {
          stack.pop_back();
        }
        return;
      case NativeType::Kind::kArray:
        if (f.phase == 0) {
          if (f.i == f.count) {
            f.phase = 2;
            Push(&t.children[0], f.a);
            return;
          }
          f.phase = 1;
          FixedInt(8);
        } else if (f.phase == 1) {
          if (value < f.a) Fail("array offsets decrease");
          if (value > kMaxRows) Fail("implausible array offset " + std::to_string(value));
          f.a = value;
          f.i++;
          f.phase = 0;
        } else {
          stack.pop_back();
        }
        return;
      case NativeType::Kind::kTuple:
        if (static_cast<size_t>(f.phase) < t.children.size()) {
          const uint64_t n = f.count;
          const NativeType* c = &t.children[static_cast<size_t>(f.phase++)];
          Push(c, n);
        } else {
          stack.pop_back();
        }
        return;
      case NativeType::Kind::kLowCardinality:
        switch (f.phase) {
          case 0:
            f.phase = 1;
            FixedInt(8);
            return;
          case 1:
            if (value != 1) Fail("LowCardinality key serialization version " + std::to_string(value) + ", expected 1");
            f.phase = 2;
            FixedInt(8);
            return;
          case 2: {
            const uint64_t width = value & 0xff;
            if (width > 3) Fail("LowCardinality index type " + std::to_string(width));
            if (value & (1u << 8)) Fail("LowCardinality with a global dictionary (not written by Native)");
            if (!(value & (1u << 9))) Fail("LowCardinality without keys");
            if (value >> 11) Fail("LowCardinality flags " + std::to_string(value));
            f.a = uint64_t{1} << width;
            f.phase = 3;
            FixedInt(8);
            return;
          }
          case 3: {
            if (value > kMaxRows) Fail("implausible LowCardinality key count " + std::to_string(value));
            f.phase = 4;
            const uint64_t keys = value;
            const NativeType* c = &t.children[0];
            Push(c, keys);
            return;
          }
          case 4:
            f.phase = 5;
            FixedInt(8);
            return;
          case 5:
            if (value != f.count)
              Fail("LowCardinality with " + std::to_string(value) + " indexes for " + std::to_string(f.count) +
                   " rows");
            f.phase = 6;
            Skip(Mul(f.count, f.a));
            return;
          default:
            stack.pop_back();
            return;
        }
    }
  }

  void Step() {
    Frame& f = stack.back();
    if (f.type == nullptr)
      StepBlock(f);
    else
      StepData(f);
  }

  // Fast paths for the common long runs, on bytes already in this piece: the
  // strings of a String column and the offsets of an Array column. They
  // consume only whole items that the step-by-step path would accept, and
  // leave anything else (an item cut by the piece's end, a value the checks
  // refuse) to it, so both paths agree on every input.
  size_t FastStrings(Frame& f, const uint8_t* q, size_t avail) {
    size_t used = 0;
    while (f.i < f.count) {
      uint64_t len = 0;
      int shift = 0;
      size_t k = used;
      bool complete = false;
      while (k < avail && shift < 63) {
        const uint8_t b = q[k++];
        len |= uint64_t{b & 0x7fu} << shift;
        shift += 7;
        if (!(b & 0x80)) {
          complete = true;
          break;
        }
      }
      if (!complete || len > kMaxStringBytes || len > avail - k) break;
      used = k + static_cast<size_t>(len);
      f.i++;
    }
    return used;
  }
  size_t FastOffsets(Frame& f, const uint8_t* q, size_t avail) {
    size_t used = 0;
    while (f.i < f.count && avail - used >= 8) {
      uint64_t v = 0;
      for (size_t b = 8; b-- > 0;) v = (v << 8) | q[used + b];
      if (v < f.a || v > kMaxRows) break;
      f.a = v;
      f.i++;
      used += 8;
    }
    return used;
  }

  void Consumed(const uint8_t* p, size_t k) {
    if (head.size() < kHeadBytes) head.append(reinterpret_cast<const char*>(p), std::min(k, kHeadBytes - head.size()));
    bytes += k;
  }
};

NativeValidator::NativeValidator(NativeColumns columns)
    : s_(std::make_unique<State>()) {
  for (const auto& [name, type] : columns) {
    std::string why;
    auto t = ParseNativeType(type, &why);
    if (!t) throw Error(ErrorCode::kInvalidArgument, "column '" + name + "': " + why);
    s_->types.push_back(std::move(*t));
  }
  s_->given = !columns.empty();
  s_->columns = std::move(columns);
}

NativeValidator::~NativeValidator() = default;

void NativeValidator::Feed(const uint8_t* p, size_t n) {
  State& s = *s_;
  using Prim = State::Prim;
  size_t pos = 0;
  for (;;) {
    s.rest = p + pos;
    s.rest_len = n - pos;
    if (s.prim == Prim::kNone) {
      if (s.stack.empty()) {
        if (pos == n) return;
        s.head.clear();
        s.stack.push_back({nullptr, 0, 0, 0, 0});
      }
      State::Frame& f = s.stack.back();
      if (f.type && f.phase == 0 && pos < n &&
          (f.type->kind == NativeType::Kind::kString || f.type->kind == NativeType::Kind::kArray)) {
        const size_t used = f.type->kind == NativeType::Kind::kString ? s.FastStrings(f, p + pos, n - pos)
                                                                      : s.FastOffsets(f, p + pos, n - pos);
        if (used > 0) {
          s.Consumed(p + pos, used);
          pos += used;
          continue;
        }
      }
      s.Step();
      continue;
    }
    if (pos == n) return;
    const uint8_t* q = p + pos;
    const size_t avail = n - pos;
    switch (s.prim) {
      case Prim::kSkip: {
        size_t k = static_cast<size_t>(std::min<uint64_t>(s.skip_left, avail));
        s.Consumed(q, k);
        pos += k;
        s.skip_left -= k;
        if (s.skip_left == 0) s.prim = Prim::kNone;
        break;
      }
      case Prim::kFixed: {
        size_t k = std::min(s.fixed_need - s.fixed_have, avail);
        std::copy(q, q + k, s.fixed_buf + s.fixed_have);
        s.fixed_have += k;
        s.Consumed(q, k);
        pos += k;
        if (s.fixed_have == s.fixed_need) {
          uint64_t v = 0;
          for (size_t i = s.fixed_need; i-- > 0;) v = (v << 8) | s.fixed_buf[i];
          s.value = v;
          s.prim = Prim::kNone;
        }
        break;
      }
      case Prim::kVarint: {
        uint8_t b = *q;
        s.Consumed(q, 1);
        pos += 1;
        if (s.varint_shift >= 63 && (b & 0x7e)) s.Fail("varint overflows 64 bits");
        s.value |= uint64_t{b & 0x7fu} << s.varint_shift;
        s.varint_shift += 7;
        if (!(b & 0x80)) s.prim = Prim::kNone;
        else if (s.varint_shift > 63) s.Fail("varint longer than 10 bytes");
        break;
      }
      case Prim::kBytes: {
        size_t k = static_cast<size_t>(std::min<uint64_t>(s.bytes_need - s.str.size(), avail));
        s.str.append(reinterpret_cast<const char*>(q), k);
        s.Consumed(q, k);
        pos += k;
        if (s.str.size() == s.bytes_need) s.prim = Prim::kNone;
        break;
      }
      case Prim::kNone:
        break;
    }
  }
}

void NativeValidator::Finish() {
  State& s = *s_;
  s.rest = nullptr;
  s.rest_len = 0;
  if (!s.stack.empty() || s.prim != State::Prim::kNone) s.Fail("the stream ends inside a block");
}

uint64_t NativeValidator::rows() const { return s_->rows; }
uint64_t NativeValidator::blocks() const { return s_->blocks; }
uint64_t NativeValidator::bytes() const { return s_->bytes; }
const NativeColumns& NativeValidator::columns() const { return s_->columns; }

}  // namespace bulwark::source::clickhouse
