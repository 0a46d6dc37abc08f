using System;
using System.IO;
using System.Linq;
using BmadGuard.Core.Backup;
using BmadGuard.Tests.Support;
using Xunit;

namespace BmadGuard.Tests.Backup
{
    /// <summary>
    /// Backups are ordered by the log (last seq, then writer epoch), never by the wall clock (issue 9, invariant 5):
    /// a backup taken while the clock was set back is still the newest; retention never removes the backup it just
    /// made nor the newest safety backup, and safety backups have a retention of their own (--keep-safety).
    /// </summary>
    public sealed class LogOrderTests
    {
        private static BackupInfo Backup(string store, DateTimeOffset clock, RetentionPolicy? retention = null)
            => StoreBackup.Create(store, new BackupOptions { Clock = () => clock, Retention = retention });

        [Fact]
        public void A_backup_taken_with_the_clock_set_back_is_the_newest_for_listing_restore_and_retention()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            using (var s = BackupFixture.NewStore(store))
            {
                BackupFixture.Publish(s, 5);
            }

            var a = Backup(store, DateTimeOffset.UtcNow);
            using (var s = FileEventStore_Open(store))
            {
                BackupFixture.Publish(s, 5);
            }

            var b = Backup(store, DateTimeOffset.UtcNow.AddDays(-1)); // the clock was set back a day
            Assert.True(string.CompareOrdinal(b.Name, a.Name) < 0); // its name sorts first: the name is not the order

            var listed = BackupCatalog.List(store);
            Assert.Equal(new[] { b.Name, a.Name }, listed.Select(x => x.Name)); // newest first, by the log

            var latest = StoreRestore.Restore(store, new RestoreRequest { Latest = true, Force = true });
            Assert.Equal(b.Name, latest.Backup);
            Assert.Equal(10, latest.RestoredLastSeq);
            Assert.Equal(0, latest.KeptAside);
            string firstSafety = latest.SafetyBackup;

            var atNow = StoreRestore.Restore(store, new RestoreRequest { At = DateTimeOffset.UtcNow, Force = true });
            Assert.Equal(b.Name, atNow.Backup);
            Assert.Equal(10, BackupFixture.ReadAll(store).Count);

            // keep-last 1 with the clock set back further: the backup just made stays, the older regular ones go,
            // the safety backups (the only way to undo those restores) are not this rule's to remove.
            using (var s = FileEventStore_Open(store))
            {
                BackupFixture.Publish(s, 2);
            }

            var c = Backup(store, DateTimeOffset.UtcNow.AddDays(-2), new RetentionPolicy { KeepLast = 1 });
            var names = BackupCatalog.List(store).Select(x => x.Name).ToList();
            Assert.Contains(c.Name, names);
            Assert.DoesNotContain(a.Name, names);
            Assert.DoesNotContain(b.Name, names);
            Assert.Contains(firstSafety, names);
            Assert.Contains(atNow.SafetyBackup, names);
            Assert.Equal(c.Name, names[0]);
            Assert.Equal(new[] { a.Name, b.Name }.OrderBy(n => n), c.Retention!.Removed.OrderBy(n => n));

            // --keep-safety 1: the newest safety backup (by the log) stays, older ones go; regular ones are untouched.
            var d = Backup(store, DateTimeOffset.UtcNow, new RetentionPolicy { KeepSafety = 1 });
            names = BackupCatalog.List(store).Select(x => x.Name).ToList();
            Assert.Contains(d.Name, names);
            Assert.Contains(c.Name, names);
            Assert.Single(BackupCatalog.List(store).Where(x => x.Kind == BackupKinds.Safety));
            Assert.Contains(atNow.SafetyBackup, names);
        }

        [Fact]
        public void Retention_never_removes_the_backup_just_made_even_when_another_holds_more_of_the_log()
        {
            var older = Info("20261121T100000000Z-aaaaaa", 20, BackupKinds.Backup);
            var justMade = Info("20261121T110000000Z-bbbbbb", 10, BackupKinds.Backup); // after a rollback, or a racing backup
            var safety = Info("20261121T090000000Z-cccccc", 30, BackupKinds.Safety);
            var (keep, remove, _) = BackupCatalog.Plan(new[] { older, justMade, safety }, new RetentionPolicy { KeepLast = 1 }, justMade.Name);
            Assert.Contains(justMade.Name, keep.Select(b => b.Name));
            Assert.Contains(older.Name, keep.Select(b => b.Name)); // the newest by the log
            Assert.Contains(safety.Name, keep.Select(b => b.Name));
            Assert.Empty(remove);
        }

        private static BackupInfo Info(string name, long lastSeq, string kind)
            => new BackupInfo(name, "/x/" + name, "/store", kind, DateTimeOffset.UtcNow, DateTimeOffset.UtcNow, lastSeq, lastSeq, 1, BackupState.Verified, null,
                BackupCheck.Quick, Array.Empty<BackupFinding>());

        private static BmadGuard.Core.Storage.FileEventStore FileEventStore_Open(string store) => BmadGuard.Core.Storage.FileEventStore.Open(store);
    }
}
