using System;
using System.IO;
using System.Linq;
using BmadGuard.Core;
using BmadGuard.Core.Events;
using BmadGuard.Core.Storage;
using BmadGuard.Tests.Support;
using Xunit;

namespace BmadGuard.Tests.Store
{
    /// <summary>
    /// A reader that reaches the end of the file in the middle of a record a writer is still appending. The race is
    /// microseconds wide with real processes (CI met it once in ConcurrencyTests), so these tests complete the
    /// append at the exact moment the reader takes its second look.
    /// </summary>
    [Collection("InFlightReadHook")] // the hook is static: these tests must not run side by side
    public sealed class InFlightReadTests
    {
        private static (string Store, string Segment, byte[] Whole, int LastStart) StoreWithFiveEvents(TempDir dir)
        {
            string store = dir.Combine("store");
            using (var s = FileEventStore.Initialize(store, null, null, out _))
            {
                for (int i = 0; i < 5; i++)
                {
                    s.Publish(EventDraft.FromJson("inflight.test", "t", null, $"{{\"marker\":\"m{i}\"}}"));
                }
            }

            string segment = Directory.GetFiles(Path.Combine(store, "segments"), "segment-*.jsonl").Single();
            byte[] whole = File.ReadAllBytes(segment);
            int lastStart = Array.LastIndexOf(whole, (byte)'\n', whole.Length - 2) + 1;
            return (store, segment, whole, lastStart);
        }

        private static void RunWithHook(string segment, Action<long> completeAppend, Action read)
        {
            string full = Path.GetFullPath(segment);
            FileEventStore.BeforeSecondLookForTests = (path, offset) =>
            {
                if (Path.GetFullPath(path) == full)
                {
                    completeAppend(offset);
                }
            };
            try
            {
                read();
            }
            finally
            {
                FileEventStore.BeforeSecondLookForTests = null;
            }
        }

        [Theory]
        [InlineData(0.5, false)]
        [InlineData(0.5, true)]
        [InlineData(0.99, true)] // everything but the newline
        public void A_record_completed_while_the_reader_looks_at_it_is_read_not_reported_as_damage(double fraction, bool moreAfter)
        {
            using var dir = new TempDir();
            var (store, segment, whole, lastStart) = StoreWithFiveEvents(dir);
            using var reader = FileEventStore.Open(store);

            // The fifth record is "in flight": only part of it has reached the file.
            int partial = lastStart + (int)((whole.Length - lastStart) * fraction);
            File.WriteAllBytes(segment, whole.AsSpan(0, partial).ToArray());
            byte[] sixth = null!;
            if (moreAfter)
            {
                // A sixth record, made by the same code a writer uses, appended right after the fifth completes.
                using var dir2 = new TempDir();
                var other = StoreWithFiveEvents(dir2);
                using (var s = FileEventStore.Open(other.Store))
                {
                    s.Publish(EventDraft.FromJson("inflight.test", "t", null, "{\"marker\":\"m5\"}"));
                }

                byte[] otherWhole = File.ReadAllBytes(other.Segment);
                int start = Array.LastIndexOf(otherWhole, (byte)'\n', otherWhole.Length - 2) + 1;
                sixth = otherWhole.AsSpan(start).ToArray();
            }

            int calls = 0;
            System.Collections.Generic.List<EventRecord> read = null!;
            RunWithHook(segment, offset =>
            {
                calls++;
                Assert.Equal(lastStart, offset);
                using var f = new FileStream(segment, FileMode.Append, FileAccess.Write);
                f.Write(whole, partial, whole.Length - partial);
                if (moreAfter)
                {
                    f.Write(sixth, 0, sixth.Length);
                }
            }, () => read = reader.Read(new EventQuery()).ToList());

            Assert.Equal(1, calls);
            Assert.Equal(Enumerable.Range(1, moreAfter ? 6 : 5).Select(i => (long)i), read.Select(r => r.Seq));
        }

        [Fact]
        public void An_append_still_in_flight_on_the_second_look_ends_the_read_quietly()
        {
            using var dir = new TempDir();
            var (store, segment, whole, lastStart) = StoreWithFiveEvents(dir);
            using var reader = FileEventStore.Open(store);
            File.WriteAllBytes(segment, whole.AsSpan(0, lastStart + 10).ToArray());

            System.Collections.Generic.List<EventRecord> read = null!;
            RunWithHook(segment, _ => { }, () => read = reader.Read(new EventQuery()).ToList());

            Assert.Equal(new long[] { 1, 2, 3, 4 }, read.Select(r => r.Seq));
            Assert.Equal(whole.AsSpan(0, lastStart + 10).ToArray(), File.ReadAllBytes(segment)); // a reader never cuts
        }

        [Fact]
        public void Bad_bytes_that_stay_bad_with_a_valid_record_after_them_are_damage_at_their_offset()
        {
            using var dir = new TempDir();
            var (store, segment, whole, lastStart) = StoreWithFiveEvents(dir);
            using var reader = FileEventStore.Open(store);
            byte[] damaged = (byte[])whole.Clone();
            int prevStart = Array.LastIndexOf(whole, (byte)'\n', lastStart - 2) + 1; // the fourth record
            damaged[prevStart + 12] ^= 0x20;
            File.WriteAllBytes(segment, damaged);

            var ex = Assert.Throws<BmadGuardException>(() => reader.Read(new EventQuery()).ToList());
            Assert.Equal(ErrorCodes.StoreDamaged, ex.Code);
            Assert.Equal(prevStart, ex.Offset);
            Assert.Contains($"at byte {prevStart}", ex.Message);
            Assert.Equal(damaged, File.ReadAllBytes(segment));
        }
    
        [Theory]
        [InlineData(true)]
        [InlineData(false)]
        public void Test_BmadIntegrity_reports_an_append_in_flight_as_information_and_a_torn_tail_as_a_warning(bool completes)
        {
            using var dir = new TempDir();
            var (store, segment, whole, lastStart) = StoreWithFiveEvents(dir);
            int partial = lastStart + 20;
            File.WriteAllBytes(segment, whole.AsSpan(0, partial).ToArray());

            Core.Integrity.IntegrityReport report = null!;
            RunWithHook(segment, offset =>
            {
                Assert.Equal(lastStart, offset);
                if (completes)
                {
                    using var f = new FileStream(segment, FileMode.Append, FileAccess.Write);
                    f.Write(whole, partial, whole.Length - partial);
                }
            }, () => report = Core.Integrity.StoreVerifier.Verify(store));

            var codes = report.Findings.Select(f => f.Code).ToList();
            if (completes)
            {
                Assert.Contains(Core.Integrity.FindingCodes.AppendInFlight, codes);
                Assert.DoesNotContain(Core.Integrity.FindingCodes.TornTail, codes);
                Assert.True(report.Healthy, string.Join("; ", report.Findings.Select(f => f.Message)));
            }
            else
            {
                var torn = Assert.Single(report.Findings, f => f.Code == Core.Integrity.FindingCodes.TornTail);
                Assert.Equal(lastStart, torn.Offset);
                Assert.Equal(20, torn.Length);
            }

            Assert.Equal(4, report.LastValidSeq);
        }
}
}
