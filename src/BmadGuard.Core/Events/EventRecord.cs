using System;
using System.IO;
using System.Text;

namespace BmadGuard.Core.Events
{
    /// <summary>One acknowledged (durable) event as stored.</summary>
    public sealed class EventRecord
    {
        private static readonly UTF8Encoding Utf8 = new UTF8Encoding(false, true);
        private readonly byte[] _utf8;
        private readonly int _dataOffset;
        private readonly int _dataLength;
        private string? _json;
        private string? _dataJson;

        internal EventRecord(long seq, string id, DateTimeOffset timestamp, string type, string source,
            string? correlationId, byte[] utf8, int dataOffset, int dataLength)
        {
            Seq = seq;
            Id = id;
            Timestamp = timestamp;
            Type = type;
            Source = source;
            CorrelationId = correlationId;
            _utf8 = utf8;
            _dataOffset = dataOffset;
            _dataLength = dataLength;
        }

        /// <summary>Sequence number: from 1, contiguous, never reused.</summary>
        public long Seq { get; }

        /// <summary>Unique id (a GUID in "D" format unless the event was imported with its own).</summary>
        public string Id { get; }

        /// <summary>When the store accepted the event (UTC). Non-decreasing with <see cref="Seq"/>.</summary>
        public DateTimeOffset Timestamp { get; }

        public string Type { get; }

        /// <summary>The agent that published the event.</summary>
        public string Source { get; }

        public string? CorrelationId { get; }

        /// <summary>The event's data: a JSON object, compact.</summary>
        public string DataJson => _dataJson ??= Utf8.GetString(_utf8, _dataOffset, _dataLength);

        /// <summary>The whole event as one compact JSON object:
        /// <c>{"seq","id","timestamp","type","source","correlationId","data"}</c>.</summary>
        public string Json => _json ??= Utf8.GetString(_utf8, 0, _utf8.Length);

        /// <summary>The whole event as UTF-8 JSON bytes (no newline).</summary>
        public ReadOnlyMemory<byte> Utf8Json => _utf8;

        internal ReadOnlyMemory<byte> DataUtf8 => new ReadOnlyMemory<byte>(_utf8, _dataOffset, _dataLength);

        /// <summary>Writes <see cref="Json"/> as UTF-8 followed by a newline (one JSON line).</summary>
        public void WriteJsonLine(Stream stream)
        {
            stream.Write(_utf8, 0, _utf8.Length);
            stream.WriteByte((byte)'\n');
        }

        public override string ToString() => Json;
    }
}
