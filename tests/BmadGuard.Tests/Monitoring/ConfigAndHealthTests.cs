using System;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Threading;
using BmadGuard.Core.Health;
using BmadGuard.Core.Monitoring;
using BmadGuard.Tests.Support;
using Xunit;

namespace BmadGuard.Tests.Monitoring
{
    [Collection(MonitoringCollection.Name)]
    public class ConfigAndHealthTests
    {
        private const string Secret = "xoxb-SECRET-0123456789";

        [Theory]
        [InlineData("--slack-webhook", "ftp://hooks.example/" + Secret, "not a valid http(s) URL")]
        [InlineData("--webhook", "not a url " + Secret, "not a valid http(s) URL")]
        [InlineData("--interval", "0s", "interval 0ms is out of range")]
        [InlineData("--interval", "soon", "is not a duration")]
        [InlineData("--on-damage", "fix", "Unknown damage policy 'fix'")]
        [InlineData("--backup-interval", "-1h", "is not a duration")]
        public void BadParametersExitTwoWithAClearMessageAndNoSecret(string option, string value, string expected)
        {
            using var dir = new TempDir();
            string store = Kit.NewStore(dir, 0);
            var r = Support.Cli.Run("monitor", "--store", store, "--once", option, value);
            Assert.Equal(2, r.ExitCode);
            Assert.StartsWith("bmadguard: InvalidConfiguration: ", r.StdErr);
            Assert.Contains(expected, r.StdErr);
            Assert.DoesNotContain(Secret, r.StdErr + r.StdOut);
            Assert.False(File.Exists(Path.Combine(store, "monitor.json"))); // nothing started
        }

        [Theory]
        [InlineData("{ \"interval\": \"5s\", \"colour\": \"blue\" }", "Unknown setting 'colour'")]
        [InlineData("{ \"alerts\": { \"smtp\": { \"host\": \"mail\", \"from\": \"x@y.z\", \"to\": [] } } }", "alerts.smtp.to must list")]
        [InlineData("{ \"alerts\": { \"smtp\": { \"host\": \"mail\", \"port\": 0, \"from\": \"x@y.z\", \"to\": [\"a@b.c\"] } } }", "alerts.smtp.port must be 1 to 65535")]
        [InlineData("{ \"alerts\": { \"retries\": 99 } }", "alerts.retries must be 0 to 10")]
        [InlineData("{ \"interval\": ", "is not valid JSON")]
        public void BadConfigurationFilesAreRejectedAtStart(string json, string expected)
        {
            using var dir = new TempDir();
            string store = Kit.NewStore(dir, 0);
            Kit.WriteConfig(store, json);
            var r = Support.Cli.Run("monitor", "--store", store, "--once");
            Assert.Equal(2, r.ExitCode);
            Assert.Contains(expected, r.StdErr);
        }

        [Fact]
        public void ConfigurationFileIsReadAndParametersOverrideIt()
        {
            using var dir = new TempDir();
            string store = Kit.NewStore(dir, 0);
            string legacy = dir.Combine("legacy.json");
            File.WriteAllText(legacy, "{}");
            Kit.WriteConfig(store, $"{{ \"interval\": \"3s\", \"deepInterval\": \"1h\", \"onDamage\": \"alert\", \"files\": [\"{legacy}\"] }}");
            var c = MonitorConfig.Load(store, null);
            Assert.Equal(TimeSpan.FromSeconds(3), c.Interval);
            Assert.Equal(DamagePolicy.Alert, c.OnDamage);
            Assert.Equal(legacy, c.Files.Single());

            var r = Support.Cli.Run("monitor", "--store", store, "--once", "--on-damage", "restore");
            Assert.Equal(0, r.ExitCode);
            using var state = JsonDocument.Parse(File.ReadAllText(Path.Combine(store, "monitor.json")));
            Assert.Equal("restore", state.RootElement.GetProperty("onDamage").GetString());
            Assert.Equal(3000, state.RootElement.GetProperty("intervalMs").GetDouble());
            Assert.Contains(r.Lines, l => l.Contains("\"target\":\"" + legacy + "\""));
        }

