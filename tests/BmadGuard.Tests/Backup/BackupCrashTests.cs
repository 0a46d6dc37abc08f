using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using BmadGuard.Core.Backup;
using BmadGuard.Core.Storage;
using BmadGuard.Tests.Support;
using Xunit;
using Xunit.Abstractions;
using CliRunner = BmadGuard.Tests.Support.Cli;

namespace BmadGuard.Tests.Backup
{
    /// <summary>kill -9 of a real `bmadguard backup` / `bmadguard restore` process at seeded random moments.</summary>
    public sealed class BackupCrashTests
    {
        private readonly ITestOutputHelper _output;

        public BackupCrashTests(ITestOutputHelper output) => _output = output;

        private static bool RunAndKill(string[] args, int delayMs)
        {
            using var p = Process.Start(CliRunner.StartInfo(args))!;
            bool exited = p.WaitForExit(delayMs);
            if (!exited)
            {
                p.Kill(entireProcessTree: true); // SIGKILL: no cleanup code runs
                p.WaitForExit();
            }

            return exited;
        }

        [Fact]
        public void KilledBackup_NeverLeavesADamagedBackupUnderABackupName_AndTheNextBackupWorks()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            using (var s = BackupFixture.NewStore(store, segmentMaxBytes: 256 * 1024))
            {
                BackupFixture.Publish(s, 30_000, batch: 1000); // ~6 MB in ~25 segments
            }

            var random = new Random(7);
            int killed = 0;
            for (int i = 0; i < 6; i++)
            {
                if (!RunAndKill(new[] { "backup", "--store", store }, 150 + random.Next(700)))
                {
                    killed++;
                }

                foreach (var b in BackupCatalog.List(store, check: BackupCheck.Deep))
                {
                    // A backup name means complete and verified; anything interrupted is a .tmp directory.
                    Assert.True(b.State != BackupState.Damaged, $"{b.Name}: {b.Reason}");
                }
            }

            _output.WriteLine($"killed {killed} of 6 backups mid-way");
            var final = StoreBackup.Create(store);
            Assert.Equal(BackupState.Verified, final.State);
            Assert.Equal(30_000, final.LastSeq);
            Assert.Equal(30_000, BackupFixture.ReadAll(store).Count);
        }

        [Fact]
        public void KilledRestore_LeavesEveryEventInTheStoreOrKeptAside()
        {
            var random = new Random(11);
            int killedCount = 0;
            for (int i = 0; i < 4; i++)
            {
                using var dir = new TempDir();
                string store = dir.Combine("store");
                using (var s = BackupFixture.NewStore(store, segmentMaxBytes: 256 * 1024))
                {
                    BackupFixture.Publish(s, 10_000, batch: 1000);
                }

                var backup = StoreBackup.Create(store);
                var all = BackupFixture.ReadAll(store);
                using (var s = FileEventStore.Open(store))
                {
                    all.AddRange(BackupFixture.Publish(s, 10_000, batch: 1000));
                }

                bool finished = RunAndKill(new[] { "restore", "--store", store, "--backup", backup.Name, "--force" }, 150 + random.Next(900));
                if (!finished)
                {
                    killedCount++;
                }

                // The store opens and reads; it holds the old log or the restored one, never a mix. (Restored, seqs
                // 10,001..20,000 stay taken by rolledback placeholders: seqs are never reused.)
                var now = BackupFixture.ReadEvents(store);
                Assert.True(now.Count == 20_000 || now.Count == 10_000, $"case {i}: {now.Count} events");
                Assert.Equal(all.Take(now.Count).Select(e => e.Id), now.Select(e => e.Id));
                if (now.Count == 10_000)
                {
                    // Restored: the newer events were kept aside before the swap.
                    string keptAside = Directory.GetFiles(Path.Combine(store, "quarantine"), "restore-*-kept-aside.jsonl").Single();
                    Assert.Equal(all.Skip(10_000).Select(e => e.Id), BackupFixture.ReadIds(keptAside));
                }

                // And it takes new events, above every seq the old log handed out.
                using (var s = FileEventStore.Open(store))
                {
                    Assert.Equal(20_001, BackupFixture.Publish(s, 1)[0].Seq);
                }
            }

            _output.WriteLine($"killed {killedCount} of 4 restores mid-way");
        }
    }
}
