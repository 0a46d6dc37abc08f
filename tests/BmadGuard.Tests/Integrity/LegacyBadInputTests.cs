using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using BmadGuard.Core.Integrity;
using BmadGuard.Core.Legacy;
using BmadGuard.Core.Storage;
using BmadGuard.Tests.Support;
using Xunit;
using CliRunner = BmadGuard.Tests.Support.Cli;

namespace BmadGuard.Tests.Integrity
{
    /// <summary>Issue 9, bad input in legacy bus files: bad bytes, lone surrogates, elements without "event", size, SIGTERM; issue 10: export keeps the file's mode.</summary>
    public sealed class LegacyBadInputTests
    {
        private static string Event(int i, string data = "{\"n\": 1}") => $"    {{\n      \"timestamp\": \"2025-01-01T00:00:{i % 60:00}.{i:000000}\",\n      \"event\": \"e{i}\",\n      \"data\": {data}\n    }}";

        private static byte[] Bus(params string[] events) => Encoding.UTF8.GetBytes("{\n  \"events\": [\n" + string.Join(",\n", events) + "\n  ]\n}");

        /// <summary>One raw 0xFF byte inside one event's data, or a lone surrogate escape Python's json.load accepts.</summary>
        [Theory]
        [InlineData("invalid-utf8")]
        [InlineData("lone-surrogate")]
        public void BadBytesInOneEventAreADamagedEventTheRestIsImportedAndRepaired(string kind)
        {
            using var dir = new TempDir();
            string file = dir.Combine("shared_context.json");
            byte[] bytes = Bus(Event(0), Event(1, "{\"s\": \"BAD\"}"), Event(2));
            byte[] bad = kind == "invalid-utf8" ? new byte[] { 0xFF } : Encoding.ASCII.GetBytes("\\ud800");
            int at = bytes.AsSpan().IndexOf(Encoding.ASCII.GetBytes("BAD"));
            bytes = bytes.Take(at).Concat(bad).Concat(bytes.Skip(at + 3)).ToArray();
            File.WriteAllBytes(file, bytes);

            var verify = CliRunner.Run("verify", "--file", file);
            Assert.Equal(1, verify.ExitCode);
            Assert.DoesNotContain("   at ", verify.StdErr);

            string store = dir.Combine("store");
            Assert.Equal(0, CliRunner.Run("init", "--store", store).ExitCode);
            var import = CliRunner.Run("import-legacy", "--store", store, "--file", file);
            Assert.True(import.ExitCode == 0, import.StdErr);
            Assert.DoesNotContain("   at ", import.StdErr);
            using (var doc = JsonDocument.Parse(import.StdOut))
            {
                Assert.Equal(2, doc.RootElement.GetProperty("imported").GetInt32());
                Assert.True(doc.RootElement.TryGetProperty("damageOffset", out _), "the damaged event is reported");
            }

            var repair = CliRunner.Run("repair", "--file", file);
            Assert.True(repair.ExitCode == 0, repair.StdErr);
            Assert.DoesNotContain("   at ", repair.StdErr);
            using (var doc = JsonDocument.Parse(repair.StdOut))
            {
                Assert.Equal(2, doc.RootElement.GetProperty("recoveredEvents").GetInt32());
                Assert.NotEmpty(doc.RootElement.GetProperty("damage").EnumerateArray());
                // The original, bad bytes and all, is kept whole.
                Assert.Equal(bytes, File.ReadAllBytes(doc.RootElement.GetProperty("quarantine").GetString()!));
            }

            Assert.Equal(0, CliRunner.Run("verify", "--file", file).ExitCode);
            using var repaired = JsonDocument.Parse(File.ReadAllBytes(file));
            Assert.Equal(new[] { "e0", "e2" }, repaired.RootElement.GetProperty("events").EnumerateArray().Select(e => e.GetProperty("event").GetString()).ToArray());
        }

        /// <summary>A real bus file holds {"timestamp":…,"data":{"status":"completed"}} with no "event": repair keeps it (a warning), import stores it as legacy.untyped.</summary>
        [Fact]
        public void AnElementWithoutEventIsKeptByRepairAndImportedAsUntyped()
        {
            using var dir = new TempDir();
            string file = dir.Combine("shared_context.json");
            string untyped = "    {\n      \"timestamp\": \"2025-01-01T00:00:05.000000\",\n      \"data\": {\n        \"status\": \"completed\"\n      }\n    }";
            byte[] whole = Bus(Event(0), untyped, Event(2));
            // Cut inside the last event, so repair has to rebuild the file.
            File.WriteAllBytes(file, whole.AsSpan(0, whole.Length - 30).ToArray());

            var repair = CliRunner.Run("repair", "--file", file);
            Assert.True(repair.ExitCode == 0, repair.StdErr);
            using (var doc = JsonDocument.Parse(repair.StdOut))
            {
                Assert.Equal(2, doc.RootElement.GetProperty("recoveredEvents").GetInt32());
                var warning = Assert.Single(doc.RootElement.GetProperty("warnings").EnumerateArray());
                Assert.Equal("LegacyEventIncomplete", warning.GetProperty("code").GetString());
            }

            using (var doc = JsonDocument.Parse(File.ReadAllBytes(file)))
            {
                var events = doc.RootElement.GetProperty("events").EnumerateArray().ToList();
                Assert.Equal(2, events.Count);
                Assert.Equal("completed", events[1].GetProperty("data").GetProperty("status").GetString());
                Assert.False(events[1].TryGetProperty("event", out _));
            }

            var verify = JsonFileVerifier.Verify(file);
            Assert.True(verify.Healthy, string.Join("\n", verify.Findings));
            Assert.Equal("LegacyEventIncomplete", Assert.Single(verify.Findings).Code);

            string store = dir.Combine("store");
            Assert.Equal(0, CliRunner.Run("init", "--store", store).ExitCode);
            var import = CliRunner.Run("import-legacy", "--store", store, "--file", file);
            Assert.True(import.ExitCode == 0, import.StdErr);
            Assert.Equal(2, JsonDocument.Parse(import.StdOut).RootElement.GetProperty("imported").GetInt32());
            var get = CliRunner.Run("export", "--store", store, "--format", "ndjson");
            var types = get.Lines.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("type").GetString()).ToArray();
            Assert.Equal(new[] { "e0", "legacy.untyped" }, types);
            // Idempotent, like every import.
            Assert.Equal(0, JsonDocument.Parse(CliRunner.Run("import-legacy", "--store", store, "--file", file).StdOut).RootElement.GetProperty("imported").GetInt32());
        }

