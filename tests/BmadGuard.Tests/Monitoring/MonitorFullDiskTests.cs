using System;
using System.IO;
using System.Text.Json;
using BmadGuard.Tests.Store;
using BmadGuard.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace BmadGuard.Tests.Monitoring
{
    /// <summary>
    /// Issue 9, invariant 8: the monitor never starves the store it guards (its outbox reserve is bounded by free
    /// space and given back first) and never fails silently (a failed heartbeat, audit or metrics write is printed,
    /// counted, and reported by --status and health). Real CLI processes.
    /// </summary>
    [Collection("StoreProcesses")]
    public sealed class MonitorFullDiskTests
    {
        private readonly ITestOutputHelper _output;

        public MonitorFullDiskTests(ITestOutputHelper output) => _output = output;

        private static string ReservePath(string store) => Path.Combine(store, "outbox", "reserve.bin");

        private static long ReserveSize(string store) => File.Exists(ReservePath(store)) ? new FileInfo(ReservePath(store)).Length : 0;

        private static long Free(string path) => new DriveInfo(path).AvailableFreeSpace;

        /// <summary>Fills the file system until only about <paramref name="leave"/> bytes are free (0: until ENOSPC).</summary>
        private static void Fill(string file, long leave)
        {
            using var s = new FileStream(file, FileMode.Append, FileAccess.Write);
            var block = new byte[64 * 1024];
            try
            {
                while (Free(Path.GetDirectoryName(file)!) - block.Length > leave)
                {
                    s.Write(block, 0, block.Length);
                    s.Flush(true);
                }

                if (leave == 0)
                {
                    var one = new byte[4096];
                    while (true)
                    {
                        s.Write(one, 0, one.Length);
                        s.Flush(true);
                    }
                }
            }
            catch (IOException)
            {
                // ENOSPC: full
            }
        }

        [Fact]
        public void On_a_nearly_full_disk_the_monitor_takes_no_reserve_and_gives_back_the_one_it_has()
        {
            using var dir = new TempDir();
            using var mount = TmpfsMount.TryMount(dir.Combine("mnt"), "80m", out string why);
            if (mount == null)
            {
                _output.WriteLine("SKIPPED: " + why);
                return;
            }

            string store = Path.Combine(mount.Path, "store");
            Assert.Equal(0, Support.Cli.Run("init", "--store", store).ExitCode);
            // Plenty of room (80 MiB free, over the 64 MiB floor): the reserve is taken.
            Assert.Equal(0, Support.Cli.Run("monitor", "--store", store, "--once").ExitCode);
            long taken = ReserveSize(store);
            _output.WriteLine($"reserve with {Free(mount.Path)} free: {taken}");
            Assert.True(taken > 0, "the reserve is taken while there is room");

            // Space runs low (under the floor): the next pass gives the reserve back before publishers need it.
            Fill(Path.Combine(mount.Path, "filler"), leave: 2L * 1024 * 1024);
            long freeBefore = Free(mount.Path);
            var r = Support.Cli.Run("monitor", "--store", store, "--once");
            _output.WriteLine($"free {freeBefore} -> {Free(mount.Path)}; reserve {ReserveSize(store)}; exit {r.ExitCode}\n{r.StdErr}");
            Assert.Equal(0, ReserveSize(store));

            // And publishers get the space: a megabyte of events fits where the reserve was.
            string data = "{\"pad\":\"" + new string('p', 60 * 1024) + "\"}";
            for (int i = 0; i < 24; i++)
            {
                var p = Support.Cli.Run("publish", "--store", store, "--type", "full.reserve", "--data", data);
                Assert.True(p.ExitCode == 0, $"publish {i}: {p.StdErr}");
            }
        }

        [Fact]
        public void On_a_full_disk_the_monitor_says_so_and_exits_1()
        {
            using var dir = new TempDir();
            using var mount = TmpfsMount.TryMount(dir.Combine("mnt"), "4m", out string why);
            if (mount == null)
            {
                _output.WriteLine("SKIPPED: " + why);
                return;
            }

            string store = Path.Combine(mount.Path, "store");
            Assert.Equal(0, Support.Cli.Run("init", "--store", store).ExitCode);
            Assert.Equal(0, Support.Cli.Run("publish", "--store", store, "--type", "full.monitor", "--data", "{}").ExitCode);
            Fill(Path.Combine(mount.Path, "filler"), leave: 0);
            var r = Support.Cli.Run("monitor", "--store", store, "--once");
            _output.WriteLine($"exit {r.ExitCode}\n{r.StdErr}");
            Assert.Contains("MonitorWriteFailed", r.StdErr);
            Assert.Contains("StoreFull", r.StdErr);
            Assert.Equal(1, r.ExitCode);
        }

        [Fact]
        public void A_failed_audit_or_metrics_write_is_printed_counted_and_reported_by_status_and_health()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            Assert.Equal(0, Support.Cli.Run("init", "--store", store).ExitCode);
            // The audit log and the metrics file cannot be written (a directory stands in their place); the heartbeat can.
            Directory.CreateDirectory(Path.Combine(store, "audit.jsonl", "in-the-way"));
            Directory.CreateDirectory(Path.Combine(store, "metrics.prom", "in-the-way"));
            var r = Support.Cli.Run("monitor", "--store", store, "--once");
            _output.WriteLine($"exit {r.ExitCode}\n{r.StdErr}");
            Assert.Contains("MonitorWriteFailed", r.StdErr);
            Assert.Contains("audit.jsonl", r.StdErr);
            Assert.Contains("metrics", r.StdErr);
            Assert.Equal(1, r.ExitCode);

            var status = Support.Cli.Run("monitor", "--store", store, "--status");
            _output.WriteLine(status.StdOut);
            using (var doc = JsonDocument.Parse(status.StdOut))
            {
                Assert.True(doc.RootElement.GetProperty("writeErrors").GetInt64() > 0);
                Assert.Contains("write its own files", doc.RootElement.GetProperty("summary").GetString());
            }

            var health = Support.Cli.Run("health", "--store", store);
            _output.WriteLine(health.StdOut);
            Assert.Contains("\"writeErrors\"", health.StdOut);
            Assert.Contains("failed", health.StdOut);
        }
    }
}
