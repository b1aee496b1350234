// Prometheus exposition (golden text, escaping) and bulwark's metric families.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "bulwark/metrics/bulwark_metrics.h"
#include "bulwark/metrics/exposition.h"
#include "bulwark/metrics/push.h"

namespace bulwark::metrics {
namespace {

TEST(Metrics, RenderGolden) {
  std::vector<Family> f = {
      {"bulwark_backup_success_total",
       "Successful jobs.",
       Type::kCounter,
       {{{{"source", "docs"}, {"repository", "local"}}, 3}}},
      {"bulwark_backup_duration_seconds",
       "Wall time\nof a job \\ seconds.",
       Type::kGauge,
       {{{{"source", "a\"b\\c\nd"}}, 1.5}, {{}, 0.25}}},
      {"bulwark_drill_last_success", "Declared, no samples yet.", Type::kGauge, {}},
      {"x_untyped", "u", Type::kUntyped, {{{}, 12345678901234.0}}},
  };
  const std::string want =
      "# HELP bulwark_backup_success_total Successful jobs.\n"
      "# TYPE bulwark_backup_success_total counter\n"
      "bulwark_backup_success_total{source=\"docs\",repository=\"local\"} 3\n"
      "# HELP bulwark_backup_duration_seconds Wall time\\nof a job \\\\ seconds.\n"
      "# TYPE bulwark_backup_duration_seconds gauge\n"
      "bulwark_backup_duration_seconds{source=\"a\\\"b\\\\c\\nd\"} 1.5\n"
      "bulwark_backup_duration_seconds 0.25\n"
      "# HELP bulwark_drill_last_success Declared, no samples yet.\n"
      "# TYPE bulwark_drill_last_success gauge\n"
      "# HELP x_untyped u\n"
      "# TYPE x_untyped untyped\n"
      "x_untyped 12345678901234\n";
  EXPECT_EQ(Render(f), want);
}

TEST(Metrics, LabelEscaping) {
  EXPECT_EQ(EscapeLabelValue("plain"), "plain");
  EXPECT_EQ(EscapeLabelValue("a\\b"), "a\\\\b");
  EXPECT_EQ(EscapeLabelValue("say \"hi\""), "say \\\"hi\\\"");
  EXPECT_EQ(EscapeLabelValue("l1\nl2"), "l1\\nl2");
  EXPECT_EQ(EscapeHelp("q\"\\\n"), "q\"\\\\\\n");  // quotes stay in HELP
}

TEST(Metrics, Values) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(-7), "-7");
  EXPECT_EQ(FormatValue(1711846800), "1711846800");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
}

TEST(Metrics, FamiliesOfASource) {
  SourceFigures f;
  f.source = "docs";
  f.repository = "local";
  f.last_success = 1000;
  f.last_ok = true;
  f.success_total = 2;
  f.snapshots = 3;
  StorageCounters st;
  st.put = 5;
  const std::string text = Render(BuildFamilies({f}, &st, 1600));
  EXPECT_NE(text.find("bulwark_backup_age_seconds{source=\"docs\",repository=\"local\"} 600\n"), std::string::npos);
  EXPECT_NE(text.find("bulwark_backup_last_status{source=\"docs\",repository=\"local\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("bulwark_backup_failure_total{source=\"docs\",repository=\"local\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("bulwark_storage_requests_total{operation=\"put\"} 5\n"), std::string::npos);
  // Declared even without samples.
  EXPECT_NE(text.find("# TYPE bulwark_drill_duration_seconds gauge\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE bulwark_wal_archive_lag_seconds gauge\n"), std::string::npos);
  EXPECT_EQ(text.find("bulwark_backup_duration_seconds{"), std::string::npos);  // unknown: no sample
}

TEST(Metrics, ApplyReportCountsAndTimestamps) {
  SourceFigures f;
  jobs::JobReport r;
  r.status = jobs::JobStatus::kSuccess;
  r.snapshot_id = "ab";
  r.snapshot_time = 500;
  r.bytes_added = 10;
  ApplyReport(&f, r);
  r.status = jobs::JobStatus::kPartial;
  r.snapshot_time = 600;
  ApplyReport(&f, r);
  r.status = jobs::JobStatus::kAbandoned;
  ApplyReport(&f, r);
  EXPECT_EQ(f.success_total, 1u);
  EXPECT_EQ(f.failure_total, 1u);
  EXPECT_EQ(f.last_success, 500);  // a partial snapshot is not a good backup
  EXPECT_EQ(f.last_ok, false);
  EXPECT_EQ(f.added_bytes, 10u);
}

TEST(Metrics, PushPathEncodesOddValues) {
  EXPECT_EQ(PushPath("", "source", "docs"), "/metrics/job/bulwark/source/docs");
  EXPECT_EQ(PushPath("/pg/", "source", "docs"), "/pg/metrics/job/bulwark/source/docs");
  EXPECT_EQ(PushPath("", "repository", "/var/b"), "/metrics/job/bulwark/repository@base64/L3Zhci9i");
  EXPECT_EQ(PushPath("", "source", ""), "/metrics/job/bulwark/source@base64/=");
}

}  // namespace
}  // namespace bulwark::metrics