        internal static void WriteBigBus(string path, int events, int padding)
        {
            using var f = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
            string pad = new string('x', padding);
            var head = Encoding.UTF8.GetBytes("{\n  \"events\": [\n");
            f.Write(head);
            for (int i = 0; i < events; i++)
            {
                var e = Encoding.UTF8.GetBytes((i > 0 ? ",\n" : "") + Event(i, $"{{\n        \"i\": {i},\n        \"text\": \"{pad}\"\n      }}"));
                f.Write(e);
            }

            f.Write(Encoding.UTF8.GetBytes("\n  ]\n}"));
        }

        /// <summary>
        /// verify --file and repair --file are linear: 20k events in seconds (they took 101 s). The bound is loose on
        /// purpose (a loaded machine); the quadratic version is far outside it.
        /// </summary>
        [Fact]
        public void VerifyAndRepairOf20kEventsAreLinear()
        {
            using var dir = new TempDir();
            string file = dir.Combine("big.json");
            WriteBigBus(file, 20_000, 100);
            var clock = Stopwatch.StartNew();
            var report = JsonFileVerifier.Verify(file);
            var verifyTime = clock.Elapsed;
            Assert.True(report.Healthy);
            Assert.Equal(20_000, report.RecordsChecked);

            // A damaged copy (cut in the middle of the last event) exercises the salvage path too.
            byte[] all = File.ReadAllBytes(file);
            File.WriteAllBytes(file, all.AsSpan(0, all.Length - 40).ToArray());
            clock.Restart();
            var repair = LegacyBusFile.Repair(file);
            var repairTime = clock.Elapsed;
            Assert.Equal(19_999, repair.RecoveredEvents);
            Assert.True(verifyTime < TimeSpan.FromSeconds(20) && repairTime < TimeSpan.FromSeconds(20), $"verify {verifyTime.TotalSeconds:0.0} s, repair {repairTime.TotalSeconds:0.0} s");
        }

        /// <summary>SIGTERM stops verify --file on a 100k-event (~45 MB) file: it used to run for 15 CPU-minutes, ignoring it.</summary>
        [Fact]
        public void VerifyFileHonoursSigterm()
        {
            if (OperatingSystem.IsWindows())
            {
                return;
            }

            using var dir = new TempDir();
            string file = dir.Combine("big.json");
            WriteBigBus(file, 100_000, 300);
            Assert.InRange(new FileInfo(file).Length, 40_000_000, 60_000_000);
            using var p = Process.Start(CliRunner.StartInfo(new[] { "verify", "--file", file, "--quiet" }))!;
            // Wait until it has read the file (so it is past start-up and into the check), or has finished.
            long length = new FileInfo(file).Length;
            var waited = Stopwatch.StartNew();
            while (!p.HasExited && waited.Elapsed < TimeSpan.FromSeconds(120) && ReadBytes(p.Id) < length)
            {
                System.Threading.Thread.Sleep(50);
            }

            System.Threading.Thread.Sleep(200);
            using (var kill = Process.Start("kill", new[] { "-TERM", p.Id.ToString() }))
            {
                kill.WaitForExit();
            }

            bool exited = p.WaitForExit(30_000);
            if (!exited)
            {
                p.Kill(true);
            }

            Assert.True(exited, "verify --file kept running 30 s after SIGTERM");
        }

        private static long ReadBytes(int pid)
        {
            try
            {
                foreach (string line in File.ReadAllLines($"/proc/{pid}/io"))
                {
                    if (line.StartsWith("rchar:", StringComparison.Ordinal))
                    {
                        return long.Parse(line.Substring(6).Trim());
                    }
                }
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }

            return 0;
        }

        /// <summary>export --out over an existing bus file keeps its mode (the agents may read it as other users), as publish-legacy and repair do.</summary>
        [Fact]
        public void ExportOverAnExistingFileKeepsItsMode()
        {
            if (OperatingSystem.IsWindows())
            {
                return;
            }

            using var dir = new TempDir();
            string store = dir.Combine("store");
            Assert.Equal(0, CliRunner.Run("init", "--store", store).ExitCode);
            Assert.Equal(0, CliRunner.Run("publish", "--store", store, "--type", "a.b", "--data", "{}").ExitCode);
            string file = dir.Combine("shared_context.json");
            File.WriteAllBytes(file, Bus(Event(0)));
            var mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead;
            File.SetUnixFileMode(file, mode);
            File.WriteAllText(file + ".lock", "");
            var r = CliRunner.Run("export", "--store", store, "--out", file);
            Assert.True(r.ExitCode == 0, r.StdErr);
            Assert.Equal(mode, File.GetUnixFileMode(file));
            Assert.Equal(1, JsonDocument.Parse(File.ReadAllBytes(file)).RootElement.GetProperty("events").GetArrayLength());
        }
    }
}
