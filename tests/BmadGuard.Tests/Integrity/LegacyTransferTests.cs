using System;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using BmadGuard.Core.Events;
using BmadGuard.Core.Integrity;
using BmadGuard.Core.Legacy;
using BmadGuard.Core.Storage;
using BmadGuard.Tests.Support;
using Xunit;
using CliRunner = BmadGuard.Tests.Support.Cli;

namespace BmadGuard.Tests.Integrity
{
    public sealed class LegacyTransferTests
    {
        private static JsonElement[] FixtureEvents()
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(LegacySalvageTests.FixturePath));
            return doc.RootElement.GetProperty("events").EnumerateArray().Select(e => e.Clone()).ToArray();
        }

        [Fact]
        public void ImportKeepsTimeTypeAndDataAndIsIdempotent()
        {
            using var dir = new TempDir();
            using var store = FileEventStore.Initialize(dir.Combine("store"), null, null, out _);
            var first = LegacyTransfer.Import(store, LegacySalvageTests.FixturePath);
            Assert.Equal(74, first.Imported);
            Assert.Equal(0, first.AlreadyPresent);
            Assert.Equal(0, first.TimestampsAdjusted);
            Assert.Empty(first.Skipped);

            var second = LegacyTransfer.Import(store, LegacySalvageTests.FixturePath);
            Assert.Equal(0, second.Imported);
            Assert.Equal(74, second.AlreadyPresent);

            var records = store.Read(new EventQuery()).ToList();
            var legacy = FixtureEvents();
            Assert.Equal(74, records.Count);
            for (int i = 0; i < 74; i++)
            {
                var naive = DateTime.Parse(legacy[i].GetProperty("timestamp").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
                Assert.Equal(new DateTimeOffset(naive, TimeSpan.Zero), records[i].Timestamp);
                Assert.Equal(legacy[i].GetProperty("event").GetString(), records[i].Type);
                Assert.Equal("legacy", records[i].Source);
                using var data = JsonDocument.Parse(records[i].DataJson);
                Assert.True(JsonElement.DeepEquals(legacy[i].GetProperty("data"), data.RootElement));
                Assert.StartsWith("legacy-", records[i].Id);
            }

            Assert.Equal(74, records.Select(r => r.Id).Distinct().Count());
        }

        [Fact]
        public void ImportOfADamagedFileThenTheWholeFileAddsOnlyTheRest()
        {
            using var dir = new TempDir();
            string damaged = dir.Combine("cut.json");
            File.WriteAllBytes(damaged, File.ReadAllBytes(LegacySalvageTests.FixturePath).AsSpan(0, 20000).ToArray());
            byte[] damagedBytes = File.ReadAllBytes(damaged);
            using var store = FileEventStore.Initialize(dir.Combine("store"), null, null, out _);
            var partial = LegacyTransfer.Import(store, damaged);
            Assert.Equal(35, partial.Imported);
            Assert.NotNull(partial.DamageOffset);
            Assert.Equal(damagedBytes, File.ReadAllBytes(damaged)); // the import never changes the legacy file

            var rest = LegacyTransfer.Import(store, LegacySalvageTests.FixturePath);
            Assert.Equal(39, rest.Imported);
            Assert.Equal(35, rest.AlreadyPresent);
            Assert.Equal(74, store.Read(new EventQuery()).Select(r => r.Id).Distinct().Count());
            Assert.Equal(74, store.GetStatistics().TotalEvents);
        }

        [Fact]
        public void IdenticalEventsGetDistinctIdsAndBadEventsAreReportedNotDropped()
        {
            using var dir = new TempDir();
            string file = dir.Combine("f.json");
            File.WriteAllText(file, "{\"events\": [" +
                "{\"timestamp\": \"2025-01-01T00:00:00\", \"event\": \"same\", \"data\": {}}," +
                "{\"timestamp\": \"2025-01-01T00:00:00\", \"event\": \"same\", \"data\": {}}," +
                "{\"timestamp\": \"2025-01-01T00:00:01\", \"event\": \"bad type!\", \"data\": {}}," +
                "{\"timestamp\": \"2025-01-01T00:00:02\", \"event\": \"scalar\", \"data\": 5}]}");
            using var store = FileEventStore.Initialize(dir.Combine("store"), null, null, out _);
            var result = LegacyTransfer.Import(store, file);
            Assert.Equal(3, result.Imported);
            Assert.Equal(1, result.DataWrapped);
            var skipped = Assert.Single(result.Skipped);
            Assert.Equal(2, skipped.Index);
            Assert.Contains("InvalidEventType", skipped.Reason);
            var records = store.Read(new EventQuery()).ToList();
            Assert.NotEqual(records[0].Id, records[1].Id);
            Assert.Equal("{\"value\":5}", records[2].DataJson);
            Assert.Equal(0, LegacyTransfer.Import(store, file).Imported);
        }

        [Fact]
        public void TimestampsNeverGoBackwardsInTheLog()
        {
            using var dir = new TempDir();
            using var store = FileEventStore.Initialize(dir.Combine("store"), null, null, out _);
            var now = store.Publish(EventDraft.FromJson("a.b", "x", null, "{}"));
            var result = LegacyTransfer.Import(store, LegacySalvageTests.FixturePath);
            Assert.Equal(74, result.TimestampsAdjusted);
            var records = store.Read(new EventQuery()).ToList();
            for (int i = 1; i < records.Count; i++)
            {
                Assert.True(records[i].Timestamp >= records[i - 1].Timestamp);
            }

            Assert.True(StoreVerifier.Verify(store.Root).Healthy);
        }

        [Fact]
        public void ExportRoundTripsToTheLegacyShapeAndNdjson()
        {
            using var dir = new TempDir();
            using var store = FileEventStore.Initialize(dir.Combine("store"), null, null, out _);
            LegacyTransfer.Import(store, LegacySalvageTests.FixturePath);
            string outFile = dir.Combine("export.json");
            Assert.Equal(74, LegacyTransfer.ExportToFile(store, new EventQuery(), outFile, ExportFormat.Legacy));
            Assert.True(JsonFileVerifier.Verify(outFile).Healthy);
            using var doc = JsonDocument.Parse(File.ReadAllBytes(outFile));
            var exported = doc.RootElement.GetProperty("events").EnumerateArray().ToArray();
            var legacy = FixtureEvents();
            Assert.Equal(legacy.Length, exported.Length);
            for (int i = 0; i < legacy.Length; i++)
            {
                Assert.True(JsonElement.DeepEquals(legacy[i], exported[i]), $"event {i}: {legacy[i]} vs {exported[i]}");
            }

            // Exported legacy files import back as the same events (same ids: nothing new).
            Assert.Equal(74, LegacyTransfer.Import(store, outFile).AlreadyPresent);

            var ms = new MemoryStream();
            Assert.Equal(60, LegacyTransfer.Export(store, new EventQuery { Type = "workflow_*" }, ms, ExportFormat.Ndjson));
            var lines = Encoding.UTF8.GetString(ms.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(60, lines.Length);
            Assert.All(lines, l => Assert.StartsWith("{\"seq\":", l));

            var empty = new MemoryStream();
            using var emptyStore = FileEventStore.Initialize(dir.Combine("empty"), null, null, out _);
            LegacyTransfer.Export(emptyStore, new EventQuery(), empty, ExportFormat.Legacy);
            using var e = JsonDocument.Parse(empty.ToArray());
            Assert.Equal(0, e.RootElement.GetProperty("events").GetArrayLength());
        }

        [Fact]
        public void CliImportTwiceAndBadInputChangesNothing()
        {
            using var dir = new TempDir();
            string storeDir = dir.Combine("store");
            Assert.Equal(0, CliRunner.Run("init", "--store", storeDir).ExitCode);
            string Snapshot() => string.Join("|", Directory.EnumerateFiles(storeDir, "*", SearchOption.AllDirectories).OrderBy(f => f).Select(f => f + ":" + new FileInfo(f).Length));
            string empty = Snapshot();

            Assert.Equal(2, CliRunner.Run("import-legacy", "--store", storeDir, "--file", dir.Combine("missing.json")).ExitCode);
            var isDir = CliRunner.Run("import-legacy", "--store", storeDir, "--file", dir.Path);
            Assert.Equal(2, isDir.ExitCode);
            Assert.Contains("directory", isDir.StdErr);
            Assert.Equal(2, CliRunner.Run("import-legacy", "--store", storeDir).ExitCode);
            Assert.Equal(empty, Snapshot());
            var noStore = CliRunner.Run("import-legacy", "--store", dir.Combine("nostore"), "--file", LegacySalvageTests.FixturePath);
            Assert.Equal(1, noStore.ExitCode);
            Assert.Contains("StoreNotFound", noStore.StdErr);
            Assert.False(Directory.Exists(dir.Combine("nostore")));

            var first = CliRunner.Run("import-legacy", "--store", storeDir, "--file", LegacySalvageTests.FixturePath);
            Assert.Equal(0, first.ExitCode);
            Assert.Equal(74, JsonDocument.Parse(first.StdOut).RootElement.GetProperty("imported").GetInt32());
            var second = CliRunner.Run("import-legacy", "--store", storeDir, "--file", LegacySalvageTests.FixturePath);
            Assert.Equal(0, JsonDocument.Parse(second.StdOut).RootElement.GetProperty("imported").GetInt32());
            Assert.Equal(74, JsonDocument.Parse(second.StdOut).RootElement.GetProperty("alreadyPresent").GetInt32());

            var export = CliRunner.Run("export", "--store", storeDir, "--format", "ndjson");
            Assert.Equal(74, export.Lines.Length);
            Assert.Equal(2, CliRunner.Run("export", "--store", storeDir, "--format", "xml").ExitCode);
            var verify = CliRunner.Run("verify", "--store", storeDir);
            Assert.Equal(0, verify.ExitCode);
            Assert.Equal(74, JsonDocument.Parse(verify.StdOut).RootElement.GetProperty("checked").GetProperty("records").GetInt64());
        }

        [Fact]
        public void CliRepairStore()
        {
            using var dir = new TempDir();
            string storeDir = dir.Combine("store");
            Assert.Equal(0, CliRunner.Run("init", "--store", storeDir).ExitCode);
            for (int i = 0; i < 3; i++)
            {
                Assert.Equal(0, CliRunner.Run("publish", "--store", storeDir, "--type", "a.b", "--data", "{\"i\":" + i + "}").ExitCode);
            }

            string seg = SegmentNames.List(Path.Combine(storeDir, "segments"))[0].Path;
            byte[] bytes = File.ReadAllBytes(seg);
            int second = Array.IndexOf(bytes, (byte)'\n', Array.IndexOf(bytes, (byte)'\n') + 1) + 1;
            bytes[second + 5] ^= 0x20; // damage record 2 of 3 (not the tail)
            File.WriteAllBytes(seg, bytes);

            var verify = CliRunner.Run("verify", "--store", storeDir);
            Assert.Equal(1, verify.ExitCode);
            var finding = JsonDocument.Parse(verify.StdOut).RootElement.GetProperty("findings").EnumerateArray().First(f => f.GetProperty("code").GetString() == "RecordDamaged");
            Assert.Equal(seg, finding.GetProperty("file").GetString());
            Assert.Equal(second, finding.GetProperty("offset").GetInt64());

            var repair = CliRunner.Run("repair", "--store", storeDir);
            Assert.Equal(0, repair.ExitCode);
            var root = JsonDocument.Parse(repair.StdOut).RootElement;
            Assert.True(root.GetProperty("healthy").GetBoolean());
            Assert.Equal(2, root.GetProperty("lost")[0].GetProperty("firstSeq").GetInt64());
            Assert.Contains(root.GetProperty("actions").EnumerateArray(), a => a.GetProperty("kind").GetString() == "RegionQuarantined" && a.GetProperty("offset").GetInt64() == second);
            Assert.Equal(0, CliRunner.Run("verify", "--store", storeDir).ExitCode); // quarantined bytes are a warning, not damage
            var get = CliRunner.Run("get", "--store", storeDir);
            Assert.Equal(3, get.Lines.Length);
            Assert.Contains("bmadguard.lost", get.Lines[1]);
            Assert.Equal(2, CliRunner.Run("repair").ExitCode);
            Assert.Equal(1, CliRunner.Run("repair", "--store", dir.Combine("none")).ExitCode);
        }
    }
}
