using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Threading;
using BmadGuard.Tests.Monitoring;
using BmadGuard.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace BmadGuard.Tests.MonitorBackups
{
    /// <summary>
    /// The two things an operator leaving the monitor running for months would otherwise miss: a backup that rots
    /// (alerted on the deep schedule, never "healed" into the store) and acknowledged events that vanish from a log
    /// that still verifies (the newest segment deleted: the monitor's high-water mark, keyed by the writer epoch).
    /// Real <c>bmadguard monitor</c> processes, a real HTTP listener for the webhook.
    /// </summary>
    [Collection(MonitoringCollection.Name)]
    public class MonitorWatchTests
    {
        private static readonly TimeSpan Deep = TimeSpan.FromSeconds(2);

        /// <summary>The promise for backup damage: within the deep interval plus one second.</summary>
        private static readonly TimeSpan Promise = Deep + TimeSpan.FromSeconds(1);

        private readonly ITestOutputHelper _out;

        public MonitorWatchTests(ITestOutputHelper output) => _out = output;

        private static string Str(JsonElement e, string name) => e.GetProperty(name).GetString()!;

        /// <summary>A store whose segments roll over every ~1 KiB, with <paramref name="events"/> events test.n {"n":i}.</summary>
        private static string SmallSegmentStore(TempDir dir, int events)
        {
            string store = dir.Combine("store");
            var init = Support.Cli.Run("init", "--store", store, "--max-event-bytes", "1024", "--segment-max-bytes", "1024");
            Assert.True(init.ExitCode == 0, init.StdErr);
            Publish(store, 1, events);
            return store;
        }

        private static void Publish(string store, int from, int to) => Kit.Publish(store, from, to);

        private static string Backup(string store)
        {
            var r = Support.Cli.Run("backup", "--store", store);
            Assert.True(r.ExitCode == 0, r.StdErr);
            using var doc = JsonDocument.Parse(r.StdOut);
            return doc.RootElement.GetProperty("name").GetString()!;
        }

        private static string[] Segments(string store) => Directory.GetFiles(Path.Combine(store, "segments"), "segment-*.jsonl").OrderBy(x => x, StringComparer.Ordinal).ToArray();

        /// <summary>SHA-256 of every file under segments/ with its name: "the store was not touched".</summary>
        private static string SegmentsFingerprint(string store)
        {
            var sb = new StringBuilder();
            foreach (var f in Segments(store))
            {
                sb.Append(Path.GetFileName(f)).Append(' ').Append(Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f)))).Append('\n');
            }

            return sb.ToString();
        }

        private static (long Epoch, long Seq)? HighWater(string store)
        {
            try
            {
                using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(store, "monitor.json")));
                if (!doc.RootElement.TryGetProperty("highWater", out var hw))
                {
                    return null;
                }

                return (hw.GetProperty("epoch").GetInt64(), hw.GetProperty("seq").GetInt64());
            }
            catch (Exception ex) when (ex is IOException || ex is JsonException)
            {
                return null;
            }
        }

        private static bool WaitUntil(Func<bool> condition, TimeSpan timeout)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (clock.Elapsed < timeout)
            {
                if (condition())
                {
                    return true;
                }

                Thread.Sleep(50);
            }

            return condition();
        }

        private static string Config(string deepInterval) =>
            "{ \"probeInterval\": \"0s\", \"deepInterval\": \"" + deepInterval + "\", \"alerts\": { \"retries\": 1, \"retryDelay\": \"50ms\", \"timeout\": \"2s\", \"dedupeWindow\": \"1h\" } }";

        [Fact]
        public void A_backup_that_rots_is_alerted_on_the_deep_schedule_and_resolved_when_fixed_or_gone_while_the_store_is_left_alone()
        {
            using var dir = new TempDir();
            using var hook = new HttpSink();
            string store = Kit.NewStore(dir, 12);
            string name = Backup(store);
            string backupDir = Path.Combine(store, "backups", name);
            string backupSegment = Directory.GetFiles(Path.Combine(backupDir, "segments")).Single();
            Kit.WriteConfig(store, Config("2s"));
            string before = SegmentsFingerprint(store);

            using var m = new MonitorProcess("--store", store, "--interval", "1s", "--on-damage", "restore", "--webhook", hook.Url("/hook"));
            m.WaitReady(store);
            Thread.Sleep(300); // the start's deep pass has read the (clean) backup

            // 1. A flipped byte inside the 5th record of the backup's segment.
            long offset = Kit.LineStart(backupSegment, 5) + 9;
            Kit.FlipByte(backupSegment, offset);
            var t0 = DateTimeOffset.UtcNow;
            var damaged = m.WaitFor(e => MonitorProcess.Kind(e) == "BackupDamaged", TimeSpan.FromSeconds(15));
            Assert.True(damaged.HasValue, "no BackupDamaged event. stderr: " + m.StdErr);
            Assert.Equal(name, Str(damaged!.Value, "backup"));
            var finding = damaged.Value.GetProperty("findings").EnumerateArray().First();
            Assert.Equal(backupSegment, Str(finding, "file"));
            Assert.Equal(Kit.LineStart(backupSegment, 5), finding.GetProperty("offset").GetInt64()); // the damaged line's start
            Assert.True(hook.WaitFor(r => r.Body.Contains("backup-damaged:") && r.Body.Contains("\"kind\":\"raised\""), TimeSpan.FromSeconds(15)), "no webhook alert");
            var alert = hook.Requests.First(r => r.Body.Contains("backup-damaged:"));
            _out.WriteLine($"backup damage: event after {(MonitorProcess.Time(damaged.Value) - t0).TotalMilliseconds:0} ms, webhook after {(alert.At - t0).TotalMilliseconds:0} ms");
            Assert.True(alert.At - t0 <= Promise, $"the alert took {(alert.At - t0).TotalMilliseconds:0} ms, more than the deep interval + 1 s");
            using (var body = JsonDocument.Parse(alert.Body))
            {
                string text = Str(body.RootElement, "text");
                Assert.Contains(backupSegment + " at byte " + Kit.LineStart(backupSegment, 5), text);
                Assert.Contains(name, Str(body.RootElement, "title"));
                Assert.Equal("error", Str(body.RootElement, "severity"));
            }

            // Audited and counted; a few more deep passes: de-duplicated (one raise), the store not touched, no heal.
            Assert.Contains(Kit.Audit(store), a => Str(a, "action") == "backup.damaged" && Str(a, "target") == backupDir);
            Assert.True(WaitUntil(() => File.ReadAllText(Path.Combine(store, "metrics.prom")).Contains("bmadguard_monitor_backups_damaged{store=\"" + store + "\"} 1"), TimeSpan.FromSeconds(5)), "metrics do not count the damaged backup");
            Thread.Sleep(Deep + TimeSpan.FromMilliseconds(500)); // at least one more deep pass
            Assert.Single(hook.Requests, r => r.Body.Contains("backup-damaged:"));
            Assert.Single(m.Events, e => MonitorProcess.Kind(e) == "BackupDamaged");
            Assert.DoesNotContain(m.Events, e => MonitorProcess.Kind(e) is "DamageDetected" or "Restored" or "Repaired");
            Assert.DoesNotContain(Kit.Audit(store), a => Str(a, "action") is "restore" or "repair" or "damage.detected");
            Assert.Equal(before, SegmentsFingerprint(store));
            Assert.False(Directory.Exists(Path.Combine(store, "quarantine")) && Directory.EnumerateFileSystemEntries(Path.Combine(store, "quarantine")).Any());

            // 2. Fixed (the bit flipped back): resolved.
            Kit.FlipByte(backupSegment, offset);
            var t1 = DateTimeOffset.UtcNow;
            Assert.True(hook.WaitFor(r => r.Body.Contains("backup-damaged:") && r.Body.Contains("\"kind\":\"resolved\""), TimeSpan.FromSeconds(15)), "no resolved message");
            var resolved = hook.Requests.First(r => r.Body.Contains("backup-damaged:") && r.Body.Contains("\"kind\":\"resolved\""));
            Assert.True(resolved.At - t1 <= Promise, "resolved took longer than the deep interval + 1 s");
            var cleared = m.WaitFor(e => MonitorProcess.Kind(e) == "BackupDamageCleared", TimeSpan.FromSeconds(5));
            Assert.False(cleared!.Value.GetProperty("gone").GetBoolean());

            // 3. Its manifest deleted: raised again (BackupManifestMissing); the backup removed: resolved as gone.
            int raisedBefore = hook.Requests.Count(r => r.Body.Contains("backup-damaged:") && r.Body.Contains("\"kind\":\"raised\""));
            File.Delete(Path.Combine(backupDir, "manifest.json"));
            Assert.True(hook.WaitFor(r => r.Body.Contains("BackupManifestMissing") && r.Body.Contains("\"kind\":\"raised\""), TimeSpan.FromSeconds(15)), "a missing manifest was not alerted");
            Assert.Equal(raisedBefore + 1, hook.Requests.Count(r => r.Body.Contains("backup-damaged:") && r.Body.Contains("\"kind\":\"raised\"")));
            Directory.Delete(backupDir, recursive: true);
            Assert.True(m.WaitFor(e => MonitorProcess.Kind(e) == "BackupDamageCleared" && e.GetProperty("gone").GetBoolean(), TimeSpan.FromSeconds(15)).HasValue, "a removed backup was not cleared");
            Assert.True(WaitUntil(() => hook.Requests.Count(r => r.Body.Contains("backup-damaged:") && r.Body.Contains("\"kind\":\"resolved\"")) == 2, TimeSpan.FromSeconds(10)), "no resolved message for the removed backup");
            Assert.Contains(Kit.Audit(store), a => Str(a, "action") == "backup.damage.cleared");
            Assert.Equal(before, SegmentsFingerprint(store));
        }

        [Fact]
        public void The_sweep_reads_an_unchanged_verified_backup_once_per_reverify_period_and_a_changed_one_at_once()
        {
            using var dir = new TempDir();
            string store = Kit.NewStore(dir, 8);
            string name = Backup(store);
            var now = DateTimeOffset.UtcNow;
            var watch = new Core.Integration.BackupWatch(TimeSpan.FromHours(24)) { Clock = () => now };

            var first = watch.Verify(store, CancellationToken.None);
            Assert.Equal((1, 1, 0), (first.Backups, first.Read, first.Damaged.Count));
            Assert.True(first.BytesRead > 0);
            var again = watch.Verify(store, CancellationToken.None);
            Assert.Equal((1, 0, 0L), (again.Backups, again.Read, again.BytesRead)); // unchanged, verified: not read

            string segment = Directory.GetFiles(Path.Combine(store, "backups", name, "segments")).Single();
            Kit.FlipByte(segment, Kit.LineStart(segment, 3) + 9); // a write: the fingerprint changes
            var changed = watch.Verify(store, CancellationToken.None);
            Assert.Equal(1, changed.Read);
            Assert.Equal("BackupFileHashMismatch", Assert.Single(changed.Damaged).Codes[0]);
            Assert.Equal(1, watch.Verify(store, CancellationToken.None).Read); // damaged: read on every sweep

            Kit.FlipByte(segment, Kit.LineStart(segment, 3) + 9);
            Assert.Empty(watch.Verify(store, CancellationToken.None).Damaged);
            Assert.Equal(0, watch.Verify(store, CancellationToken.None).Read);
            now += TimeSpan.FromHours(25); // decay that leaves no trace in the metadata is caught by the periodic re-read
            Assert.Equal(1, watch.Verify(store, CancellationToken.None).Read);
        }

        [Fact]
        public void Restore_skips_a_newest_backup_that_fails_the_deep_check_and_uses_the_older_verified_one()
        {
            using var dir = new TempDir();
            string store = Kit.NewStore(dir, 6);
            string older = Backup(store);
            Thread.Sleep(20);
            string newest = Backup(store);
            Assert.True(string.CompareOrdinal(newest, older) > 0);
            // The newest backup rots: same length, so the listing's quick check still calls it verified.
            string newestSegment = Directory.GetFiles(Path.Combine(store, "backups", newest, "segments")).Single();
            Kit.FlipByte(newestSegment, Kit.LineStart(newestSegment, 2) + 9);
            // Damage inside the store's log: repair would lose seq 3, so policy restore restores.
            string segment = Kit.Segment(store);
            Kit.FlipByte(segment, Kit.LineStart(segment, 3) + 7);

            var r = Support.Cli.Run("monitor", "--store", store, "--once", "--on-damage", "restore");
            Assert.True(r.ExitCode == 0, r.StdOut + r.StdErr);
            var restored = r.Lines.Select(l => JsonDocument.Parse(l).RootElement).Single(e => Str(e, "event") == "Restored");
            Assert.Equal("Healed", Str(restored, "outcome"));
            Assert.Equal(older, Str(restored, "restoredFrom"));
            Assert.Equal(Enumerable.Range(1, 6), Kit.Events(store, "test.n").Select(e => e.GetProperty("data").GetProperty("n").GetInt32()));
            // The rotten backup is reported by the same pass, and left where it is.
            Assert.Contains(r.Lines, l => l.Contains("\"event\":\"BackupDamaged\"") && l.Contains(newest));
            Assert.True(Directory.Exists(Path.Combine(store, "backups", newest)));
        }

        [Fact]
        public void The_newest_segment_deleted_while_the_monitor_runs_is_detected_alerted_and_restored_exactly_once()
        {
            using var dir = new TempDir();
            using var hook = new HttpSink();
            string store = SmallSegmentStore(dir, 30);
            Assert.True(Segments(store).Length >= 3, "the store should span several segments");
            Backup(store);
            var acknowledged = Kit.Events(store).Select(e => Str(e, "id")).ToList();
            Assert.Equal(30, acknowledged.Count);
            Kit.WriteConfig(store, Config("1h")); // detection must come from the cheap check, not the deep one

            using var m = new MonitorProcess("--store", store, "--interval", "1s", "--on-damage", "restore", "--webhook", hook.Url("/hook"));
            m.WaitReady(store);
            string newest = Segments(store).Last();
            long firstGone = long.Parse(Path.GetFileNameWithoutExtension(newest).Substring("segment-".Length));
            File.Delete(newest);
            var t0 = DateTimeOffset.UtcNow;

            var detected = m.WaitFor(e => MonitorProcess.Kind(e) == "DamageDetected", TimeSpan.FromSeconds(15));
            Assert.True(detected.HasValue, "the vanished events were not detected. stderr: " + m.StdErr);
            var finding = detected!.Value.GetProperty("findings").EnumerateArray().Single();
            Assert.Equal("LogShrunk", Str(finding, "kind"));
            Assert.Equal(newest, Str(finding, "path"));
            Assert.Contains($"{firstGone}..30 vanished", Str(detected.Value, "message"));
            var restored = m.WaitFor(e => MonitorProcess.Kind(e) == "Restored", TimeSpan.FromSeconds(15));
            Assert.True(restored.HasValue, "no Restored event. stderr: " + m.StdErr);
            Assert.Equal("Healed", Str(restored!.Value, "outcome"));
            Assert.True(restored.Value.GetProperty("verified").GetBoolean());
            _out.WriteLine($"deleted segment: detected after {(MonitorProcess.Time(detected.Value) - t0).TotalMilliseconds:0} ms, restored after {(MonitorProcess.Time(restored.Value) - t0).TotalMilliseconds:0} ms");
            Assert.True(MonitorProcess.Time(detected.Value) - t0 <= TimeSpan.FromSeconds(2), "detection took longer than the interval + 1 s");
            Assert.True(hook.WaitFor(r => r.Body.Contains("Damage detected") && r.Body.Contains("vanished"), TimeSpan.FromSeconds(10)), "no alert");
            Assert.True(hook.WaitFor(r => r.Body.Contains("\"kind\":\"resolved\""), TimeSpan.FromSeconds(10)), "no resolved message");

            // Every acknowledged event is back exactly once, seqs contiguous.
            var after = Kit.Events(store);
            Assert.Equal(Enumerable.Range(1, 30).Select(i => (long)i), after.Select(e => e.GetProperty("seq").GetInt64()));
            Assert.Equal(acknowledged, after.Select(e => Str(e, "id")));
            var audit = Kit.Audit(store);
            Assert.Contains(audit, a => Str(a, "action") == "damage.detected" && Str(a, "message").Contains("vanished"));
            Assert.Contains(audit, a => Str(a, "action") == "restore" && Str(a, "outcome").StartsWith("Healed", StringComparison.Ordinal));

            // Nothing deleted: the state before the restore is in a safety backup. Quiet afterwards (one detection).
            Assert.Contains(Directory.GetDirectories(Path.Combine(store, "backups")), d => File.ReadAllText(Path.Combine(d, "manifest.json")).Contains("\"kind\": \"safety\""));
            Thread.Sleep(2500);
            Assert.Single(m.Events, e => MonitorProcess.Kind(e) == "DamageDetected");
        }

        [Fact]
        public void A_deliberate_restore_to_an_older_backup_is_not_reported_but_a_later_deleted_segment_is()
        {
            using var dir = new TempDir();
            string store = SmallSegmentStore(dir, 30);
            string old = Backup(store);
            Publish(store, 31, 40);
            Kit.WriteConfig(store, Config("1h"));

            using var m = new MonitorProcess("--store", store, "--interval", "1s", "--on-damage", "alert");
            m.WaitReady(store);
            Assert.True(WaitUntil(() => HighWater(store)?.Seq == 40, TimeSpan.FromSeconds(10)), "the monitor did not record seq 40");
            long epoch = HighWater(store)!.Value.Epoch;

            var r = Support.Cli.Run("restore", "--store", store, "--backup", old, "--force");
            Assert.True(r.ExitCode == 0, r.StdErr);
            // Seqs are never reused: the log keeps 31..40 as bmadguard.rolledback placeholders (docs/store-format.md 5.1).
            Assert.Equal(40, Kit.Events(store).Count);
            Assert.True(WaitUntil(() => HighWater(store) is { } hw && hw.Seq == 40 && hw.Epoch > epoch, TimeSpan.FromSeconds(10)), "the mark was not reset by the restore's new epoch");
            Thread.Sleep(1500);
            Assert.DoesNotContain(m.Events, e => MonitorProcess.Kind(e) == "DamageDetected");

            // Under the new epoch a vanished segment is damage again.
            string newest = Segments(store).Last();
            File.Delete(newest);
            var detected = m.WaitFor(e => MonitorProcess.Kind(e) == "DamageDetected", TimeSpan.FromSeconds(15));
            Assert.True(detected.HasValue, "a segment deleted after the restore was not detected");
            Assert.Contains("vanished", Str(detected!.Value, "message"));
            Assert.DoesNotContain(m.Events, e => MonitorProcess.Kind(e) == "Restored"); // policy alert: nothing touched
        }

        [Fact]
        public void Verify_store_without_a_monitor_reports_a_store_that_ends_below_a_same_epoch_backup_but_not_a_deliberate_rollback()
        {
            using var dir = new TempDir();
            string store = SmallSegmentStore(dir, 30);
            string b1 = Backup(store);
            Publish(store, 31, 40);
            string b2 = Backup(store);
            Assert.Equal(0, Support.Cli.Run("verify", "--store", store).ExitCode);

            // A deliberate rollback: Restore-BmadStore to the older backup bumps the writer epoch; b2 (seq 40) is not "ahead".
            Assert.Equal(0, Support.Cli.Run("restore", "--store", store, "--backup", b1, "--force").ExitCode);
            var afterRestore = Support.Cli.Run("verify", "--store", store);
            Assert.True(afterRestore.ExitCode == 0, afterRestore.StdOut);
            Assert.DoesNotContain("StoreBehindBackup", afterRestore.StdOut);

            // Under the new epoch: new events, a backup, then the newest segment deleted.
            Publish(store, 41, 50);
            string b3 = Backup(store);
            string newest = Segments(store).Last();
            long firstGone = long.Parse(Path.GetFileNameWithoutExtension(newest).Substring("segment-".Length));
            File.Delete(newest);
            var r = Support.Cli.Run("verify", "--store", store);
            Assert.Equal(1, r.ExitCode);
            using var doc = JsonDocument.Parse(r.StdOut);
            var finding = doc.RootElement.GetProperty("findings").EnumerateArray().Single(f => Str(f, "code") == "StoreBehindBackup");
            Assert.Equal(newest, Str(finding, "file"));
            Assert.Contains($"events {firstGone}..50 vanished", Str(finding, "message")); // 41..50: the rolled-back 31..40 are never reused
            Assert.Contains(b3, Str(finding, "message"));
            Assert.DoesNotContain(b2, Str(finding, "message"));
        }

        private static long Epoch(string store)
        {
            using var held = Core.Storage.StoreLock.Acquire(Path.Combine(store, "writer.lock"), TimeSpan.FromSeconds(5));
            return held.ReadEpoch();
        }

        [Fact]
        public void A_repair_that_changes_the_log_bumps_the_writer_epoch_and_one_with_nothing_to_do_does_not()
        {
            using var dir = new TempDir();
            string store = Kit.NewStore(dir, 6);
            long e0 = Epoch(store);
            Assert.Equal(0, Support.Cli.Run("repair", "--store", store).ExitCode);
            Assert.Equal(e0, Epoch(store)); // nothing to repair: the mark stays valid

            string segment = Kit.Segment(store);
            Kit.FlipByte(segment, Kit.LineStart(segment, 3) + 7); // inside the log, no backup: repaired with a placeholder
            var r = Support.Cli.Run("repair", "--store", store);
            Assert.True(r.ExitCode == 0, r.StdOut + r.StdErr);
            Assert.Equal(e0 + 1, Epoch(store)); // a deliberate change: a monitor's mark is re-based, not alarmed
        }

        [Fact]
        public void A_restarted_monitor_remembers_its_mark_and_sees_a_log_cut_at_a_record_boundary_while_it_was_down()
        {
            using var dir = new TempDir();
            string store = Kit.NewStore(dir, 10);
            var first = Support.Cli.Run("monitor", "--store", store, "--once", "--on-damage", "alert");
            Assert.True(first.ExitCode == 0, first.StdOut + first.StdErr);
            Assert.Equal(10, HighWater(store)!.Value.Seq);

            // Cut the log exactly after record 7: every remaining record is valid, nothing looks torn.
            string segment = Kit.Segment(store);
            using (var fs = new FileStream(segment, FileMode.Open, FileAccess.Write))
            {
                fs.SetLength(Kit.LineStart(segment, 8));
            }

            var verify = Support.Cli.Run("verify", "--store", store);
            Assert.True(verify.ExitCode == 0, "the cut log should still verify: " + verify.StdOut); // which is why the mark is needed

            var second = Support.Cli.Run("monitor", "--store", store, "--once", "--on-damage", "alert");
            Assert.Equal(1, second.ExitCode);
            var detected = second.Lines.Select(l => JsonDocument.Parse(l).RootElement).Single(e => Str(e, "event") == "DamageDetected");
            Assert.Equal("LogShrunk", Str(detected.GetProperty("findings")[0], "kind"));
            Assert.Contains("8..10 vanished", Str(detected, "message"));
            Assert.Equal(7, Kit.Events(store).Count); // policy alert: nothing touched
            Assert.Equal(10, HighWater(store)!.Value.Seq); // the mark does not follow the damage down
        }
    }
}

