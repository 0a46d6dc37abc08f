using System;
using System.IO;
using System.Linq;
using BmadGuard.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace BmadGuard.Tests.Store
{
    /// <summary>
    /// Issue 9, invariant 6: no command follows a symbolic link planted inside a store or a backup, or writes
    /// through one. Real CLI processes; the file or directory the link points at must be byte-for-byte untouched
    /// and the error must name the link.
    /// </summary>
    [Collection("StoreProcesses")]
    public sealed class FileSystemSafetyTests
    {
        private readonly ITestOutputHelper _output;

        public FileSystemSafetyTests(ITestOutputHelper output) => _output = output;

        private sealed class Scene : IDisposable
        {
            public readonly TempDir Dir = new TempDir();

            public Scene(bool withBackup = true)
            {
                Store = Dir.Combine("store");
                Outside = Dir.Combine("outside");
                Directory.CreateDirectory(Outside);
                Victim = Path.Combine(Outside, "victim.txt");
                File.WriteAllText(Victim, "precious contents that must survive\n");
                Check(Support.Cli.Run("init", "--store", Store));
                for (int i = 0; i < 3; i++)
                {
                    Check(Support.Cli.Run("publish", "--store", Store, "--type", "safety.test", "--data", "{\"n\":" + i + "}"));
                }

                if (withBackup)
                {
                    Check(Support.Cli.Run("backup", "--store", Store));
                }

                VictimBytes = File.ReadAllBytes(Victim);
                VictimDir = Path.Combine(Outside, "victim-dir");
                Directory.CreateDirectory(VictimDir);
            }

            public string Store { get; }
            public string Outside { get; }
            public string Victim { get; }
            public byte[] VictimBytes { get; }
            public string VictimDir { get; }

            /// <summary>Replaces the entry <paramref name="relative"/> in the store with a link to <paramref name="target"/>.</summary>
            public string PlantLink(string relative, string target)
            {
                string path = Path.Combine(Store, relative);
                if (Directory.Exists(path) && !File.GetAttributes(path).HasFlag(FileAttributes.ReparsePoint))
                {
                    Directory.Delete(path, recursive: true);
                }
                else if (File.Exists(path))
                {
                    File.Delete(path);
                }

                if (Directory.Exists(target))
                {
                    Directory.CreateSymbolicLink(path, target);
                }
                else
                {
                    File.CreateSymbolicLink(path, target);
                }

                return path;
            }

            public void Dispose() => Dir.Dispose();

            private static void Check(Support.Cli.Result r)
                => Assert.True(r.ExitCode == 0, $"setup failed (exit {r.ExitCode}): {r.StdErr}");
        }

        private void AssertRefused(Support.Cli.Result r, string link)
        {
            _output.WriteLine($"exit {r.ExitCode}\n{r.StdErr}");
            Assert.Equal(1, r.ExitCode);
            Assert.Contains("StoreUnsafePath", r.StdErr);
            Assert.Contains(link, r.StdErr);
        }

        private static void AssertVictimDirEmpty(Scene s)
            => Assert.Empty(Directory.EnumerateFileSystemEntries(s.VictimDir, "*", SearchOption.AllDirectories));

        [Theory]
        [InlineData("repair")]
        [InlineData("restore")]
        [InlineData("publish")]
        [InlineData("backup")]
        public void A_writer_lock_link_is_refused_and_its_target_untouched(string command)
        {
            using var s = new Scene();
            string link = s.PlantLink("writer.lock", s.Victim);
            var r = command switch
            {
                "repair" => Support.Cli.Run("repair", "--store", s.Store),
                "restore" => Support.Cli.Run("restore", "--store", s.Store, "--latest", "--force"),
                "publish" => Support.Cli.Run("publish", "--store", s.Store, "--type", "safety.test", "--data", "{}"),
                _ => Support.Cli.Run("backup", "--store", s.Store),
            };
            Assert.Equal(s.VictimBytes, File.ReadAllBytes(s.Victim));
            AssertRefused(r, link);
        }

        [Fact]
        public void A_quarantine_link_is_not_written_through_by_restore()
        {
            using var s = new Scene();
            string link = s.PlantLink("quarantine", s.VictimDir);
            var r = Support.Cli.Run("restore", "--store", s.Store, "--latest", "--force");
            AssertVictimDirEmpty(s);
            AssertRefused(r, link);
        }

        [Fact]
        public void A_backups_link_is_not_written_through_by_backup()
        {
            using var s = new Scene(withBackup: false);
            string link = s.PlantLink("backups", s.VictimDir);
            var r = Support.Cli.Run("backup", "--store", s.Store);
            AssertVictimDirEmpty(s);
            AssertRefused(r, link);
        }

        [Fact]
        public void A_consumers_link_is_not_written_through_by_a_consumer()
        {
            using var s = new Scene(withBackup: false);
            string link = s.PlantLink("consumers", s.VictimDir);
            var r = Support.Cli.Run("get", "--store", s.Store, "--consumer", "reader");
            AssertVictimDirEmpty(s);
            AssertRefused(r, link);
        }

        [Fact]
        public void A_segment_link_is_not_appended_through()
        {
            using var s = new Scene(withBackup: false);
            string segment = Directory.GetFiles(Path.Combine(s.Store, "segments")).OrderBy(f => f, StringComparer.Ordinal).Last();
            string copy = Path.Combine(s.Outside, "segment-copy");
            File.Copy(segment, copy);
            byte[] before = File.ReadAllBytes(copy);
            string link = s.PlantLink(Path.Combine("segments", Path.GetFileName(segment)), copy);
            var r = Support.Cli.Run("publish", "--store", s.Store, "--type", "safety.test", "--data", "{}");
            Assert.Equal(before, File.ReadAllBytes(copy));
            AssertRefused(r, link);
        }

        [Fact]
        public void A_file_inside_a_backup_that_is_a_link_is_refused_by_restore()
        {
            using var s = new Scene();
            string backup = Directory.GetDirectories(Path.Combine(s.Store, "backups")).Single(d => !Path.GetFileName(d).StartsWith(".", StringComparison.Ordinal));
            string file = Directory.GetFiles(Path.Combine(backup, "segments")).First();
            string copy = Path.Combine(s.Outside, "backup-segment");
            File.Copy(file, copy); // same bytes: only the link gives it away
            long size = new FileInfo(file).Length;
            // A link's own (lstat) size is the length of its target text: pad it with slashes to the segment's size,
            // so no size check gives it away either.
            string target = s.Outside + new string('/', (int)size - s.Outside.Length - "backup-segment".Length) + "backup-segment";
            File.Delete(file);
            File.CreateSymbolicLink(file, target);
            Assert.Equal(size, new FileInfo(file).Length);
            byte[] live = File.ReadAllBytes(Directory.GetFiles(Path.Combine(s.Store, "segments")).Single());
            var r = Support.Cli.Run("restore", "--store", s.Store, "--latest", "--force");
            _output.WriteLine($"exit {r.ExitCode}\n{r.StdErr}");
            AssertRefused(r, file);
            Assert.Equal(live, File.ReadAllBytes(Directory.GetFiles(Path.Combine(s.Store, "segments")).Single()));
        }

        [Fact]
        public void Monitor_writes_nothing_through_outbox_or_metrics_links()
        {
            using var s = new Scene(withBackup: false);
            string outbox = s.PlantLink("outbox", s.VictimDir);
            string metricsTarget = Path.Combine(s.Outside, "metrics-victim");
            File.WriteAllText(metricsTarget, "metrics victim\n");
            s.PlantLink("metrics.prom", metricsTarget);
            s.PlantLink("monitor.json", metricsTarget);
            var r = Support.Cli.Run("monitor", "--store", s.Store, "--once");
            Assert.Equal("metrics victim\n", File.ReadAllText(metricsTarget));
            AssertVictimDirEmpty(s);
            AssertRefused(r, outbox);
        }

        [Fact]
        public void Monitor_does_not_append_its_audit_through_a_link()
        {
            using var s = new Scene(withBackup: false);
            string audit = s.PlantLink("audit.jsonl", s.Victim);
            var r = Support.Cli.Run("monitor", "--store", s.Store, "--once");
            _output.WriteLine($"exit {r.ExitCode}\n{r.StdOut}\n{r.StdErr}");
            Assert.Equal(s.VictimBytes, File.ReadAllBytes(s.Victim));
        }

        [Fact]
        public void A_store_root_that_is_a_link_still_works()
        {
            using var dir = new TempDir();
            string real = dir.Combine("real-store");
            string link = dir.Combine("linked-store");
            Assert.Equal(0, Support.Cli.Run("init", "--store", real).ExitCode);
            Directory.CreateSymbolicLink(link, real);
            Assert.Equal(0, Support.Cli.Run("publish", "--store", link, "--type", "safety.test", "--data", "{}").ExitCode);
            Assert.Equal(0, Support.Cli.Run("backup", "--store", link).ExitCode);
            var restore = Support.Cli.Run("restore", "--store", link, "--latest", "--force");
            Assert.True(restore.ExitCode == 0, restore.StdErr);
            var repair = Support.Cli.Run("repair", "--store", link);
            Assert.True(repair.ExitCode == 0, repair.StdErr);
        }

        [Fact]
        public void Every_file_is_0600_and_every_directory_0700_after_a_full_round()
        {
            if (OperatingSystem.IsWindows())
            {
                return;
            }

            using var dir = new TempDir();
            string store = dir.Combine("store");
            string dest = dir.Combine("new", "nested", "dir");
            void Ok(Support.Cli.Result r, string what) => Assert.True(r.ExitCode == 0, $"{what}: exit {r.ExitCode}: {r.StdErr}");
            Ok(Support.Cli.Run("init", "--store", store), "init");
            for (int i = 0; i < 3; i++)
            {
                Ok(Support.Cli.Run("publish", "--store", store, "--type", "mode.test", "--data", "{\"n\":" + i + "}"), "publish");
            }

            Ok(Support.Cli.Run("publish", "--store", store, "--spool", "--type", "mode.test", "--data", "{}"), "publish --spool");
            Ok(Support.Cli.Run("get", "--store", store, "--consumer", "reader"), "get --consumer");
            Ok(Support.Cli.Run("backup", "--store", store), "backup");
            Ok(Support.Cli.Run("backup", "--store", store, "--dest", dest), "backup --dest");
            Ok(Support.Cli.Run("monitor", "--store", store, "--once"), "monitor --once");
            Ok(Support.Cli.Run("repair", "--store", store), "repair");
            Ok(Support.Cli.Run("restore", "--store", store, "--latest", "--force"), "restore");

            var wrong = new System.Collections.Generic.List<string>();
            void Walk(string root)
            {
                foreach (var d in Directory.EnumerateDirectories(root, "*", SearchOption.AllDirectories).Prepend(root))
                {
                    var mode = File.GetUnixFileMode(d) & (UnixFileMode)0x1FF;
                    if (mode != (UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute))
                    {
                        wrong.Add($"{d}/ is {Convert.ToString((int)mode, 8)}");
                    }
                }

                foreach (var f in Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories))
                {
                    var mode = File.GetUnixFileMode(f) & (UnixFileMode)0x1FF;
                    if (mode != (UnixFileMode.UserRead | UnixFileMode.UserWrite))
                    {
                        wrong.Add($"{f} is {Convert.ToString((int)mode, 8)}");
                    }
                }
            }

            Walk(store);
            Walk(dir.Combine("new")); // the parents made for --dest too
            Assert.True(wrong.Count == 0, "not owner-only:\n" + string.Join("\n", wrong));
        }
    }
}
