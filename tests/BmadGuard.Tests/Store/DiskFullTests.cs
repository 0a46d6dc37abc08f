using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using BmadGuard.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace BmadGuard.Tests.Store
{
    /// <summary>A small tmpfs, mounted for one test (needs root; CI runs as root).</summary>
    public sealed class TmpfsMount : IDisposable
    {
        private TmpfsMount(string path) => Path = path;

        public string Path { get; }

        /// <summary>Mounts a tmpfs of <paramref name="size"/> at <paramref name="path"/>; null (and <paramref name="why"/>) when not permitted here.</summary>
        public static TmpfsMount? TryMount(string path, string size, out string why)
        {
            why = "";
            if (!OperatingSystem.IsLinux())
            {
                why = "tmpfs mounts need Linux";
                return null;
            }

            Directory.CreateDirectory(path);
            var r = RunTool("mount", "-t", "tmpfs", "-o", "size=" + size + ",mode=0700", "tmpfs", path);
            if (r.ExitCode != 0)
            {
                why = $"mount -t tmpfs failed (exit {r.ExitCode}: {r.Output.Trim()}); disk-full tests need root";
                return null;
            }

            return new TmpfsMount(path);
        }

        private static (int ExitCode, string Output) RunTool(string file, params string[] args)
        {
            try
            {
                var psi = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
                foreach (var a in args)
                {
                    psi.ArgumentList.Add(a);
                }

                using var p = Process.Start(psi)!;
                string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
                p.WaitForExit();
                return (p.ExitCode, output);
            }
            catch (System.ComponentModel.Win32Exception ex)
            {
                return (-1, ex.Message);
            }
        }

        public void Dispose()
        {
            var r = RunTool("umount", Path);
            if (r.ExitCode != 0)
            {
                RunTool("umount", "-l", Path);
            }
        }
    }

    [Collection("StoreProcesses")]
    public sealed class DiskFullTests
    {
        private readonly ITestOutputHelper _output;

        public DiskFullTests(ITestOutputHelper output) => _output = output;

        [Theory]
        [InlineData("one segment", null)]
        [InlineData("small segments (the disk fills at a rollover too)", "8192")]
        public void A_full_disk_is_a_clear_error_the_store_stays_valid_and_takes_events_again_once_there_is_room(string what, string? segmentMaxBytes)
        {
            using var dir = new TempDir();
            using var mount = TmpfsMount.TryMount(dir.Combine("mnt"), "256k", out string why);
            if (mount == null)
            {
                _output.WriteLine("SKIPPED: " + why);
                return;
            }

            string store = Path.Combine(mount.Path, "store");
            if (segmentMaxBytes == null)
            {
                StoreInspector.Init(store);
            }
            else
            {
                StoreInspector.Init(store, "--segment-max-bytes", segmentMaxBytes, "--max-event-bytes", "4096");
            }

            // A filler takes most of the room; the test frees it later.
            string filler = Path.Combine(mount.Path, "filler");
            File.WriteAllBytes(filler, new byte[160 * 1024]);

            var input = new StringBuilder();
            for (int i = 0; i < 400; i++)
            {
                input.Append($"{{\"type\":\"full.test\",\"data\":{{\"marker\":\"b{i:D4}\",\"pad\":\"{new string('f', 600)}\"}}}}\n");
            }

            int acked = 0;
            int attempts = 0;
            Support.Cli.Result last;
            // Batches of 25 (about 17 KiB) until the disk is full; a batch's events are only printed once durable.
            string[] lines = input.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
            do
            {
                string batchInput = string.Concat(lines.Take(25).Select(l => l.Replace("\"b", $"\"a{attempts}-") + "\n"));
                last = Support.Cli.RunWithStdin(batchInput, "publish", "--store", store, "--stdin");
                acked += last.Lines.Length;
                attempts++;
            }
            while (last.ExitCode == 0 && attempts < 40);

            _output.WriteLine($"{what}: {acked} events acknowledged before the disk filled; stderr: {last.StdErr.Trim()}");
            Assert.Equal(1, last.ExitCode);
            Assert.StartsWith("bmadguard: StoreFull:", last.StdErr);
            Assert.True(acked > 0, "some events should fit");

            // The failed batch was cut back, so some room is left: single publishes fill it until one fails
            // the same way, writing nothing.
            Support.Cli.Result single;
            int singles = 0;
            while (true)
            {
                var segmentsBefore = StoreInspector.SnapshotSegments(store);
                single = Support.Cli.Run("publish", "--store", store, "--type", "full.test", "--data", $"{{\"marker\":\"single{singles++}\",\"pad\":\"{new string('s', 3000)}\"}}");
                if (single.ExitCode != 0)
                {
                    StoreInspector.AssertUnchanged(segmentsBefore, store);
                    break;
                }

                acked++;
                Assert.True(singles < 60, "the disk should be full by now");
            }

            Assert.Equal(1, single.ExitCode);
            Assert.StartsWith("bmadguard: StoreFull:", single.StdErr);
            Assert.Empty(single.Lines);

            // The store is valid: no torn tail, exactly the acknowledged events, and it opens without repairs.
            var records = StoreInspector.AssertClean(store);
            Assert.Equal(acked, records.Count);
            var get = Support.Cli.Run("get", "--store", store);
            Assert.Equal(0, get.ExitCode);
            Assert.Equal("", get.StdErr);
            Assert.Equal(acked, get.Lines.Length);

            // Room again: publishing works.
            File.Delete(filler);
            var again = Support.Cli.Run("publish", "--store", store, "--type", "full.test", "--data", "{\"marker\":\"after\"}");
            Assert.True(again.ExitCode == 0, again.StdErr);
            string smallBatch = string.Concat(input.ToString().Replace("\"b", "\"z").Split('\n').Take(50).Select(l => l + "\n"));
            var batch = Support.Cli.RunWithStdin(smallBatch, "publish", "--store", store, "--stdin");
            Assert.True(batch.ExitCode == 0, batch.StdErr);
            Assert.Equal(50, batch.Lines.Length);
            records = StoreInspector.AssertClean(store);
            Assert.Equal(acked + 1 + 50, records.Count);
            Assert.Equal("after", records[acked].Marker);
        }
    }
}
