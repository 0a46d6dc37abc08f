using System;
using System.Collections.Specialized;
using BmadGuard.Core.Events;

namespace BmadGuard
{
    /// <summary>
    /// One acknowledged (durable) event, as Publish-BmadEvent and Get-BmadEvent write it to the pipeline.
    /// Its Type, Data, Source and CorrelationId bind by property name to Publish-BmadEvent, so events can be
    /// copied from one store to another with a pipeline.
    /// </summary>
    public sealed class BmadEvent
    {
        private OrderedDictionary? _data;

        internal BmadEvent(long seq, string id, DateTimeOffset timestamp, string type, string source, string? correlationId, string dataJson, string json)
        {
            Seq = seq;
            Id = id;
            Timestamp = timestamp;
            Type = type;
            Source = source;
            CorrelationId = correlationId;
            DataJson = dataJson;
            Json = json;
        }

        /// <summary>Sequence number in the store: from 1, contiguous, never reused.</summary>
        public long Seq { get; }

        /// <summary>The event's unique id.</summary>
        public string Id { get; }

        /// <summary>When the store accepted the event (UTC).</summary>
        public DateTimeOffset Timestamp { get; }

        /// <summary>The event type, e.g. story.created.</summary>
        public string Type { get; }

        /// <summary>The agent that published the event.</summary>
        public string Source { get; }

        /// <summary>Ties related events together; null when none was given.</summary>
        public string? CorrelationId { get; }

        /// <summary>
        /// The event's data as an ordered hashtable (keys in stored order, case-insensitive). Nested
        /// objects are ordered hashtables, arrays are object[], integers Int64 (BigInteger when larger),
        /// other numbers Double. Converted from <see cref="DataJson"/> on first use.
        /// </summary>
        public OrderedDictionary Data => _data ??= EventDataReader.ToDictionary(DataJson);

        /// <summary>The event's data as compact JSON, exactly as stored.</summary>
        public string DataJson { get; }

        /// <summary>The whole event as one compact JSON object (the CLI's output line).</summary>
        public string Json { get; }

        /// <summary>The JSON line, so an event written to a file or a string is the CLI's format.</summary>
        public override string ToString() => Json;

        /// <summary>The store's record this event was read from (what Export-BmadEvent writes); null when built otherwise.</summary>
        internal EventRecord? Record { get; private set; }

        internal static BmadEvent FromRecord(EventRecord r)
            => new BmadEvent(r.Seq, r.Id, r.Timestamp, r.Type, r.Source, r.CorrelationId, r.DataJson, r.Json) { Record = r };
    }
}
