using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using System.Threading;
using BmadGuard.Tests.Monitoring;
using BmadGuard.Tests.Support;
using Xunit;
using CliRunner = BmadGuard.Tests.Support.Cli;
using Xunit.Abstractions;

namespace BmadGuard.Tests.Integration
{
    /// <summary>
    /// The features wired together, end to end, through the real CLI: the store verify checks the backups, repair
    /// restores lost seqs from a covering backup, and the monitor takes backups and heals from them.
    /// </summary>
    public sealed class IntegrationTests
    {
        private readonly ITestOutputHelper _out;

        public IntegrationTests(ITestOutputHelper output) => _out = output;

        private static string Str(JsonElement e, string name) => e.GetProperty(name).GetString()!;

        /// <summary>A store with small segments (8 KiB) holding events n = 1..count, so the log has several sealed segments.</summary>
        private static string NewStore(TempDir dir, int count)
        {
            string store = dir.Combine("store");
            var init = CliRunner.Run("init", "--store", store, "--segment-max-bytes", "8192", "--max-event-bytes", "2048");
            Assert.True(init.ExitCode == 0, init.StdErr);
            Publish(store, 1, count);
            return store;
        }

        private static void Publish(string store, int from, int to) => Monitoring.Kit.Publish(store, from, to, "it", pad: 100);

        /// <summary>Every event in the store, in seq order.</summary>
        private static List<JsonElement> Events(string store)
        {
            var r = CliRunner.Run("get", "--store", store);
            Assert.True(r.ExitCode == 0, r.StdErr);
            return r.Lines.Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
        }

        /// <summary>The test.n events as (seq, id, n).</summary>
        private static List<(long Seq, string Id, int N)> TestEvents(string store)
            => Events(store).Where(e => Str(e, "type") == "test.n")
                .Select(e => (e.GetProperty("seq").GetInt64(), Str(e, "id"), e.GetProperty("data").GetProperty("n").GetInt32())).ToList();

        private static string[] Segments(string store) => Directory.GetFiles(Path.Combine(store, "segments"), "segment-*.jsonl").OrderBy(x => x, StringComparer.Ordinal).ToArray();

