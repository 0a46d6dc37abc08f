using System.IO;
using System.Linq;
using System.Text.Json;
using BmadGuard.Tests.Support;
using Xunit;
using CliRunner = BmadGuard.Tests.Support.Cli;

namespace BmadGuard.Tests.Integrity
{
    /// <summary>import-legacy --recover (issue 10 item 3): what the old bus lost, gathered from its artefacts into the store, duplicates skipped.</summary>
    public sealed class LegacyRecoverTests
    {
        private static string Event(int i) => $"    {{\n      \"timestamp\": \"2025-01-01T00:{i / 60 % 60:00}:{i % 60:00}.000000\",\n      \"event\": \"e{i}\",\n      \"data\": {{\n        \"i\": {i}\n      }}\n    }}";

        private static string Bus(params int[] events) => "{\n  \"events\": [\n" + string.Join(",\n", events.Select(Event)) + "\n  ]\n}";

        [Fact]
        public void RecoverGathersTheBackupGenerationsAndQuarantinedCopiesOnceEach()
        {
            using var dir = new TempDir();
            string file = dir.Combine("shared_context.json");
            // The live file after the old bus's recovery: 2 events left.
            File.WriteAllText(file, Bus(40, 41));
            File.WriteAllText(file + ".backup", Bus(Enumerable.Range(0, 20).ToArray()));
            Directory.CreateDirectory(dir.Combine(".bmadguard-generations"));
            File.WriteAllText(dir.Combine(".bmadguard-generations", "shared_context.json.20261204T100000000000Z.json"), Bus(Enumerable.Range(10, 20).ToArray()));
            Directory.CreateDirectory(dir.Combine(".bmadguard-quarantine"));
            string damaged = Bus(Enumerable.Range(25, 10).ToArray());
            File.WriteAllText(dir.Combine(".bmadguard-quarantine", "shared_context.json.20261204T110000000000Z.damaged"), damaged.Substring(0, damaged.Length - 50));
            string store = dir.Combine("store");
            Assert.Equal(0, CliRunner.Run("init", "--store", store).ExitCode);
            Directory.CreateDirectory(Path.Combine(store, "quarantine"));
            File.WriteAllText(Path.Combine(store, "quarantine", "20261204T120000000Z-shared_context.json.damaged"), Bus(36, 37, 38));

            var r = CliRunner.Run("import-legacy", "--store", store, "--file", file, "--recover");
            Assert.True(r.ExitCode == 0, r.StdErr);
            using (var doc = JsonDocument.Parse(r.StdOut))
            {
                // 0..19, 10..29, 25..33 (the damaged copy's last event is cut), 36..38, 40..41: 34 + 3 + 2 = 39 distinct.
                Assert.Equal(39, doc.RootElement.GetProperty("imported").GetInt32());
                var sources = doc.RootElement.GetProperty("sources").EnumerateArray().ToList();
                Assert.Equal(5, sources.Count);
                Assert.Equal(file, sources[0].GetProperty("file").GetString());
                Assert.Equal(2, sources[0].GetProperty("imported").GetInt32());
                Assert.Equal(20, sources[1].GetProperty("imported").GetInt32()); // .backup
                Assert.Equal(10, sources[2].GetProperty("imported").GetInt32()); // generation: 20..29 new
                Assert.Equal(10, sources[2].GetProperty("alreadyPresent").GetInt32());
                Assert.Equal(4, sources[3].GetProperty("imported").GetInt32()); // quarantined: 30..33 new
                Assert.Equal(3, sources[4].GetProperty("imported").GetInt32()); // the monitor's quarantine
            }

            var export = CliRunner.Run("export", "--store", store, "--format", "ndjson");
            var types = export.Lines.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("type").GetString()).ToList();
            Assert.Equal(39, types.Count);
            Assert.Equal(types.Count, types.Distinct().Count());
            Assert.Equal("e0", types[0]); // time order across sources
            Assert.Equal("e41", types[^1]);

            // Idempotent, and the plain import of the live file adds nothing either.
            var again = CliRunner.Run("import-legacy", "--store", store, "--file", file, "--recover");
            Assert.Equal(0, JsonDocument.Parse(again.StdOut).RootElement.GetProperty("imported").GetInt32());
            Assert.Equal(0, JsonDocument.Parse(CliRunner.Run("import-legacy", "--store", store, "--file", file).StdOut).RootElement.GetProperty("imported").GetInt32());
            Assert.Equal(Bus(40, 41), File.ReadAllText(file)); // nothing outside the store changed
        }

        /// <summary>health names a guarded legacy file whose lock file was deleted although BmadGuard wrote it before (the bus deletes it).</summary>
        [Fact]
        public void HealthReportsAGuardedBusWhoseLockFileIsDeleted()
        {
            using var dir = new TempDir();
            string file = dir.Combine("shared_context.json");
            File.WriteAllText(file, Bus(1));
            Assert.Equal(0, CliRunner.Run("publish-legacy", "--file", file, "--type", "a_b").ExitCode);
            Assert.Equal(0, CliRunner.Run("publish-legacy", "--file", file, "--type", "a_b").ExitCode); // a generation exists now
            string store = dir.Combine("store");
            Assert.Equal(0, CliRunner.Run("init", "--store", store).ExitCode);
            string config = dir.Combine("monitor.json");
            File.WriteAllText(config, JsonSerializer.Serialize(new { files = new[] { file } }));
            JsonElement Check(CliRunner.Result r) => JsonDocument.Parse(r.StdOut).RootElement.GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "legacy-files");
            Assert.Equal("Healthy", Check(CliRunner.Run("health", "--store", store, "--config", config)).GetProperty("status").GetString());
            File.Delete(file + ".lock"); // what the old bus's file_lock does after LOCK_UN
            var check = Check(CliRunner.Run("health", "--store", store, "--config", config));
            Assert.Equal("Degraded", check.GetProperty("status").GetString());
            Assert.Contains("keep its lock file", check.GetProperty("message").GetString());
            var verify = CliRunner.Run("verify", "--file", file);
            Assert.Equal(0, verify.ExitCode); // the file itself is fine: a warning
            Assert.Contains("LegacyLockFileDeleted", verify.StdOut);

            // An import reads under the lock but never creates a missing lock file, so the evidence survives it and a
            // later publish still refuses rather than acknowledging what it cannot keep.
            Assert.Equal(0, CliRunner.Run("import-legacy", "--store", store, "--file", file, "--recover").ExitCode);
            Assert.False(File.Exists(file + ".lock"));
            var publish = CliRunner.Run("publish-legacy", "--file", file, "--type", "a_b");
            Assert.Equal(1, publish.ExitCode);
            Assert.Contains("LegacyLockFileDeleted", publish.StdErr);
        }
    }
}
