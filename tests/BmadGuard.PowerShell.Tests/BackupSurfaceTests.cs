using System;
using System.IO;
using System.Linq;
using System.Threading;
using BmadGuard.Completion;
using BmadGuard.Core.Alerts;
using BmadGuard.Core.Backup;
using BmadGuard.Core.Events;
using BmadGuard.Core.Health;
using BmadGuard.Core.Monitoring;
using BmadGuard.Core.Storage;
using Xunit;

namespace BmadGuard.Tests.PowerShell
{
    /// <summary>
    /// What the backup and monitor cmdlets show, made from real Core results: backups and restores as output objects,
    /// backup-name completion, the backup hooks the monitor and the health report use, and secrets kept out of events.
    /// </summary>
    public sealed class BackupSurfaceTests : IDisposable
    {
        private readonly string _dir = Path.Combine(Path.GetTempPath(), "bmadguard-ps-tests", Guid.NewGuid().ToString("N"));

        public void Dispose()
        {
            try
            {
                Directory.Delete(_dir, true);
            }
            catch (IOException)
            {
            }
        }

        private void Publish(int count)
        {
            using var store = FileEventStore.Initialize(_dir, new StoreSettings(), null, out _);
            for (int i = 0; i < count; i++)
            {
                store.Publish(EventDraft.FromJson("story.created", "architect", null, "{\"n\":" + i + "}"));
            }
        }

        [Fact]
        public void A_backup_becomes_a_verified_BmadBackup_with_the_store_and_name_a_restore_binds()
        {
            Publish(5);
            var b = new BmadBackup(StoreBackup.Create(_dir));
            Assert.Equal("Verified", b.State);
            Assert.Equal(5, b.EventCount);
            Assert.Equal(5, b.LastSeq);
            Assert.Equal("backup", b.Kind);
            Assert.True(Directory.Exists(b.Path));
            Assert.Equal(Path.GetFullPath(_dir).TrimEnd(Path.DirectorySeparatorChar), b.Store.TrimEnd(Path.DirectorySeparatorChar));
            Assert.Empty(b.Findings);
        }

        [Fact]
        public void A_restore_report_says_what_was_kept_aside()
        {
            Publish(3);
            var backup = StoreBackup.Create(_dir);
            Publish(2);
            var r = new BmadRestoreResult(StoreRestore.Restore(_dir, new RestoreRequest { Force = true, BackupName = backup.Name }));
            Assert.Equal(backup.Name, r.Backup);
            Assert.Equal(5, r.EventsBefore);
            Assert.Equal(3, r.EventsAfter);
            Assert.Equal(2, r.KeptAside);
            Assert.True(File.Exists(r.KeptAsideFile));
            Assert.False(string.IsNullOrEmpty(r.SafetyBackup));
        }

        [Fact]
        public void Backup_names_complete_newest_first_and_by_prefix()
        {
            Publish(1);
            var first = StoreBackup.Create(_dir);
            Publish(1);
            var second = StoreBackup.Create(_dir);
            var all = BackupNameCompleter.Names(_dir, "").Select(c => c.Name).ToArray();
            Assert.Equal(new[] { second.Name, first.Name }, all);
            Assert.Equal(new[] { first.Name }, BackupNameCompleter.Names(_dir, "'" + first.Name.ToLowerInvariant()).Select(c => c.Name).ToArray());
            Assert.Contains("Verified", BackupNameCompleter.Names(_dir, "").First().Description);
            Assert.Empty(BackupNameCompleter.Names(Path.Combine(_dir, "missing"), ""));
        }

        [Fact]
        public void The_monitor_hooks_take_verified_backups_and_find_the_newest()
        {
            Publish(4);
            var hooks = new BmadGuard.Core.Integration.StoreBackupTaker();
            Assert.Null(hooks.NewestVerified(_dir));
            var taken = hooks.TakeBackup(_dir, "scheduled", CancellationToken.None);
            Assert.True(taken.Available && taken.Success, taken.Message);
            Assert.Equal(taken.Backup!.Name, hooks.NewestVerified(_dir)!.Name);
        }

        [Fact]
        public void With_the_backup_hooks_the_health_report_sees_a_fresh_backup()
        {
            Publish(2);
            var before = new BmadHealthReport(HealthChecker.Run(_dir, null, null, null, probe: false));
            Assert.NotEqual("Healthy", before.Checks.Single(c => c.Name == "backup").Status);
            StoreBackup.Create(_dir);
            var after = new BmadHealthReport(HealthChecker.Run(_dir, null, null, null, probe: false));
            Assert.Equal("Healthy", after.Checks.Single(c => c.Name == "backup").Status);
            Assert.Equal((int)Enum.Parse(typeof(HealthStatus), after.Status), after.ExitCode);
        }

        [Fact]
        public void Restore_latest_through_the_hooks_brings_back_the_backed_up_events()
        {
            Publish(3);
            StoreBackup.Create(_dir);
            Publish(2);
            var healed = new BmadGuard.Core.Integration.BackupHealer(putBackNewerEvents: false).RestoreLatest(_dir, CancellationToken.None);
            Assert.Equal(HealOutcome.Healed, healed.Outcome);
            using var store = FileEventStore.Open(_dir);
            // The 3 backed-up events are back; seqs 4..5 stay taken by placeholders (seqs are never reused).
            var all = store.Read(new EventQuery()).ToList();
            Assert.Equal(new long[] { 1, 2, 3 }, all.Where(e => e.Type == "story.created").Select(e => e.Seq));
            Assert.Equal(5, all.Max(e => e.Seq));
        }

        [Fact]
        public void Restore_latest_without_any_backup_is_not_available_and_changes_nothing()
        {
            Publish(2);
            var healed = new BmadGuard.Core.Integration.BackupHealer().RestoreLatest(_dir, CancellationToken.None);
            Assert.NotEqual(HealOutcome.Healed, healed.Outcome);
            using var store = FileEventStore.Open(_dir);
            Assert.Equal(2, store.GetStatistics(CancellationToken.None).TotalEvents);
        }

        [Fact]
        public void A_monitor_event_never_shows_a_webhook_secret()
        {
            const string secret = "https://hooks.slack.com/services/T000/B000/XXXXSECRET";
            var redactor = new Redactor();
            redactor.AddSecret(secret);
            var alert = new Alert("k", AlertSeverity.Error, AlertKind.Raised, "t", "x", _dir);
            var failed = new AlertFailed(alert, "slack " + secret, 4, "POST " + secret + " failed: 500");
            var e = new BmadMonitorEvent(failed, redactor.Redact);
            Assert.Equal("AlertFailed", e.Event);
            Assert.False(e.Ok);
            Assert.DoesNotContain("XXXXSECRET", e.Message + e.Channel);
        }
    }
}