        /// <summary>Flips one bit in the middle of the second segment (sealed, with sealed segments after it: not the tail).</summary>
        private static string DamageMiddleSegment(string store)
        {
            var segments = Segments(store);
            Assert.True(segments.Length >= 4, "the log needs several sealed segments");
            string victim = segments[1];
            long at = new FileInfo(victim).Length / 2;
            using var fs = new FileStream(victim, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
            fs.Position = at;
            int b = fs.ReadByte();
            fs.Position = at;
            fs.WriteByte((byte)(b ^ 0x04));
            return victim;
        }

        private static JsonElement Json(CliRunner.Result r) => JsonDocument.Parse(r.StdOut).RootElement.Clone();

        [Fact]
        public void RepairWithACoveringBackupRecoversEveryEventOfADamagedMiddleSegment()
        {
            using var dir = new TempDir();
            string store = NewStore(dir, 150);
            var backup = CliRunner.Run("backup", "--store", store);
            Assert.True(backup.ExitCode == 0, backup.StdErr);
            Publish(store, 151, 170); // newer than the backup
            var before = TestEvents(store);
            Assert.Equal(Enumerable.Range(1, 170), before.Select(e => e.N));
            DamageMiddleSegment(store);
            Assert.Equal(1, CliRunner.Run("verify", "--store", store).ExitCode);

            var repair = CliRunner.Run("repair", "--store", store);
            _out.WriteLine(repair.StdOut);
            Assert.True(repair.ExitCode == 0, repair.StdErr + repair.StdOut);
            var report = Json(repair);
            Assert.True(report.GetProperty("healthy").GetBoolean());
            Assert.True(report.GetProperty("restoredFromBackup").GetBoolean());
            Assert.Equal(0, report.GetProperty("lost").GetArrayLength());
            var restoredAction = report.GetProperty("actions").EnumerateArray().Single(a => Str(a, "kind") == "RestoredFromBackup");
            Assert.Contains("20 events newer than the backup kept at their own seqs", Str(restoredAction, "message"));

            // Every event is back exactly once, with its own seq and id; no placeholder marks a loss.
            var after = Events(store);
            Assert.DoesNotContain(after, e => Str(e, "type") == "bmadguard.lost");
            Assert.Equal(before, TestEvents(store));
            Assert.Equal(Enumerable.Range(1, after.Count).Select(i => (long)i), after.Select(e => e.GetProperty("seq").GetInt64()));

            // The damaged segment is kept in quarantine, never deleted. The events newer than the backup never left the
            // log (they stayed at their seqs inside the restore's one swap), so nothing is set aside.
            string quarantine = Path.Combine(store, "quarantine");
            Assert.Empty(Directory.GetFiles(quarantine, "restore-*-kept-aside.jsonl"));
            Assert.Single(Directory.GetDirectories(quarantine, "restore-*-replaced-segments"));
            Assert.Equal(0, CliRunner.Run("verify", "--store", store).ExitCode);
        }

        [Fact]
        public void RepairWithoutABackupReportsTheLoss()
        {
            using var dir = new TempDir();
            string store = NewStore(dir, 150);
            DamageMiddleSegment(store);

            var repair = CliRunner.Run("repair", "--store", store);
            var report = Json(repair);
            Assert.False(report.GetProperty("restoredFromBackup").GetBoolean());
            Assert.True(report.GetProperty("needsRestore").GetBoolean());
            var lost = report.GetProperty("lost").EnumerateArray().ToList();
            Assert.NotEmpty(lost);
            var events = Events(store);
            Assert.Contains(events, e => Str(e, "type") == "bmadguard.lost");
            Assert.True(events.Count(e => Str(e, "type") == "test.n") < 150, "a record was damaged, so at least one event is gone");
        }

        [Fact]
        public void VerifyStoreReportsATamperedBackupFileWithItsPath()
        {
            using var dir = new TempDir();
            string store = NewStore(dir, 60);
            var backup = Json(CliRunner.Run("backup", "--store", store));
            string backupDir = Str(backup, "path");
            Assert.Equal(0, CliRunner.Run("verify", "--store", store).ExitCode);

            string tampered = Directory.GetFiles(Path.Combine(backupDir, "segments")).OrderBy(x => x, StringComparer.Ordinal).First();
            var bytes = File.ReadAllBytes(tampered);
            bytes[bytes.Length / 2] ^= 0x01;
            File.WriteAllBytes(tampered, bytes);

            var verify = CliRunner.Run("verify", "--store", store);
            Assert.Equal(1, verify.ExitCode);
            var report = Json(verify);
            Assert.False(report.GetProperty("healthy").GetBoolean());
            var error = report.GetProperty("findings").EnumerateArray().Single(f => Str(f, "severity") == "error");
            Assert.Equal("BackupFileHashMismatch", Str(error, "code"));
            Assert.Equal(tampered, Str(error, "file"));
        }

        [Fact]
        public void HealthReportsBackupAgeFromRealBackups()
        {
            using var dir = new TempDir();
            string store = NewStore(dir, 5);
            JsonElement BackupCheck() => Json(CliRunner.Run("health", "--store", store)).GetProperty("checks").EnumerateArray().Single(c => Str(c, "name") == "backup");

            var none = BackupCheck();
            Assert.Equal("Degraded", Str(none, "status"));
            Assert.Equal(JsonValueKind.Null, none.GetProperty("evidence").GetProperty("newest").ValueKind);

            var backup = Json(CliRunner.Run("backup", "--store", store));
            var fresh = BackupCheck();
            Assert.Equal("Healthy", Str(fresh, "status"));
            Assert.Equal(Str(backup, "name"), Str(fresh.GetProperty("evidence"), "newest"));
        }

        [Fact]
        public void MonitorTakesScheduledBackupsAndRestoresADamagedMiddleSegmentFromTheLatestVerifiedOne()
        {
            using var dir = new TempDir();
            using var hook = new HttpSink();
            string store = NewStore(dir, 150);
            Kit.WriteConfig(store, "{ \"probeInterval\": \"0s\", \"backupKeep\": { \"last\": 2 }, \"alerts\": { \"retries\": 1, \"retryDelay\": \"50ms\", \"timeout\": \"2s\" } }");
            using var m = new MonitorProcess("--store", store, "--interval", "1s", "--on-damage", "repair", "--backup-interval", "2s", "--webhook", hook.Url("/hook/integration"));
            m.WaitReady(store);

            // Scheduled backups: taken, verified, and the retention policy (keep the last 2) applied.
            bool Backups(int n) => m.Events.Count(e => MonitorProcess.Kind(e) == "BackupTaken") >= n;
            var clock = Stopwatch.StartNew();
            while (!Backups(3) && clock.Elapsed < TimeSpan.FromSeconds(20))
            {
                Thread.Sleep(50);
            }

            Assert.True(Backups(3), "fewer than 3 scheduled backups: " + m.StdOut + m.StdErr);
            var listed = CliRunner.Run("backups", "--store", store).Lines.Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
            Assert.InRange(listed.Count, 1, 2);
            Assert.All(listed, b => Assert.Equal("Verified", Str(b, "state")));

            // Right after a backup (the next is 2 s away): publish 20 events it does not hold, then damage the middle of the log.
            int taken = m.Events.Count(e => MonitorProcess.Kind(e) == "BackupTaken");
            Assert.NotNull(m.WaitFor(e => MonitorProcess.Kind(e) == "BackupTaken" && m.Events.Count(x => MonitorProcess.Kind(x) == "BackupTaken") > taken, TimeSpan.FromSeconds(10)));
            // In process (milliseconds, not a CLI start-up) so the next scheduled backup cannot slip in between.
            List<(long Seq, string Id, int N)> before;
            using (var s = BmadGuard.Core.Storage.FileEventStore.Open(store))
            {
                s.Publish(Enumerable.Range(151, 20).Select(i => BmadGuard.Core.Events.EventDraft.FromJson("test.n", "it", null, "{\"n\":" + i + "}")).ToList());
                before = s.Read(new BmadGuard.Core.Storage.EventQuery()).Where(e => e.Type == "test.n")
                    .Select(e => (e.Seq, e.Id, JsonDocument.Parse(e.DataJson).RootElement.GetProperty("n").GetInt32())).ToList();
            }

            Assert.Equal(Enumerable.Range(1, 170), before.Select(e => e.N));
            DamageMiddleSegment(store);
            var t0 = DateTimeOffset.UtcNow;

            var restored = m.WaitFor(e => MonitorProcess.Kind(e) == "Restored" && Str(e, "target") == store, TimeSpan.FromSeconds(30));
            Assert.True(restored.HasValue, "no Restored event: " + m.StdOut + m.StdErr);
            _out.WriteLine(restored!.Value.ToString());
            _out.WriteLine($"restored after {(MonitorProcess.Time(restored.Value) - t0).TotalMilliseconds:0} ms");
            Assert.Equal("Healed", Str(restored.Value, "outcome"));
            Assert.True(restored.Value.GetProperty("verified").GetBoolean());

            // The events newer than the backup (policy repair) stayed at their own seqs inside the restore's swap: nothing set aside.
            string quarantine = Path.Combine(store, "quarantine");
            Assert.Empty(Directory.GetFiles(quarantine, "restore-*-kept-aside.jsonl"));
            Assert.Contains("20 events newer than the backup kept at their own seqs", restored.Value.ToString());
            Assert.Equal(before, TestEvents(store));

            // Alerted over the webhook, audited, counted.
            Assert.True(hook.WaitFor(r => r.Body.Contains("Damage detected") && r.Body.Contains(store), TimeSpan.FromSeconds(10)), "no webhook alert");
            var audit = Kit.Audit(store);
            Assert.Contains(audit, a => Str(a, "action") == "repair" && Str(a, "outcome") == "NotPossible");
            Assert.Contains(audit, a => Str(a, "action") == "restore" && Str(a, "outcome").StartsWith("Healed", StringComparison.Ordinal));
            string prom = Path.Combine(store, "metrics.prom");
            string want = "bmadguard_monitor_restores_total{store=\"" + store + "\"} 1";
            clock.Restart();
            while (!(File.Exists(prom) && File.ReadAllText(prom).Contains(want)) && clock.Elapsed < TimeSpan.FromSeconds(10))
            {
                Thread.Sleep(100);
            }

            Assert.Contains(want, File.ReadAllText(prom));

            // And the store (backups included) verifies healthy afterwards, with the monitor still running.
            var verify = CliRunner.Run("verify", "--store", store);
            Assert.True(verify.ExitCode == 0, verify.StdOut);
        }

        [Fact]
        public void RestorePolicyRestoresTheLatestVerifiedBackupAndLeavesNewerEventsKeptAside()
        {
            using var dir = new TempDir();
            string store = NewStore(dir, 150);
            Assert.Equal(0, CliRunner.Run("backup", "--store", store).ExitCode);
            Publish(store, 151, 160);
            DamageMiddleSegment(store);

            var healer = new BmadGuard.Core.Integration.BackupHealer(putBackNewerEvents: false);
            var inspector = new BmadGuard.Core.Integration.VerifierInspector();
            var damage = inspector.DeepVerify(store, CancellationToken.None);
            Assert.False(damage.Ok);
            var repair = healer.Repair(store, damage, CancellationToken.None);
            Assert.Equal(BmadGuard.Core.Monitoring.HealOutcome.NotPossible, repair.Outcome);
            var restored = healer.RestoreLatest(store, CancellationToken.None);
            Assert.Equal(BmadGuard.Core.Monitoring.HealOutcome.Healed, restored.Outcome);

            // The store is the backup's state; the 10 newer events are in the kept-aside file, not in the store.
            Assert.Equal(Enumerable.Range(1, 150), TestEvents(store).Select(e => e.N));
            string keptAside = Directory.GetFiles(Path.Combine(store, "quarantine"), "restore-*-kept-aside.jsonl").Single();
            Assert.Contains(keptAside, restored.Message);
            Assert.Equal(Enumerable.Range(151, 10), File.ReadAllLines(keptAside).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("data").GetProperty("n").GetInt32()));
            Assert.True(inspector.DeepVerify(store, CancellationToken.None).Ok);
        }

