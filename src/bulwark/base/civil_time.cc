#include "bulwark/base/civil_time.h"

#include <date/tz.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <limits>

#include "bulwark/base/error.h"

namespace bulwark {
namespace {

constexpr int64_t kSecondsPerDay = 86400;
constexpr int64_t kNsPerSecond = 1000000000;
constexpr int kMaxDurationNumber = 1000000;

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// Howard Hinnant's days_from_civil / civil_from_days
// (http://howardhinnant.github.io/date_algorithms.html), for valid m and d.
int64_t DaysFromValidCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = FloorDiv(y, 400);
  const int64_t yoe = y - era * 400;                                        // [0, 399]
  const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;      // [0, 365]
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;                // [0, 146096]
  return era * 146097 + doe - 719468;
}

void CivilFromDays(int64_t z, int64_t* y, int* m, int* d) {
  z += 719468;
  const int64_t era = FloorDiv(z, 146097);
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  *d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  *m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

CivilTime UtcCivil(int64_t s) {
  CivilTime c;
  const int64_t days = FloorDiv(s, kSecondsPerDay);
  const int64_t rem = s - days * kSecondsPerDay;
  CivilFromDays(days, &c.year, &c.month, &c.day);
  c.hour = static_cast<int>(rem / 3600);
  c.minute = static_cast<int>(rem / 60 % 60);
  c.second = static_cast<int>(rem % 60);
  return c;
}

// The local-time fields read as if they were UTC.
int64_t UtcFromCivil(int64_t year, int64_t month, int64_t day, int64_t hour, int64_t minute, int64_t second) {
  return DaysFromCivil(year, month, day) * kSecondsPerDay + hour * 3600 + minute * 60 + second;
}

bool IsUtcName(std::string_view n) { return n == "UTC" || n == "Z" || n == "Etc/UTC" || n == "utc"; }

// "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5": letters,
// digits, '_', '-', '+', '/', no empty or dot-only component.
bool PlausibleZoneName(std::string_view n) {
  if (n.empty() || n.size() > 255 || n.front() == '/' || n.back() == '/') return false;
  size_t start = 0;
  while (start <= n.size()) {
    size_t end = n.find('/', start);
    if (end == std::string_view::npos) end = n.size();
    std::string_view part = n.substr(start, end - start);
    if (part.empty() || part[0] == '.') return false;
    for (char c : part)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '+' && c != '.') return false;
    start = end + 1;
  }
  return true;
}

}  // namespace

int64_t DaysFromCivil(int64_t year, int64_t month, int64_t day) {
  // Normalise the month into 1..12, then add the day offset to the 1st.
  const int64_t m0 = month - 1;
  const int64_t y = year + FloorDiv(m0, 12);
  const int m = static_cast<int>(m0 - FloorDiv(m0, 12) * 12 + 1);
  return DaysFromValidCivil(y, m, 1) + (day - 1);
}

int64_t IsoYearWeek(int64_t year, int month, int day) {
  const int64_t days = DaysFromCivil(year, month, day);
  // 1970-01-01 was a Thursday; Monday = 1 .. Sunday = 7.
  const int64_t iso_weekday = days + 3 - FloorDiv(days + 3, 7) * 7 + 1;
  // The Thursday of the same ISO week decides the ISO year.
  const int64_t thursday = days + (4 - iso_weekday);
  int64_t ty;
  int tm, td;
  CivilFromDays(thursday, &ty, &tm, &td);
  const int64_t week = (thursday - DaysFromCivil(ty, 1, 1)) / 7 + 1;
  return ty * 100 + week;
}

TimeZone TimeZone::Load(std::string_view name) {
  TimeZone tz;
  if (IsUtcName(name)) return tz;
  std::string shown = "'";
  shown.append(name.substr(0, 80)).append("'");
  if (!PlausibleZoneName(name))
    throw Error(ErrorCode::kInvalidArgument,
                "unknown time zone " + shown + " (use a tz database name such as Europe/Berlin, or UTC)");
  try {
    tz.zone_ = date::locate_zone(name);
  } catch (const std::exception& e) {  // std::runtime_error: not in the database (or no database)
    throw Error(ErrorCode::kInvalidArgument, "unknown time zone " + shown + " (" + e.what() +
                                                 "; use a tz database name such as Europe/Berlin, or UTC)");
  }
  tz.name_ = std::string(name);
  return tz;
}

int64_t TimeZone::OffsetAt(int64_t unix_seconds) const {
  if (zone_ == nullptr) return 0;
  return zone_->get_info(date::sys_seconds(std::chrono::seconds(unix_seconds))).offset.count();
}

CivilTime TimeZone::ToCivil(int64_t unix_seconds) const { return UtcCivil(unix_seconds + OffsetAt(unix_seconds)); }

