using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using BmadGuard.Core.Integrity;
using BmadGuard.Core.Storage;
using BmadGuard.Tests.Support;
using Xunit;
using CliRunner = BmadGuard.Tests.Support.Cli;

namespace BmadGuard.Tests.Integrity
{
    public sealed class VerifyUnderLoadTests
    {
        /// <summary>
        /// Verify takes no lock and repair takes the writers' lock: with two publisher processes appending (and
        /// rolling over small segments), neither reports damage that is not there, and every acknowledged event
        /// is in the store exactly once afterwards.
        /// </summary>
        [Fact]
        public async System.Threading.Tasks.Task VerifyAndRepairWhilePublishersRunFindNoFalseDamageAndLoseNothing()
        {
            using var dir = new TempDir();
            string root = dir.Combine("store");
            Assert.Equal(0, CliRunner.Run("init", "--store", root, "--segment-max-bytes", "8192", "--max-event-bytes", "2048").ExitCode);
            const int perWriter = 1500;
            var writers = Enumerable.Range(0, 2).Select(w =>
            {
                var p = Process.Start(CliRunner.StartInfo(new[] { "publish", "--store", root, "--stdin", "--lock-timeout", "60" }, redirectStdin: true))!;
                var output = p.StandardOutput.ReadToEndAsync();
                var feed = System.Threading.Tasks.Task.Run(() =>
                {
                    for (int i = 0; i < perWriter; i++)
                    {
                        p.StandardInput.WriteLine($"{{\"type\":\"load.test\",\"source\":\"w{w}\",\"data\":{{\"w\":{w},\"i\":{i}}}}}");
                        if (i % 100 == 0)
                        {
                            p.StandardInput.Flush();
                            System.Threading.Thread.Sleep(5);
                        }
                    }

                    p.StandardInput.Close();
                });
                return (Process: p, Output: output, Feed: feed);
            }).ToList();

            int verifies = 0, repairs = 0;
            var falseDamage = new List<string>();
            while (writers.Any(w => !w.Process.HasExited))
            {
                var report = StoreVerifier.Verify(root);
                verifies++;
                falseDamage.AddRange(report.Findings.Where(f => f.Severity == FindingSeverity.Error).Select(f => f.ToString()));
                if (verifies % 5 == 0)
                {
                    var repair = StoreRepair.Repair(root, new StoreRepairOptions { LockTimeout = System.TimeSpan.FromSeconds(60) });
                    repairs++;
                    falseDamage.AddRange(repair.Actions.Where(a => a.Kind != "TornTailCut").Select(a => "repair acted: " + a.Kind + " " + a.Message));
                }
            }

            foreach (var w in writers)
            {
                await w.Feed;
                Assert.True(w.Process.WaitForExit(60_000));
                Assert.Equal(0, w.Process.ExitCode);
            }

            Assert.Empty(falseDamage);
            Assert.True(verifies >= 2, $"only {verifies} verifies ran during the load");
            var acknowledged = new List<string>();
            foreach (var w in writers)
            {
                acknowledged.AddRange((await w.Output).Split('\n', System.StringSplitOptions.RemoveEmptyEntries));
            }

            Assert.Equal(2 * perWriter, acknowledged.Count);
            var final = StoreVerifier.Verify(root);
            Assert.True(final.Healthy);
            Assert.Equal(2 * perWriter, final.RecordsChecked);
            using var store = FileEventStore.Open(root);
            var keys = store.Read(new EventQuery()).Select(r => r.DataJson).ToList();
            Assert.Equal(2 * perWriter, keys.Distinct().Count());
        }
    }
}
