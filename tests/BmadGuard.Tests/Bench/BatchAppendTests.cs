using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using BmadGuard.Core.Events;
using BmadGuard.Core.Storage;
using BmadGuard.Tests.Support;
using Xunit;

namespace BmadGuard.Tests.Bench
{
    /// <summary>
    /// Guards the batch append path the benchmarks tuned (prefix written straight into a pooled buffer,
    /// records counted instead of rescanned): what a batch acknowledges is exactly what lands on disk, line
    /// for line, across segment roll-overs in the middle of a batch and seqs of growing width.
    /// </summary>
    public class BatchAppendTests
    {
        [Fact]
        public void Batches_that_roll_over_segments_store_exactly_the_acknowledged_records()
        {
            using var dir = new TempDir();
            var settings = new StoreSettings { SegmentMaxBytes = 4096, MaxEventBytes = 1024 };
            var acknowledged = new List<EventRecord>();
            using (var store = FileEventStore.Initialize(dir.Combine("store"), settings, null, out _))
            {
                var rng = new Random(11);
                int n = 0;
                foreach (int size in new[] { 1, 25, 3, 60, 1, 120, 7 })
                {
                    var batch = new List<(EventDraft, string?)>();
                    for (int i = 0; i < size; i++, n++)
                    {
                        string data = "{\"n\":" + n + ",\"text\":\"" + new string('é', rng.Next(0, 200)) + "\"}";
                        var draft = EventDraft.FromJson(n % 3 == 0 ? "story.created" : "qa.passed", n % 2 == 0 ? "dev-1" : null, n % 5 == 0 ? "corr-" + n : null, data);
                        batch.Add((draft, n % 4 == 0 ? "imported:" + n : null));
                    }

                    var returned = store.PublishWithIds(batch, allowReserved: false, r => acknowledged.Add(r));
                    Assert.Equal(size, returned.Count);
                }

                Assert.Equal(217, acknowledged.Count);
                Assert.Equal(Enumerable.Range(1, 217).Select(i => (long)i), acknowledged.Select(r => r.Seq));
            }

            string[] segments = Directory.GetFiles(Path.Combine(dir.Combine("store"), "segments"), "segment-*.jsonl").OrderBy(p => p, StringComparer.Ordinal).ToArray();
            Assert.True(segments.Length > 5, $"expected several roll-overs, got {segments.Length} segments");

            // Every record line on disk is the acknowledged event's JSON with the checksum trailer, in order.
            var lines = segments.SelectMany(p => File.ReadAllText(p, Encoding.UTF8).Split('\n').Skip(1).Where(l => l.Length > 0)).ToList();
            Assert.Equal(acknowledged.Count, lines.Count);
            for (int i = 0; i < lines.Count; i++)
            {
                var r = acknowledged[i];
                string expectedPrefix = "{\"seq\":" + r.Seq.ToString(CultureInfo.InvariantCulture) + ",\"id\":\"" + r.Id + "\",\"timestamp\":\""
                                        + r.Timestamp.ToString("o", CultureInfo.InvariantCulture) + "\",";
                Assert.StartsWith(expectedPrefix, lines[i], StringComparison.Ordinal);
                Assert.Equal(r.Json.Substring(0, r.Json.Length - 1), lines[i].Substring(0, lines[i].Length - 18));
            }

            // And a fresh reader (checksums, contiguous seqs) returns the same events byte for byte.
            using (var reopened = FileEventStore.Open(dir.Combine("store")))
            {
                var read = reopened.Read(new EventQuery()).ToList();
                Assert.Equal(acknowledged.Select(r => r.Json), read.Select(r => r.Json));
                Assert.Equal(217, reopened.GetStatistics().TotalEvents);
            }
        }
    }
}
