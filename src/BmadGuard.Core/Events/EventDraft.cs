using System;

namespace BmadGuard.Core.Events
{
    /// <summary>
    /// An event as a caller hands it in, before validation. Data is either UTF-8 JSON text
    /// (CLI, JSON strings) or an object graph (hashtables and objects from PowerShell).
    /// </summary>
    public sealed class EventDraft
    {
        private EventDraft(string type, string? source, string? correlationId, ReadOnlyMemory<byte>? json, object? graph, bool hasGraph, string? text = null)
        {
            Type = type;
            Source = source;
            CorrelationId = correlationId;
            DataUtf8 = json;
            DataGraph = graph;
            HasGraph = hasGraph;
            DataText = text;
        }

        public string Type { get; }

        public string? Source { get; }

        public string? CorrelationId { get; }

        internal ReadOnlyMemory<byte>? DataUtf8 { get; }

        internal object? DataGraph { get; }

        internal bool HasGraph { get; }

        /// <summary>Data given as JSON text: encoded to UTF-8 strictly when the event is prepared (an unpaired
        /// surrogate is refused there, never replaced by U+FFFD).</summary>
        internal string? DataText { get; }

        /// <summary>Data given as UTF-8 JSON bytes (validated strictly: UTF-8, RFC 8259, an object).</summary>
        public static EventDraft FromJson(string type, string? source, string? correlationId, ReadOnlyMemory<byte> dataUtf8)
            => new EventDraft(type, source, correlationId, dataUtf8, null, false);

        /// <summary>Data given as JSON text. A null or empty string means an empty object.</summary>
        public static EventDraft FromJson(string type, string? source, string? correlationId, string? dataJson)
            => string.IsNullOrEmpty(dataJson)
                ? new EventDraft(type, source, correlationId, null, null, true)
                : new EventDraft(type, source, correlationId, null, null, false, dataJson);

        /// <summary>Data given as an object graph: dictionaries, lists, strings, numbers, booleans, dates, null.</summary>
        public static EventDraft FromObject(string type, string? source, string? correlationId, object? data)
            => new EventDraft(type, source, correlationId, null, data, true);
    }
}
