#include "bulwark/config/cron.h"

#include <array>
#include <cctype>
#include <vector>

#include "bulwark/base/error.h"
#include "bulwark/config/config.h"

namespace bulwark::config {
namespace {

constexpr int64_t kSecondsPerDay = 86400;

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
// days_from_civil).
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

struct Civil {
  int64_t year;
  int month;  // 1..12
  int day;    // 1..31
};

Civil CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  return {yoe + era * 400 + (m <= 2), m, d};
}

// 0 = Sunday. Valid for z >= 0 (1970-01-01 was a Thursday).
int WeekdayFromDays(int64_t z) { return static_cast<int>((z + 4) % 7); }

// The largest day of month `m` in any year (29 for February).
int MaxDaysInMonth(int m) {
  static constexpr std::array<int, 13> kDays = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return kDays[m];
}

struct FieldSpec {
  const char* name;
  int min;
  int max;
  const char* const* names;  // lower-case 3-letter names, or nullptr
  int name_base;             // the value names[0] stands for
  int name_count;
};

constexpr const char* kMonthNames[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                       "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr const char* kDayNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

constexpr FieldSpec kFields[5] = {
    {"minute", 0, 59, nullptr, 0, 0},
    {"hour", 0, 23, nullptr, 0, 0},
    {"day-of-month", 1, 31, nullptr, 0, 0},
    {"month", 1, 12, kMonthNames, 1, 12},
    {"day-of-week", 0, 7, kDayNames, 0, 7},
};

class Parser {
 public:
  explicit Parser(std::string_view expr) : expr_(expr) {}

  [[noreturn]] void Fail(const std::string& why) const {
    std::string shown(expr_.substr(0, 100));
    if (expr_.size() > 100) shown += "...";
    throw Error(ErrorCode::kInvalidArgument, "invalid cron expression '" + shown + "': " + why);
  }

  // Parses one value (number or name) of `field`.
  int Value(std::string_view s, const FieldSpec& f) const {
    if (s.empty()) Fail(std::string(f.name) + ": missing value");
    if (std::isdigit(static_cast<unsigned char>(s[0]))) {
      int v = 0;
      for (char c : s) {
        if (!std::isdigit(static_cast<unsigned char>(c)))
          Fail(std::string(f.name) + ": '" + std::string(s) + "' is not a number");
        v = v * 10 + (c - '0');
        if (v > 1000) break;
      }
      if (v < f.min || v > f.max)
        Fail(std::string(f.name) + ": value " + std::string(s) + " out of range " +
             std::to_string(f.min) + "-" + std::to_string(f.max));
      return v;
    }
    if (f.names != nullptr && s.size() == 3) {
      std::string lower(s);
      for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      for (int i = 0; i < f.name_count; ++i)
        if (lower == f.names[i]) return f.name_base + i;
    }
    Fail(std::string(f.name) + ": unknown value '" + std::string(s) + "'");
  }

  int Step(std::string_view s, const FieldSpec& f) const {
    if (s.empty()) Fail(std::string(f.name) + ": missing step after '/'");
    int v = 0;
    for (char c : s) {
      if (!std::isdigit(static_cast<unsigned char>(c)))
        Fail(std::string(f.name) + ": step '" + std::string(s) + "' is not a number");
      v = v * 10 + (c - '0');
      if (v > 1000) break;
    }
    const int span = f.max - f.min + 1;
    if (v < 1 || v > span)
      Fail(std::string(f.name) + ": step " + std::string(s) + " out of range 1-" + std::to_string(span));
    return v;
  }

  // Returns a bit mask of the values selected by `text`.
  uint64_t Field(std::string_view text, const FieldSpec& f) const {
    uint64_t mask = 0;
    size_t start = 0;
    while (true) {
      size_t comma = text.find(',', start);
      std::string_view item =
          text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
      mask |= Item(item, f);
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    return mask;
  }

  uint64_t Item(std::string_view item, const FieldSpec& f) const {
    if (item.empty()) Fail(std::string(f.name) + ": empty list item");
    std::string_view base = item;
    int step = 1;
    bool has_step = false;
    if (size_t slash = item.find('/'); slash != std::string_view::npos) {
      base = item.substr(0, slash);
      step = Step(item.substr(slash + 1), f);
      has_step = true;
    }
    int lo, hi;
    if (base == "*") {
      lo = f.min;
      hi = f.max;
    } else if (size_t dash = base.find('-'); dash != std::string_view::npos) {
      lo = Value(base.substr(0, dash), f);
      hi = Value(base.substr(dash + 1), f);
      if (lo > hi)
        Fail(std::string(f.name) + ": range '" + std::string(base) + "' is backwards");
    } else {
      lo = Value(base, f);
      hi = has_step ? f.max : lo;
    }
    uint64_t mask = 0;
    for (int v = lo; v <= hi; v += step) mask |= uint64_t{1} << v;
    return mask;
  }

 private:
  std::string_view expr_;
};

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> SplitFields(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && IsSpace(s[i])) ++i;
    size_t j = i;
    while (j < s.size() && !IsSpace(s[j])) ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace

CronSchedule CronSchedule::Parse(std::string_view expr_in, const TimeZone& zone) {
  std::string_view expr = Trim(expr_in);
  Parser p(expr);
  if (expr.empty()) p.Fail("empty");
  for (char c : expr)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f)
      if (c != '\t') p.Fail("unexpected character (only printable ASCII is allowed)");

  CronSchedule s;
  s.expr_ = std::string(expr);
  s.zone_ = zone;
  std::string fields_text;
  if (expr[0] == '@') {
    std::vector<std::string_view> words = SplitFields(expr);
    std::string macro(words[0]);
    for (auto& c : macro) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (macro == "@every") {
      if (words.size() != 2) p.Fail("expected '@every DURATION', e.g. '@every 6h'");
      int64_t d;
      try {
        d = ParseDuration(words[1]);
      } catch (const Error& e) {
        p.Fail(e.what());
      }
      if (d < 1) p.Fail("@every interval must be at least 1s");
      s.every_seconds_ = d;
      return s;
    }
    if (words.size() != 1) p.Fail("unexpected text after " + std::string(words[0]));
    if (macro == "@yearly" || macro == "@annually") fields_text = "0 0 1 1 *";
    else if (macro == "@monthly") fields_text = "0 0 1 * *";
    else if (macro == "@weekly") fields_text = "0 0 * * 0";
    else if (macro == "@daily" || macro == "@midnight") fields_text = "0 0 * * *";
    else if (macro == "@hourly") fields_text = "0 * * * *";
    else if (macro == "@reboot") p.Fail("@reboot is not supported");
    else
      p.Fail("unknown macro '" + std::string(words[0]) +
             "' (known: @yearly @annually @monthly @weekly @daily @midnight @hourly @every)");
  } else {
    fields_text = std::string(expr);
  }

  std::vector<std::string_view> fields = SplitFields(fields_text);
  if (fields.size() != 5)
    p.Fail("expected 5 fields (minute hour day-of-month month day-of-week), got " +
           std::to_string(fields.size()) + (fields.size() == 6 ? " (a seconds field is not supported)" : ""));

  uint64_t masks[5];
  for (int i = 0; i < 5; ++i) masks[i] = p.Field(fields[i], kFields[i]);
  s.minutes_ = std::bitset<60>(masks[0]);
  s.hours_ = std::bitset<24>(masks[1]);
  s.days_of_month_ = std::bitset<32>(masks[2]);
  s.months_ = std::bitset<13>(masks[3]);
  uint64_t dow = masks[4];
  if (dow & (uint64_t{1} << 7)) dow = (dow | 1) & 0x7f;  // 7 is Sunday too
  s.days_of_week_ = std::bitset<7>(dow);
  s.dom_star_ = fields[2][0] == '*';
  s.dow_star_ = fields[4][0] == '*';

  // When day-of-month must match (it is not OR-ed with day-of-week), some
  // selected month must have a selected day, or the schedule never fires.
  if (s.dom_star_ || s.dow_star_) {
    bool possible = false;
    for (int m = 1; m <= 12 && !possible; ++m) {
      if (!s.months_[m]) continue;
      for (int d = 1; d <= MaxDaysInMonth(m); ++d)
        if (s.days_of_month_[d]) possible = true;
    }
    if (!possible) p.Fail("no selected month has a selected day of month; the schedule never fires");
  }
  return s;
}

bool CronSchedule::MatchesLocal(int64_t t) const {
  if (t % 60 != 0) return false;
  const int64_t days = t / kSecondsPerDay;
  const int64_t secs = t % kSecondsPerDay;
  const Civil c = CivilFromDays(days);
  if (!months_[c.month] || !hours_[secs / 3600] || !minutes_[secs % 3600 / 60]) return false;
  const bool dom = days_of_month_[c.day];
  const bool dow = days_of_week_[WeekdayFromDays(days)];
  return (dom_star_ || dow_star_) ? (dom && dow) : (dom || dow);
}

bool CronSchedule::Matches(int64_t t) const {
  if (t < kMinTime || t > kMaxTime) return false;
  if (every_seconds_ > 0) return t % every_seconds_ == 0;
  if (zone_.is_utc()) return MatchesLocal(t);
  if (t == kMinTime) {
    const int64_t local = t + zone_.OffsetAt(t);
    return local >= 0 && MatchesLocal(local);
  }
  try {
    return Next(t - 1) == t;
  } catch (const Error&) {
    return false;  // no fire time before the end of the range
  }
}

int64_t CronSchedule::Next(int64_t after) const {
  if (after < kMinTime || after > kMaxTime)
    throw Error(ErrorCode::kInvalidArgument,
                "cron: time " + std::to_string(after) + " is outside the supported range");
  const auto out_of_range = [&]() {
    return Error(ErrorCode::kInvalidArgument,
                 "cron: no fire time of '" + expr_ + "' before the year 10000");
  };
  if (every_seconds_ > 0) {
    const int64_t q = after / every_seconds_ + 1;
    if (q > kMaxTime / every_seconds_) throw out_of_range();
    return q * every_seconds_;
  }
  const int64_t first_minute = (after / 60 + 1) * 60;
  if (zone_.is_utc()) {
    if (first_minute > kMaxTime) throw out_of_range();
    return NextLocal(first_minute);
  }
  // Walk the matching local times after the local time of `after` and map
  // each to an instant (see the header for the DST rules). Local times never
  // go backwards except in a fall-back overlap, whose times fire only at
  // their first occurrence; so a local time at or before `after`'s cannot
  // map to a new fire time after `after`, and the walk starts after it. A
  // candidate may map to an instant at or before `after` (the first
  // occurrence already passed, or the end of a gap already reached): skip it.
  int64_t local = after + zone_.OffsetAt(after);
  local = local < 0 ? 0 : (local / 60 + 1) * 60;
  // Bounded: at most the minutes of one overlap or gap are skipped.
  for (int steps = 0; steps < 100'000; ++steps) {
    if (local > kMaxTime) throw out_of_range();
    const int64_t candidate = NextLocal(local);
    const int64_t t = zone_.MapLocal(candidate).earliest;
    if (t > kMaxTime) throw out_of_range();
    if (t > after) return t;
    local = candidate + 60;
  }
  throw Error(ErrorCode::kInternal, "cron: no fire time found for '" + expr_ + "' in " + zone_.name());
}

int64_t CronSchedule::NextLocal(int64_t t) const {
  const auto out_of_range = [&]() {
    return Error(ErrorCode::kInvalidArgument, "cron: no fire time of '" + expr_ + "' before the year 10000");
  };
  t = (t + 59) / 60 * 60;
  // Each step moves to the next candidate month, day, hour or minute; the
  // rarest feasible schedule (Feb 29 on a given weekday) needs a few thousand.
  for (int steps = 0; steps < 10'000'000; ++steps) {
    if (t > kMaxTime) throw out_of_range();
    const int64_t days = t / kSecondsPerDay;
    const int64_t secs = t % kSecondsPerDay;
    const Civil c = CivilFromDays(days);
    if (!months_[c.month]) {
      t = (c.month == 12 ? DaysFromCivil(c.year + 1, 1, 1) : DaysFromCivil(c.year, c.month + 1, 1)) *
          kSecondsPerDay;
      continue;
    }
    const bool dom = days_of_month_[c.day];
    const bool dow = days_of_week_[WeekdayFromDays(days)];
    if (!((dom_star_ || dow_star_) ? (dom && dow) : (dom || dow))) {
      t = (days + 1) * kSecondsPerDay;
      continue;
    }
    if (!hours_[secs / 3600]) {
      t = (t / 3600 + 1) * 3600;
      continue;
    }
    if (!minutes_[secs % 3600 / 60]) {
      t += 60;
      continue;
    }
    return t;
  }
  throw Error(ErrorCode::kInternal, "cron: no fire time found for '" + expr_ + "'");
}

}  // namespace bulwark::config
