using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using BmadGuard.Core.Backup;
using BmadGuard.Core.Storage;
using BmadGuard.Tests.Support;
using Xunit;
using CliRunner = BmadGuard.Tests.Support.Cli;

namespace BmadGuard.Tests.Backup
{
    public sealed class RetentionTests
    {
        private static BackupInfo At(string time, BackupState state = BackupState.Verified)
        {
            var t = DateTimeOffset.Parse(time + "Z");
            string name = t.UtcDateTime.ToString("yyyyMMdd'T'HHmmssfff'Z'") + "-aaaaaa";
            return new BackupInfo(name, "/x/" + name, "/store", BackupKinds.Backup, t, t, 1, 1, 1, state, state == BackupState.Verified ? null : "damaged", BackupCheck.Quick, Array.Empty<BackupFinding>());
        }

        private static List<string> Kept(IReadOnlyList<BackupInfo> all, RetentionPolicy policy)
            => BackupCatalog.Plan(all, policy).Keep.Select(b => b.Created.UtcDateTime.ToString("MM-dd HH:mm")).OrderBy(x => x).ToList();

        private static readonly BackupInfo[] Series =
        {
            At("2026-11-02T10:00:00"), // Monday, week 45
            At("2026-11-05T09:00:00"), // Thursday, week 45
            At("2026-11-09T08:00:00"), // Monday, week 46
            At("2026-11-20T08:00:00"), // Friday, week 47
            At("2026-11-20T23:30:00"),
            At("2026-11-21T10:00:00"),
            At("2026-11-21T10:40:00"),
            At("2026-11-21T11:05:00"),
            At("2026-11-21T11:50:00"),
        };

        [Fact]
        public void KeepLast() => Assert.Equal(new[] { "11-21 10:40", "11-21 11:05", "11-21 11:50" }, Kept(Series, new RetentionPolicy { KeepLast = 3 }));

        [Fact]
        public void KeepHourly_KeepsTheNewestOfEachHour()
            => Assert.Equal(new[] { "11-20 23:30", "11-21 10:40", "11-21 11:50" }, Kept(Series, new RetentionPolicy { KeepHourly = 3 }));

        [Fact]
        public void KeepDaily_KeepsTheNewestOfEachDay()
            => Assert.Equal(new[] { "11-09 08:00", "11-20 23:30", "11-21 11:50" }, Kept(Series, new RetentionPolicy { KeepDaily = 3 }));

        [Fact]
        public void KeepWeekly_UsesIsoWeeks()
            => Assert.Equal(new[] { "11-05 09:00", "11-09 08:00", "11-21 11:50" }, Kept(Series, new RetentionPolicy { KeepWeekly = 5 }));

        [Fact]
        public void RulesCombineAsAUnion()
            => Assert.Equal(new[] { "11-20 23:30", "11-21 11:05", "11-21 11:50" }, Kept(Series, new RetentionPolicy { KeepLast = 2, KeepDaily = 2 }));

        [Fact]
        public void TheNewestVerifiedIsAlwaysKept_AndDamagedOnesAreNeitherCountedNorRemoved()
        {
            var all = Series.Take(8).Append(At("2026-11-21T12:00:00", BackupState.Damaged)).ToList();
            var (keep, remove, skipped) = BackupCatalog.Plan(all, new RetentionPolicy { KeepLast = 0 });
            Assert.Equal(new[] { all[7].Name }, keep.Select(b => b.Name));
            Assert.Equal(7, remove.Count);
            Assert.Equal(new[] { all[8].Name }, skipped.Select(b => b.Name));
        }

        [Fact]
        public void NoRule_RemovesNothing() => Assert.Empty(BackupCatalog.Plan(Series, new RetentionPolicy()).Remove);

        [Fact]
        public void CliKeepLast_RemovesOlderBackupsAndReportsThem_ButNotADamagedOne()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            using (var s = BackupFixture.NewStore(store))
            {
                BackupFixture.Publish(s, 30);
            }

            var names = new List<string>();
            for (int i = 0; i < 3; i++)
            {
                names.Add(StoreBackup.Create(store).Name);
            }

            // The oldest is damaged: retention leaves it for a person to look at.
            File.AppendAllText(Path.Combine(store, "backups", names[0], "manifest.json"), "x");
            var r = CliRunner.Run("backup", "--store", store, "--keep-last", "2");
            Assert.True(r.ExitCode == 0, r.StdErr);
            var info = BackupFixture.Json(r.StdOut);
            string newest = info.GetProperty("name").GetString()!;
            var retention = info.GetProperty("retention");
            Assert.Equal(new[] { names[1] }, retention.GetProperty("removed").EnumerateArray().Select(e => e.GetString()));
            Assert.Equal(new[] { names[0] }, retention.GetProperty("skipped").EnumerateArray().Select(e => e.GetString()));
            var left = Directory.GetDirectories(Path.Combine(store, "backups")).Select(Path.GetFileName).OrderBy(x => x).ToArray();
            Assert.Equal(new[] { names[0], names[2], newest }, left);
            // The survivor that shared hard links with the removed one is still whole.
            Assert.True(BackupVerifier.Verify(Path.Combine(store, "backups", names[2])).Healthy);
        }
    }
}