int64_t TimeZone::FromCivil(int64_t year, int64_t month, int64_t day, int64_t hour, int64_t minute,
                            int64_t second) const {
  const int64_t local = UtcFromCivil(year, month, day, hour, minute, second);
  if (zone_ == nullptr) return local;
  const int64_t first = OffsetAt(local);
  const int64_t second_offset = OffsetAt(local - first);
  return local - (second_offset == first ? first : second_offset);
}

TimeZone::LocalMapping TimeZone::MapLocal(int64_t local_seconds) const {
  LocalMapping m;
  if (zone_ == nullptr) {
    m.earliest = m.latest = local_seconds;
    return m;
  }
  const date::local_info info = zone_->get_info(date::local_seconds(std::chrono::seconds(local_seconds)));
  switch (info.result) {
    case date::local_info::unique:
      m.earliest = m.latest = local_seconds - info.first.offset.count();
      break;
    case date::local_info::nonexistent:
      // `first` is the period before the gap; it ends where the gap ends.
      m.kind = LocalMapping::Kind::kSkipped;
      m.earliest = m.latest = info.first.end.time_since_epoch().count();
      break;
    case date::local_info::ambiguous:
      m.kind = LocalMapping::Kind::kRepeated;
      m.earliest = local_seconds - info.first.offset.count();
      m.latest = local_seconds - info.second.offset.count();
      break;
  }
  return m;
}

std::string TimeZone::FormatRfc3339(int64_t unix_seconds) const {
  const int64_t offset = OffsetAt(unix_seconds);
  const CivilTime c = UtcCivil(unix_seconds + offset);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04lld-%02d-%02dT%02d:%02d:%02d", static_cast<long long>(c.year), c.month, c.day,
                c.hour, c.minute, c.second);
  std::string out = buf;
  if (zone_ == nullptr) return out + "Z";
  const int64_t a = offset < 0 ? -offset : offset;
  std::snprintf(buf, sizeof buf, "%c%02lld:%02lld", offset < 0 ? '-' : '+', static_cast<long long>(a / 3600),
                static_cast<long long>(a / 60 % 60));
  return out + buf;
}

CalendarDuration CalendarDuration::Parse(std::string_view s) {
  const auto fail = [&](const std::string& why) {
    return Error(ErrorCode::kInvalidArgument, "invalid duration '" + std::string(s.substr(0, 80)) + "': " + why +
                                                  " (want e.g. 36h, 7d, 4w, 3m, 1y or 1y5m7d2h; m = months)");
  };
  CalendarDuration d;
  if (s == "0") return d;
  if (s.empty()) throw fail("empty");
  bool seen[5] = {};
  size_t i = 0;
  while (i < s.size()) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) throw fail("expected a number at '" + std::string(s.substr(i, 8)) + "'");
    int64_t v = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      v = v * 10 + (s[i++] - '0');
      if (v > kMaxDurationNumber) throw fail("number larger than " + std::to_string(kMaxDurationNumber));
    }
    if (i == s.size()) throw fail("missing unit after " + std::to_string(v) + " (y, m, w, d or h)");
    static constexpr std::string_view kUnits = "ymwdh";
    const size_t unit = kUnits.find(s[i]);
    if (unit == std::string_view::npos)
      throw fail("unknown unit '" + std::string(1, s[i]) + "' (use y, m, w, d or h)");
    if (seen[unit]) throw fail("unit '" + std::string(1, s[i]) + "' given twice");
    seen[unit] = true;
    int* fields[] = {&d.years, &d.months, &d.weeks, &d.days, &d.hours};
    *fields[unit] = static_cast<int>(v);
    ++i;
  }
  return d;
}

std::string CalendarDuration::ToString() const {
  if (zero()) return "0";
  std::string out;
  const std::pair<int, char> parts[] = {{years, 'y'}, {months, 'm'}, {weeks, 'w'}, {days, 'd'}, {hours, 'h'}};
  for (const auto& [v, unit] : parts)
    if (v != 0) out += std::to_string(v) + unit;
  return out;
}

int64_t CalendarDuration::Shift(int64_t time_ns, const TimeZone& tz, int sign) const {
  int64_t sec = FloorDiv(time_ns, kNsPerSecond);
  const int64_t frac = time_ns - sec * kNsPerSecond;
  const CivilTime c = tz.ToCivil(sec);
  sec = tz.FromCivil(c.year + sign * int64_t{years}, c.month + sign * int64_t{months},
                     c.day + sign * (int64_t{weeks} * 7 + days), c.hour, c.minute, c.second);
  sec += sign * int64_t{hours} * 3600;
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min(), kMax = std::numeric_limits<int64_t>::max();
  if (sec < kMin / kNsPerSecond) return kMin;
  if (sec >= kMax / kNsPerSecond) return kMax;
  return sec * kNsPerSecond + frac;
}

int64_t CalendarDuration::SubtractFrom(int64_t time_ns, const TimeZone& tz) const { return Shift(time_ns, tz, -1); }
int64_t CalendarDuration::AddTo(int64_t time_ns, const TimeZone& tz) const { return Shift(time_ns, tz, +1); }

}  // namespace bulwark
