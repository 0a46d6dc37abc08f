using System;
using System.Collections.Specialized;
using System.Numerics;
using BmadGuard.Core.Events;
using BmadGuard.Core.Storage;
using Xunit;

namespace BmadGuard.Tests.PowerShell
{
    /// <summary>The event objects the cmdlets write: Data converted from the stored JSON.</summary>
    public class OutputConversionTests
    {
        private static BmadEvent Event(string dataJson)
            => new BmadEvent(7, "id-7", DateTimeOffset.UnixEpoch, "story.created", "dev", null, dataJson, "{\"seq\":7}");

        [Fact]
        public void Data_is_an_ordered_case_insensitive_hashtable_of_the_stored_json()
        {
            var data = Event("{\"story\":\"S-1\",\"points\":3,\"ratio\":0.5,\"done\":false,\"owner\":null}").Data;
            Assert.Equal(new object[] { "story", "points", "ratio", "done", "owner" }, new System.Collections.ArrayList(data.Keys).ToArray());
            Assert.Equal("S-1", data["STORY"]);
            Assert.Equal(3L, data["points"]);
            Assert.Equal(0.5, data["ratio"]);
            Assert.Equal(false, data["done"]);
            Assert.True(data.Contains("owner"));
            Assert.Null(data["owner"]);
        }

        [Fact]
        public void Nested_objects_and_arrays_convert_recursively()
        {
            var data = Event("{\"a\":{\"b\":[1,\"x\",{\"c\":true},[]]}}").Data;
            var a = Assert.IsType<OrderedDictionary>(data["a"]);
            var b = Assert.IsType<object?[]>(a["b"]);
            Assert.Equal(1L, b[0]);
            Assert.Equal("x", b[1]);
            Assert.Equal(true, Assert.IsType<OrderedDictionary>(b[2])["c"]);
            Assert.Empty(Assert.IsType<object?[]>(b[3]));
        }

        [Fact]
        public void Integers_beyond_Int64_are_BigInteger_not_rounded_doubles()
        {
            var data = Event("{\"big\":123456789012345678901234567890,\"neg\":-9223372036854775808,\"exp\":1e3}").Data;
            Assert.Equal(BigInteger.Parse("123456789012345678901234567890"), data["big"]);
            Assert.Equal(long.MinValue, data["neg"]);
            Assert.Equal(1000.0, data["exp"]);
        }

        [Fact]
        public void Keys_that_differ_only_by_case_are_both_kept()
        {
            var data = Event("{\"id\":1,\"Id\":2}").Data;
            Assert.Equal(2, data.Count);
            Assert.Equal(1L, data["id"]);
            Assert.Equal(2L, data["Id"]);
        }

        [Fact]
        public void Strings_that_look_like_dates_stay_strings()
        {
            Assert.Equal("2026-01-01T00:00:00Z", Event("{\"t\":\"2026-01-01T00:00:00Z\"}").Data["t"]);
        }

        [Fact]
        public void A_published_event_round_trips_through_the_output_object()
        {
            string dir = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "bmadguard-ps-tests", Guid.NewGuid().ToString("N"));
            try
            {
                using var store = FileEventStore.Initialize(dir, null, null, out _);
                var record = store.Publish(EventDraft.FromJson("story.created", "architect", "corr-1", "{\"story\":\"S-9\",\"tags\":[\"a\",\"b\"]}"));
                var e = BmadEvent.FromRecord(record);
                Assert.Equal(1, e.Seq);
                Assert.Equal(record.Id, e.Id);
                Assert.Equal("story.created", e.Type);
                Assert.Equal("architect", e.Source);
                Assert.Equal("corr-1", e.CorrelationId);
                Assert.Equal(record.Json, e.Json);
                Assert.Equal(record.Json, e.ToString());
                Assert.Equal("{\"story\":\"S-9\",\"tags\":[\"a\",\"b\"]}", e.DataJson);
                Assert.Equal("S-9", e.Data["story"]);
                Assert.Equal(new object?[] { "a", "b" }, e.Data["tags"]);
            }
            finally
            {
                System.IO.Directory.Delete(dir, true);
            }
        }

        [Fact]
        public void Statistics_counts_are_ordered_most_frequent_first()
        {
            var counts = BmadStoreStatistics.Counts(new[]
            {
                new System.Collections.Generic.KeyValuePair<string, long>("b.x", 2),
                new System.Collections.Generic.KeyValuePair<string, long>("a.x", 5),
                new System.Collections.Generic.KeyValuePair<string, long>("c.x", 2),
            });
            Assert.Equal(new object[] { "a.x", "b.x", "c.x" }, new System.Collections.ArrayList(counts.Keys).ToArray());
            Assert.Equal(5L, counts["a.x"]);
        }

        [Theory]
        [InlineData(DateTimeKind.Utc, 0)]
        [InlineData(DateTimeKind.Local, null)]
        [InlineData(DateTimeKind.Unspecified, null)]
        public void Since_treats_a_DateTime_without_zone_as_local_time(DateTimeKind kind, int? offsetHours)
        {
            var dt = new DateTime(2026, 6, 1, 12, 0, 0, kind);
            var o = BmadGuard.Commands.GetBmadEventCommand.ToOffset(dt);
            var expectedOffset = offsetHours.HasValue ? TimeSpan.FromHours(offsetHours.Value) : TimeZoneInfo.Local.GetUtcOffset(new DateTime(2026, 6, 1, 12, 0, 0, DateTimeKind.Local));
            Assert.Equal(expectedOffset, o.Offset);
            Assert.Equal(12, o.Hour);
        }
    }
}
