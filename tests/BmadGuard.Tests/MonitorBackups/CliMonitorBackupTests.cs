using System.Linq;
using System.Text.Json;
using BmadGuard.Tests.Monitoring;
using BmadGuard.Tests.Support;
using Xunit;

namespace BmadGuard.Tests.MonitorBackups
{
    /// <summary>
    /// `bmadguard monitor` and `bmadguard health` (what Register-BmadMonitorTask installs and Invoke-BmadHealthCheck
    /// reports) use the backup feature through the default monitor hooks (Core/Integration): a fresh verified backup makes health's backup check
    /// healthy, and --on-damage restore brings a store with damage inside its log back to its latest backup.
    /// </summary>
    public class CliMonitorBackupTests
    {
        [Fact]
        public void Health_sees_the_newest_verified_backup()
        {
            using var dir = new TempDir();
            string store = Kit.NewStore(dir, 3);
            var backup = Support.Cli.Run("backup", "--store", store);
            Assert.True(backup.ExitCode == 0, backup.StdErr);

            var r = Support.Cli.Run("health", "--store", store);
            using var doc = JsonDocument.Parse(r.StdOut);
            var check = doc.RootElement.GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "backup");
            Assert.Equal("Healthy", check.GetProperty("status").GetString());
        }

        [Fact]
        public void Monitor_once_with_restore_policy_restores_damage_inside_the_log_from_the_latest_backup()
        {
            using var dir = new TempDir();
            string store = Kit.NewStore(dir, 6);
            Assert.Equal(0, Support.Cli.Run("backup", "--store", store).ExitCode);
            string segment = Kit.Segment(store);
            Kit.FlipByte(segment, Kit.LineStart(segment, 3) + 7); // inside the log: repair is not possible, restore is

            var r = Support.Cli.Run("monitor", "--store", store, "--once", "--on-damage", "restore");
            Assert.True(r.ExitCode == 0, r.StdOut + r.StdErr);
            Assert.Contains("\"event\":\"Restored\"", r.StdOut.Replace(" ", string.Empty));
            Assert.Equal(6, Kit.Events(store).Count);
            var stats = Support.Cli.Run("stats", "--store", store); // reads every record and checks its checksum
            Assert.True(stats.ExitCode == 0, stats.StdErr);
        }
    
        [Theory]
        [InlineData("repair")]
        [InlineData("restore")]
        public void A_flipped_bit_in_the_last_record_is_healed_from_the_backup_not_cut(string policy)
        {
            using var dir = new TempDir();
            string store = Kit.NewStore(dir, 6);
            Assert.Equal(0, Support.Cli.Run("backup", "--store", store).ExitCode);
            var before = Kit.Events(store).Select(e => e.GetRawText()).ToList();
            string segment = Kit.Segment(store);
            Kit.FlipByte(segment, Kit.LineStart(segment, 6) + 7); // the last record: complete, so not a torn tail

            var r = Support.Cli.Run("monitor", "--store", store, "--once", "--on-damage", policy);
            Assert.True(r.ExitCode == 0, r.StdOut + r.StdErr);
            string output = r.StdOut.Replace(" ", string.Empty);
            Assert.Contains("\"kind\":\"ChecksumMismatch\"", output);
            Assert.Contains("\"event\":\"Restored\"", output);

            // Every event is back, the sixth one included, byte for byte; nothing was cut as a torn tail.
            Assert.Equal(before, Kit.Events(store).Select(e => e.GetRawText()).ToList());
            Assert.Empty(System.IO.Directory.GetFiles(System.IO.Path.Combine(store, "quarantine"), "*.torn"));
            Assert.Equal(0, Support.Cli.Run("publish", "--store", store, "--type", "test.n", "--data", "{\"n\":7}").ExitCode);
            Assert.Equal(7, Kit.Events(store).Count);
        }
}
}
