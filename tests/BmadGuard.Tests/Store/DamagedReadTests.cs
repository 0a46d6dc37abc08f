using System;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using BmadGuard.Core.Storage;
using BmadGuard.Tests.Support;
using Xunit;

namespace BmadGuard.Tests.Store
{
    /// <summary>
    /// Readers and one damaged record (issue 9, invariant 7): every intact event is delivered, the damaged seqs are
    /// named in an error after the events before them, and a consumer never moves past a record it could not read.
    /// Also consumers with filters (--type/--last): a position never moves past events the call did not return.
    /// </summary>
    public sealed class DamagedReadTests
    {
        internal static void Publish(string store, int count, Func<int, string>? type = null)
        {
            var sb = new StringBuilder();
            for (int i = 1; i <= count; i++)
            {
                sb.Append($"{{\"type\":\"{(type ?? (_ => "t.x"))(i)}\",\"source\":\"s1\",\"data\":{{\"marker\":\"m{i}\",\"pad\":\"pppppppppp\"}}}}\n");
            }

            var r = Support.Cli.RunWithStdin(sb.ToString(), "publish", "--store", store, "--stdin");
            Assert.True(r.ExitCode == 0, r.StdErr);
        }

        /// <summary>Changes one byte inside the record of <paramref name="seq"/> (its data, not its newline).</summary>
        internal static void FlipByteInRecord(string store, long seq)
        {
            foreach (string segment in Directory.GetFiles(Path.Combine(store, "segments")))
            {
                byte[] bytes = File.ReadAllBytes(segment);
                string text = Encoding.UTF8.GetString(bytes);
                int at = text.IndexOf("{\"seq\":" + seq + ",", StringComparison.Ordinal);
                if (at < 0)
                {
                    continue;
                }

                int pad = text.IndexOf("pppp", at, StringComparison.Ordinal);
                Assert.True(pad > at);
                bytes[Encoding.UTF8.GetByteCount(text.Substring(0, pad))] ^= 0x01; // 'p' -> 'q'
                File.WriteAllBytes(segment, bytes);
                return;
            }

            throw new InvalidOperationException($"no record with seq {seq}");
        }

        private static long[] Seqs(Support.Cli.Result r)
            => r.Lines.Select(l => { using var d = JsonDocument.Parse(l); return d.RootElement.GetProperty("seq").GetInt64(); }).ToArray();

        private static long[] Range(long from, long to) => Enumerable.Range((int)from, (int)(to - from + 1)).Select(i => (long)i).ToArray();

        private static long Position(string store, string consumer)
        {
            using var s = FileEventStore.Open(store);
            return s.GetConsumerPosition(consumer);
        }

        [Fact]
        public void Get_delivers_every_intact_event_around_a_damaged_record_and_exits_1_naming_its_seq()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            StoreInspector.Init(store);
            Publish(store, 50);
            FlipByteInRecord(store, 20);

            var all = Support.Cli.Run("get", "--store", store);
            Assert.Equal(1, all.ExitCode);
            Assert.Equal(Range(1, 19).Concat(Range(21, 50)), Seqs(all));
            Assert.Contains("DamagedRecord", all.StdErr);
            Assert.Contains("seq 20", all.StdErr);

            var last = Support.Cli.Run("get", "--store", store, "--last", "5");
            Assert.Equal(Range(46, 50), Seqs(last));
            Assert.Equal(1, last.ExitCode); // the store is damaged: said, though the answer is complete

            // Damage entirely before what was asked for is not this read's business.
            var after = Support.Cli.Run("get", "--store", store, "--after", "30");
            Assert.Equal(0, after.ExitCode);
            Assert.Equal(Range(31, 50), Seqs(after));

            var around = Support.Cli.Run("get", "--store", store, "--after", "15");
            Assert.Equal(1, around.ExitCode);
            Assert.Equal(Range(16, 19).Concat(Range(21, 50)), Seqs(around));

            // A consumer gets what is before the damage and stops just before it, every time.
            var c1 = Support.Cli.Run("get", "--store", store, "--consumer", "c");
            Assert.Equal(1, c1.ExitCode);
            Assert.Equal(Range(1, 19), Seqs(c1));
            Assert.Contains("seq 20", c1.StdErr);
            Assert.Equal(19, Position(store, "c"));
            var c2 = Support.Cli.Run("get", "--store", store, "--consumer", "c");
            Assert.Equal(1, c2.ExitCode);
            Assert.Empty(Seqs(c2));
            Assert.Equal(19, Position(store, "c"));
        }

        [Fact]
        public void A_consumer_with_a_type_filter_does_not_move_the_unfiltered_position_past_events_it_did_not_return()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            StoreInspector.Init(store);
            Publish(store, 6, i => i % 2 == 1 ? "story.ready" : "other.thing");

            var filtered = Support.Cli.Run("get", "--store", store, "--consumer", "c", "--type", "story.*");
            Assert.Equal(0, filtered.ExitCode);
            Assert.Equal(new long[] { 1, 3, 5 }, Seqs(filtered));

            // The same filter again: nothing new.
            Assert.Empty(Seqs(Support.Cli.Run("get", "--store", store, "--consumer", "c", "--type", "story.*")));

            // Unfiltered, the consumer still receives every event: nothing was skipped for it.
            var unfiltered = Support.Cli.Run("get", "--store", store, "--consumer", "c");
            Assert.Equal(0, unfiltered.ExitCode);
            Assert.Equal(Range(1, 6), Seqs(unfiltered));

            Publish(store, 2, i => "story.ready");
            Assert.Equal(new long[] { 7, 8 }, Seqs(Support.Cli.Run("get", "--store", store, "--consumer", "c", "--type", "story.*")));
            Assert.Equal(new long[] { 7, 8 }, Seqs(Support.Cli.Run("get", "--store", store, "--consumer", "c")));
        }

        [Fact]
        public void A_consumer_with_last_is_refused_with_exit_2_and_its_position_is_untouched()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            StoreInspector.Init(store);
            Publish(store, 10);

            var r = Support.Cli.Run("get", "--store", store, "--consumer", "c", "--last", "2");
            Assert.Equal(2, r.ExitCode);
            Assert.Contains("--last", r.StdErr);
            Assert.Empty(r.Lines);
            Assert.Equal(0, Position(store, "c"));
            Assert.Equal(Range(1, 10), Seqs(Support.Cli.Run("get", "--store", store, "--consumer", "c")));
        }

        [Fact]
        public void In_core_a_consumer_read_with_a_filter_keeps_a_position_of_its_own()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            StoreInspector.Init(store);
            Publish(store, 4, i => i % 2 == 1 ? "a.x" : "b.x");
            using var s = FileEventStore.Open(store);
            Assert.Equal(new long[] { 1, 3 }, s.Read(new EventQuery { Consumer = "k", Type = "a.*" }).Select(e => e.Seq).ToArray());
            Assert.Equal(Range(1, 4), s.Read(new EventQuery { Consumer = "k" }).Select(e => e.Seq).ToArray());
            var ex = Assert.Throws<BmadGuard.Core.BmadGuardException>(() => s.Read(new EventQuery { Consumer = "k", Last = 1 }).ToList());
            Assert.Equal("InvalidArgument", ex.Code);
        }
    }
}
