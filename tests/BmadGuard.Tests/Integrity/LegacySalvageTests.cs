using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using BmadGuard.Core.Integrity;
using BmadGuard.Core.Legacy;
using BmadGuard.Tests.Support;
using Xunit;

namespace BmadGuard.Tests.Integrity
{
    public sealed class LegacySalvageTests
    {
        /// <summary>
        /// The legacy bus sample, kept in the repository (tests/fixtures/bmad-legacy/shared_context.json) and copied
        /// next to the tests by the csproj.
        /// </summary>
        public static string FixturePath => Path.Combine(AppContext.BaseDirectory, "fixtures", "shared_context.json");

        public static byte[] Fixture => File.ReadAllBytes(FixturePath);

        /// <summary>
        /// An oracle independent of the product's scanner: the byte range of each element of "events",
        /// found by counting braces outside strings.
        /// </summary>
        public static List<(int Start, int End)> EventRanges(byte[] bytes)
        {
            var ranges = new List<(int, int)>();
            int depth = 0, start = -1;
            bool inString = false, escape = false;
            for (int i = 0; i < bytes.Length; i++)
            {
                byte b = bytes[i];
                if (inString)
                {
                    if (escape)
                    {
                        escape = false;
                    }
                    else if (b == '\\')
                    {
                        escape = true;
                    }
                    else if (b == '"')
                    {
                        inString = false;
                    }

                    continue;
                }

                switch (b)
                {
                    case (byte)'"':
                        inString = true;
                        break;
                    case (byte)'{':
                    case (byte)'[':
                        depth++;
                        if (depth == 3 && b == '{')
                        {
                            start = i;
                        }

                        break;
                    case (byte)'}':
                    case (byte)']':
                        if (depth == 3 && b == '}')
                        {
                            ranges.Add((start, i + 1));
                        }

                        depth--;
                        break;
                }
            }

            return ranges;
        }

        [Fact]
        public void FixtureScansCleanWithAllEvents()
        {
            var scan = LegacyScanner.Scan(Fixture);
            Assert.True(scan.Clean);
            Assert.Empty(scan.Damage);
            using var doc = JsonDocument.Parse(Fixture);
            Assert.Equal(doc.RootElement.GetProperty("events").GetArrayLength(), scan.Events.Count);
            Assert.Equal(74, scan.Events.Count);
        }

        /// <summary>Cut the fixture at every byte: every event complete before the cut is recovered, byte for byte, and nothing else.</summary>
        [Fact]
        public void SalvageAtEveryCutPointRecoversEveryCompleteEvent()
        {
            byte[] full = Fixture;
            var ranges = EventRanges(full);
            Assert.Equal(74, ranges.Count);
            for (int cut = 0; cut < full.Length; cut++)
            {
                var bytes = full.AsSpan(0, cut).ToArray();
                var scan = LegacyScanner.Scan(bytes);
                int complete = ranges.Count(r => r.End <= cut);
                Assert.True(complete == scan.Events.Count, $"cut at {cut}: expected {complete} events, recovered {scan.Events.Count}");
                for (int i = 0; i < complete; i++)
                {
                    Assert.True(full.AsSpan(ranges[i].Start, ranges[i].End - ranges[i].Start).SequenceEqual(scan.Events[i].Json), $"cut at {cut}: event {i} differs");
                }

                Assert.False(scan.Clean);
                Assert.NotNull(scan.DamageOffset);
                // The damage starts after the last recovered event and no later than the cut.
                Assert.InRange(scan.DamageOffset!.Value, complete == 0 ? 0 : ranges[complete - 1].End, cut);
            }
        }