namespace BmadGuard.Tests.MonitorBackups
{
    /// <summary>
    /// Figures, reported and never asserted, on a 100k-event store: what the backup sweep costs (first read vs an unchanged,
    /// cached backup), and how long a deleted newest segment takes to be detected and restored. Runs only with
    /// BMADGUARD_MEASURE=1:
    /// <c>BMADGUARD_MEASURE=1 dotnet test tests/BmadGuard.Tests -c Release --filter "FullyQualifiedName~MonitorWatchMeasurements" --logger "console;verbosity=detailed"</c>
    /// </summary>
    [Collection(MonitoringCollection.Name)]
    public class MonitorWatchMeasurements
    {
        private readonly ITestOutputHelper _out;

        public MonitorWatchMeasurements(ITestOutputHelper output) => _out = output;

        [Fact]
        public void BackupSweepCostAndVanishedSegmentRecoveryOnA100kEventStore()
        {
            if (Environment.GetEnvironmentVariable("BMADGUARD_MEASURE") != "1")
            {
                _out.WriteLine("Not measured: set BMADGUARD_MEASURE=1 to run the measurements.");
                return;
            }

            const int events = 100_000;
            using var dir = new TempDir();
            string store = dir.Combine("store");
            Assert.Equal(0, Support.Cli.Run("init", "--store", store, "--segment-max-bytes", "4194304").ExitCode);
            using (var s = Core.Storage.FileEventStore.Open(store))
            {
                for (int start = 1; start <= events; start += 5000)
                {
                    s.Publish(Enumerable.Range(start, 5000).Select(i => Core.Events.EventDraft.FromJson("test.n", "kit", null, "{\"n\":" + i + "}")).ToList());
                }
            }

            var backup = Support.Cli.Run("backup", "--store", store);
            Assert.True(backup.ExitCode == 0, backup.StdErr);
            long backupBytes = Directory.GetFiles(Path.Combine(store, "backups"), "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
            var watch = new Core.Integration.BackupWatch();
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var first = watch.Verify(store, CancellationToken.None);
            var firstTime = clock.Elapsed;
            clock.Restart();
            var cached = watch.Verify(store, CancellationToken.None);
            var cachedTime = clock.Elapsed;
            _out.WriteLine($"backup sweep: {backupBytes / 1048576.0:0.0} MiB in {Directory.GetFiles(Path.Combine(store, "segments")).Length} segments; first sweep read {first.BytesRead / 1048576.0:0.0} MiB in {firstTime.TotalMilliseconds:0} ms, " +
                           $"unchanged sweep read {cached.BytesRead} bytes in {cachedTime.TotalMilliseconds:0.0} ms (ratio {firstTime.TotalMilliseconds / Math.Max(0.001, cachedTime.TotalMilliseconds):0}x)");

            Kit.WriteConfig(store, "{ \"probeInterval\": \"0s\", \"deepInterval\": \"1h\" }");
            using var m = new MonitorProcess("--store", store, "--on-damage", "restore"); // default interval 5 s
            m.WaitReady(store);
            Thread.Sleep(1000);
            string newest = Directory.GetFiles(Path.Combine(store, "segments")).OrderBy(x => x, StringComparer.Ordinal).Last();
            File.Delete(newest);
            var t0 = DateTimeOffset.UtcNow;
            var detected = m.WaitFor(e => MonitorProcess.Kind(e) == "DamageDetected", TimeSpan.FromSeconds(60));
            var restored = m.WaitFor(e => MonitorProcess.Kind(e) == "Restored", TimeSpan.FromSeconds(120));
            Assert.True(detected.HasValue && restored.HasValue, m.StdErr);
            Assert.True(restored!.Value.GetProperty("verified").GetBoolean());
            _out.WriteLine($"deleted newest segment of a {events}-event store: detected after {(MonitorProcess.Time(detected!.Value) - t0).TotalMilliseconds:0} ms, " +
                           $"restored and verified after {(MonitorProcess.Time(restored.Value) - t0).TotalMilliseconds:0} ms (monitor's recovery time {restored.Value.GetProperty("recoveryMs").GetDouble():0} ms)");
            Assert.Equal(events, Kit.Events(store, "test.n").Count);
        }
    }
}