        [Fact]
        public void RepairPassesOverANewerBackupThatFailsItsDeepCheck()
        {
            using var dir = new TempDir();
            string store = NewStore(dir, 150);
            string older = Str(Json(CliRunner.Run("backup", "--store", store)), "name");
            Publish(store, 151, 160);
            string newer = Str(Json(CliRunner.Run("backup", "--store", store)), "path");
            Publish(store, 161, 170);
            var before = TestEvents(store);

            // The newest backup's active-segment copy changed in place (same size: only the deep check sees it).
            string tampered = Directory.GetFiles(Path.Combine(newer, "segments")).OrderBy(x => x, StringComparer.Ordinal).Last();
            var bytes = File.ReadAllBytes(tampered);
            bytes[bytes.Length / 2] ^= 0x01;
            File.WriteAllBytes(tampered, bytes);
            DamageMiddleSegment(store);

            var report = Json(CliRunner.Run("repair", "--store", store));
            Assert.True(report.GetProperty("restoredFromBackup").GetBoolean(), report.ToString());
            Assert.Contains($"Restored backup '{older}'", report.ToString());
            Assert.Equal(before, TestEvents(store));
        }

        [Theory]
        [InlineData("{ \"backupKeep\": { \"last\": 0 } }", "backupKeep.last")]
        [InlineData("{ \"backupKeep\": { \"monthly\": 3 } }", "monthly")]
        public void AnInvalidBackupRetentionInTheMonitorConfigurationIsAClearErrorAndNothingStarts(string json, string named)
        {
            using var dir = new TempDir();
            string store = NewStore(dir, 1);
            Kit.WriteConfig(store, json);
            var r = CliRunner.Run("monitor", "--store", store, "--once");
            Assert.Equal(2, r.ExitCode);
            Assert.StartsWith("bmadguard: InvalidConfiguration: ", r.StdErr);
            Assert.Contains(named, r.StdErr);
            Assert.False(Directory.Exists(Path.Combine(store, "backups")));

            Kit.WriteConfig(store, "{ \"backupKeep\": { \"last\": 3, \"daily\": 2 } }");
            var config = BmadGuard.Core.Monitoring.MonitorConfig.Load(store, null);
            Assert.Equal(3, config.BackupRetention!.KeepLast);
            Assert.Equal(2, config.BackupRetention.KeepDaily);
        }
    }
}