        /// <summary>The file path end to end at a sample of cut points: repaired atomically, original quarantined, result valid.</summary>
        [Fact]
        public void RepairOfTruncatedFilesWritesValidFileAndQuarantinesOriginal()
        {
            byte[] full = Fixture;
            var ranges = EventRanges(full);
            using var dir = new TempDir();
            foreach (int cut in new[] { 0, 1, 15, 500, 12345, 20000, full.Length - 40, full.Length - 2 }.Concat(Enumerable.Range(0, 25).Select(i => 97 + (i * 1409))))
            {
                string file = dir.Combine("c" + cut, "shared_context.json");
                Directory.CreateDirectory(Path.GetDirectoryName(file)!);
                var damaged = full.AsSpan(0, cut).ToArray();
                File.WriteAllBytes(file, damaged);
                var result = LegacyBusFile.Repair(file);
                int complete = ranges.Count(r => r.End <= cut);
                Assert.True(result.Written);
                Assert.Equal(complete, result.RecoveredEvents);
                Assert.NotNull(result.DamageOffset);
                Assert.NotNull(result.DamageLine);
                Assert.Equal(damaged, File.ReadAllBytes(result.QuarantinePath!));
                Assert.StartsWith(Path.Combine(Path.GetDirectoryName(file)!, ".bmadguard-quarantine"), result.QuarantinePath);

                var report = JsonFileVerifier.Verify(file);
                Assert.True(report.Healthy, string.Join("\n", report.Findings));
                Assert.Equal(complete, report.RecordsChecked);
                using var doc = JsonDocument.Parse(File.ReadAllBytes(file));
                using var orig = JsonDocument.Parse(full);
                var events = doc.RootElement.GetProperty("events").EnumerateArray().ToList();
                var origEvents = orig.RootElement.GetProperty("events").EnumerateArray().ToList();
                for (int i = 0; i < complete; i++)
                {
                    Assert.True(JsonElement.DeepEquals(origEvents[i], events[i]));
                }
            }
        }

        [Fact]
        public void RepairLeavesAValidFileUntouched()
        {
            using var dir = new TempDir();
            string file = dir.Combine("shared_context.json");
            File.WriteAllBytes(file, Fixture);
            var stamp = File.GetLastWriteTimeUtc(file);
            var result = LegacyBusFile.Repair(file);
            Assert.True(result.WasHealthy);
            Assert.False(result.Written);
            Assert.Equal(Fixture, File.ReadAllBytes(file));
            Assert.Equal(stamp, File.GetLastWriteTimeUtc(file));
            Assert.False(Directory.Exists(dir.Combine(".bmadguard-quarantine")));
        }

        [Fact]
        public void DamageInTheMiddleSkipsOnlyTheDamagedEvent()
        {
            byte[] full = Fixture;
            var ranges = EventRanges(full);
            var bytes = (byte[])full.Clone();
            // zeros over the middle of event 10
            Array.Clear(bytes, ranges[10].Start + 20, 30);
            var scan = LegacyScanner.Scan(bytes);
            Assert.Equal(73, scan.Events.Count);
            Assert.DoesNotContain(scan.Events, e => e.Offset == ranges[10].Start);
            Assert.Equal(ranges[11].Start, scan.Events[10].Offset);
            var region = Assert.Single(scan.Damage);
            Assert.Equal(ranges[10].Start, region.Offset);
            Assert.Equal(ranges[11].Start - ranges[10].Start, region.Length);
        }

        [Fact]
        public void AnEventLikeObjectNestedInDataIsNotTakenForAnEvent()
        {
            // The last fixture event's data is itself {"timestamp","event","data"}. Break the outer event's
            // opening so the scanner must resynchronize: it must not adopt the nested object.
            byte[] full = Fixture;
            var ranges = EventRanges(full);
            var last = ranges[^1];
            var bytes = (byte[])full.Clone();
            int ts = IndexOf(bytes, "\"timestamp\"", last.Start);
            bytes[ts] = (byte)'#';
            var scan = LegacyScanner.Scan(bytes);
            Assert.Equal(73, scan.Events.Count);
            Assert.Single(scan.Damage);
            Assert.True(scan.Events[^1].Json.AsSpan().SequenceEqual(full.AsSpan(ranges[72].Start, ranges[72].End - ranges[72].Start)));
        }

        [Fact]
        public void GarbageBetweenEventsIsSkippedAndEventsAfterItKept()
        {
            byte[] full = Fixture;
            var ranges = EventRanges(full);
            string text = Encoding.UTF8.GetString(full);
            string broken = text.Substring(0, ranges[5].End) + "\u0000\u0000GARBAGE}}]]" + text.Substring(ranges[5].End);
            var scan = LegacyScanner.Scan(Encoding.UTF8.GetBytes(broken));
            Assert.Equal(74, scan.Events.Count);
            Assert.Single(scan.Damage);
            Assert.Equal(ranges[5].End, scan.Damage[0].Offset);
        }

        private static int IndexOf(byte[] haystack, string needle, int from)
        {
            var n = Encoding.UTF8.GetBytes(needle);
            return from + haystack.AsSpan(from).IndexOf(n);
        }
    }
}