        [Fact]
        public void HealthReportsEachCheckWithEvidenceAndExitCodes()
        {
            using var dir = new TempDir();
            string store = Kit.NewStore(dir, 5);

            // No backups and no monitor: degraded (exit 1); the probe proved the write path without writing an event.
            var r = Support.Cli.Run("health", "--store", store);
            Assert.True(r.ExitCode == 1, r.StdOut + r.StdErr);
            using (var doc = JsonDocument.Parse(r.StdOut))
            {
                var checks = doc.RootElement.GetProperty("checks").EnumerateArray().ToDictionary(c => c.GetProperty("name").GetString()!, c => c.Clone());
                Assert.Equal("Degraded", doc.RootElement.GetProperty("status").GetString());
                Assert.Equal("Healthy", checks["integrity"].GetProperty("status").GetString());
                Assert.Equal(5, checks["integrity"].GetProperty("evidence").GetProperty("recordsChecked").GetInt32());
                Assert.Equal("Degraded", checks["backup"].GetProperty("status").GetString());
                Assert.Equal("Degraded", checks["monitor"].GetProperty("status").GetString());
                Assert.Equal("Healthy", checks["probe"].GetProperty("status").GetString());
                Assert.True(checks["probe"].GetProperty("evidence").GetProperty("roundTripMs").GetDouble() > 0);
                Assert.True(checks["disk"].GetProperty("evidence").GetProperty("freeBytes").GetInt64() > 0);
                Assert.Equal("Healthy", checks["quarantine"].GetProperty("status").GetString());
                Assert.Empty(Kit.Events(store, HealthChecker.ProbeType));
                Assert.Equal(5, Kit.Events(store).Count);
            }

            // A recent verified backup (through the hook) makes that check healthy; an old one does not.
            Assert.Equal(HealthStatus.Healthy, HealthChecker.Backup(store, new FakeBackups(DateTimeOffset.UtcNow.AddHours(-1)), new HealthSettings()).Status);
            Assert.Equal(HealthStatus.Degraded, HealthChecker.Backup(store, new FakeBackups(DateTimeOffset.UtcNow.AddDays(-3)), new HealthSettings()).Status);

            // Damage inside the log: unhealthy (exit 2), with the place named.
            string segment = Kit.Segment(store);
            Kit.FlipByte(segment, Kit.LineStart(segment, 2) + 5);
            var bad = Support.Cli.Run("health", "--store", store);
            Assert.Equal(2, bad.ExitCode);
            using (var doc = JsonDocument.Parse(bad.StdOut))
            {
                var integrity = doc.RootElement.GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "integrity");
                Assert.Equal("Unhealthy", integrity.GetProperty("status").GetString());
                Assert.Contains("ChecksumMismatch " + segment, integrity.GetProperty("evidence").GetProperty("findings")[0].GetString());
            }
        }

        [Fact]
        public void LostSeqsAreDescribedSortedMergedAndWithTheRightNoun()
        {
            // The monitor once said "No verified backup holds seqs 10, 1..40".
            Assert.Equal("seqs 1..40", BmadGuard.Core.Integrity.SeqRange.Describe(new[] { new BmadGuard.Core.Integrity.SeqRange(10, 10), new BmadGuard.Core.Integrity.SeqRange(1, 40) }));
            Assert.Equal("seq 7", BmadGuard.Core.Integrity.SeqRange.Describe(new[] { new BmadGuard.Core.Integrity.SeqRange(7, 7) }));
            Assert.Equal("seqs 1..3 and 5", BmadGuard.Core.Integrity.SeqRange.Describe(new[] { new BmadGuard.Core.Integrity.SeqRange(5, 5), new BmadGuard.Core.Integrity.SeqRange(1, 3) }));
            Assert.Equal("seqs 1..4", BmadGuard.Core.Integrity.SeqRange.Describe(new[] { new BmadGuard.Core.Integrity.SeqRange(4, 4), new BmadGuard.Core.Integrity.SeqRange(1, 3) }));
        }

        [Fact]
        public void NonEmptyQuarantineDegradesHealthAndNamesTheFiles()
        {
            using var dir = new TempDir();
            string store = Kit.NewStore(dir, 1);
            File.WriteAllText(Path.Combine(store, "quarantine", "20260101T000000000Z-segment-x.torn"), "garbage");
            var check = HealthChecker.Quarantine(store);
            Assert.Equal(HealthStatus.Degraded, check.Status);
            Assert.Equal(1, check.Evidence["files"]);
        }

        private sealed class FakeBackups : IBackupTaker
        {
            private readonly DateTimeOffset _created;

            public FakeBackups(DateTimeOffset created) => _created = created;

            public BackupResult TakeBackup(string store, string reason, CancellationToken cancellationToken) => new BackupResult(true, true, "ok");

            public BackupInfo? NewestVerified(string store) => new BackupInfo("b1", _created, true);
        }
    }
}
